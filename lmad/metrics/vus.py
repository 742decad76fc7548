"""Range-AUC and VUS (Volume Under the Surface) of Paparrizos et al., VLDB 2022.

"Volume Under the Surface: A New Accuracy Evaluation Measure for Time-Series Anomaly Detection".
Reference implementation: ``metricor`` in ``vus/utils/metrics.py`` of github.com/TheDatumOrg/VUS
(the same code ships in TSB-UAD as ``TSB_UAD/vus/utils/metrics.py``): ``extend_postive_range``,
``TPR_FPR_RangeAUC``, ``RangeAUC`` and ``RangeAUC_volume`` / ``RangeAUC_volume_opt``. This module
follows those definitions; it is written independently.

Buffered (soft) labels for a buffer length ``l``. Every labelled segment ``[s, e]`` (inclusive
indices) is widened by ``h = l // 2`` points on each side; the point at distance ``d = 1..h`` from
the segment gets ``sqrt(1 - d / l)`` (a square-root ramp from ``sqrt(1 - 1/l)`` down to about
``sqrt(1/2)``). Ramps of neighbouring segments add up, and the result is capped at 1; labelled
points stay 1. Buffers 0 and 1 leave the labels unchanged.

Curves for one buffer length. With ``P`` the number of labelled points, ``S`` the sum of the soft
labels, ``P' = (P + S) / 2`` and ``N' = n - P'``, each threshold ``t`` gives the prediction
``score >= t`` and

- ``TP = sum(soft * pred)``, ``FP = sum(pred) - TP``,
- ``TPR = min(TP / P', 1) * existence``, where ``existence`` is the fraction of the segments of the
  soft labels (maximal runs of positive soft labels, so segments whose buffers touch merge) that
  hold at least one predicted point,
- ``FPR = FP / N'`` and ``precision = TP / sum(pred)``.

Range-AUC-ROC is the trapezoid area under ``(FPR, TPR)`` from ``(0, 0)`` through the thresholds in
decreasing order to ``(1, 1)``; range-AUC-PR is the trapezoid area under ``(TPR, precision)`` from
``(0, 1)`` through the thresholds (the final ``(1, 1)`` ROC point is not part of the PR curve).

Thresholds (the reference's choice, ``thre=250``): with the scores sorted in decreasing order,
the values at positions ``linspace(0, n - 1, 250).astype(int)``; ``thresholds=k`` takes ``k``
positions instead, and ``thresholds=None`` takes every distinct score value (the exact curves).
Repeated thresholds repeat a curve point and change nothing.

VUS is the mean of range-AUC over the buffer lengths ``0, 1, ..., max_buffer`` (the reference's
``window_3d = arange(0, windowSize + 1)``; TSB-UAD passes ``windowSize = 2 * slidingWindow``);
``steps=k`` uses ``k`` evenly spaced buffer lengths in ``[0, max_buffer]`` instead (rounded to
integers, duplicates removed).

Consequences of the definition worth knowing (they hold in the reference too, and the tests check
them): for buffers of 2 or more a perfect binary detector scores below 1 (its TPR at zero false
positives is ``P / P' < 1``), and constant scores give a range-AUC-ROC above 0.5 (their FPR at the
only threshold is ``(n - S) / N' < 1``). At buffer 0 the range-AUC-ROC is the ROC-AUC whose TPR is
multiplied by the fraction of detected segments; with a single labelled segment and
``thresholds=None`` it equals ``sklearn.metrics.roc_auc_score`` and the range-AUC-PR equals the
trapezoid area ``auc(recall, precision)`` of ``precision_recall_curve``.

Degenerate labels (no anomaly, or nothing but anomalies) make ``P'`` or ``N'`` vanish: every value
is NaN then, as in :mod:`lmad.metrics.auc`.

:func:`range_auc` and :func:`vus` are vectorised (one sort of the scores; for every buffer, one
cumulative sum of the soft labels in score order read at every threshold). :func:`vus_reference`
and :func:`range_auc_reference` follow the definition literally, one threshold and one buffer at a
time; they are the baseline of the tests and of ``bench/metrics.py``.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np

from lmad.errors import DataError
from lmad.metrics.auc import labels_and_scores

REFERENCE_THRESHOLDS = 250


# --------------------------------------------------------------------------------------- inputs
def _check_int(value: Any, name: str, low: int) -> int:
    try:
        ok = not isinstance(value, bool) and float(value).is_integer() and value >= low
    except (TypeError, ValueError):
        ok = False
    if not ok:
        kind = "a non-negative" if low == 0 else "a positive"
        raise DataError(f"{name} must be {kind} integer, got {value!r}")
    return int(value)


def _check_buffer(value: Any, name: str) -> int:
    return _check_int(value, name, 0)


def _check_thresholds(thresholds: int | None) -> int | None:
    return None if thresholds is None else _check_int(thresholds, "thresholds", 1)


def buffer_lengths(max_buffer: int = 100, steps: int | None = None) -> np.ndarray:
    """Buffer lengths VUS averages over: ``0..max_buffer``, or ``steps`` evenly spaced ones."""
    max_buffer = _check_buffer(max_buffer, "max_buffer")
    if steps is None:
        return np.arange(max_buffer + 1)
    steps = _check_int(steps, "steps", 1)
    return np.unique(np.rint(np.linspace(0, max_buffer, steps)).astype(int))


def threshold_values(
    scores: np.ndarray, thresholds: int | None = REFERENCE_THRESHOLDS
) -> np.ndarray:
    """Decreasing thresholds: the reference's ``linspace`` positions in the sorted scores, or all
    distinct values when ``thresholds`` is None."""
    descending = np.sort(np.asarray(scores, dtype=float))[::-1]
    return _pick_thresholds(descending, _check_thresholds(thresholds))


def _pick_thresholds(descending: np.ndarray, thresholds: int | None) -> np.ndarray:
    if thresholds is None:
        return np.unique(descending)[::-1]
    return descending[np.linspace(0, descending.size - 1, thresholds).astype(int)]


def _degenerate(y: np.ndarray) -> bool:
    positives = int(y.sum())
    return positives == 0 or positives == y.size


def _segments(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index (inclusive) of every run of nonzero values."""
    edges = np.diff(np.concatenate(([0], (y != 0).astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def soft_labels(labels: Any, buffer: int) -> np.ndarray:
    """Labels widened by ``buffer // 2`` points per side with the ramp ``sqrt(1 - d / buffer)``."""
    y = np.asarray(labels)
    buffer = _check_buffer(buffer, "buffer")
    starts, ends = _segments(y)
    return _soft(y.astype(float), starts, ends, buffer)


def _ramps(starts: np.ndarray, ends: np.ndarray, buffer: int, n: int) -> tuple[np.ndarray, ...]:
    """Positions and values of every ramp point (right ramp, then left ramp, segment by segment)."""
    half = buffer // 2
    if half == 0 or starts.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    d = np.arange(1, half + 1)
    ramp = np.sqrt(1.0 - d / buffer)
    positions = np.concatenate((ends[:, None] + d, starts[:, None] - d), axis=1).ravel()
    values = np.tile(np.concatenate((ramp, ramp)), starts.size)
    keep = (positions >= 0) & (positions < n)
    return positions[keep], values[keep]


def _soft(y: np.ndarray, starts: np.ndarray, ends: np.ndarray, buffer: int) -> np.ndarray:
    soft = y.astype(float)
    positions, values = _ramps(starts, ends, buffer, soft.size)
    np.add.at(soft, positions, values)
    return np.minimum(soft, 1.0)


def _areas(tpr: np.ndarray, fpr: np.ndarray, precision: np.ndarray) -> tuple[float, float]:
    """Trapezoid ROC area (0,0)->points->(1,1) and PR area (0,1)->points, as the reference."""
    x = np.concatenate(([0.0], fpr, [1.0]))
    t = np.concatenate(([0.0], tpr, [1.0]))
    roc = float(np.sum(np.diff(x) * (t[1:] + t[:-1]) / 2))
    r = np.concatenate(([0.0], tpr))
    p = np.concatenate(([1.0], precision))
    pr = float(np.sum(np.diff(r) * (p[1:] + p[:-1]) / 2))
    return roc, pr


# ------------------------------------------------------------------------------------ vectorised
def _range_curves(
    y: np.ndarray, s: np.ndarray, buffers: np.ndarray, thresholds: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Range-AUC-ROC and -PR for every buffer length, sharing one sort of the scores."""
    n = y.size
    order = np.argsort(-s, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    descending = s[order]
    t = _pick_thresholds(descending, thresholds)
    # n_pred[k] = number of points with score >= t[k]; they hold exactly the ranks below n_pred[k]
    n_pred = n - np.searchsorted(descending[::-1], t, side="left")

    starts, ends = _segments(y)
    positives = float(y.sum())
    # every point a buffer can reach: the labelled segments widened by the largest half-buffer
    half = int(buffers.max()) // 2
    cover = np.zeros(n + 1, dtype=np.int64)
    np.add.at(cover, np.maximum(starts - half, 0), 1)
    np.add.at(cover, np.minimum(ends + half + 1, n), -1)
    zone = np.flatnonzero(np.cumsum(cover[:n]) > 0)
    zone_rank = rank[zone]
    by_rank = np.argsort(zone_rank, kind="stable")
    in_pred = np.searchsorted(zone_rank[by_rank], n_pred, side="left")  # zone points predicted
    slot = np.full(n, -1, dtype=np.int64)  # position -> index in the zone
    slot[zone] = np.arange(zone.size)
    labelled = y[zone].astype(float)

    roc = np.empty(buffers.size)
    pr = np.empty(buffers.size)
    for b, buffer in enumerate(buffers):
        positions, values = _ramps(starts, ends, int(buffer), n)
        soft = labelled.copy()
        np.add.at(soft, slot[positions], values)
        np.minimum(soft, 1.0, out=soft)
        total = float(soft.sum())
        tp = np.concatenate(([0.0], np.cumsum(soft[by_rank])))[in_pred]
        p_new = (positives + total) / 2
        # segments of the soft labels: runs of consecutive zone positions with positive labels
        idx = np.flatnonzero(soft > 0)
        run_start = np.concatenate(([True], np.diff(zone[idx]) != 1))
        first_rank = np.sort(np.minimum.reduceat(zone_rank[idx], np.flatnonzero(run_start)))
        existence = np.searchsorted(first_rank, n_pred, side="left") / first_rank.size
        tpr = np.minimum(tp / p_new, 1.0) * existence
        fpr = (n_pred - tp) / (n - p_new)
        roc[b], pr[b] = _areas(tpr, fpr, tp / n_pred)
    return roc, pr


def range_auc(
    labels: Any, scores: Any, buffer: int, thresholds: int | None = REFERENCE_THRESHOLDS
) -> dict[str, float]:
    """Range-AUC-ROC and range-AUC-PR for one buffer length: ``{"roc", "pr"}``."""
    y, s = labels_and_scores(labels, scores)
    buffer = _check_buffer(buffer, "buffer")
    _check_thresholds(thresholds)
    if _degenerate(y):
        return {"roc": math.nan, "pr": math.nan}
    roc, pr = _range_curves(y, s, np.array([buffer]), thresholds)
    return {"roc": float(roc[0]), "pr": float(pr[0])}


def vus(
    labels: Any,
    scores: Any,
    max_buffer: int = 100,
    steps: int | None = None,
    thresholds: int | None = REFERENCE_THRESHOLDS,
) -> dict[str, float]:
    """VUS-ROC and VUS-PR: mean range-AUC over the buffer lengths ``0..max_buffer``.

    ``steps`` samples that many buffer lengths instead of all of them; ``thresholds`` as in
    :func:`threshold_values`. Returns ``{"vus_roc", "vus_pr"}`` (NaN for degenerate labels).
    """
    y, s = labels_and_scores(labels, scores)
    buffers = buffer_lengths(max_buffer, steps)
    _check_thresholds(thresholds)
    if _degenerate(y):
        return {"vus_roc": math.nan, "vus_pr": math.nan}
    roc, pr = _range_curves(y, s, buffers, thresholds)
    return {"vus_roc": float(roc.mean()), "vus_pr": float(pr.mean())}


# ------------------------------------------------------------------------------------- reference
def _runs_literal(values: list[float]) -> list[tuple[int, int]]:
    runs, i = [], 0
    while i < len(values):
        if values[i] > 0:
            j = i
            while j + 1 < len(values) and values[j + 1] > 0:
                j += 1
            runs.append((i, j))
            i = j + 1
        else:
            i += 1
    return runs


def range_auc_reference(
    labels: Any, scores: Any, buffer: int, thresholds: int | None = REFERENCE_THRESHOLDS
) -> dict[str, float]:
    """Range-AUC computed literally: soft labels point by point, then every threshold in turn."""
    y, s = labels_and_scores(labels, scores)
    buffer = _check_buffer(buffer, "buffer")
    if _degenerate(y):
        return {"roc": math.nan, "pr": math.nan}
    n = y.size
    soft = [float(v) for v in y]
    for start, end in _runs_literal(soft[:]):
        for d in range(1, buffer // 2 + 1):
            if end + d < n:
                soft[end + d] += math.sqrt(1 - d / buffer)
        for d in range(1, buffer // 2 + 1):
            if start - d >= 0:
                soft[start - d] += math.sqrt(1 - d / buffer)
    soft = [min(v, 1.0) for v in soft]
    runs = _runs_literal(soft)
    soft_array = np.array(soft)
    p_new = (float(y.sum()) + sum(soft)) / 2
    n_new = n - p_new
    tprs, fprs, precisions = [], [], []
    for t in threshold_values(s, thresholds):
        pred = s >= t
        tp = float(np.sum(soft_array * pred))
        predicted = int(np.sum(pred))
        detected = sum(1 for a, b in runs if np.sum(soft_array[a : b + 1] * pred[a : b + 1]) > 0)
        tprs.append(min(tp / p_new, 1.0) * detected / len(runs))
        fprs.append((predicted - tp) / n_new)
        precisions.append(tp / predicted)
    roc = pr = 0.0
    curve = [(0.0, 0.0), *zip(fprs, tprs), (1.0, 1.0)]
    for (x0, y0), (x1, y1) in pairwise(curve):
        roc += (x1 - x0) * (y0 + y1) / 2
    curve = [(0.0, 1.0), *zip(tprs, precisions)]
    for (r0, p0), (r1, p1) in pairwise(curve):
        pr += (r1 - r0) * (p0 + p1) / 2
    return {"roc": roc, "pr": pr}


def vus_reference(
    labels: Any,
    scores: Any,
    max_buffer: int = 100,
    steps: int | None = None,
    thresholds: int | None = REFERENCE_THRESHOLDS,
) -> dict[str, float]:
    """VUS by the definition: :func:`range_auc_reference` for each buffer length, averaged."""
    buffers = buffer_lengths(max_buffer, steps)
    results = [range_auc_reference(labels, scores, int(b), thresholds) for b in buffers]
    return {
        "vus_roc": sum(r["roc"] for r in results) / len(results),
        "vus_pr": sum(r["pr"] for r in results) / len(results),
    }
