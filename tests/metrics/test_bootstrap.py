"""The paired (cluster) bootstrap of an AP difference: the value on the whole sample, intervals
that are exactly 0 for equal scorers and above 0 for a clearly better one, resamples made of
whole groups, and a fixed seed."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from lmad.metrics.bootstrap import paired_ap_difference, resampled_ap_differences


def test_equal_scorers_differ_by_exactly_zero():
    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 2, 200), rng.random(200)
    diff = paired_ap_difference(y, s, s.copy(), resamples=200)
    assert (diff.value, diff.low, diff.high) == (0.0, 0.0, 0.0) and not diff.above_zero


def test_a_clearly_better_scorer_is_above_zero_and_a_noisy_gap_is_not():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    good = y + rng.normal(0, 0.5, 300)  # AP about 0.9
    blind = rng.random(300)  # AP about the anomaly rate
    diff = paired_ap_difference(y, good, blind, resamples=300, seed=2)
    want = average_precision_score(y, good) - average_precision_score(y, blind)
    assert diff.value == pytest.approx(want, abs=1e-12)
    assert diff.low > 0.2 and diff.low < diff.value < diff.high and diff.above_zero
    # two blind scorers: whatever their gap on this sample, the interval holds 0
    other = paired_ap_difference(y, blind, rng.random(300), resamples=300, seed=2)
    assert other.low < 0 < other.high and not other.above_zero
    again = paired_ap_difference(y, good, blind, resamples=300, seed=2)
    assert again == diff  # the seed fixes the resamples


def test_groups_are_resampled_whole():
    """Three groups: every resample is a multiset of whole groups, so every resampled difference
    is one of the few values such multisets give (computed here by hand, with sklearn)."""
    y = np.array([1, 0, 0, 1, 1, 0, 0])
    a = np.array([0.9, 0.2, 0.4, 0.8, 0.3, 0.6, 0.1])
    b = np.array([0.5, 0.5, 0.7, 0.1, 0.9, 0.2, 0.3])
    groups = np.array([7, 7, 3, 3, 3, 5, 5])  # ids need not be 0..n-1 or sorted
    members = {7: [0, 1], 3: [2, 3, 4], 5: [5, 6]}
    possible = set()
    for drawn in itertools.combinations_with_replacement(members, 3):
        items = [i for g in drawn for i in members[g]]
        if 0 < y[items].sum() < len(items):
            gap = average_precision_score(y[items], a[items]) - average_precision_score(
                y[items], b[items]
            )
            possible.add(round(gap, 12))
    draws = resampled_ap_differences(y, a, b, groups=groups, resamples=400, seed=3)
    assert len(draws) > 300 and {round(d, 12) for d in draws} <= possible
    assert len({round(d, 12) for d in draws}) > 3
    # item-wise resampling (no groups) draws values no whole-group resample can give
    loose = resampled_ap_differences(y, a, b, resamples=400, seed=3)
    assert not {round(d, 12) for d in loose} <= possible


def test_single_class_resamples_and_bad_input():
    y = np.array([1, 0])  # half of the resamples of 2 items hold a single class
    diff = paired_ap_difference(y, [0.9, 0.1], [0.1, 0.9], resamples=50, seed=0)
    assert diff.value == pytest.approx(0.5)  # AP 1.0 against 0.5
    assert math.isnan(diff.low) or diff.low >= -0.5
    with pytest.raises(ValueError, match="one value per item"):
        paired_ap_difference([1, 0, 1], [0.1, 0.2], [0.3, 0.4])
