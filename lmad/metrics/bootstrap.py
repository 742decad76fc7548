"""Paired bootstrap of a difference in average precision between two scorers of the same items.

Is method A's AP above method B's beyond the luck of the sample? Both scored the same items, so
the items are resampled together (a paired bootstrap) and the AP difference recomputed on each
resample; the 2.5th and 97.5th percentiles of those differences are the 95 % percentile interval
(Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13). Items that are not
independent (the events of one trace) are resampled by group: a drawn trace brings all its
events (the cluster bootstrap), so the interval is not made narrow by counting one trace's events
as separate draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmad.metrics.auc import auc_pr


@dataclass(frozen=True)
class Difference:
    """``a - b`` on the whole sample, and the percentile interval of its resampled values."""

    value: float
    low: float
    high: float
    level: float

    @property
    def above_zero(self) -> bool:
        """The whole interval lies above 0: A's AP is higher beyond sampling noise."""
        return self.low > 0


def resampled_ap_differences(
    labels: Any, scores_a: Any, scores_b: Any, groups: Any = None, resamples: int = 1000,
    seed: int = 0,
) -> np.ndarray:  # fmt: skip
    """``AP(a) - AP(b)`` on ``resamples`` paired resamples of whole groups (see the module
    docstring); resamples whose labels hold a single class (AP undefined) are left out."""
    y = np.asarray(labels, dtype=int).ravel()
    a, b = np.asarray(scores_a, dtype=float).ravel(), np.asarray(scores_b, dtype=float).ravel()
    if not (len(y) == len(a) == len(b)):
        raise ValueError("labels and both score arrays must have one value per item")
    ids = np.arange(len(y)) if groups is None else np.asarray(groups).ravel()
    _, group_of = np.unique(ids, return_inverse=True)
    members = np.split(np.argsort(group_of, kind="stable"), np.cumsum(np.bincount(group_of))[:-1])
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(resamples):
        drawn = rng.integers(0, len(members), len(members))
        items = np.concatenate([members[g] for g in drawn])
        diff = auc_pr(y[items], a[items]) - auc_pr(y[items], b[items])
        if not math.isnan(diff):
            diffs.append(diff)
    return np.asarray(diffs, dtype=float)


def paired_ap_difference(
    labels: Any,
    scores_a: Any,
    scores_b: Any,
    groups: Any = None,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Difference:
    """AP(labels, scores_a) - AP(labels, scores_b) with its paired (cluster) bootstrap interval.

    ``groups`` gives each item's group (a trace id for events; None: every item its own group).
    Resamples whose labels hold a single class are left out of the percentiles; the interval is
    NaN when fewer than half of them are left.
    """
    diffs = resampled_ap_differences(labels, scores_a, scores_b, groups, resamples, seed)
    value = auc_pr(labels, scores_a) - auc_pr(labels, scores_b)
    if len(diffs) < resamples / 2:
        return Difference(value, math.nan, math.nan, level)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return Difference(value, float(low), float(high), level)
