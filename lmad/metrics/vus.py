"""VUS (Volume Under the Surface): the VUS paper's definition and TSB-AD 1.5's, vectorised.

Two published definitions share a skeleton: soft labels around every labelled range for a buffer
length ``l``, one ROC and one PR curve per buffer over the reference's 250 thresholds, a range-AUC
per buffer, VUS = the mean range-AUC over the buffers ``0..W``. They differ in four details.

1. :func:`vus_paper` / :func:`range_auc_paper`: Paparrizos, Boniol, Palpanas, Tsay, Elmore and
   Franklin, "Volume Under the Surface: A New Accuracy Evaluation Measure for Time-Series Anomaly
   Detection", PVLDB 15(11) 2774-2787, 2022. Code: github.com/TheDatumOrg/VUS ``vus/utils/
   metrics.py``, class ``metricor`` (unchanged from commit 5ed3203 to 987f608, PyPI vus 0.0.1 to
   0.0.4; line numbers at 987f608): ``range_convers_new`` l.193-222, ``extend_postive_range``
   l.246-262, ``TPR_FPR_RangeAUC`` l.283-317, ``RangeAUC`` l.319-364, ``RangeAUC_volume``
   l.368-423.
2. :func:`vus_tsbad` / :func:`range_auc_tsbad`: TSB-AD 1.5 (PyPI TSB-AD==1.5, github.com/
   TheDatumOrg/TSB-AD commit 500e427, unchanged at 8763009) ``TSB_AD/evaluation/
   basic_metrics.py``, class ``basic_metricor``: ``range_convers_new`` l.542-557,
   ``new_sequence`` l.559-567, ``sequencing`` l.569-584, ``RangeAUC_volume_opt`` l.586-673.

Soft labels. A labelled range ``[s, e]`` (inclusive) gets ``h = l // 2`` ramp points on each side:
the point at distance ``d = 1..h`` gets ``sqrt(1 - d / l)``; ramps of neighbouring ranges add up,
the sum is capped at 1, labelled points stay 1, buffers 0 and 1 change nothing. TSB-AD's
``sequencing`` builds exactly this. The paper's code does not: ``extend_postive_range`` ramps the
right side over ``arange(e, min(e + h, n))``, i.e. it adds 1 to the (already full) point ``e`` and
ramps only ``e+1 .. e+h-1``: the right ramp is one point short (empty at buffers 2 and 3), an
off-by-one (dtaianomaly's documentation of its port, adopted from TimeEval, notes it too).
``ramp="symmetric"`` (the default) is the definition; ``ramp="reference"`` reproduces the code to
the last bit. Smallest example: labels ``[1, 0]``, scores ``[1, 0]``, buffer 2: the code gives
range-AUC-ROC/PR 1.0/1.0, the symmetric ramp 0.94083/0.98087. Centred: labels ``[0, 0, 1, 0, 0]``, scores
``[0, 1, 2, 1, 0]``: range-AUC at buffer 2 0.95369/0.94372 (code) against 0.96316/0.95956
(symmetric); VUS over buffers 0..2 0.98456/0.98124 (code) against 0.98772/0.98652 (symmetric).

Curves. ``P`` = labelled points, ``soft`` the soft labels, thresholds ``t`` the values at positions
``linspace(0, n - 1, 250).astype(int)`` of the scores sorted in decreasing order (both codes;
``thresholds=k`` takes ``k`` positions, ``thresholds=None`` every distinct value: lmad's options),
prediction ``score >= t``, ``TP = sum(soft * pred)``, ``FP = #pred - TP``, precision ``TP / #pred``,
``TPR = min(TP / P', 1) * existence``, ``FPR = FP / (n - P')``, where

- paper: ``P' = (P + sum(soft)) / 2``, the same for every threshold; existence = fraction of the
  runs of positive soft labels (ranges whose ramps touch or overlap form one run) that hold a
  predicted point;
- TSB-AD: ``P' = P + sum(soft over predicted non-labelled points) / 2``, which changes with the
  threshold (its ``labels`` are ``soft * pred`` inside the windows, 1 on the ranges); existence =
  fraction of the windows ``[s - h, e + h]`` (clipped to the series) that hold a predicted point,
  windows merging only when they overlap (``e_i + h >= s_j - h``): windows that just touch (a gap
  of exactly ``2h`` points) stay apart, where the paper's soft labels form one run.

Range-AUC-ROC: trapezoid area from ``(0, 0)`` through the thresholds to ``(1, 1)`` (both).
Range-AUC-PR: paper, trapezoids from ``(TPR, precision) = (0, 1)`` through the thresholds; TSB-AD,
the step sum ``sum_k (TPR_k - TPR_{k-1}) * precision_k`` from ``TPR_0 = 0``.

VUS: the mean range-AUC over the buffers ``0, 1, ..., W`` (``window_3d = arange(0, windowSize +
1)`` in both codes). What ``W`` their front ends pass differs: the paper's ``vus/metrics.py``
``get_metrics`` (l.10-11 at 987f608) evaluates ``RangeAUC(window=slidingWindow)`` and
``generate_curve(labels, score, 2 * slidingWindow)``, i.e. ``W = 2 * slidingWindow``, while TSB-AD
1.5's ``get_metrics`` (``TSB_AD/evaluation/metrics.py`` l.15, ``generate_curve`` in
``basic_metrics.py`` l.6-10) passes ``windowSize = slidingWindow`` to ``RangeAUC_volume_opt``
without doubling. :func:`vus_paper` also takes ``steps`` (lmad's option:
that many evenly spaced buffers). In TSB-AD a buffer's range-AUC does not depend on ``W``: its
``tp`` array is never filled and its outer windows ``l`` hold every nonzero label.

Consequences: with the paper a perfect detector scores below 1 from buffer 2 on (TPR ``P / P'``
at FPR 0) and constant scores get a range-AUC-ROC above 0.5; with TSB-AD a perfect detector scores
1 at every buffer (nothing of the ramps is predicted at its threshold, so ``P' = P``).

Degenerate labels (no anomaly, or nothing but anomalies): lmad returns NaN for both values, as
:mod:`lmad.metrics.auc` does. The references fail instead: without anomalies the paper's code
raises ZeroDivisionError (no run) and TSB-AD IndexError (no range); with nothing but anomalies the
paper's code returns ROC NaN (``N' = 0``) and PR 1.0, TSB-AD IndexError.

Vectorised: one sort of the scores; every buffer works on the points its largest ramp can reach
(one cumulative sum of the soft labels in score order, read at every threshold; the first rank of
each run or window gives the existence counts). The literal definitions, one buffer and one
threshold at a time, are in :mod:`lmad.metrics.vus_reference`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lmad.errors import DataError
from lmad.metrics.auc import labels_and_scores, single_class

REFERENCE_THRESHOLDS = 250
RAMPS = ("symmetric", "reference")


# --------------------------------------------------------------------------------------- inputs
def check_int(value: Any, name: str, low: int) -> int:
    """``value`` as an int ``>= low``, or a :class:`DataError` naming ``name``."""
    try:
        ok = not isinstance(value, bool) and float(value).is_integer() and value >= low
    except (TypeError, ValueError):
        ok = False
    if not ok:
        kind = "a non-negative" if low == 0 else "a positive"
        raise DataError(f"{name} must be {kind} integer, got {value!r}")
    return int(value)


def check_thresholds(thresholds: int | None) -> int | None:
    return None if thresholds is None else check_int(thresholds, "thresholds", 1)


def check_ramp(ramp: str) -> str:
    if ramp not in RAMPS:
        raise DataError(f"ramp must be one of {RAMPS}, got {ramp!r}")
    return ramp


def ramp_lengths(buffer: int, ramp: str = "symmetric") -> tuple[int, int]:
    """Ramp points left and right of a range: ``h, h`` or, as the paper's code, ``h, h - 1``."""
    half = buffer // 2
    return half, half if ramp == "symmetric" else max(half - 1, 0)


def buffer_lengths(max_buffer: int = 100, steps: int | None = None) -> np.ndarray:
    """Buffer lengths VUS averages over: ``0..max_buffer``, or ``steps`` evenly spaced ones."""
    max_buffer = check_int(max_buffer, "max_buffer", 0)
    if steps is None:
        return np.arange(max_buffer + 1)
    steps = check_int(steps, "steps", 1)
    return np.unique(np.rint(np.linspace(0, max_buffer, steps)).astype(int))


def threshold_values(scores: Any, thresholds: int | None = REFERENCE_THRESHOLDS) -> np.ndarray:
    """Decreasing thresholds: the reference's ``linspace`` positions in the sorted scores, or all
    distinct values when ``thresholds`` is None."""
    descending = np.sort(np.asarray(scores, dtype=float))[::-1]
    return _pick_thresholds(descending, check_thresholds(thresholds))


def _pick_thresholds(descending: np.ndarray, thresholds: int | None) -> np.ndarray:
    if thresholds is None:
        return np.unique(descending)[::-1]
    return descending[np.linspace(0, descending.size - 1, thresholds).astype(int)]


def segments(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index (inclusive) of every run of nonzero values."""
    edges = np.diff(np.concatenate(([0], (y != 0).astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def _ramps(
    starts: np.ndarray, ends: np.ndarray, buffer: int, ramp: str, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and values of every ramp point inside the series."""
    left, right = ramp_lengths(buffer, ramp)
    d_left, d_right = np.arange(1, left + 1), np.arange(1, right + 1)
    positions = np.concatenate(
        ((starts[:, None] - d_left).ravel(), (ends[:, None] + d_right).ravel())
    )
    values = np.concatenate(
        (
            np.tile(np.sqrt(1.0 - d_left / max(buffer, 1)), starts.size),
            np.tile(np.sqrt(1.0 - d_right / max(buffer, 1)), starts.size),
        )
    )
    keep = (positions >= 0) & (positions < n)
    return positions[keep], values[keep]


def soft_labels(labels: Any, buffer: int, ramp: str = "symmetric") -> np.ndarray:
    """Labels widened by ramps ``sqrt(1 - d / buffer)``, summed and capped at 1 (see above)."""
    y = np.asarray(labels)
    buffer = check_int(buffer, "buffer", 0)
    starts, ends = segments(y)
    positions, values = _ramps(starts, ends, buffer, check_ramp(ramp), y.size)
    soft = y.astype(float) + np.bincount(positions, values, minlength=y.size)
    return np.minimum(soft, 1.0)


def _merged(
    starts: np.ndarray, ends: np.ndarray, left: int, right: int, touching: bool, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Intervals ``[s - left, e + right]`` clipped to the series, merged when they overlap (and,
    with ``touching``, when they are adjacent)."""
    lo, hi = np.maximum(starts - left, 0), np.minimum(ends + right, n - 1)
    new = np.concatenate(([True], lo[1:] > hi[:-1] + int(touching)))
    return lo[new], hi[np.concatenate((new[1:], [True]))]


# ------------------------------------------------------------------------------------ vectorised
class _Ranked:
    """One sort of the scores, restricted to the points the largest buffer can reach."""

    def __init__(self, y: np.ndarray, s: np.ndarray, reach: int, thresholds: int | None) -> None:
        n = self.n = y.size
        order = np.argsort(-s, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        descending = s[order]
        t = _pick_thresholds(descending, thresholds)
        # n_pred[k]: points with score >= t[k]; they are exactly the ranks below n_pred[k]
        self.n_pred = n - np.searchsorted(descending[::-1], t, side="left")
        self.starts, self.ends = segments(y)
        self.positives = float(y.sum())
        self.zone = np.flatnonzero(
            soft_labels(y, 2 * reach) > 0
        )  # ranges and `reach` points around
        self.zone_rank = rank[self.zone]
        self.by_rank = np.argsort(self.zone_rank, kind="stable")
        self.in_pred = np.searchsorted(self.zone_rank[self.by_rank], self.n_pred, side="left")
        self.labelled = y[self.zone].astype(float)

    def soft(self, buffer: int, ramp: str) -> np.ndarray:
        positions, values = _ramps(self.starts, self.ends, buffer, ramp, self.n)
        slots = np.searchsorted(self.zone, positions)
        extra = np.bincount(slots, values, minlength=self.zone.size)
        return np.minimum(self.labelled + extra, 1.0)

    def predicted_sum(self, values: np.ndarray) -> np.ndarray:
        """``sum(values * pred)`` at every threshold (values on the zone)."""
        return np.concatenate(([0.0], np.cumsum(values[self.by_rank])))[self.in_pred]

    def existence(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Fraction of the intervals ``[lo, hi]`` (disjoint, inside the zone) with a prediction."""
        group = np.searchsorted(lo, self.zone, side="right") - 1
        inside = (group >= 0) & (self.zone <= hi[np.maximum(group, 0)])
        group = group[inside]
        first = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
        first_rank = np.sort(np.minimum.reduceat(self.zone_rank[inside], first))
        return np.searchsorted(first_rank, self.n_pred, side="left") / lo.size


def _roc_area(tpr: np.ndarray, fpr: np.ndarray) -> float:
    x = np.concatenate(([0.0], fpr, [1.0]))
    y = np.concatenate(([0.0], tpr, [1.0]))
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def _paper_curves(
    y: np.ndarray, s: np.ndarray, buffers: np.ndarray, thresholds: int | None, ramp: str
) -> tuple[np.ndarray, np.ndarray]:
    """Range-AUC-ROC and -PR of the paper for every buffer."""
    ranked = _Ranked(y, s, int(buffers.max()) // 2, thresholds)
    n, n_pred = ranked.n, ranked.n_pred
    roc, pr = np.empty(buffers.size), np.empty(buffers.size)
    for b, buffer in enumerate(buffers):
        soft = ranked.soft(int(buffer), ramp)
        tp = ranked.predicted_sum(soft)
        p_new = (ranked.positives + float(soft.sum())) / 2
        left, right = ramp_lengths(int(buffer), ramp)
        lo, hi = _merged(ranked.starts, ranked.ends, left, right, True, n)
        tpr = np.minimum(tp / p_new, 1.0) * ranked.existence(lo, hi)
        roc[b] = _roc_area(tpr, (n_pred - tp) / (n - p_new))
        r = np.concatenate(([0.0], tpr))
        p = np.concatenate(([1.0], tp / n_pred))
        pr[b] = float(np.sum(np.diff(r) * (p[1:] + p[:-1]) / 2))
    return roc, pr


def _tsbad_curves(
    y: np.ndarray, s: np.ndarray, buffers: np.ndarray, thresholds: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Range-AUC-ROC and -PR of TSB-AD for every buffer."""
    ranked = _Ranked(y, s, int(buffers.max()) // 2, thresholds)
    n, n_pred = ranked.n, ranked.n_pred
    roc, pr = np.empty(buffers.size), np.empty(buffers.size)
    for b, buffer in enumerate(buffers):
        soft = ranked.soft(int(buffer), "symmetric")
        tp = ranked.predicted_sum(soft)
        p_new = ranked.positives + ranked.predicted_sum(soft * (1.0 - ranked.labelled)) / 2
        half = int(buffer) // 2
        lo, hi = _merged(ranked.starts, ranked.ends, half, half, False, n)
        tpr = np.minimum(tp / p_new, 1.0) * ranked.existence(lo, hi)
        roc[b] = _roc_area(tpr, (n_pred - tp) / (n - p_new))
        pr[b] = float(np.sum(np.diff(np.concatenate(([0.0], tpr))) * (tp / n_pred)))
    return roc, pr


# ------------------------------------------------------------------------------------ public API
def range_auc_paper(
    labels: Any,
    scores: Any,
    buffer: int,
    thresholds: int | None = REFERENCE_THRESHOLDS,
    ramp: str = "symmetric",
) -> dict[str, float]:
    """The paper's range-AUC for one buffer length (``metricor.RangeAUC(window=buffer)``):
    ``{"roc", "pr"}``, NaN for single-class labels. ``ramp="reference"``: the code's short right
    ramp."""
    y, s = labels_and_scores(labels, scores)
    buffer = check_int(buffer, "buffer", 0)
    thresholds, ramp = check_thresholds(thresholds), check_ramp(ramp)
    if single_class(y):
        return {"roc": math.nan, "pr": math.nan}
    roc, pr = _paper_curves(y, s, np.array([buffer]), thresholds, ramp)
    return {"roc": float(roc[0]), "pr": float(pr[0])}


def vus_paper(
    labels: Any,
    scores: Any,
    max_buffer: int = 100,
    steps: int | None = None,
    thresholds: int | None = REFERENCE_THRESHOLDS,
    ramp: str = "symmetric",
) -> dict[str, float]:
    """The paper's VUS (``metricor.RangeAUC_volume(windowSize=max_buffer)``): the mean
    :func:`range_auc_paper` over buffers ``0..max_buffer`` (or ``steps`` evenly spaced ones).
    Returns ``{"vus_roc", "vus_pr"}``, NaN for single-class labels."""
    y, s = labels_and_scores(labels, scores)
    buffers = buffer_lengths(max_buffer, steps)
    thresholds, ramp = check_thresholds(thresholds), check_ramp(ramp)
    if single_class(y):
        return {"vus_roc": math.nan, "vus_pr": math.nan}
    roc, pr = _paper_curves(y, s, buffers, thresholds, ramp)
    return {"vus_roc": float(roc.mean()), "vus_pr": float(pr.mean())}


def range_auc_tsbad(
    labels: Any, scores: Any, buffer: int, thresholds: int | None = REFERENCE_THRESHOLDS
) -> dict[str, float]:
    """TSB-AD 1.5's range-AUC for one buffer length (one slice of ``RangeAUC_volume_opt``):
    ``{"roc", "pr"}``, NaN for single-class labels."""
    y, s = labels_and_scores(labels, scores)
    buffer = check_int(buffer, "buffer", 0)
    thresholds = check_thresholds(thresholds)
    if single_class(y):
        return {"roc": math.nan, "pr": math.nan}
    roc, pr = _tsbad_curves(y, s, np.array([buffer]), thresholds)
    return {"roc": float(roc[0]), "pr": float(pr[0])}


def vus_tsbad(
    labels: Any, scores: Any, window: int, thresholds: int | None = REFERENCE_THRESHOLDS
) -> dict[str, float]:
    """TSB-AD 1.5's VUS (``RangeAUC_volume_opt(windowSize=window, thre=thresholds)``): the mean
    :func:`range_auc_tsbad` over buffers ``0..window``. Returns ``{"vus_roc", "vus_pr"}``, NaN
    for single-class labels."""
    y, s = labels_and_scores(labels, scores)
    window = check_int(window, "window", 0)
    thresholds = check_thresholds(thresholds)
    if single_class(y):
        return {"vus_roc": math.nan, "vus_pr": math.nan}
    roc, pr = _tsbad_curves(y, s, np.arange(window + 1), thresholds)
    return {"vus_roc": float(roc.mean()), "vus_pr": float(pr.mean())}
