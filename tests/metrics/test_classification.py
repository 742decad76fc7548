"""Anomaly-type matching, confusion matrix and accuracy on hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmad.errors import DataError
from lmad.metrics.classification import segment_types, type_accuracy, type_confusion

# index:      0  1  2  3  4  5  6  7  8  9 10 11 12 13 14
ANNOTATION = [0, 1, 0, 2, 2, 2, 0, 0, 5, 5, 4, 4, 0, 3, 3]
# true segments: [1,2) global, [3,6) contextual, [8,10) shapelet, [10,12) trend (adjacent but a
# different type: a separate segment), [13,15) frequency (touches the last point)
INTERVALS = [(0, 2, "global"), (3, 4, "trend"), (4, 7, "contextual"), (9, 11, "shapelet")]


def test_segment_types_hand_example():
    # [1,2): (0,2) overlaps 1 point -> global
    # [3,6): (3,4) trend overlaps 1, (4,7) contextual overlaps 2 -> contextual
    # [8,10): (9,11) overlaps {9} -> shapelet
    # [10,12): (9,11) overlaps {10} -> shapelet (true trend: wrong)
    # [13,15): nothing overlaps -> none
    true, pred = segment_types(np.array(ANNOTATION), INTERVALS)
    assert true == ["global", "contextual", "shapelet", "trend", "frequency"]
    assert pred == ["global", "contextual", "shapelet", "shapelet", "none"]
    # 3 of 5 segments right
    assert type_accuracy(true, pred) == pytest.approx(3 / 5)


def test_type_confusion_hand_example():
    true = ["global", "contextual", "shapelet", "trend", "frequency"]
    pred = ["global", "contextual", "shapelet", "shapelet", "none"]
    matrix, labels = type_confusion(true, pred)
    assert labels == ["global", "contextual", "frequency", "trend", "shapelet", "none"]
    expected = np.array(
        [
            # gl co fr tr sh none   (predicted)
            [1, 0, 0, 0, 0, 0],  # true global
            [0, 1, 0, 0, 0, 0],  # true contextual
            [0, 0, 0, 0, 0, 1],  # true frequency, missed
            [0, 0, 0, 0, 1, 0],  # true trend, called shapelet
            [0, 0, 0, 0, 1, 0],  # true shapelet
            [0, 0, 0, 0, 0, 0],  # "none" never a true type here
        ]
    )
    assert matrix.tolist() == expected.tolist()
    assert matrix.dtype.kind == "i"
    # the diagonal over the five types divided by the total is the accuracy
    assert np.trace(matrix[:5, :5]) / matrix.sum() == pytest.approx(type_accuracy(true, pred))


def test_type_confusion_custom_type_order():
    matrix, labels = type_confusion(
        ["trend", "trend"], ["trend", "global"], types=("trend", "global")
    )
    assert labels == ["trend", "global", "none"]
    assert matrix.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 0]]


def test_segment_types_tie_goes_to_first_interval():
    # [1,5) contextual: (0,2) trend overlaps {1} and (4,6) shapelet overlaps {4}: tie -> trend
    true, pred = segment_types([0, 2, 2, 2, 2, 0], [(0, 2, "trend"), (4, 6, "shapelet")])
    assert (true, pred) == (["contextual"], ["trend"])


def test_segment_types_no_anomaly_and_accuracy_nan():
    assert segment_types([0, 0, 0], [(0, 2, "global")]) == ([], [])
    assert math.isnan(type_accuracy([], []))


@pytest.mark.parametrize(
    ("annotation", "intervals", "message"),
    [
        ([0, 6, 0], [], "0..5"),
        ([0, 1.5, 0], [], "0..5"),
        ([0, 1, 0], [(2, 2, "global")], "empty"),
        ([0, 1, 0], [(-1, 2, "global")], "negative"),
        ([0, 1, 0], [(0, 2, "spike")], "unknown type"),
        ([], [], "non-empty"),
    ],
)
def test_segment_types_rejects(annotation, intervals, message):
    with pytest.raises(DataError, match=message):
        segment_types(annotation, intervals)


def test_type_confusion_and_accuracy_reject():
    with pytest.raises(DataError, match="differ in length"):
        type_confusion(["global"], [])
    with pytest.raises(DataError, match="differ in length"):
        type_accuracy(["global"], ["global", "trend"])
    with pytest.raises(DataError, match="unknown anomaly type"):
        type_confusion(["global"], ["spike"])
