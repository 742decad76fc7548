"""LogAnomaly's sequential + quantitative next-key model, on workflow runs as sequences of job keys.

Meng, Liu, Zhu, Zhang, Pei, Liu, Chen, Zhang, Tao, Sun and Zhou, "LogAnomaly: Unsupervised
Detection of Sequential and Quantitative Anomalies in Unstructured Logs", IJCAI 2019. A run's keys
``s_1 .. s_m`` (:mod:`lmad.workflows.log_keys`) are read through the window
``S_j = (s_j, ..., s_{j+w-1})`` of the ``w`` most recent keys, and two patterns of the window are
learnt from normal runs:

- **sequential pattern**: the window as *template vectors* ``V_j = (v(s_j), ..., v(s_{j+w-1}))``,
  one semantic vector per key (the paper's template2vec, which averages word vectors of a
  template; here a sentence encoder, injected as ``embed``: production passes
  ``SentenceEncoder("minilm").encode``). An UNKNOWN key keeps the vector of its own text, so a key
  never seen in training still lands near the keys it resembles.
- **quantitative pattern**: the count vector ``X = (c(k_1), ..., c(k_n))`` of how often each key of
  the vocabulary occurs; per step ``i`` of the window, the counts over ``s_j .. s_i`` (the keys seen
  so far in the window; PAD is not counted), so the branch sees the counts grow along the window.

Each pattern is read by its own stacked LSTM; their last hidden states are concatenated and a
linear layer + softmax gives ``Pr[s_{j+w} = k | S_j]`` over the vocabulary::

    h_seq = LSTM_seq(V_j)[-1],   h_quant = LSTM_quant(X_j .. X_{j+w-1})[-1]
    Pr[s_{j+w} = · | S_j] = softmax(W [h_seq ; h_quant] + b)

trained with cross-entropy on normal runs. A key is anomalous when it is not among the top g
predicted keys, as in DeepLog (:meth:`~lmad.workflows.log_keys.JobScores.flagged`). Each distinct
key text is embedded once and cached (and saved with the weights).

Windows are left-padded (a zero vector and no count for PAD) so every job is scored; the shared
training loop, scoring and saving are in :mod:`lmad.workflows.next_key`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from lmad.errors import ConfigError, DataError
from lmad.workflows.log_keys import PAD, JobSequences
from lmad.workflows.next_key import NextKeyModel, windows

Embed = Callable[[list[str]], np.ndarray]
"""Texts -> ``(len(texts), dim)`` vectors (e.g. ``SentenceEncoder("minilm").encode``)."""


class _Network(nn.Module):
    """Two LSTMs (semantic vectors, count vectors) -> concatenated -> linear logits."""

    def __init__(self, vocab_size: int, vector_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.sequential = nn.LSTM(vector_dim, hidden, num_layers=layers, batch_first=True)
        self.quantitative = nn.LSTM(vocab_size, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(2 * hidden, vocab_size)

    def forward(self, vectors: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """``(batch, window, dim)`` and ``(batch, window, vocab)`` -> ``(batch, vocab)`` logits."""
        sequential, _ = self.sequential(vectors)
        quantitative, _ = self.quantitative(counts)
        return self.out(torch.cat([sequential[:, -1], quantitative[:, -1]], dim=1))


def count_vectors(keys: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``(batch, window)`` key ids -> ``(batch, window, vocab)``: step ``i`` counts the window's
    keys up to and including ``i`` (PAD never counted)."""
    one_hot = nn.functional.one_hot(keys, vocab_size).float()
    one_hot[..., PAD] = 0.0
    return one_hot.cumsum(dim=1)


class LogAnomaly(NextKeyModel):
    """LogAnomaly's next-key model (Meng et al. 2019): ``fit`` on normal runs, ``score`` runs.

    Args:
        vocab_size: ``len(vocabulary)`` of the :class:`~lmad.workflows.log_keys.KeyedSplits`.
        embed: key texts -> semantic vectors; may be None after :meth:`load` when every text to
            score was seen before (the cache is saved).
        window: ``w``, the number of previous keys the prediction sees.
        hidden: units per LSTM layer (each branch).
        layers: stacked LSTM layers (each branch).
        epochs, batch_size, lr: Adam on the cross-entropy of every position of every run.
        seed: weights and shuffling; the same seed gives the same scores (on CPU).
        device: ``None``: cuda when available, else cpu.
        progress: a tqdm bar over epochs.
        threads: torch CPU threads while fitting and scoring (restored after); None: torch's
            setting. One is fastest for these small LSTMs, above all on busy shared cores.

    ``save(path)`` stores the parameters above (not ``embed``/``device``/``progress``/``threads``),
    the weights and the cached text vectors; ``LogAnomaly.load(path, embed=...)`` rebuilds the
    fitted model.
    """

    def __init__(self, vocab_size: int, embed: Embed | None = None, **kwargs: Any) -> None:
        """``kwargs``: the shared parameters of :class:`~lmad.workflows.next_key.NextKeyModel`."""
        super().__init__(vocab_size, **kwargs)
        self.embed = embed
        self.texts: dict[str, int] = {}
        """Key text -> row of :attr:`vectors` (row 0 is PAD's zero vector)."""
        self.vectors: np.ndarray | None = None
        self._table: torch.Tensor | None = None

    # -- semantic vectors --------------------------------------------------------------------------
    def vectors_of(self, texts: list[str]) -> np.ndarray:
        """Rows of :attr:`vectors` for ``texts``, embedding each text not seen before once."""
        new = [t for t in dict.fromkeys(texts) if t not in self.texts]
        if new:
            if self.embed is None:
                raise ConfigError(
                    f"LogAnomaly needs embed to turn {len(new)} new key text(s) into vectors "
                    f"(e.g. {new[0]!r}); pass embed=SentenceEncoder('minilm').encode"
                )
            fresh = np.asarray(self.embed(new), dtype=np.float32)
            if fresh.ndim != 2 or len(fresh) != len(new):
                raise DataError(f"embed returned shape {fresh.shape} for {len(new)} texts")
            if self.vectors is None:
                self.vectors = np.zeros((1, fresh.shape[1]), dtype=np.float32)
            if fresh.shape[1] != self.vectors.shape[1]:
                raise DataError(
                    f"embed returned {fresh.shape[1]}-d vectors; this model uses "
                    f"{self.vectors.shape[1]}-d ones"
                )
            for text in new:
                self.texts[text] = len(self.texts) + 1
            self.vectors = np.concatenate([self.vectors, fresh])
            self._table = None
        return np.array([self.texts[t] for t in texts], dtype=np.int64)

    # -- NextKeyModel ------------------------------------------------------------------------------
    def _network(self) -> nn.Module:
        assert self.vectors is not None, "vectors_of runs before the network is built"
        return _Network(self.vocab_size, self.vectors.shape[1], self.hidden, self.layers)

    def _inputs(self, sequences: JobSequences) -> list[np.ndarray]:
        rows = [self.vectors_of(list(texts)) for texts in sequences.texts]
        return [windows(rows, self.window, pad=0), windows(sequences.keys, self.window)]

    def _logits(self, batch: list[torch.Tensor]) -> torch.Tensor:
        if self._table is None or self._table.shape[0] != len(self.vectors):
            self._table = torch.as_tensor(self.vectors, device=self.device)
        vectors = self._table[batch[0]]
        return self.network(vectors, count_vectors(batch[1], self.vocab_size))

    def fit(self, sequences: JobSequences) -> LogAnomaly:
        """Train on every job of ``sequences`` (pass normal runs: ``split.normal()``)."""
        self.vectors_of([t for texts in sequences.texts for t in texts])
        return super().fit(sequences)

    def _extra_state(self) -> dict[str, Any]:
        return {"texts": list(self.texts), "vectors": torch.as_tensor(self.vectors)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.texts = {text: i + 1 for i, text in enumerate(state["texts"])}
        self.vectors = state["vectors"].numpy()
        self._table = None
