"""The honesty of a threshold, for the SemAD tables.

The tables' ROC-AUC is :func:`lmad.metrics.auc.auc_roc`, the one the time-series tables use: the
Mann-Whitney U statistic divided by the number of (anomalous, normal) pairs, i.e. the probability
that a randomly drawn anomalous item scores higher than a randomly drawn normal one, ties counting
one half (Hanley and McNeil, Radiology 143, 1982). 0.5 is a random ranking, 1 a perfect one.

* **Flagged share** (:func:`flagged_share`): the share of items a threshold calls anomalous
  (``score >= threshold``). A threshold that flags at least :data:`FLAGS_ALL_SHARE` of the items
  says little: its precision is (about) the anomaly rate and its recall (about) 1 whatever the
  model, so the tables mark it (:func:`flags_all`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FLAGS_ALL_SHARE = 0.95
"""A threshold that flags at least this share of the items is marked as uninformative."""


def flagged_share(scores: Any, threshold: float) -> float:
    """Share of ``scores`` at or above ``threshold`` (NaN for no scores or a NaN threshold)."""
    s = np.asarray(scores, dtype=float).ravel()
    if s.size == 0 or math.isnan(threshold):
        return math.nan
    return float(np.count_nonzero(s >= threshold) / s.size)


def flags_all(share: float) -> bool:
    """Whether a threshold flagging ``share`` of the items is marked (``share >= 0.95``)."""
    return bool(not math.isnan(share) and share >= FLAGS_ALL_SHARE)
