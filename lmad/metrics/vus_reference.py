"""The two VUS definitions of :mod:`lmad.metrics.vus`, computed literally.

One buffer length at a time, one threshold at a time, one range or window at a time, as the
definitions read (the paper's ``metricor.RangeAUC`` / ``RangeAUC_volume`` in vus 0.0.4
``vus/utils/metrics.py`` l.193-423, TSB-AD 1.5's ``RangeAUC_volume_opt`` in
``TSB_AD/evaluation/basic_metrics.py`` l.542-673; see :mod:`lmad.metrics.vus` for the definitions
and their differences). Slow and obviously correct: the baseline of the tests and of
``bench/metrics.py``; use :func:`lmad.metrics.vus.vus_paper` and
:func:`lmad.metrics.vus.vus_tsbad` otherwise.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import numpy as np

from lmad.metrics.auc import labels_and_scores, single_class
from lmad.metrics.vus import (
    REFERENCE_THRESHOLDS,
    buffer_lengths,
    check_int,
    check_ramp,
    check_thresholds,
    ramp_lengths,
)

NAN_AUC = {"roc": math.nan, "pr": math.nan}


def runs_literal(values: Any) -> list[tuple[int, int]]:
    """``(first, last)`` index of every maximal run of positive values, scanning left to right."""
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


def soft_labels_literal(labels: Any, buffer: int, ramp: str = "symmetric") -> np.ndarray:
    """Soft labels point by point: ``sqrt(1 - d / buffer)`` at distance ``d`` left and right of
    every labelled range, summed, capped at 1."""
    y = [int(v) for v in np.asarray(labels)]
    left, right = ramp_lengths(check_int(buffer, "buffer", 0), check_ramp(ramp))
    soft = [float(v) for v in y]
    for start, end in runs_literal(y):
        for d in range(1, left + 1):
            if start - d >= 0:
                soft[start - d] += math.sqrt(1 - d / buffer)
        for d in range(1, right + 1):
            if end + d < len(y):
                soft[end + d] += math.sqrt(1 - d / buffer)
    return np.array([min(v, 1.0) for v in soft])


def thresholds_literal(scores: np.ndarray, thresholds: int | None) -> list[float]:
    """The scores sorted in decreasing order, read at ``linspace(0, n - 1, k).astype(int)`` (the
    references' positions), or every distinct score value when ``thresholds`` is None."""
    descending = sorted((float(v) for v in scores), reverse=True)
    if thresholds is None:
        return sorted(set(descending), reverse=True)
    return [descending[i] for i in np.linspace(0, len(descending) - 1, thresholds).astype(int)]


def _roc_area(tprs: list[float], fprs: list[float]) -> float:
    """Trapezoids from (0, 0) through the thresholds to (1, 1)."""
    curve = [(0.0, 0.0), *zip(fprs, tprs, strict=True), (1.0, 1.0)]
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in pairwise(curve))


def range_auc_paper_literal(
    labels: Any,
    scores: Any,
    buffer: int,
    thresholds: int | None = REFERENCE_THRESHOLDS,
    ramp: str = "symmetric",
) -> dict[str, float]:
    """The paper's range-AUC: ``P' = (P + sum(soft)) / 2`` for every threshold, existence over the
    runs of soft labels, PR by trapezoids from (0, 1)."""
    y, s = labels_and_scores(labels, scores)
    thresholds = check_thresholds(thresholds)
    soft = soft_labels_literal(y, buffer, ramp)
    if single_class(y):
        return dict(NAN_AUC)
    n = y.size
    runs = runs_literal(soft)
    p_new = (float(y.sum()) + float(soft.sum())) / 2
    tprs, fprs, precisions = [], [], []
    for t in thresholds_literal(s, thresholds):
        pred = s >= t
        tp = float(np.sum(soft * pred))
        detected = sum(1 for a, b in runs if pred[a : b + 1].any())
        tprs.append(min(tp / p_new, 1.0) * detected / len(runs))
        fprs.append((int(pred.sum()) - tp) / (n - p_new))
        precisions.append(tp / int(pred.sum()))
    curve = [(0.0, 1.0), *zip(tprs, precisions, strict=True)]
    pr = sum((r1 - r0) * (p0 + p1) / 2 for (r0, p0), (r1, p1) in pairwise(curve))
    return {"roc": _roc_area(tprs, fprs), "pr": pr}


def vus_paper_literal(
    labels: Any,
    scores: Any,
    max_buffer: int = 100,
    steps: int | None = None,
    thresholds: int | None = REFERENCE_THRESHOLDS,
    ramp: str = "symmetric",
) -> dict[str, float]:
    """The paper's VUS: :func:`range_auc_paper_literal` averaged over the buffer lengths."""
    buffers = buffer_lengths(max_buffer, steps)
    parts = [range_auc_paper_literal(labels, scores, int(b), thresholds, ramp) for b in buffers]
    return {
        "vus_roc": sum(p["roc"] for p in parts) / len(parts),
        "vus_pr": sum(p["pr"] for p in parts) / len(parts),
    }


def tsbad_windows(labels: Any, buffer: int) -> list[tuple[int, int]]:
    """TSB-AD's windows ``[s - h, e + h]`` around the labelled ranges, ``h = buffer // 2``, clipped
    to the series; a window merges into the previous one when ``e_prev + h >= s - h``."""
    y = [int(v) for v in np.asarray(labels)]
    half = buffer // 2
    windows: list[tuple[int, int]] = []
    previous_end = None
    for start, end in runs_literal(y):
        if previous_end is not None and previous_end + half >= start - half:
            windows[-1] = (windows[-1][0], min(end + half, len(y) - 1))
        else:
            windows.append((max(start - half, 0), min(end + half, len(y) - 1)))
        previous_end = end
    return windows


def range_auc_tsbad_literal(
    labels: Any, scores: Any, buffer: int, thresholds: int | None = REFERENCE_THRESHOLDS
) -> dict[str, float]:
    """TSB-AD's range-AUC: ``P' = P + (soft mass of the predicted non-labelled points) / 2`` per
    threshold, existence over TSB-AD's windows, PR as the step sum of ``dTPR * precision``."""
    y, s = labels_and_scores(labels, scores)
    thresholds = check_thresholds(thresholds)
    soft = soft_labels_literal(y, buffer, "symmetric")
    if single_class(y):
        return dict(NAN_AUC)
    n, positives = y.size, float(y.sum())
    windows = tsbad_windows(y, buffer)
    tprs, fprs, precisions = [], [], []
    for t in thresholds_literal(s, thresholds):
        pred = s >= t
        tp = float(np.sum(soft * pred))
        p_new = positives + float(np.sum(soft * pred * (y == 0))) / 2
        detected = sum(1 for a, b in windows if pred[a : b + 1].any())
        tprs.append(min(tp / p_new, 1.0) * detected / len(windows))
        fprs.append((int(pred.sum()) - tp) / (n - p_new))
        precisions.append(tp / int(pred.sum()))
    pr, previous = 0.0, 0.0
    for tpr, precision in zip(tprs, precisions, strict=True):
        pr += (tpr - previous) * precision
        previous = tpr
    return {"roc": _roc_area(tprs, fprs), "pr": pr}


def vus_tsbad_literal(
    labels: Any, scores: Any, window: int, thresholds: int | None = REFERENCE_THRESHOLDS
) -> dict[str, float]:
    """TSB-AD's VUS: :func:`range_auc_tsbad_literal` averaged over the buffers ``0..window``."""
    window = check_int(window, "window", 0)
    parts = [range_auc_tsbad_literal(labels, scores, b, thresholds) for b in range(window + 1)]
    return {
        "vus_roc": sum(p["roc"] for p in parts) / len(parts),
        "vus_pr": sum(p["pr"] for p in parts) / len(parts),
    }
