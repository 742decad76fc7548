"""Point-wise precision, recall, F1 and accuracy on 0/1 label and prediction arrays.

Every time point is one binary decision: ``tp`` counts points with label 1 and prediction 1, ``fp``
label 0 and prediction 1, ``fn`` label 1 and prediction 0, ``tn`` label 0 and prediction 0. Then

- precision = tp / (tp + fp), recall = tp / (tp + fn), F1 = 2·P·R / (P + R),
- accuracy = (tp + tn) / n.

Undefined ratios follow scikit-learn's ``zero_division=0`` convention (``precision_score``,
``recall_score`` and ``f1_score`` with ``zero_division=0``): precision is 0 when nothing is
predicted, recall is 0 when no label is positive, and F1 is 0 when precision and recall are both 0
(in particular for a series without anomalies and without predictions: P = R = F1 = 0, not 1).
Accuracy is always defined for a non-empty series.

The helper :func:`check_binary_pair` validates inputs for every metric module of this package.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmad.errors import DataError


def check_binary(values: Any, name: str = "labels") -> np.ndarray:
    """Return ``values`` as a 1-D int8 array of 0/1, or raise :class:`DataError`.

    Booleans are accepted; NaN, values other than 0 and 1, more than one dimension and an empty
    array are refused with a message naming ``name``.
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of 0/1, got shape {array.shape}")
    if array.size == 0:
        raise DataError(f"{name} is empty: nothing to evaluate")
    if array.dtype == bool:
        return array.astype(np.int8)
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{name} must hold numbers 0/1, got dtype {array.dtype}")
    bad = ~np.isin(array, (0, 1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{name} must hold only 0 and 1; found {array[first]!r} at index {first} "
            f"({int(bad.sum())} bad value(s))"
        )
    return array.astype(np.int8)


def check_binary_pair(labels: Any, predictions: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a label and a prediction array: both 1-D 0/1 arrays of the same length."""
    y = check_binary(labels, "labels")
    p = check_binary(predictions, "predictions")
    if y.shape != p.shape:
        raise DataError(
            f"labels and predictions differ in length ({y.size} vs {p.size}); "
            "they must cover the same time points"
        )
    return y, p


def safe_ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or 0.0 when the denominator is 0 (``zero_division=0``)."""
    return float(numerator) / float(denominator) if denominator else 0.0


def harmonic_mean(precision: float, recall: float) -> float:
    """F1 = 2·P·R / (P + R); 0.0 when P + R = 0."""
    total = precision + recall
    return 2.0 * precision * recall / total if total > 0 else 0.0


def confusion_counts(labels: Any, predictions: Any) -> tuple[int, int, int, int]:
    """Return ``(tp, fp, fn, tn)`` of two 0/1 arrays (validated)."""
    y, p = check_binary_pair(labels, predictions)
    y_b, p_b = y.astype(bool), p.astype(bool)
    tp = int(np.count_nonzero(y_b & p_b))
    fp = int(np.count_nonzero(~y_b & p_b))
    fn = int(np.count_nonzero(y_b & ~p_b))
    tn = int(np.count_nonzero(~y_b & ~p_b))
    return tp, fp, fn, tn


def point_prf(labels: Any, predictions: Any) -> dict[str, float | int]:
    """Point-wise precision, recall, F1 and accuracy, plus the four confusion counts.

    Args:
        labels: 0/1 ground truth per time point.
        predictions: 0/1 prediction per time point, same length.

    Returns:
        ``{"precision", "recall", "f1", "accuracy"}`` as floats and ``{"tp", "fp", "fn", "tn"}``
        as ints. Undefined ratios are 0 (scikit-learn ``zero_division=0``): precision when nothing
        is predicted, recall when there is no positive label, F1 when P + R = 0.

    Raises:
        DataError: arrays of different lengths, empty, not 1-D, or holding values other than 0/1.
    """
    tp, fp, fn, tn = confusion_counts(labels, predictions)
    return prf_from_counts(tp, fp, fn, tn)


def prf_from_counts(tp: int, fp: int, fn: int, tn: int) -> dict[str, float | int]:
    """Precision, recall, F1 and accuracy of confusion counts (summed ones too: pooling by counts).

    Same conventions as :func:`point_prf`; accuracy is 0 when there is no point at all.
    """
    precision = safe_ratio(tp, tp + fp)
    recall = safe_ratio(tp, tp + fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": harmonic_mean(precision, recall),
        "accuracy": safe_ratio(tp + tn, tp + fp + fn + tn),
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "tn": int(tn),
    }
