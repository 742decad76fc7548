"""DeepLog's log key anomaly detection model, on workflow runs as sequences of job keys.

Du, Li, Zheng and Srikumar, "DeepLog: Anomaly Detection and Diagnosis from System Logs through Deep
Learning", CCS 2017, Sec. 3.1. A run's jobs are log keys ``m_1 .. m_n`` over the vocabulary
``K = {k_1, ..., k_n}`` (:mod:`lmad.workflows.log_keys`). For the history window
``w = {m_{t-h}, ..., m_{t-1}}`` of the ``h`` most recent keys the model outputs the conditional
distribution ``Pr[m_t = k_i | w]`` for every ``k_i`` in ``K``; it is trained on normal runs only
(multi-class classification, cross-entropy loss), and at detection time the incoming key ``m_t`` is
normal when it is among the ``g`` keys of highest probability, else anomalous (the top-g rule,
:meth:`~lmad.workflows.log_keys.JobScores.flagged`).

The network (Sec. 3.1, Fig. 2): ``x_j = E[m_j]`` (an embedding of each key of the window; the
paper feeds one-hot keys, of which an embedding is the linear map), a stack of ``L`` LSTM layers
with ``α`` hidden units per cell, each step computing from ``(x_j, h_{j-1}, c_{j-1})``::

    i_j = σ(W_i x_j + U_i h_{j-1} + b_i)       f_j = σ(W_f x_j + U_f h_{j-1} + b_f)
    o_j = σ(W_o x_j + U_o h_{j-1} + b_o)       c_j = f_j ⊙ c_{j-1} + i_j ⊙ tanh(W_c x_j + U_c h_{j-1} + b_c)
    h_j = o_j ⊙ tanh(c_j)

then ``Pr[m_t = · | w] = softmax(W h_{t-1} + b)`` over ``K`` from the top layer's last hidden state.
Only the log key model is built here; DeepLog's parameter-value (quantitative) model and workflow
construction are not.

Windows are left-padded with PAD so the first jobs of a run are scored too (the paper starts at
``t = h + 1``); the shared training loop, scoring and saving are in :mod:`lmad.workflows.next_key`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from lmad.workflows.log_keys import PAD, JobSequences
from lmad.workflows.next_key import NextKeyModel, windows

EMBEDDING = 32


class _Network(nn.Module):
    """Embedding -> stacked LSTM -> linear logits over the vocabulary (softmax in the loss)."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        self.lstm = nn.LSTM(embedding_dim, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, keys: torch.Tensor) -> torch.Tensor:
        """``(batch, window)`` key ids -> ``(batch, vocab_size)`` logits."""
        states, _ = self.lstm(self.embed(keys))
        return self.out(states[:, -1])


class DeepLog(NextKeyModel):
    """DeepLog's next-key LSTM (Du et al. 2017, Sec. 3.1): ``fit`` on normal runs, ``score`` runs.

    Args:
        vocab_size: ``len(vocabulary)`` of the :class:`~lmad.workflows.log_keys.KeyedSplits`.
        window: ``h``, the number of previous keys the prediction sees.
        hidden: ``α``, LSTM units per layer.
        layers: ``L``, stacked LSTM layers.
        embedding_dim: size of each key's embedding (the LSTM's input).
        epochs, batch_size, lr: Adam on the cross-entropy of every position of every run.
        seed: weights and shuffling; the same seed gives the same scores (on CPU).
        device: ``None``: cuda when available, else cpu.
        progress: a tqdm bar over epochs.
        threads: torch CPU threads while fitting and scoring (restored after); None: torch's
            setting. One is fastest for these small LSTMs, above all on busy shared cores.

    ``save(path)`` stores the parameters above (not ``device``/``progress``/``threads``) and the
    weights; ``DeepLog.load(path)`` rebuilds the fitted model.
    """

    PARAMS = (*NextKeyModel.PARAMS, "embedding_dim")

    def __init__(self, vocab_size: int, embedding_dim: int = EMBEDDING, **kwargs: Any) -> None:
        """``kwargs``: the shared parameters of :class:`~lmad.workflows.next_key.NextKeyModel`."""
        super().__init__(vocab_size, **kwargs)
        self.embedding_dim = embedding_dim

    def _network(self) -> nn.Module:
        return _Network(self.vocab_size, self.embedding_dim, self.hidden, self.layers)

    def _inputs(self, sequences: JobSequences) -> list[np.ndarray]:
        return [windows(sequences.keys, self.window)]

    def _logits(self, batch: list[torch.Tensor]) -> torch.Tensor:
        return self.network(batch[0])
