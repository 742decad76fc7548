"""Event-wise precision and recall, and the composite F-score of Garg et al. (2021).

An event is a run of consecutive 1s (:func:`lmad.metrics.adjust.segments`), half-open ``[s, e)``.

- Event recall = (number of true events that share at least one point with a predicted 1) /
  (number of true events).
- Event precision = (number of predicted events that share at least one point with a true event) /
  (number of predicted events).
- Event F1 = their harmonic mean.

The composite F-score (Garg et al., "An Evaluation of Anomaly Detection and Diagnosis in
Multivariate Time Series", IEEE TNNLS 2021) is F_c = 2·P_t·R_e / (P_t + R_e), the harmonic mean of
the point-wise precision P_t (:func:`lmad.metrics.point.point_prf`) and the event recall R_e.

Edge cases follow the package's ``zero_division=0`` convention: without true events recall is 0,
without predicted events precision is 0 (point precision too), and an F-score is 0 when both of its
parts are 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmad.metrics.adjust import segments
from lmad.metrics.point import check_binary_pair, harmonic_mean, point_prf, safe_ratio


def _hit(events: list[tuple[int, int]], other: np.ndarray) -> int:
    """How many of ``events`` contain at least one 1 of ``other``."""
    return sum(1 for start, end in events if other[start:end].any())


def event_prf(labels: Any, predictions: Any) -> dict[str, float | int]:
    """Event-wise precision, recall and F1, with the event counts behind them.

    Returns:
        ``{"precision", "recall", "f1"}`` (floats) and ``{"true_events", "detected_events",
        "predicted_events", "correct_predicted_events"}`` (ints): recall = detected_events /
        true_events, precision = correct_predicted_events / predicted_events, each 0 when its
        denominator is 0.

    Raises:
        DataError: arrays of different lengths, empty, or holding values other than 0/1.
    """
    y, p = check_binary_pair(labels, predictions)
    true_events, predicted_events = segments(y), segments(p)
    detected = _hit(true_events, p)
    correct = _hit(predicted_events, y)
    precision = safe_ratio(correct, len(predicted_events))
    recall = safe_ratio(detected, len(true_events))
    return {
        "precision": precision,
        "recall": recall,
        "f1": harmonic_mean(precision, recall),
        "true_events": len(true_events),
        "detected_events": detected,
        "predicted_events": len(predicted_events),
        "correct_predicted_events": correct,
    }


def composite_f1(labels: Any, predictions: Any) -> float:
    """Composite F-score of Garg et al. (2021): harmonic mean of point precision and event recall.

    0.0 when both are 0 (e.g. no predictions, or no true events).
    """
    point_precision = float(point_prf(labels, predictions)["precision"])
    event_recall = float(event_prf(labels, predictions)["recall"])
    return harmonic_mean(point_precision, event_recall)
