"""Affiliation metrics: the package's documented values, hand integrals, a brute-force check."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest

from lmad.errors import DataError
from lmad.metrics.affiliation import affiliation_from_events, affiliation_prf, events_from_binary


def binary(n: int, *runs: tuple[int, int]) -> np.ndarray:
    out = np.zeros(n, dtype=int)
    for start, stop in runs:
        out[start:stop] = 1
    return out


def test_events_are_half_open_runs():
    assert events_from_binary([0, 1, 1, 0, 0, 1, 0]) == [(1, 3), (5, 6)]
    assert events_from_binary([1, 0, 1]) == [(0, 1), (2, 3)]
    assert events_from_binary([0, 0]) == []


@pytest.mark.parametrize(
    "runs", [[(3, 5)], [(0, 2), (10, 11)], [(0, 30)], [(5, 6), (7, 8), (29, 30)]]
)
def test_perfect_prediction_scores_one(runs):
    y = binary(30, *runs)
    assert affiliation_prf(y, y) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_paper_example():
    """The paper's example, as in the package's tests (test_metrics.py::test_paper): second zone."""
    gt = [(0, 600), (3000, 4200), (10200, 10500)]
    pred = [(300, 360), (420, 600), (660, 720), (2400, 3600), (6900, 7800), (8100, 8400),
            (9900, 10200)]  # fmt: skip
    result = affiliation_from_events(pred, gt, (0, 10800))
    assert result["zones"] == [(0, 1800), (1800, 7200), (7200, 10800)]
    assert result["individual_precision"][1] == pytest.approx(0.672222222, abs=1e-9)
    assert result["individual_recall"][1] == pytest.approx(0.944444444, abs=1e-9)
    # the same situation in minutes, shifted (test_single_ground_truth_event.py, misc case)
    single = affiliation_from_events([(11, 31), (86, 91)], [(21, 41)], (1, 91))
    assert single["precision"] == pytest.approx(0.672222222, abs=1e-9)
    assert single["recall"] == pytest.approx(0.944444444, abs=1e-9)
    # same example on 0/1 arrays: one point per second
    y = np.zeros(10800, dtype=int)
    p = np.zeros(10800, dtype=int)
    for start, stop in gt:
        y[start:stop] = 1
    for start, stop in pred:
        p[start:stop] = 1
    assert affiliation_prf(y, p)["precision"] == pytest.approx(result["precision"], abs=1e-12)


def test_package_coherence_example():
    """test_metrics.py::test_check_coherence: a contained prediction, an empty zone, a full recall."""
    pred = [(1, 3), (6, 18), (25, 26)]
    gt = [(1, 8), (16, 17), (25, 28), (29, 31)]
    result = affiliation_from_events(pred, gt, (1, 40))
    assert result["individual_precision"][2] == 1.0
    assert math.isnan(result["individual_precision"][3])
    assert result["individual_recall"][3] == 0.0
    assert result["individual_recall"][1] == 1.0


def test_prediction_shifted_right_by_hand():
    """n = 20, J = [8, 10), one predicted point [12, 13); the single zone is E = [0, 20).

    |E| = 20, |J| = 2, gaps 8 (left) and 10 (right), m = 8. Precision: x in [12, 13) is at distance
    d = x - 10 in [2, 3] < m, survival 1 - (|J| + d + d)/|E| = 1 - (2 + 2d)/20, mean over d in
    [2, 3] = 1 - (2 + 2 * 2.5)/20 = 0.65. Recall: y in [8, 10) is at D = 12 - y in (2, 4], both
    borders of E farther than D, survival 1 - 2D/20, mean D = 3, recall = 1 - 6/20 = 0.7.
    """
    result = affiliation_prf(binary(20, (8, 10)), binary(20, (12, 13)))
    assert result["precision"] == pytest.approx(0.65, abs=1e-12)
    assert result["recall"] == pytest.approx(0.7, abs=1e-12)
    assert result["f1"] == pytest.approx(2 * 0.65 * 0.7 / 1.35, abs=1e-12)


def test_far_prediction_uses_the_short_side_by_hand():
    """n = 20, J = [14, 16), prediction [2, 3): beyond the short gap m = 4, the min(d, m) kink.

    Precision: d in [11, 12] > m, survival 1 - (2 + 4 + d)/20, mean d = 11.5 → 1 - 17.5/20 = 0.125.
    Recall: y in [14, 16), D = y - 3 > 20 - y, survival 1 - (D + (20 - y))/20 = 1 - 17/20 = 0.15.
    """
    result = affiliation_prf(binary(20, (14, 16)), binary(20, (2, 3)))
    assert result["precision"] == pytest.approx(0.125, abs=1e-12)
    assert result["recall"] == pytest.approx(0.15, abs=1e-12)


def test_two_zones_average_precision_only_where_predicted():
    # zones cut at (4 + 12)/2 = 8; only the first zone holds a prediction (exactly on the event)
    result = affiliation_from_events([(2, 4)], [(2, 4), (12, 14)], (0, 20))
    assert result["zones"] == [(0, 8), (8, 20)]
    assert result["individual_precision"][0] == 1.0 and math.isnan(
        result["individual_precision"][1]
    )
    assert result["precision"] == 1.0
    assert result["recall"] == pytest.approx(0.5)


def test_no_prediction_and_no_label():
    y = binary(20, (5, 8))
    empty = affiliation_prf(y, np.zeros(20, dtype=int))
    assert math.isnan(empty["precision"]) and empty["recall"] == 0.0 and empty["f1"] == 0.0
    nothing = affiliation_prf(np.zeros(20, dtype=int), y)
    assert all(math.isnan(v) for v in nothing.values())


def test_bad_inputs():
    with pytest.raises(DataError, match="differ in length"):
        affiliation_prf(np.zeros(5, dtype=int), np.zeros(6, dtype=int))
    with pytest.raises(DataError, match="only 0 and 1"):
        affiliation_prf(np.array([0, 2, 0]), np.array([0, 1, 0]))
    with pytest.raises(DataError, match="1-D"):
        affiliation_prf(np.zeros((2, 2)), np.zeros((2, 2)))


def test_closer_prediction_has_higher_precision_and_recall():
    y = binary(60, (28, 32))
    results = [affiliation_prf(y, binary(60, (32 + k, 34 + k))) for k in range(0, 20, 2)]
    precisions = [r["precision"] for r in results]
    recalls = [r["recall"] for r in results]
    assert all(a > b for a, b in pairwise(precisions))
    assert all(a > b for a, b in pairwise(recalls))


def brute_force(labels: np.ndarray, predictions: np.ndarray, step: float) -> tuple[float, float]:
    """The definition on a fine grid: zones by nearest event, survival by counting grid points."""
    n = labels.size
    x = (np.arange(round(n / step)) + 0.5) * step
    cell = np.floor(x).astype(int)
    gt = events_from_binary(labels)
    pred = events_from_binary(predictions)

    def dist(points, intervals):
        if not intervals:
            return np.full(points.shape, np.inf)
        a = np.array([i[0] for i in intervals], dtype=float)
        b = np.array([i[1] for i in intervals], dtype=float)
        return np.min(np.maximum(np.maximum(a - points[:, None], points[:, None] - b), 0), axis=1)

    owner = np.argmin(np.stack([dist(x, [event]) for event in gt]), axis=0)
    precisions, recalls = [], []
    for j, event in enumerate(gt):
        e = x[owner == j]
        d_e = np.sort(dist(e, [event]))
        predicted = e[predictions[cell[owner == j]] == 1]
        if predicted.size:
            d = dist(predicted, [event])
            survival = (d_e.size - np.searchsorted(d_e, d, side="left")) / d_e.size
            precisions.append(survival.mean())
        truth = e[labels[cell[owner == j]] == 1]
        if predicted.size == 0:
            recalls.append(0.0)
            continue
        lo, hi = e[0] - step / 2, e[-1] + step / 2
        clipped = [(max(a, lo), min(b, hi)) for a, b in pred if min(b, hi) > max(a, lo)]
        big_d = dist(truth, clipped)
        near = np.searchsorted(e, truth + big_d, side="left") - np.searchsorted(
            e, truth - big_d, side="right"
        )
        survival = np.where(big_d > 0, (e.size - near) / e.size, 1.0)
        recalls.append(survival.mean())
    precision = float(np.mean(precisions)) if precisions else math.nan
    return precision, float(np.mean(recalls))


@pytest.mark.parametrize("seed", range(25))
def test_matches_brute_force_integration(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 25))
    labels = (rng.random(n) < 0.25).astype(int)
    if not labels.any():
        labels[int(rng.integers(n))] = 1
    predictions = (rng.random(n) < 0.3).astype(int)
    if seed % 5 == 0:
        predictions[:] = 0
    exact = affiliation_prf(labels, predictions)
    precision, recall = brute_force(labels, predictions, step=1 / 400)
    assert exact["recall"] == pytest.approx(recall, abs=3e-3)
    if math.isnan(precision):
        assert math.isnan(exact["precision"])
    else:
        assert exact["precision"] == pytest.approx(precision, abs=3e-3)
