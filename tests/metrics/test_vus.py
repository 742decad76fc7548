"""Range-AUC and VUS: hand values, the buffer-0 case, the vectorised code against the literal one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import auc, precision_recall_curve, roc_auc_score

from lmad.errors import DataError
from lmad.metrics.vus import (
    buffer_lengths,
    range_auc,
    range_auc_reference,
    soft_labels,
    threshold_values,
    vus,
    vus_reference,
)


def binary(n: int, *runs: tuple[int, int]) -> np.ndarray:
    out = np.zeros(n, dtype=int)
    for start, stop in runs:
        out[start:stop] = 1
    return out


def ramp_mass(buffer: int) -> float:
    """Soft-label mass one side of a segment adds: sum of sqrt(1 - d/l) for d = 1..l//2."""
    return sum(math.sqrt(1 - d / buffer) for d in range(1, buffer // 2 + 1))


def test_soft_labels_ramp_edges_and_overlap():
    r75, r50 = math.sqrt(0.75), math.sqrt(0.5)
    expected = [0, 0, 0, r50, r75, 1, 1, r75, r50, 0, 0, 0]
    np.testing.assert_allclose(soft_labels(binary(12, (5, 7)), 4), expected, atol=1e-15)
    # at the series start only the right ramp exists
    np.testing.assert_allclose(
        soft_labels(binary(6, (0, 1)), 6), [1, math.sqrt(5 / 6), math.sqrt(4 / 6), r50, 0, 0]
    )
    # ramps of neighbouring segments add up and are capped at 1
    soft = soft_labels(binary(12, (2, 3), (6, 7)), 6)
    np.testing.assert_allclose(soft[2:7], 1.0)
    np.testing.assert_allclose(soft[[1, 0, 7, 8, 9]], np.sqrt([5 / 6, 4 / 6, 5 / 6, 4 / 6, 0.5]))
    # buffers 0 and 1 change nothing
    y = binary(12, (2, 3), (6, 8))
    assert np.array_equal(soft_labels(y, 0), y) and np.array_equal(soft_labels(y, 1), y)


def test_reference_thresholds_and_buffer_lengths():
    scores = np.arange(1000.0)
    t = threshold_values(scores)  # 250 positions of the decreasing scores, as the reference
    assert t.size == 250 and t[0] == 999 and t[-1] == 0 and t[1] == 999 - int(999 / 249)
    assert list(threshold_values([3.0, 1.0, 3.0, 2.0], None)) == [3.0, 2.0, 1.0]
    assert list(buffer_lengths(4)) == [0, 1, 2, 3, 4]
    assert list(buffer_lengths(10, 3)) == [0, 5, 10]


@pytest.mark.parametrize("thresholds", [250, None])
def test_perfect_detector(thresholds):
    """scores = labels. Buffers 0 and 1: ROC = PR = 1. Buffer l >= 2, by hand:

    threshold 1 predicts the P labelled points: TP = P, FP = 0, TPR r = P / P' with
    P' = (P + S) / 2 and S = P + 2 * ramp_mass(l) > P, precision 1. Threshold 0 predicts all n
    points: TPR 1, FPR f = (n - S) / (n - P'), precision S / n. Trapezoids:
    ROC = f (r + 1) / 2 + (1 - f) = 1 - f (1 - r) / 2, PR = r + (1 - r)(1 + S / n) / 2.
    """
    n, y = 200, binary(200, (80, 100))
    assert vus(y, y, max_buffer=1, thresholds=thresholds) == {"vus_roc": 1.0, "vus_pr": 1.0}
    assert range_auc(y, y, 0, thresholds) == {"roc": 1.0, "pr": 1.0}
    rocs, prs = [], []
    for buffer in range(0, 31):
        big_p, s = 20, 20 + 2 * ramp_mass(buffer)
        p_new = (big_p + s) / 2
        r, f = big_p / p_new, (n - s) / (n - p_new)
        rocs.append(1 - f * (1 - r) / 2)
        prs.append(r + (1 - r) * (1 + s / n) / 2)
        got = range_auc(y, y, buffer, thresholds)
        assert got["roc"] == pytest.approx(rocs[-1], abs=1e-12)
        assert got["pr"] == pytest.approx(prs[-1], abs=1e-12)
    result = vus(y, y, max_buffer=30, thresholds=thresholds)
    assert result["vus_roc"] == pytest.approx(np.mean(rocs), abs=1e-12)
    assert result["vus_pr"] == pytest.approx(np.mean(prs), abs=1e-12)
    assert result["vus_roc"] < 0.9 and result["vus_pr"] < 0.95  # well below 1 (0.896, 0.911)


def test_constant_scores():
    """One threshold predicts everything: TPR 1, FPR f = (n - S)/(n - P'), precision S/n.

    ROC = f/2 + (1 - f) = 1 - f/2, which is 0.5 at buffer 0 (f = 1); PR = (1 + S/n) / 2.
    """
    n, y = 100, binary(100, (40, 45), (70, 72))
    scores = np.full(n, 0.3)
    at_zero = range_auc(y, scores, 0)
    assert at_zero["roc"] == pytest.approx(0.5, abs=1e-15)
    assert at_zero["pr"] == pytest.approx((1 + 7 / n) / 2, abs=1e-15)
    s = 7 + 4 * ramp_mass(10)
    p_new = (7 + s) / 2
    f = (n - s) / (n - p_new)
    got = range_auc(y, scores, 10)
    assert got["roc"] == pytest.approx(1 - f / 2, abs=1e-12)
    assert got["pr"] == pytest.approx((1 + s / n) / 2, abs=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_buffer_zero_single_segment_is_plain_auc(seed):
    """One labelled segment, buffer 0, all thresholds: ROC-AUC and trapezoid PR-AUC of sklearn."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 400))
    start = int(rng.integers(0, n - 10))
    y = binary(n, (start, start + int(rng.integers(1, 10))))
    scores = np.round(rng.normal(size=n) + y * rng.uniform(0, 2), 1)  # with ties
    got = range_auc(y, scores, 0, thresholds=None)
    precision, recall, _ = precision_recall_curve(y, scores)
    assert got["roc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert got["pr"] == pytest.approx(auc(recall, precision), abs=1e-12)
    assert range_auc(y, scores, 1, thresholds=None) == got  # buffer 1 adds nothing either


def test_buffer_zero_multiplies_tpr_by_the_detected_fraction():
    """Two segments, only the first scored: threshold 2 gives TPR = 1/2 recall * 1/2 existence.

    ROC: (0,0) → (0, 0.25) → (1, 1): area (0.25 + 1)/2 = 0.625 (plain ROC-AUC: 0.75).
    PR: (0, 1) → (0.25, 1) → (1, 0.2): 0.25 + 0.75 * 0.6 = 0.7.
    """
    y = binary(10, (1, 2), (6, 7))
    scores = np.zeros(10)
    scores[1] = 2.0
    got = range_auc(y, scores, 0, thresholds=None)
    assert got["roc"] == pytest.approx(0.625, abs=1e-15)
    assert got["pr"] == pytest.approx(0.7, abs=1e-15)
    assert roc_auc_score(y, scores) == pytest.approx(0.75)


def test_250_thresholds_use_every_score_on_short_series():
    rng = np.random.default_rng(3)
    y = binary(200, (50, 60), (120, 125))
    scores = rng.normal(size=200) + y
    assert vus(y, scores, 20) == pytest.approx(vus(y, scores, 20, thresholds=None), abs=1e-15)


def random_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(5, 300))
    y = np.zeros(n, dtype=int)
    for _ in range(int(rng.integers(1, 6))):
        start = int(rng.integers(0, n))
        y[start : start + int(rng.integers(1, 15))] = 1
    if y.all():
        y[0] = 0
    scores = rng.normal(size=n) + y * rng.uniform(0, 2)
    if rng.random() < 0.4:
        scores = np.round(scores, 1)  # ties
    return y, scores


@pytest.mark.parametrize("seed", range(40))
def test_vectorised_equals_literal(seed):
    rng = np.random.default_rng(seed)
    y, scores = random_case(rng)
    thresholds = [250, None, 7, 1][seed % 4]
    max_buffer = int(rng.integers(0, 40))
    steps = None if seed % 3 else int(rng.integers(1, 8))
    fast = vus(y, scores, max_buffer, steps, thresholds)
    slow = vus_reference(y, scores, max_buffer, steps, thresholds)
    assert fast["vus_roc"] == pytest.approx(slow["vus_roc"], abs=1e-9)
    assert fast["vus_pr"] == pytest.approx(slow["vus_pr"], abs=1e-9)
    buffer = int(rng.integers(0, 30))
    one, literal = (
        range_auc(y, scores, buffer, thresholds),
        range_auc_reference(y, scores, buffer, thresholds),
    )
    assert one["roc"] == pytest.approx(literal["roc"], abs=1e-9)
    assert one["pr"] == pytest.approx(literal["pr"], abs=1e-9)


def test_steps_average_the_sampled_buffers():
    rng = np.random.default_rng(5)
    y, scores = binary(300, (100, 110), (200, 204)), rng.normal(size=300)
    result = vus(y, scores, max_buffer=40, steps=5)
    parts = [range_auc(y, scores, b) for b in (0, 10, 20, 30, 40)]
    assert result["vus_roc"] == pytest.approx(np.mean([p["roc"] for p in parts]), abs=1e-15)
    assert result["vus_pr"] == pytest.approx(np.mean([p["pr"] for p in parts]), abs=1e-15)


def test_a_lagged_detector_is_forgiven_by_buffers():
    """A score peaking 3 points after each event: the buffers credit it, more than at buffer 0."""
    rng = np.random.default_rng(0)
    y = binary(1000, (200, 210), (600, 610))
    lagged = 0.1 * rng.random(1000) + np.roll(y, 13)  # lagged enough to miss the events
    assert range_auc(y, lagged, 0)["roc"] < range_auc(y, lagged, 40)["roc"]
    near = 0.1 * rng.random(1000) + np.roll(y, 12)
    far = 0.1 * rng.random(1000) + np.roll(y, 30)
    assert vus(y, near, 40)["vus_roc"] > vus(y, far, 40)["vus_roc"]
    assert vus(y, near, 40)["vus_pr"] > vus(y, far, 40)["vus_pr"]


def test_degenerate_labels_and_bad_inputs():
    scores = np.arange(5.0)
    for labels in (np.zeros(5, dtype=int), np.ones(5, dtype=int)):
        assert all(math.isnan(v) for v in vus(labels, scores, 4).values())
        assert all(math.isnan(v) for v in range_auc(labels, scores, 2).values())
    y = binary(5, (1, 2))
    with pytest.raises(DataError, match="differ in shape"):
        vus(y, np.arange(4.0))
    with pytest.raises(DataError, match="NaN"):
        range_auc(y, np.array([0, 1, np.nan, 0, 0]), 2)
    with pytest.raises(DataError, match="only 0 and 1"):
        vus(np.array([0, 2, 0, 0, 0]), scores)
    with pytest.raises(DataError, match="non-negative"):
        range_auc(y, scores, -1)
    with pytest.raises(DataError, match="thresholds"):
        vus(y, scores, 4, thresholds=0)
    with pytest.raises(DataError, match="steps"):
        vus(y, scores, 4, steps=0)
