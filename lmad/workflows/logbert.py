"""LogBERT over workflow runs: a small BERT trained on normal runs' log-key sequences.

Guo, Yuan and Wu, "LogBERT: Log Anomaly Detection via BERT", IJCNN 2021 (arXiv 2103.04475).
Each run is a sequence of log keys (:mod:`lmad.workflows.log_keys`) with a ``DIST`` token put
first; a transformer encoder (key embedding + learned position embedding) reads it and is
trained on normal runs only, with two self-supervised tasks:

- masked log key prediction (MLKP): a share ``mask_ratio`` of a run's keys become
  ``MASK``; the encoder's output at each masked position predicts the key with a softmax over the
  vocabulary, ``L_MLKP = -1/N sum_j sum_i y_ij log p_ij`` (here the cross-entropy
  averaged over the batch's masked keys; at least one key per run is masked);
- volume of hypersphere minimisation (VHM): ``L_VHM = 1/N sum_j ||h_DIST^j - c||^2``,
  ``c`` the mean ``DIST`` output over the normal training runs (recomputed at the start of every
  epoch, in eval mode on the unmasked runs, and held fixed within it; once more after training).

The objective is ``L = L_MLKP + alpha * L_VHM`` (``alpha`` 0.1 in the paper).

Detection, as in the paper: mask keys, and a key is *missed* when its true key is not among the
``g`` most likely predictions; a run is anomalous when more than ``r`` keys are missed. The table
here is job-level, so :meth:`LogBERT.score` masks every job on its own (one copy of the run per
job) and gives per job the rank of its true key and its surprisal (:class:`JobScores`);
``scores.flagged(g)`` are the job labels from the missed keys. :meth:`LogBERT.run_scores` gives
the paper's run-level numbers: missed keys per run and the ``DIST`` distance to ``c``.

The key head never predicts PAD or UNKNOWN, so a known key ranks among the real keys only; an
UNKNOWN *input* (a neighbour's unseen key at score time) keeps its untrained embedding.
Runs longer than ``max_length`` jobs are cut into consecutive chunks of at most ``max_length``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from lmad.workflows.log_keys import MIN_PROBABILITY, PAD, UNKNOWN, JobScores, JobSequences

PARAMETERS = (
    "vocab_size", "hidden", "layers", "heads", "mask_ratio", "alpha", "epochs", "batch_size",
    "lr", "max_length", "seed",
)  # fmt: skip


class Encoder(nn.Module):
    """Key + position embeddings, a transformer encoder, and a key head (vocabulary logits).

    Input ids: ``0 .. vocab_size - 1`` the keys, ``vocab_size`` MASK, ``vocab_size + 1`` DIST.
    """

    def __init__(self, vocab_size: int, hidden: int, layers: int, heads: int, max_length: int):
        super().__init__()
        self.key = nn.Embedding(vocab_size + 2, hidden, padding_idx=PAD)
        self.position = nn.Embedding(max_length + 1, hidden)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=2 * hidden, dropout=0.1, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Hidden states (batch, length, hidden) of ids (batch, length), PAD ignored."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.key(ids) + self.position(positions)
        return self.encoder(x, src_key_padding_mask=ids == PAD)


def vhm_loss(dist: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """L_VHM: mean squared distance of the DIST outputs (runs, hidden) to the centre ``c``."""
    return ((dist - centre) ** 2).sum(dim=1).mean()


@dataclass
class RunScores:
    """The paper's run-level view: keys missed under top-g and the DIST distance to ``c``."""

    missed: np.ndarray
    distance: np.ndarray

    def flagged(self, r: int) -> np.ndarray:
        """1 for runs with more than ``r`` missed keys (the paper's run rule)."""
        return (self.missed > r).astype(np.int64)


class LogBERT:
    """LogBERT (sklearn-style): ``fit`` on normal runs, ``score`` jobs, ``run_scores`` runs."""

    def __init__(
        self,
        vocab_size: int,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 4,
        mask_ratio: float = 0.3,
        alpha: float = 0.1,
        epochs: int = 100,
        batch_size: int = 32,
        lr: float = 1e-3,
        max_length: int = 64,
        seed: int = 42,
        device: str | None = None,
        progress: bool = True,
    ):
        self.vocab_size, self.hidden, self.layers, self.heads = vocab_size, hidden, layers, heads
        self.mask_ratio, self.alpha, self.epochs, self.batch_size = (
            mask_ratio,
            alpha,
            epochs,
            batch_size,
        )
        self.lr, self.max_length, self.seed = lr, max_length, seed
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.progress = progress
        self.model: Encoder | None = None
        self.centre: torch.Tensor | None = None
        self.history: list[dict[str, float]] = []

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    @property
    def dist_id(self) -> int:
        return self.vocab_size + 1

    def _new_model(self) -> Encoder:
        torch.manual_seed(self.seed)
        model = Encoder(self.vocab_size, self.hidden, self.layers, self.heads, self.max_length)
        return model.to(self.device)

    def _chunks(self, keys: np.ndarray) -> list[np.ndarray]:
        return [keys[i : i + self.max_length] for i in range(0, len(keys), self.max_length)]

    def _batch(self, chunks: list[np.ndarray]) -> torch.Tensor:
        """DIST + keys, PAD on the right: (batch, 1 + longest)."""
        ids = torch.full((len(chunks), 1 + max(map(len, chunks))), PAD, dtype=torch.long)
        ids[:, 0] = self.dist_id
        for row, chunk in enumerate(chunks):
            ids[row, 1 : 1 + len(chunk)] = torch.from_numpy(chunk)
        return ids.to(self.device)

    def _mask(
        self, ids: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace ``mask_ratio`` of each run's keys (at least one) by MASK; targets elsewhere PAD."""
        masked, targets = ids.clone(), torch.full_like(ids, PAD)
        for row in range(ids.shape[0]):
            n = int((ids[row, 1:] != PAD).sum())
            k = max(1, round(self.mask_ratio * n))
            where = 1 + torch.randperm(n, generator=generator)[:k].to(ids.device)
            targets[row, where] = ids[row, where]
            masked[row, where] = self.mask_id
        return masked, targets

    @torch.no_grad()
    def _dist(self, chunks: list[np.ndarray]) -> torch.Tensor:
        """DIST outputs (chunks, hidden), eval mode, nothing masked."""
        self.model.eval()
        out = [
            self.model(self._batch(chunks[i : i + 256]))[:, 0] for i in range(0, len(chunks), 256)
        ]
        return torch.cat(out)

    def fit(self, sequences: JobSequences) -> LogBERT:
        """Train on ``sequences`` (normal runs only: the caller passes ``split.normal()``)."""
        chunks = [c for keys in sequences.keys for c in self._chunks(keys) if len(c)]
        if not chunks:
            raise ValueError("LogBERT.fit needs at least one non-empty run")
        if max(int(c.max()) for c in chunks) >= self.vocab_size:
            raise ValueError(f"key ids must lie below vocab_size {self.vocab_size}")
        self.model = self._new_model()
        optimiser = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        order_rng = np.random.default_rng(self.seed)
        generator = torch.Generator().manual_seed(self.seed)
        loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)
        self.history = []
        for _ in tqdm(range(self.epochs), desc="LogBERT", unit="epoch", disable=not self.progress):
            self.centre = self._dist(chunks).mean(dim=0)  # c: mean DIST output of the normal runs
            self.model.train()
            sums = {"mlkp": 0.0, "vhm": 0.0, "loss": 0.0}
            order = order_rng.permutation(len(chunks))
            for start in range(0, len(order), self.batch_size):
                ids = self._batch([chunks[i] for i in order[start : start + self.batch_size]])
                masked, targets = self._mask(ids, generator)
                states = self.model(masked)
                logits = self.model.head(states)
                mlkp = loss_fn(logits.flatten(0, 1), targets.flatten())  # L_MLKP
                vhm = vhm_loss(states[:, 0], self.centre)  # L_VHM
                loss = mlkp + self.alpha * vhm  # L = L_MLKP + alpha L_VHM
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                for name, value in (("mlkp", mlkp), ("vhm", vhm), ("loss", loss)):
                    sums[name] += value.item() * len(ids)
            self.history.append({name: value / len(chunks) for name, value in sums.items()})
        self.centre = self._dist(chunks).mean(dim=0)
        return self

    def _check_fitted(self) -> Encoder:
        if self.model is None or self.centre is None:
            raise RuntimeError("LogBERT is not fitted: call fit() or LogBERT.load() first")
        return self.model

    @torch.no_grad()
    def score(self, sequences: JobSequences) -> JobScores:
        """Mask every job on its own; rank (1-based) and surprisal of its true key."""
        model = self._check_fitted()
        model.eval()
        if not len(sequences):
            return JobScores([], [])
        copies, targets = [], []  # one copy of the chunk per job, that job masked
        for keys in sequences.keys:
            for chunk in self._chunks(keys):
                for position in range(len(chunk)):
                    masked = chunk.copy()
                    masked[position] = self.mask_id
                    copies.append(masked)
                    targets.append((position, int(chunk[position])))
        ranks = np.zeros(len(copies), dtype=np.int64)
        surprisal = np.zeros(len(copies), dtype=np.float64)
        floor = -math.log(MIN_PROBABILITY)
        step = 512
        for start in range(0, len(copies), step):
            batch = self._batch(copies[start : start + step])
            where = torch.tensor(
                [1 + p for p, _ in targets[start : start + step]], device=self.device
            )
            true = torch.tensor([k for _, k in targets[start : start + step]], device=self.device)
            states = model(batch)[torch.arange(len(where), device=self.device), where]
            logits = model.head(states)
            logits[:, [PAD, UNKNOWN]] = -torch.inf  # never predicted: ranks among the real keys
            log_p = torch.log_softmax(logits, dim=1)
            true_logit = logits.gather(1, true.clamp(min=UNKNOWN + 1)[:, None])
            rank = 1 + (logits > true_logit).sum(dim=1)
            unknown = true <= UNKNOWN
            rank[unknown] = self.vocab_size
            s = (-log_p.gather(1, true.clamp(min=UNKNOWN + 1)[:, None])[:, 0]).clamp(max=floor)
            s[unknown] = floor
            ranks[start : start + step] = rank.cpu().numpy()
            surprisal[start : start + step] = s.double().cpu().numpy()
        cuts = np.cumsum([len(keys) for keys in sequences.keys])[:-1]
        return JobScores(np.split(ranks, cuts), np.split(surprisal, cuts))

    @torch.no_grad()
    def run_scores(
        self, sequences: JobSequences, top_g: int, jobs: JobScores | None = None
    ) -> RunScores:
        """Per run: keys missed under top-``g`` and the mean squared DIST distance to ``c``."""
        self._check_fitted()
        jobs = jobs if jobs is not None else self.score(sequences)
        missed = np.array([int(f.sum()) for f in jobs.flagged(top_g)], dtype=np.int64)
        owner = [i for i, keys in enumerate(sequences.keys) for c in self._chunks(keys) if len(c)]
        chunks = [c for keys in sequences.keys for c in self._chunks(keys) if len(c)]
        distance = np.zeros(len(sequences), dtype=np.float64)
        if chunks:
            squared = ((self._dist(chunks) - self.centre) ** 2).sum(dim=1).double().cpu().numpy()
            counts = np.bincount(owner, minlength=len(sequences))
            sums = np.bincount(owner, weights=squared, minlength=len(sequences))
            distance = np.divide(sums, counts, out=distance, where=counts > 0)
        return RunScores(missed, distance)

    def get_params(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in PARAMETERS}

    def save(self, path: str | Path) -> None:
        """Parameters, weights and centre in one torch file."""
        model = self._check_fitted()
        state = {k: v.cpu() for k, v in model.state_dict().items()}
        torch.save({"params": self.get_params(), "state": state, "centre": self.centre.cpu()}, path)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, progress: bool = True) -> LogBERT:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        detector = cls(**saved["params"], device=device, progress=progress)
        detector.model = detector._new_model()
        detector.model.load_state_dict(saved["state"])
        detector.centre = saved["centre"].to(detector.device)
        return detector
