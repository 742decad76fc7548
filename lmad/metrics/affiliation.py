"""Affiliation precision, recall and F1 (Huet, Navarro, Rossi, KDD 2022).

"Local Evaluation of Time Series Anomaly Detection Algorithms" (arXiv 2206.13167); reference
implementation: the ``affiliation-metrics`` package (github.com/ahstat/affiliation-metrics-py,
``affiliation/metrics.py::pr_from_events``). This module is an independent implementation of the
same definitions; its tests check the values documented by the package's own tests.

Events and time axis (as in the package's ``convert_vector_to_events``): a 1 at index ``i`` is the
interval ``[i, i+1)``, so a run of 1s over indices ``s..e`` is the event ``[s, e+1)``, and the time
range of a series of ``n`` points is ``[0, n)``.

Affiliation zones. Each ground-truth event ``J_j`` owns the zone ``E_j`` of the time axis closer to
it than to any other ground-truth event: zones are cut at the midpoints between the end of one event
and the start of the next, the first zone starts at 0 and the last ends at ``n``. Predicted
intervals are cut along the zones; the part ``I`` of the predictions inside ``E_j`` is judged
against ``J_j`` only.

Individual precision of zone ``j``: the mean, over predicted points ``x`` in ``E_j``, of the
survival probability ``P(dist(X, J) >= dist(x, J))`` of a point ``X`` drawn uniformly in ``E_j``.
With ``m`` the smaller of the two gaps ``J.start - E.start`` and ``E.end - J.end``, this is 1 inside
``J`` and, at distance ``d > 0``, ``1 - (|J| + min(d, m) + d) / |E|``.

Individual recall of zone ``j``: the mean, over ground-truth points ``y`` in ``J_j``, of
``P(|X - y| >= D(y))`` for ``X`` uniform in ``E_j``, where ``D(y)`` is the distance from ``y`` to
the nearest predicted point of the zone. This is 1 inside a prediction and otherwise
``1 - (min(D, y - E.start) + min(D, E.end - y)) / |E|``; it is 0 when the zone holds no prediction.

Both integrands are piecewise linear in the position, so the means are exact integrals: each
integration range is cut at every point where the formula changes (event and prediction borders,
midpoints between predictions, the points where ``d = m`` or ``D`` reaches a zone border) and each
linear piece contributes ``width * value at its midpoint`` (the midpoint rule is exact for linear
functions and never evaluates a discontinuity). No sampling, no Monte Carlo.

Aggregation (as the package): precision = mean of the individual precisions over the zones that
contain predictions; recall = mean of the individual recalls over all zones; F1 = 2PR / (P + R).

Edge cases (chosen and documented here):

- no predicted point at all: precision is undefined, NaN (as in the paper and the package), recall
  is 0, and F1 is 0 (the harmonic mean tends to 0 as recall does, whatever the precision);
- no labelled anomaly: the zones do not exist (the package raises an error); here precision, recall
  and F1 are all NaN, like :mod:`lmad.metrics.auc` for single-class labels, so that a table over
  many series keeps going and shows the gap;
- precision and recall both 0: F1 is 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lmad.errors import DataError
from lmad.metrics.point import check_binary

Interval = tuple[float, float]


def events_from_binary(values: Any) -> list[tuple[int, int]]:
    """Runs of 1s as half-open events ``[start, stop)``: index ``i`` stands for ``[i, i+1)``."""
    array = check_binary(values, "values")
    edges = np.diff(np.concatenate(([0], array, [0])).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops)]


def _check_events(events: list[Interval], name: str, trange: Interval) -> np.ndarray:
    array = np.asarray(events, dtype=float).reshape(-1, 2)
    if (array[:, 1] <= array[:, 0]).any():
        raise DataError(f"{name}: every event needs start < stop")
    if (array[1:, 0] <= array[:-1, 1]).any():
        raise DataError(f"{name}: events must be sorted and separated (start > previous stop)")
    if array.size and (array[0, 0] < trange[0] or array[-1, 1] > trange[1]):
        raise DataError(f"{name}: events must lie inside the time range {trange}")
    return array


def _zones(gt: np.ndarray, trange: Interval) -> np.ndarray:
    """Affiliation zones ``[(lo, hi), ...]``, one per ground-truth event, covering ``trange``."""
    cuts = (gt[:-1, 1] + gt[1:, 0]) / 2
    lows = np.concatenate(([trange[0]], cuts))
    highs = np.concatenate((cuts, [trange[1]]))
    return np.column_stack((lows, highs))


def _clip(pred: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Predicted intervals cut to the zone ``[lo, hi)`` (empty pieces dropped)."""
    starts = np.maximum(pred[:, 0], lo)
    stops = np.minimum(pred[:, 1], hi)
    keep = stops > starts
    return starts[keep], stops[keep]


def _pieces(cuts: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Midpoints and widths of the pieces of ``[lo, hi]`` between the cut points."""
    points = np.unique(np.clip(np.concatenate((cuts, [lo, hi])), lo, hi))
    return (points[:-1] + points[1:]) / 2, np.diff(points)


def _distance_to_union(y: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Distance from each ``y`` to the union of the sorted disjoint intervals ``[starts, stops)``."""
    k = np.searchsorted(starts, y, side="right") - 1  # last interval starting at or before y
    left = np.where(k >= 0, y - stops[np.maximum(k, 0)], np.inf)
    nxt = k + 1
    right = np.where(nxt < starts.size, starts[np.minimum(nxt, starts.size - 1)] - y, np.inf)
    return np.maximum(np.minimum(left, right), 0.0)


def _zone_precision(starts: np.ndarray, stops: np.ndarray, j: Interval, e: Interval) -> float:
    """Mean over the predicted points of the zone of ``P(dist(X, J) >= dist(x, J))``."""
    if starts.size == 0:
        return math.nan
    (j_lo, j_hi), (e_lo, e_hi) = j, e
    size_e, size_j = e_hi - e_lo, j_hi - j_lo
    m = min(j_lo - e_lo, e_hi - j_hi)
    cuts = np.concatenate((starts, stops, [j_lo, j_hi, j_lo - m, j_hi + m]))
    mids, widths = _pieces(cuts, starts[0], stops[-1])
    k = np.searchsorted(starts, mids, side="right") - 1
    predicted = (k >= 0) & (mids < stops[np.maximum(k, 0)])
    d = np.maximum(j_lo - mids, 0.0) + np.maximum(mids - j_hi, 0.0)
    inside_j = (mids > j_lo) & (mids < j_hi)
    value = np.where(inside_j, 1.0, 1.0 - (size_j + np.minimum(d, m) + d) / size_e)
    return float(np.sum(widths * value * predicted) / np.sum(stops - starts))


def _zone_recall(starts: np.ndarray, stops: np.ndarray, j: Interval, e: Interval) -> float:
    """Mean over the ground-truth points ``y`` of ``P(|X - y| >= D(y))``; 0 without prediction."""
    if starts.size == 0:
        return 0.0
    (j_lo, j_hi), (e_lo, e_hi) = j, e
    size_e = e_hi - e_lo
    ends = np.concatenate((starts, stops))
    cuts = np.concatenate(
        (ends, (stops[:-1] + starts[1:]) / 2, (ends + e_lo) / 2, (ends + e_hi) / 2)
    )
    mids, widths = _pieces(cuts, j_lo, j_hi)
    big_d = _distance_to_union(mids, starts, stops)
    value = np.where(
        big_d > 0,
        1.0 - (np.minimum(big_d, mids - e_lo) + np.minimum(big_d, e_hi - mids)) / size_e,
        1.0,
    )
    return float(np.sum(widths * value) / (j_hi - j_lo))


def _f1(precision: float, recall: float) -> float:
    if math.isnan(recall):
        return math.nan
    if recall == 0.0 or math.isnan(precision) or precision + recall == 0.0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def affiliation_from_events(
    pred_events: list[Interval], gt_events: list[Interval], trange: Interval
) -> dict[str, Any]:
    """Affiliation metrics on events given as sorted, disjoint ``(start, stop)`` intervals.

    ``trange`` is the time range ``(start, stop)`` holding every event. Returns ``precision``,
    ``recall``, ``f1`` and the per-zone ``individual_precision`` (NaN for a zone without
    prediction), ``individual_recall`` and ``zones``. Without ground-truth event every value is
    NaN and the lists are empty.
    """
    lo, hi = float(trange[0]), float(trange[1])
    if not hi > lo:
        raise DataError(f"time range {trange} is empty")
    gt = _check_events(gt_events, "ground-truth events", (lo, hi))
    pred = _check_events(pred_events, "predicted events", (lo, hi))
    if gt.shape[0] == 0:
        nan = math.nan
        return {"precision": nan, "recall": nan, "f1": nan, "individual_precision": [],
                "individual_recall": [], "zones": []}  # fmt: skip
    zones = _zones(gt, (lo, hi))
    precisions, recalls = [], []
    for (j_lo, j_hi), (e_lo, e_hi) in zip(gt, zones):
        starts, stops = _clip(pred, e_lo, e_hi)
        precisions.append(_zone_precision(starts, stops, (j_lo, j_hi), (e_lo, e_hi)))
        recalls.append(_zone_recall(starts, stops, (j_lo, j_hi), (e_lo, e_hi)))
    defined = [p for p in precisions if not math.isnan(p)]
    precision = sum(defined) / len(defined) if defined else math.nan
    recall = sum(recalls) / len(recalls)
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "individual_precision": precisions,
        "individual_recall": recalls,
        "zones": [(float(a), float(b)) for a, b in zones],
    }


def affiliation_prf(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Affiliation precision, recall and F1 of 0/1 ``predictions`` against 0/1 ``labels``.

    Index ``i`` is the interval ``[i, i+1)`` and the time range is ``[0, len(labels))``. Returns
    ``{"precision", "recall", "f1"}``; see the module docstring for the definitions and the edge
    cases (no prediction: precision NaN, recall 0, F1 0; no labelled anomaly: all NaN).
    """
    y = check_binary(labels, "labels")
    p = check_binary(predictions, "predictions")
    if y.shape != p.shape:
        raise DataError(
            f"labels and predictions differ in length ({y.size} vs {p.size}); "
            "give one prediction per time point"
        )
    result = affiliation_from_events(events_from_binary(p), events_from_binary(y), (0, y.size))
    return {key: result[key] for key in ("precision", "recall", "f1")}
