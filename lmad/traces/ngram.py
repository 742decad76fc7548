"""A frequency baseline for SemAD: an interpolated add-k n-gram model of activity sequences.

Trained on the same normal traces as the LLM, it shows how much of SemAD's detection a model that
only counts which activity follows which already achieves (so the LLM's gain is visible).

Model. Activities are whole event names (``" , "``-separated); a trace is padded with ``n − 1``
start symbols and ends with an end symbol ``</t>``; names never seen in training map to ``<unk>``.
For each order ``j = 1..n`` the add-k estimate is ``p_j(e | h_j) = (c(h_j, e) + k) / (c(h_j) +
k·|V|)`` over the vocabulary ``V`` (training activities, ``</t>`` and ``<unk>``), and the model
interpolates them (Jelinek-Mercer): ``p(e | h) = Σ_j λ_j p_j(e | h_j)`` with ``λ`` = (0.1, 0.3, 0.6)
for unigram, bigram and trigram by default (a proper distribution over ``V`` for every history).

Score. To be comparable with SemAD's thresholds, each event is scored exactly like one SemAD token:
``s = Σ_v p_v log p_v − log p(e | h)`` (surprisal minus the entropy of the prediction) and the event
score is ``sigmoid(s)``, so the default threshold 0.9 means "at least ln 9 nats more surprising than
an average outcome" for both methods. The end symbol is the end-of-trace pseudo-event; trace score
= max over events and the end, event-level metrics leave the end out (as in
:mod:`lmad.traces.scoring`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from lmad.errors import DataError
from lmad.traces.scoring import TraceScore, sigmoid

START = "<s>"
END = "</t>"
UNKNOWN = "<unk>"
ADD_K = 0.1
WEIGHTS = (0.1, 0.3, 0.6)
"""Interpolation weights of a trigram model (unigram, bigram, trigram); other orders: equal."""


class NGramModel:
    """Interpolated add-k n-gram model over activity names (see the module docstring)."""

    def __init__(
        self, order: int, k: float = ADD_K, weights: Sequence[float] | None = None
    ) -> None:
        if order < 1:
            raise DataError(f"n-gram order must be at least 1, got {order}")
        if k <= 0:
            raise DataError(f"add-k smoothing needs k > 0, got {k}")
        if weights is None:
            weights = WEIGHTS if order == len(WEIGHTS) else [1.0] * order
        if len(weights) != order or min(weights) < 0 or sum(weights) <= 0:
            raise DataError(f"give {order} non-negative interpolation weights, got {weights}")
        total = float(sum(weights))
        self.order, self.k = order, float(k)
        self.weights = [float(w) / total for w in weights]
        self.vocab: list[str] = []
        self.index: dict[str, int] = {}
        self.counts: list[dict[tuple[str, ...], Counter]] = []
        self._cache: dict[tuple[str, ...], np.ndarray] = {}

    def fit(self, traces: Iterable[Sequence[str]]) -> NGramModel:
        """Count n-grams of the given event lists (normal traces)."""
        self.counts = [defaultdict(Counter) for _ in range(self.order)]
        names: set[str] = set()
        seen = 0
        for events in traces:
            if not events:
                raise DataError("a training trace is empty; every trace needs an activity")
            seen += 1
            names.update(events)
            padded = [START] * (self.order - 1) + list(events) + [END]
            for pos in range(self.order - 1, len(padded)):
                for j in range(self.order):  # j = history length
                    history = tuple(padded[pos - j : pos])
                    self.counts[j][history][padded[pos]] += 1
        if not seen:
            raise DataError("no training traces for the n-gram baseline")
        self.vocab = [*sorted(names), END, UNKNOWN]
        self.index = {name: i for i, name in enumerate(self.vocab)}
        self._cache.clear()
        return self

    def distribution(self, history: Sequence[str]) -> np.ndarray:
        """``p(· | history)`` over :attr:`vocab` (the last ``order − 1`` names are used)."""
        if not self.vocab:
            raise DataError("the n-gram model is not trained; call fit first")
        keep = self.order - 1
        recent = [self._known(h) for h in history][-keep:] if keep else []
        history = (START,) * (keep - len(recent)) + tuple(recent)
        if history in self._cache:
            return self._cache[history]
        size = len(self.vocab)
        probs = np.zeros(size)
        for j, weight in enumerate(self.weights):
            counter = self.counts[j].get(history[len(history) - j :] if j else (), Counter())
            counts = np.full(size, self.k)
            for name, c in counter.items():
                counts[self.index[name]] += c
            probs += weight * counts / counts.sum()
        self._cache[history] = probs
        return probs

    def _known(self, name: str) -> str:
        return name if name in self.index or name == START else UNKNOWN

    def token_scores(self, events: Sequence[str]) -> np.ndarray:
        """``Σ_v p_v log p_v − log p(e | h)`` for every event and then the end symbol."""
        if not events:
            raise DataError("a trace is empty; every trace needs at least one activity")
        out = []
        history: list[str] = [START] * (self.order - 1)
        for name in [*events, END]:
            probs = self.distribution(history)
            p = probs[self.index[self._known(name) if name != END else END]]
            out.append(float((probs * np.log(probs)).sum() - math.log(p)))
            history.append(name)
        return np.array(out)

    def score(self, traces: Iterable[Sequence[str]]) -> list[TraceScore]:
        """One :class:`~lmad.traces.scoring.TraceScore` per event list."""
        results = []
        for events in traces:
            s = self.token_scores(events)
            results.append(
                TraceScore(
                    events=np.asarray(sigmoid(s[:-1]), dtype=float),
                    end=float(sigmoid(s[-1])),
                    tokens=[s[i : i + 1] for i in range(s.size)],
                )
            )
        return results
