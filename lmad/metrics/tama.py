"""TAMA's own evaluation, number for number (``Datasets/Dataset.py`` of github.com/ChongKaKam/TAMA).

The functions here compute what TAMA's ``Evaluator`` prints for the same point scores (the sum of
the confidences of the intervals covering each point), so that ``evaluation.py --protocol tama``
reproduces the paper's Table 8. They differ from lmad's own definitions (``lmad.metrics.adjust`` and
``lmad.metrics.auc``) in four places, each reproduced here on purpose:

(a) point adjustment: a true segment that reaches the last point of the series is credited as soon
    as one of its points is predicted, whatever PAT is; other segments when more than PAT of their
    points are predicted (``sum > PAT * length``, strict), as in lmad;
(b) AUC: the threshold c0 runs over the fixed grid -2, -1, ..., 12; the ROC curve is the 15 points
    (FPR, TPR) in that order, with no (0, 0) or (1, 1) added; the PR curve is the 15 points
    (recall, precision), precision 0 where nothing is predicted, followed by (0, 1); each area is
    the trapezoid rule over the points in that order (``sklearn.metrics.auc``);
(c) the adjusted AUC always adjusts with PAT 0, whatever PAT the table's adjusted row uses;
(d) pooling: TP, FP, TN and FN are summed over series (and over the channels of a series, each
    channel scored on its own with the series labels) before any ratio, at c0 and at every point of
    the AUC grid. Point adjustment is applied per series.

Acc, P, R and F1 use the usual formulas with 0 for an undefined ratio (TAMA's ``get_metrics``,
lmad's :func:`~lmad.metrics.point.prf_from_counts`).
Where TAMA reports an AUC of a series with a single class (no anomaly, or only anomalies) as 0, the
AUC is undefined and lmad returns NaN in every protocol (README, "Evaluation protocols").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmad.metrics.adjust import check_pat, segments
from lmad.metrics.auc import labels_and_scores
from lmad.metrics.point import confusion_counts, prf_from_counts

C0_GRID: tuple[int, ...] = tuple(range(-2, 13))
"""TAMA's AUC thresholds: ``range(-2, 13)``."""
DEFAULT_C0 = 9.0
Counts = tuple[int, int, int, int]
"""(TP, FP, TN, FN)."""


def tama_point_adjust(labels: Any, predictions: Any, pat: float = 0.0) -> np.ndarray:
    """TAMA's point adjustment (quirk (a)): a segment at the series end needs only one hit."""
    pat = check_pat(pat)
    y = np.asarray(labels).astype(np.int8)
    out = np.asarray(predictions).astype(np.int8).copy()
    for start, end in segments(y):
        hits = int(out[start:end].sum())
        credited = hits > 0 if end == len(y) else hits > (end - start) * pat
        if credited:
            out[start:end] = 1
    return out


def tama_counts(labels: Any, scores: Any, c0: float = DEFAULT_C0, pat: float | None = None):
    """(TP, FP, TN, FN) of ``scores >= c0``, point-adjusted with ``pat`` unless it is None."""
    y, s = labels_and_scores(labels, scores)
    predictions = (s >= c0).astype(np.int8)
    if pat is not None:
        predictions = tama_point_adjust(y, predictions, pat)
    tp, fp, fn, tn = confusion_counts(y, predictions)
    return np.array([tp, fp, tn, fn], dtype=np.int64)


def tama_curve(labels: Any, scores: Any, adjusted: bool = False) -> np.ndarray:
    """Counts at every c0 of :data:`C0_GRID`, shape (15, 4); adjusted ones use PAT 0 (quirk (c))."""
    return np.stack([tama_counts(labels, scores, c0, 0.0 if adjusted else None) for c0 in C0_GRID])


def _ordered_area(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoids over the points in the order given; x must be monotonic (either way)."""
    dx = np.diff(x)
    direction = -1.0 if np.all(dx <= 0) else 1.0
    if direction > 0 and np.any(dx < 0):
        raise ValueError("curve points are not monotonic in x")
    return float(direction * np.sum(dx * (y[1:] + y[:-1]) / 2.0))


def auc_from_curve(curve: np.ndarray) -> dict[str, float]:
    """TAMA's AUC-PR and AUC-ROC from counts along :data:`C0_GRID` (quirk (b)).

    NaN when the counts hold a single class (no anomaly or no normal point).
    """
    curve = np.asarray(curve, dtype=np.float64)
    tp, fp, tn, fn = curve.T
    positives, negatives = tp[0] + fn[0], fp[0] + tn[0]
    if positives == 0 or negatives == 0:
        return {"auc_pr": math.nan, "auc_roc": math.nan}
    tpr = tp / positives
    fpr = fp / negatives
    predicted = tp + fp
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    roc = _ordered_area(fpr, tpr)
    pr = _ordered_area(np.append(tpr, 0.0), np.append(precision, 1.0))
    return {"auc_pr": pr, "auc_roc": roc}


def tama_metrics(
    labels: Sequence[Any], scores: Sequence[Any], c0: float = DEFAULT_C0, pat: float = 0.0
) -> dict[str, dict[str, float]]:
    """TAMA's Pred and Pred_adjust rows over one or several series, pooled as TAMA pools (d).

    ``labels[i]`` and ``scores[i]`` are one series (or one channel of one; repeat the labels per
    channel). Returns ``{"Pred": {...}, "Pred_adjust": {...}}`` with accuracy, precision, recall,
    f1, auc_pr, auc_roc and the counts tp, fp, tn, fn.
    """
    if len(labels) != len(scores) or not len(labels):
        raise ValueError("give the same, non-zero number of label and score arrays")
    out = {}
    for row, row_pat in (("Pred", None), ("Pred_adjust", pat)):
        counts = sum(tama_counts(y, s, c0, row_pat) for y, s in zip(labels, scores))
        curve = sum(tama_curve(y, s, adjusted=row_pat is not None) for y, s in zip(labels, scores))
        tp, fp, tn, fn = (int(c) for c in counts)
        out[row] = {**prf_from_counts(tp, fp, fn, tn), **auc_from_curve(curve)}
    return out
