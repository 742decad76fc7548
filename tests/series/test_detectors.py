"""aeon's detectors as lmad registers them: each finds an injected anomaly; window, fit, channels.

Test series: a sine of period 25 with a little noise; train split 600 points, test split 1200
points in which one period (test points 600..624) is replaced by white noise.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lmad.errors import ConfigError
from lmad.series import detectors
from lmad.series.detectors import (
    DETECTORS,
    MAX_WINDOW,
    MIN_WINDOW,
    NO_PERIOD_WINDOW,
    DetectorSpec,
    available_detectors,
    choose_window,
    plan_series,
    resolve_detectors,
    score_series,
)
from lmad.series.scores import combined_score

PERIOD = 25
ANOMALY = (600, 625)


def sine(n: int, period: float = PERIOD, seed: int = 1, start: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(start, start + n)
    return np.sin(2 * np.pi * t / period) + 0.05 * rng.normal(size=n)


def series() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train (600, 1), test (1200, 1), test labels)."""
    train, test = sine(600, seed=1), sine(1200, seed=2, start=600)
    a, b = ANOMALY
    test[a:b] = np.random.default_rng(3).normal(size=b - a)
    labels = np.zeros(1200, dtype=int)
    labels[a:b] = 1
    return train[:, None], test[:, None], labels


def needs(name: str):
    missing = DETECTORS[name].missing()
    return pytest.mark.skipif(bool(missing), reason=f"{name} needs {missing}")


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in DETECTORS])
def test_every_detector_ranks_the_anomaly_first(name):
    train, test, labels = series()
    scores, params = score_series(name, train, test)
    assert scores.shape == (1200, 1)
    assert scores.dtype == np.float64 and np.isfinite(scores).all()
    s = scores[:, 0]
    assert roc_auc_score(labels, s) >= 0.95, name
    assert s[labels == 1].max() >= s[labels == 0].max(), name  # the top score is in the anomaly
    assert params["period"] == pytest.approx(PERIOD, abs=0.5)
    assert params["window_size"] == (None if name == "dwt_mlead" else PERIOD)


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in ("kmeans", "madrid")])
def test_without_a_train_split_the_test_split_alone_is_scored(name):
    _, test, labels = series()
    scores, params = score_series(name, None, test)
    assert scores.shape == (1200, 1)
    assert params["period_from"] == "test" and params["fit"] in ("test", "none")
    # madrid keeps aeon's default history (the first fifth), scored 0; the anomaly is after it
    assert roc_auc_score(labels, scores[:, 0]) >= 0.9


def test_fit_follows_aeon_tags_and_the_train_length():
    train, test, _ = series()
    assert plan_series("kmeans", train, test).fit == "train"
    assert plan_series("kmeans", train[:60], test).fit == "test"  # 36 windows < MIN_FIT_WINDOWS
    assert plan_series("eif", None, test).fit == "test"
    assert plan_series("dwt_mlead", train, test).fit == "none"
    assert plan_series("stomp", train, test).fit == "none"
    plan = plan_series("madrid", train, test)
    assert plan.fit == "train as history" and plan.options["train_test_split"] == 600
    assert plan.options["min_length"] == 12 and plan.options["max_length"] == 50
    assert DETECTORS["kmeans"].fits and not DETECTORS["dwt_mlead"].fits
    assert DETECTORS["kmeans"].multivariate and not DETECTORS["stomp"].multivariate


def multichannel() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channel 0 has the anomaly, channel 1 is a clean sine of another phase, channel 2 constant."""
    train, test, labels = series()
    other = lambda n, start, seed: sine(n, seed=seed, start=start + 7)  # noqa: E731
    train3 = np.column_stack([train[:, 0], other(600, 0, 4), np.zeros(600)])
    test3 = np.column_stack([test[:, 0], other(1200, 600, 5), np.zeros(1200)])
    return train3, test3, labels


def test_joint_detector_returns_one_column_for_all_channels():
    train, test, labels = multichannel()
    scores, params = score_series("kmeans", train, test)
    assert scores.shape == (1200, 1)
    assert params["channel_handling"] == "joint"
    assert "constant_channels" not in params  # a joint detector sees the varying channels
    assert roc_auc_score(labels, combined_score(scores)) >= 0.95


def test_univariate_detector_scores_each_channel_constant_ones_zero():
    train, test, labels = multichannel()
    scores, params = score_series("dwt_mlead", train, test)
    assert scores.shape == (1200, 3)
    assert params["channel_handling"] == "per channel"
    assert params["constant_channels"] == [2]
    assert not scores[:, 2].any()
    assert roc_auc_score(labels, scores[:, 0]) >= 0.95
    alone, _ = score_series("dwt_mlead", train[:, :1], test[:, :1])
    np.testing.assert_array_equal(scores[:, 0], alone[:, 0])  # channels do not mix
    assert roc_auc_score(labels, combined_score(scores)) >= 0.9


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=needs(n)) for n in ("kmeans", "eif", "iforest")]
)
def test_randomised_detectors_are_seeded(name):
    train, test, _ = series()
    first, params = score_series(name, train, test)
    second, _ = score_series(name, train, test)
    np.testing.assert_array_equal(first, second)
    assert params["aeon"]["random_state"] == detectors.SEED


def test_window_is_the_train_period_rounded():
    train, test = sine(2000, period=40.0)[:, None], sine(3000, period=60.0)[:, None]
    assert choose_window(train, test)[0] == 40  # the train split decides
    window, period, source = choose_window(train[:99], test)  # too short: the test split
    assert (window, source) == (60, "test") and period == pytest.approx(60, abs=0.5)


def test_window_is_clipped_and_falls_back_without_a_period():
    fast = sine(2000, period=5.0)[:, None]
    assert choose_window(fast, fast)[0] == MIN_WINDOW
    slow = sine(6000, period=1500.0)[:, None]
    assert choose_window(slow, slow)[0] == MAX_WINDOW
    assert choose_window(slow, slow[:1200])[0] == 300  # a quarter of the test split
    noise = np.random.default_rng(0).normal(size=(3000, 1))
    assert choose_window(noise, noise) == (NO_PERIOD_WINDOW, None, "train")
    constant = np.ones((3000, 2))
    assert choose_window(constant, constant)[:2] == (NO_PERIOD_WINDOW, None)


def test_resolve_detectors(monkeypatch):
    assert resolve_detectors("all") == (available_detectors(), [])
    assert resolve_detectors(" kmeans, dwt_mlead,kmeans") == (["kmeans", "dwt_mlead"], [])
    with pytest.raises(ConfigError, match=r"unknown detector.*'nope'.*available: .*kmeans"):
        resolve_detectors("kmeans,nope")
    with pytest.raises(ConfigError, match="empty"):
        resolve_detectors(" , ")
    absent = DetectorSpec("ghost", "distance_based.KMeansAD", "-", dict, requires=("no_such_pkg",))
    monkeypatch.setitem(DETECTORS, "ghost", absent)
    assert "ghost" in resolve_detectors("all")[1]
    with pytest.raises(ConfigError, match="pip install no_such_pkg"):
        resolve_detectors("ghost")
