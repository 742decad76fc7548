"""Threshold-free scores: AUC-PR and AUC-ROC.

Two families:

- :func:`auc_pr` and :func:`auc_roc` wrap scikit-learn's ``average_precision_score`` (the step-wise
  average precision, AP = Σ_n (R_n − R_{n−1}) · P_n) and ``roc_auc_score``.
- :func:`threshold_sweep_auc` is TAMA's AUC (arXiv 2411.02465, "From windows to points": "AUC-PR and
  AUC-ROC come from sweeping c0"): the decision threshold c0 on the point score runs over the
  distinct score values, each threshold gives one (optionally PAT-adjusted) prediction and thus one
  point of each curve, and the curves are integrated with the trapezoid rule.

All functions return ``float("nan")`` when the labels hold a single class (no anomaly, or only
anomalies): a ranking score is undefined then, and a NaN in a table says so honestly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lmad.errors import DataError
from lmad.metrics.adjust import check_pat, segments
from lmad.metrics.point import check_binary


def labels_and_scores(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """0/1 labels and finite float scores of the same shape, or a :class:`DataError`."""
    y = check_binary(labels, "labels")
    s = np.asarray(scores, dtype=float)
    if s.shape != y.shape:
        raise DataError(
            f"labels and scores differ in shape ({y.shape} vs {s.shape}); "
            "give one score per time point"
        )
    if not np.isfinite(s).all():
        raise DataError("scores contain NaN or infinite values; replace them before evaluating")
    return y, s


def single_class(y: np.ndarray) -> bool:
    """Labels with no anomaly or nothing but anomalies: ranking scores are undefined."""
    positives = int(y.sum())
    return positives == 0 or positives == y.size


def auc_pr(labels: Any, scores: Any) -> float:
    """Area under the precision-recall curve as average precision.

    Equals ``sklearn.metrics.average_precision_score(labels, scores)``: the step-wise sum
    Σ_n (R_n − R_{n−1}) · P_n over decreasing thresholds (no interpolation). Returns NaN when the
    labels hold a single class.
    """
    y, s = labels_and_scores(labels, scores)
    if single_class(y):
        return math.nan
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s))


def auc_roc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve, ``sklearn.metrics.roc_auc_score(labels, scores)``.

    Ties in the scores count one half (the trapezoid over the exact ROC curve). Returns NaN when
    the labels hold a single class.
    """
    y, s = labels_and_scores(labels, scores)
    if single_class(y):
        return math.nan
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def _effective_scores(y: np.ndarray, s: np.ndarray, pat: float) -> np.ndarray:
    """Scores under which "score ≥ c0" equals the PAT-adjusted prediction at every c0.

    A true segment of length L is credited at c0 when more than L·pat of its points have
    score ≥ c0, i.e. when at least k = floor(L·pat) + 1 of them do, i.e. when c0 is at most the k-th
    largest score inside the segment. Raising every score of the segment to that k-th largest
    value (when k ≤ L) therefore reproduces :func:`lmad.metrics.adjust.point_adjust` exactly.
    """
    effective = s.copy()
    for start, end in segments(y):
        length = end - start
        k = math.floor(length * pat) + 1
        if k <= length:
            kth_largest = np.sort(s[start:end])[::-1][k - 1]
            effective[start:end] = np.maximum(effective[start:end], kth_largest)
    return effective


def threshold_sweep_curves(
    labels: Any,
    point_scores: Any,
    thresholds: Any = None,
    adjust_pat: float | None = None,
) -> dict[str, np.ndarray]:
    """One point of the PR and ROC curves per threshold c0 (predictions = score ≥ c0).

    Args:
        labels: 0/1 ground truth per point.
        point_scores: one finite score per point (TAMA: the sum of confidences covering it).
        thresholds: the c0 values to try; default the distinct values of ``point_scores``.
        adjust_pat: when not None, each prediction is PAT-adjusted
            (:func:`lmad.metrics.adjust.point_adjust` with ``pat=adjust_pat``) before counting.

    Returns:
        Arrays ``thresholds`` (distinct, decreasing), ``precision``, ``recall``, ``fpr``, ``tpr``
        (one entry per threshold; recall = tpr). A threshold that predicts nothing has recall 0
        and gets precision 1, the usual start of a PR curve. No end points are added here.

    Raises:
        DataError: invalid labels or scores, or labels with a single class (the rates are then
            undefined).
    """
    y, s = labels_and_scores(labels, point_scores)
    if single_class(y):
        raise DataError("labels hold a single class: precision-recall and ROC curves are undefined")
    if thresholds is None:
        grid = np.unique(s)[::-1]
    else:
        grid = np.unique(np.asarray(thresholds, dtype=float).ravel())[::-1]
        if grid.size == 0 or not np.isfinite(grid).all():
            raise DataError("thresholds must be a non-empty list of finite numbers")
    effective = s if adjust_pat is None else _effective_scores(y, s, check_pat(adjust_pat))
    positive = np.sort(effective[y == 1])
    negative = np.sort(s[y == 0])
    tp = positive.size - np.searchsorted(positive, grid, side="left")
    fp = negative.size - np.searchsorted(negative, grid, side="left")
    predicted = tp + fp
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 1.0)
    recall = tp / positive.size
    return {
        "thresholds": grid,
        "precision": precision.astype(float),
        "recall": recall.astype(float),
        "fpr": (fp / negative.size).astype(float),
        "tpr": recall.astype(float),
    }


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def threshold_sweep_auc(
    labels: Any,
    point_scores: Any,
    thresholds: Any = None,
    adjust_pat: float | None = None,
) -> dict[str, float]:
    """TAMA's AUC-PR and AUC-ROC from sweeping the threshold c0 over the point scores.

    For each threshold c0 (default: every distinct score value), predictions are
    ``point_scores >= c0``, PAT-adjusted when ``adjust_pat`` is not None; this gives
    (precision, recall) and (fpr, tpr) as in :func:`threshold_sweep_curves`. Taking thresholds in
    decreasing order makes recall, fpr and tpr non-decreasing (adjustment preserves this:
    more predicted points never un-credit a segment).

    - ``auc_pr``: the trapezoid area under precision over recall, starting at the end point
      (recall 0, precision 1) and then following the thresholds from high to low (recall
      ascending; equal recalls keep that order). No point is added at recall 1: the lowest
      threshold already predicts every point when the default grid is used.
    - ``auc_roc``: the trapezoid area under tpr over fpr with the end points (0, 0) before and
      (1, 1) after the sweep.

    - ``average_precision``: the step-wise area Σ_n (R_n − R_{n−1}) · P_n over the same sweep
      (thresholds from high to low, R_0 = 0), the definition of scikit-learn's
      ``average_precision_score`` and TSB-AD's AUC-PR; without adjustment and with the default
      grid it equals :func:`auc_pr`. lmad's tables use it: the trapezoid is optimistic (a score
      that flags nothing gets (1 + prevalence) / 2 instead of the prevalence).

    Unlike :func:`auc_pr` (step-wise average precision), ``auc_pr`` here interpolates linearly, as
    TAMA's paper does. Every value is NaN when the labels hold a single class.
    """
    y, s = labels_and_scores(labels, point_scores)
    if single_class(y):
        return {"auc_pr": math.nan, "auc_roc": math.nan, "average_precision": math.nan}
    curves = threshold_sweep_curves(y, s, thresholds, adjust_pat)
    recall = np.concatenate(([0.0], curves["recall"]))
    precision = np.concatenate(([1.0], curves["precision"]))
    fpr = np.concatenate(([0.0], curves["fpr"], [1.0]))
    tpr = np.concatenate(([0.0], curves["tpr"], [1.0]))
    return {
        "auc_pr": _trapezoid(recall, precision),
        "auc_roc": _trapezoid(fpr, tpr),
        "average_precision": float(np.sum(np.diff(recall) * precision[1:])),
    }
