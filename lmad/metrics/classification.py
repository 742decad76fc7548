"""Anomaly-type classification on the synthetic data set (TAMA, arXiv 2411.02465).

TAMA's classification task asks the model to name the type of each anomaly it marks: global,
contextual, frequency, trend or shapelet. Scoring works per true anomaly segment:

1. :func:`segment_types` pairs each true segment (a run of equal non-zero values of the per-point
   type annotation, 1..5 = the five types in :data:`lmad.anomaly_types.ANOMALY_TYPES` order) with the
   type of the predicted interval that overlaps it most, or ``"none"`` when nothing overlaps;
2. :func:`type_confusion` counts the (true, predicted) pairs in a confusion matrix;
3. :func:`type_accuracy` is the fraction of segments whose predicted type equals the true one
   (a missed segment, predicted ``"none"``, counts as wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lmad.anomaly_types import ANOMALY_TYPES
from lmad.errors import DataError

NONE = "none"
"""The predicted type of a true segment that no predicted interval overlaps."""


def _check_pairs(true_types: Sequence[str], pred_types: Sequence[str]) -> None:
    if len(true_types) != len(pred_types):
        raise DataError(
            f"true and predicted type lists differ in length ({len(true_types)} vs "
            f"{len(pred_types)}); give one predicted type per true segment"
        )


def type_confusion(
    true_types: Sequence[str],
    pred_types: Sequence[str],
    types: Sequence[str] = ANOMALY_TYPES,
) -> tuple[np.ndarray, list[str]]:
    """Confusion matrix of anomaly types, one (true, predicted) pair per true segment.

    Args:
        true_types: the true type of each segment.
        pred_types: the predicted type of the same segment, or ``"none"`` when it was missed.
        types: the type names, in the order of the rows and columns.

    Returns:
        ``(matrix, labels)`` with ``labels = [*types, "none"]`` and ``matrix[i, j]`` (int64) the
        number of segments of true type ``labels[i]`` predicted as ``labels[j]``. The last column
        counts missed segments; the last row is zero unless ``"none"`` appears among the true
        types (which callers may use for typed false alarms).

    Raises:
        DataError: lists of different lengths or a name outside ``labels``.
    """
    _check_pairs(true_types, pred_types)
    labels = [*types, NONE]
    index = {name: i for i, name in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for true, pred in zip(true_types, pred_types, strict=True):
        for name in (true, pred):
            if name not in index:
                raise DataError(f"unknown anomaly type {name!r}; use one of {', '.join(labels)}")
        matrix[index[true], index[pred]] += 1
    return matrix, labels


def type_accuracy(true_types: Sequence[str], pred_types: Sequence[str]) -> float:
    """Fraction of segments whose predicted type equals the true type.

    Returns NaN for empty lists (no segment to classify). Raises DataError on different lengths.
    """
    _check_pairs(true_types, pred_types)
    if len(true_types) == 0:
        return float("nan")
    correct = sum(1 for t, p in zip(true_types, pred_types, strict=True) if t == p)
    return correct / len(true_types)


def _type_segments(annotation: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal non-zero values as ``(start, end, value)``, end exclusive."""
    boundaries = np.flatnonzero(np.diff(annotation) != 0) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [annotation.size]))
    return [(int(s), int(e), int(annotation[s])) for s, e in zip(starts, ends) if annotation[s]]


def segment_types(
    type_annotation: Any,
    predicted_intervals: Sequence[tuple[int, int, str]],
) -> tuple[list[str], list[str]]:
    """Pair every true anomaly segment with the type of its best-overlapping predicted interval.

    Args:
        type_annotation: per-point ints 0..5 (0 normal, k = ``ANOMALY_TYPES[k - 1]``); a true
            segment is a maximal run of one non-zero value (two adjacent runs of different types
            are two segments).
        predicted_intervals: ``(start, end, type)`` in series coordinates, end exclusive, type one
            of the five names; intervals may overlap each other.

    Returns:
        ``(true_types, pred_types)``, one entry per true segment in time order. The predicted type
        is that of the interval sharing the most points with the segment; ties go to the interval
        listed first; ``"none"`` when no interval overlaps the segment.

    Raises:
        DataError: an annotation outside 0..5, or an interval with start < 0, end <= start or an
            unknown type.
    """
    annotation = np.asarray(type_annotation)
    if annotation.ndim != 1 or annotation.size == 0:
        raise DataError(f"type annotation must be a non-empty 1-D array, got {annotation.shape}")
    if not np.issubdtype(annotation.dtype, np.number) or not np.isin(annotation, range(6)).all():
        raise DataError("type annotation must hold integers 0..5 (0 = normal, 1..5 = the types)")
    annotation = annotation.astype(np.int64)
    intervals = []
    for item in predicted_intervals:
        start, end, kind = int(item[0]), int(item[1]), item[2]
        if start < 0 or end <= start:
            raise DataError(f"predicted interval {tuple(item)!r} is empty or negative")
        if kind not in ANOMALY_TYPES:
            raise DataError(
                f"predicted interval {tuple(item)!r} has unknown type {kind!r}; "
                f"use one of {', '.join(ANOMALY_TYPES)}"
            )
        intervals.append((start, end, kind))
    true_types: list[str] = []
    pred_types: list[str] = []
    for start, end, value in _type_segments(annotation):
        true_types.append(ANOMALY_TYPES[value - 1])
        best, best_overlap = NONE, 0
        for p_start, p_end, kind in intervals:
            overlap = min(end, p_end) - max(start, p_start)
            if overlap > best_overlap:
                best, best_overlap = kind, overlap
        pred_types.append(best)
    return true_types, pred_types
