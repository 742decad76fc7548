"""What DeepLog and LogAnomaly share: next-key prediction over a window of previous keys.

Both detectors (Du et al., CCS 2017, Sec. 3.1; Meng et al., IJCAI 2019) read a run's keys
``m_1 .. m_n`` and, for every position ``t``, predict a distribution over the vocabulary ``K`` from
the window of the ``h`` previous keys::

    w_t = (m_{t-h}, ..., m_{t-1}),      p_t(k) = Pr[m_t = k | w_t]  for k in K      (softmax)

Positions before a run's start are :data:`~lmad.workflows.log_keys.PAD` (left padding), so every
job gets a prediction, the first one included. Training minimises the cross-entropy
``-log p_t(m_t)`` over every position of every normal run. Scoring gives, per job, the 1-based rank
of ``m_t`` among the keys ordered by ``p_t`` (DeepLog's top-g rule flags ``rank > g``) and the
surprisal ``-log p_t(m_t)``. The reserved ids PAD and UNKNOWN are never predicted (their logits
are masked), so a known key ranks at most ``len(vocabulary) - 2``; an UNKNOWN true key ranks
``len(vocabulary)`` and has surprisal ``-log MIN_PROBABILITY``.

:class:`NextKeyModel` holds the loop (seeded fit, batched score, save/load); a detector supplies
its network, its inputs (arrays with one row per job) and how a batch of inputs becomes logits.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn

from lmad.errors import DataError
from lmad.workflows.log_keys import MIN_PROBABILITY, PAD, UNKNOWN, JobScores, JobSequences

MODEL_FILE = "model.pt"
"""The file :meth:`NextKeyModel.save` writes in a folder."""


def windows(per_run: Sequence[np.ndarray], window: int, pad: int = PAD) -> np.ndarray:
    """``(jobs, window)`` int64: row ``t`` of a run is ``values[t-window:t]``, left-padded with ``pad``.

    Rows of all runs are stacked in run order, so row ``i`` predicts the ``i``-th job of
    ``np.concatenate(per_run)``.
    """
    rows = []
    for values in per_run:
        padded = np.concatenate(
            [np.full(window, pad, dtype=np.int64), np.asarray(values, np.int64)]
        )
        for t in range(len(values)):
            rows.append(padded[t : t + window])
    return np.stack(rows) if rows else np.zeros((0, window), dtype=np.int64)


def mask_reserved(logits: torch.Tensor) -> torch.Tensor:
    """Logits with PAD and UNKNOWN set to -inf: the softmax runs over the known keys only."""
    reserved = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    reserved[[PAD, UNKNOWN]] = True
    return logits.masked_fill(reserved, float("-inf"))


def rank_and_surprisal(
    logits: torch.Tensor, targets: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the 1-based rank of ``targets`` by logit (ties share the better rank) and
    ``-log p(target)`` with p floored at MIN_PROBABILITY; UNKNOWN targets: rank ``vocab``,
    surprisal ``-log MIN_PROBABILITY``."""
    logits = mask_reserved(logits.float())
    vocab = logits.shape[-1]
    unknown = targets == UNKNOWN
    safe = targets.masked_fill(unknown, PAD).unsqueeze(1)
    true = logits.gather(1, safe)
    ranks = 1 + (logits > true).sum(dim=1)
    log_p = torch.log_softmax(logits, dim=1).gather(1, safe).squeeze(1)
    surprisal = torch.clamp(-log_p, max=-math.log(MIN_PROBABILITY))
    ranks = ranks.masked_fill(unknown, vocab)
    surprisal = surprisal.masked_fill(unknown, -math.log(MIN_PROBABILITY))
    return ranks.cpu().numpy().astype(np.int64), surprisal.cpu().numpy().astype(np.float64)


def model_file(path: str | Path) -> Path:
    """Where :meth:`NextKeyModel.save` writes: ``path`` itself when it has a suffix and is not a
    folder, else ``path / MODEL_FILE``."""
    path = Path(path)
    return path / MODEL_FILE if path.is_dir() or not path.suffix else path


def split_runs(values: np.ndarray, lengths: Sequence[int]) -> list[np.ndarray]:
    """A flat per-job array cut back into one array per run."""
    return list(np.split(values, np.cumsum(lengths)[:-1])) if len(lengths) else []


@contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op CPU threads set to ``threads`` inside the block (None: unchanged).

    These LSTMs are small: one thread is about as fast as several on idle cores and far faster
    on busy ones (eht_imaging, DeepLog, 2 shared cores: 9 s on one thread, 138 s on two).
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class NextKeyModel:
    """A next-key detector: sklearn-style parameters, ``fit``, ``score``, ``save``, ``load``.

    Subclasses set :attr:`PARAMS` (constructor arguments that :meth:`save` stores), and implement
    :meth:`_network` (a fresh, untrained ``nn.Module``), :meth:`_inputs` (the arrays a split
    becomes, one row per job) and :meth:`_logits` (a batch of those arrays, as tensors on the
    device, -> ``(batch, vocab_size)`` logits).
    """

    PARAMS: ClassVar[tuple[str, ...]] = (
        "vocab_size", "window", "hidden", "layers", "epochs", "batch_size", "lr", "seed",
    )  # fmt: skip

    def __init__(
        self,
        vocab_size: int,
        window: int = 10,  # DeepLog's h (the paper's default for HDFS)
        hidden: int = 64,  # DeepLog's alpha, the paper's default
        layers: int = 2,  # DeepLog's L, the paper's default
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        seed: int = 42,
        device: str | None = None,
        progress: bool = True,
        threads: int | None = 1,
    ) -> None:
        """The defaults are DeepLog's and LogAnomaly's both (the loss levels off near epoch 25)."""
        if vocab_size < 3:
            raise DataError(
                f"vocab_size must count PAD, UNKNOWN and at least one key, not {vocab_size}"
            )
        if min(window, hidden, layers, epochs, batch_size) < 1:
            raise DataError("window, hidden, layers, epochs and batch_size must be at least 1")
        self.vocab_size = vocab_size
        self.window = window
        self.hidden = hidden
        self.layers = layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.progress = progress
        self.threads = threads
        self.network: nn.Module | None = None
        self.losses: list[float] = []
        """Mean training cross-entropy of each epoch."""

    # -- for subclasses ----------------------------------------------------------------------------
    def _network(self) -> nn.Module: ...

    def _inputs(self, sequences: JobSequences) -> list[np.ndarray]: ...

    def _logits(self, batch: list[torch.Tensor]) -> torch.Tensor: ...

    def _extra_state(self) -> dict[str, Any]:
        """What :meth:`save` stores beside the parameters and weights."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # -- fit and score -----------------------------------------------------------------------------
    def _check(self, sequences: JobSequences) -> None:
        for run, keys in zip(sequences.runs, sequences.keys):
            if len(keys) and (keys.min() < 0 or keys.max() >= self.vocab_size):
                raise DataError(
                    f"run {run} has key ids outside [0, {self.vocab_size}): build the sequences "
                    "with the vocabulary the model was made for (vocab_size=len(vocabulary))"
                )

    def fit(self, sequences: JobSequences) -> Self:
        """Train on every job of ``sequences`` (pass normal runs: ``split.normal()``).

        Adam on the mean cross-entropy of mini-batches; weights and shuffling follow ``seed``.
        """
        self._check(sequences)
        if not sum(len(k) for k in sequences.keys):
            raise DataError("no jobs to train on: the train split has no normal runs")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.network = self._network().to(self.device)
        inputs = [torch.as_tensor(a) for a in self._inputs(sequences)]
        targets = torch.as_tensor(np.concatenate(sequences.keys))
        with cpu_threads(self.threads):
            self._train(inputs, targets)
        return self

    def _train(self, inputs: list[torch.Tensor], targets: torch.Tensor) -> None:
        from tqdm.auto import tqdm

        generator = torch.Generator().manual_seed(self.seed)
        optimiser = torch.optim.Adam(self.network.parameters(), lr=self.lr)
        self.losses = []
        self.network.train()
        bar = tqdm(range(self.epochs), desc=type(self).__name__, disable=not self.progress)
        for _ in bar:
            order = torch.randperm(len(targets), generator=generator)
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                index = order[start : start + self.batch_size]
                batch = [a[index].to(self.device) for a in inputs]
                logits = mask_reserved(self._logits(batch))
                loss = nn.functional.cross_entropy(logits, targets[index].to(self.device))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(index)
            self.losses.append(total / len(order))
            bar.set_postfix(loss=f"{self.losses[-1]:.4f}")
        self.network.eval()

    def score(self, sequences: JobSequences) -> JobScores:
        """Rank and surprisal of every job's true key (one array per run, job order)."""
        if self.network is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit or load first")
        self._check(sequences)
        lengths = [len(k) for k in sequences.keys]
        if not sum(lengths):
            return JobScores(
                [np.zeros(n, np.int64) for n in lengths], [np.zeros(n) for n in lengths]
            )
        inputs = [torch.as_tensor(a) for a in self._inputs(sequences)]
        targets = torch.as_tensor(np.concatenate(sequences.keys))
        ranks, surprisal = [], []
        with cpu_threads(self.threads), torch.inference_mode():
            for start in range(0, len(targets), max(self.batch_size, 1024)):
                part = slice(start, start + max(self.batch_size, 1024))
                logits = self._logits([a[part].to(self.device) for a in inputs])
                r, s = rank_and_surprisal(logits, targets[part].to(self.device))
                ranks.append(r)
                surprisal.append(s)
        return JobScores(
            split_runs(np.concatenate(ranks), lengths),
            split_runs(np.concatenate(surprisal), lengths),
        )

    # -- save and load -----------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The constructor arguments :meth:`save` stores (not ``device``, ``progress``, ``threads``)."""
        return {name: getattr(self, name) for name in self.PARAMS}

    def save(self, path: str | Path) -> Path:
        """Write one ``torch.save`` file and return its path: the class name, :meth:`params`, the
        network's weights, the per-epoch losses and any detector-specific state (LogAnomaly: its
        key-text vectors). ``path``: a file (``.pt``), or a folder (no suffix, or an existing
        folder) that gets :data:`MODEL_FILE`. Written to a temporary file first, then renamed.
        """
        if self.network is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: nothing to save")
        path = model_file(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "model": type(self).__name__,
            "params": self.params(),
            "weights": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "losses": list(self.losses),
            "extra": self._extra_state(),
        }
        partial = path.with_name(path.name + ".partial")
        torch.save(state, partial)
        os.replace(partial, path)
        return path

    @classmethod
    def _read(cls, path: str | Path) -> dict[str, Any]:
        path = model_file(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise DataError(f"no saved model at {path}") from None
        except (RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            raise DataError(f"{path} cannot be read as a saved model ({exc}); delete it") from None
        if not isinstance(state, dict) or state.get("model") != cls.__name__:
            found = state.get("model") if isinstance(state, dict) else type(state).__name__
            raise DataError(f"{path} holds no saved {cls.__name__} (found {found!r})")
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        """Weights, losses and extra state of a :meth:`save` file into this (unfitted) model."""
        self._load_extra_state(state["extra"])
        self.network = self._network()
        self.network.load_state_dict(state["weights"])
        self.network.to(self.device).eval()
        self.losses = list(state["losses"])

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> Self:
        """A fitted model from a :meth:`save` file (or its folder); ``kwargs``: constructor
        arguments that are not saved (``device``, ``progress``, ``threads``, LogAnomaly's
        ``embed``)."""
        state = cls._read(path)
        model = cls(**state["params"], **kwargs)
        model._restore(state)
        return model
