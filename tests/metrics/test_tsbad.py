"""TSB-AD 1.5 ``get_metrics`` columns and sliding window against the stored reference values.

``tests/fixtures/tsbad_reference.json`` holds what TSB-AD 1.5 returns on the 41 cases of
``tests/fixtures/metric_cases.json`` (layout and calls: ``tests/fixtures/make_reference_metrics.py``).
Every column of every case must match to 1e-9, except TSB-AD 1.5's edge-case bugs and lmad's
documented choice (``BUGS`` and :func:`expected`, each with lmad's own value) and the degenerate
label vectors (no anomaly, all anomalous), which have their own tests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler

from lmad.errors import DataError
from lmad.metrics.adjust import segments
from lmad.metrics.range_based import range_prf
from lmad.metrics.tsbad import (
    TSBAD_COLUMNS,
    tsbad_metrics,
    tsbad_sliding_window,
    tsbad_threshold_metrics,
)
from tests.conftest import load_fixture

CASES = {c["name"]: c for c in load_fixture("metric_cases.json")}
REFERENCE = load_fixture("tsbad_reference.json")
DEGENERATE = ("no_anomaly", "no_anomaly_no_prediction", "all_anomalous")
REGULAR = [name for name in CASES if name not in DEGENERATE]
THRESHOLD_COLUMNS = ("Standard-F1", "PA-F1", "Event-based-F1", "R-based-F1", "Affiliation-F")
FREE_COLUMNS = ("AUC-PR", "AUC-ROC", "VUS-PR", "VUS-ROC")
TOL = 1e-9

# (case, column, pred) -> lmad's value where TSB-AD 1.5 has a bug. pred is the reference's
# "pred=..." part; the same value holds for raw and min-max scores. Two more differences are rules:
# see expected() (Affiliation-F without prediction, R-based-F1 of boolean predictions).
BUGS: dict[tuple[str, str, str], float] = {
    # Bug 1: TSB-AD never adjusts index 0 (basic_metrics.py l.122). Labels 111000100, preds
    # 001011010: adjusted 111011010, tp 3, fp 3, fn 1, F1 = 6/10 (TSB-AD 4/9).
    ("tsbad_pa_starts_at_0", "PA-F1", "None"): 0.6,
    ("tsbad_pa_starts_at_0", "PA-F1", "case"): 0.6,
    # Bug 2: TSB-AD's last event ends at n-2 (l.325-327), so the anomaly at index 7 is never hit.
    # Event recall 1/2, point precision 1/1: F = 2/3 (TSB-AD 0).
    ("tsbad_event_last_index", "Event-based-F1", "None"): 2 / 3,
    ("tsbad_event_last_index", "Event-based-F1", "case"): 2 / 3,
    # Bug 3: an all-ones prediction has no range in TSB-AD (l.383-398). Labels 1 on [15, 23) of
    # 40: recall 0.2*1 + 0.8*1 = 1, precision 8/40: F = 2*0.2/1.2 = 1/3 (TSB-AD 0).
    ("all_predicted", "R-based-F1", "case"): 1 / 3,
}


def tsbad_bool_range_f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    """What TSB-AD 1.5's metric_RF1 returns for a *boolean* prediction array (bug 4).

    ``np.diff`` of a bool array is a XOR, so ``range_convers_new`` (l.388-397) takes every change
    for a start, finds no end, and reads the predictions as one range [a, n-1], a = first change
    + 1. Recall keeps the true predicted points with that single range (cardinality 1); precision
    is the labelled share of [a, n-1], divided by the number of true ranges it overlaps.
    """
    y, p = labels.astype(int), predictions.astype(int)
    a = int(np.flatnonzero(np.diff(p))[0]) + 1
    real = segments(y)
    recall = np.mean([0.2 * p[s:e].any() + 0.8 * p[s:e].mean() for s, e in real])
    overlapped = sum(1 for _, e in real if e > a)
    precision = y[a:].sum() / (y.size - a) / overlapped if overlapped else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def expected(name, column, pred, labels, score, given, reference: float) -> float:
    """lmad's value: the reference, except for TSB-AD's bugs and lmad's documented choice."""
    if (name, column, pred) in BUGS:
        return BUGS[name, column, pred]
    predicts_nothing = not (score > score.min()).any() if given is None else not given.any()
    if column == "Affiliation-F" and predicts_nothing:
        assert math.isnan(reference)  # TSB-AD: affiliation precision undefined, so F is NaN
        return 0.0  # lmad: recall is 0, so F is 0
    if column == "R-based-F1" and pred == "mean+3std" and given.any():
        assert same(tsbad_bool_range_f1(labels, given), reference)  # bug 4 explains TSB-AD's
        return range_prf(labels, given.astype(int), 0.2, "reciprocal", "flat")["f1"]
    return reference


def arrays(name: str) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Labels, the two score forms of the reference (raw, min-max) and the case's predictions."""
    case = CASES[name]
    raw = np.asarray(case["scores"], dtype=float)
    scaled = MinMaxScaler(feature_range=(0, 1)).fit_transform(raw.reshape(-1, 1)).ravel()
    return np.asarray(case["labels"]), {"raw": raw, "minmax": scaled}, np.asarray(case["preds"])


def runs(name: str):
    """(run key, scores, sliding window, pred name, predictions) of every get_metrics run."""
    labels, forms, preds = arrays(name)
    for key in REFERENCE[name]["get_metrics"]:
        form, sw, pred = key.split(",")
        score = forms[form]
        window = 100 if sw == "sw=100" else REFERENCE[name]["sliding_window"][f"{form}_scores"]
        pred = pred.removeprefix("pred=")
        given = {"None": None, "case": preds}.get(pred)
        if pred == "mean+3std":
            given = score > np.mean(score) + 3 * np.std(score)
        yield key, labels, score, window, pred, given


def same(actual: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(actual)
    return abs(actual - expected) <= TOL


# ------------------------------------------------------------------------- sliding window


@pytest.mark.parametrize("name", list(CASES))
def test_sliding_window_matches_find_length_rank(name):
    labels, forms, _ = arrays(name)
    stored = REFERENCE[name]["sliding_window"]
    assert tsbad_sliding_window(forms["raw"]) == stored["raw_scores"]
    assert tsbad_sliding_window(forms["minmax"]) == stored["minmax_scores"]
    assert tsbad_sliding_window(labels) == stored["labels"]


def test_sliding_window_rules():
    t = np.arange(3000)
    assert tsbad_sliding_window(np.sin(2 * np.pi * t / 40)) == 40
    assert tsbad_sliding_window(np.sin(2 * np.pi * t / 40).reshape(-1, 1)) == 40  # one column
    # the ACF peak at lag 5 is index 2 after dropping lags 0-2: below 3, so the default 125
    assert tsbad_sliding_window(np.sin(2 * np.pi * t / 5)) == 125
    # period 350: its peak lies beyond index 300, so 125 as well
    assert tsbad_sliding_window(np.sin(2 * np.pi * np.arange(5000) / 350)) == 125
    assert tsbad_sliding_window(np.full(100, 3.0)) == 125  # constant: ACF undefined
    assert tsbad_sliding_window([1.0, 2.0, 3.0]) == 125  # too short for a local maximum
    # only the first 20000 points count
    mixed = np.concatenate([np.sin(2 * np.pi * np.arange(20000) / 40), np.sin(np.arange(80000))])
    assert tsbad_sliding_window(mixed) == 40
    with pytest.raises(DataError, match="one channel"):
        tsbad_sliding_window(np.zeros((10, 2)))
    with pytest.raises(DataError, match="empty"):
        tsbad_sliding_window([])


# ------------------------------------------------------------------ columns vs. TSB-AD 1.5


@pytest.mark.parametrize("name", REGULAR)
def test_threshold_columns_match_tsbad(name):
    for key, labels, score, _, pred, given in runs(name):
        reference = REFERENCE[name]["get_metrics"][key]
        actual = tsbad_threshold_metrics(labels, score, predictions=given)
        assert tuple(actual) == THRESHOLD_COLUMNS
        for column in THRESHOLD_COLUMNS:
            want = expected(name, column, pred, labels, score, given, reference[column])
            assert same(actual[column], want), (key, column, actual[column], want)


@pytest.mark.parametrize("name", REGULAR)
def test_threshold_free_columns_match_tsbad(name):  # VUS: lmad.metrics.vus.vus_tsbad
    for key, labels, score, window, _, given in runs(name):
        expected = REFERENCE[name]["get_metrics"][key]
        actual = tsbad_metrics(labels, score, sliding_window=window, predictions=given)
        assert actual["sliding_window"] == window
        for column in FREE_COLUMNS:
            assert same(actual[column], expected[column]), (key, column)


def test_columns_and_default_window():
    labels, forms, _ = arrays("random_03")
    result = tsbad_metrics(labels, forms["raw"])
    assert tuple(result) == (
        *("AUC-PR", "AUC-ROC", "VUS-PR", "VUS-ROC", "Standard-F1", "PA-F1", "Event-based-F1"),
        *("R-based-F1", "Affiliation-F", "sliding_window"),
    )
    assert result["sliding_window"] == 100  # get_metrics' default (metrics.py l.3)
    expected = REFERENCE["random_03"]["get_metrics"]["raw,sw=100,pred=None"]
    assert all(same(result[c], expected[c]) for c in TSBAD_COLUMNS)


# ------------------------------------------------------------- bugs and degenerate labels


def test_tsbad_bug_examples():
    pa = tsbad_threshold_metrics(
        [1, 1, 1, 0, 0, 0, 1, 0, 0], np.zeros(9), [0, 0, 1, 0, 1, 1, 0, 1, 0]
    )
    assert pa["PA-F1"] == pytest.approx(0.6, abs=1e-12)  # TSB-AD 1.5: 4/9
    event = tsbad_threshold_metrics([0, 0, 1, 0, 0, 0, 0, 1], np.zeros(8), [0] * 7 + [1])
    assert event["Event-based-F1"] == pytest.approx(2 / 3, abs=1e-12)  # TSB-AD 1.5: 0
    # all anomalous, predictions 0110: one range, recall 0.2 + 0.8*2/4, precision 1
    ranged = tsbad_threshold_metrics([1, 1, 1, 1], np.zeros(4), [0, 1, 1, 0])
    assert ranged["R-based-F1"] == pytest.approx(2 * 0.6 / 1.6, abs=1e-12)  # TSB-AD 1.5: 0
    # boolean predictions are read like 0/1 ones (TSB-AD 1.5 reads [F, T, F] as the range 1-2)
    labels, flags = np.array([0, 1, 0]), np.array([False, True, False])
    assert tsbad_threshold_metrics(labels, np.zeros(3), flags)["R-based-F1"] == 1.0
    assert tsbad_bool_range_f1(labels, flags) == pytest.approx(2 / 3)  # precision 1/2, recall 1


@pytest.mark.parametrize("name", ["no_anomaly", "no_anomaly_no_prediction"])
def test_no_anomaly_is_nan_everywhere(name):
    for _, labels, score, window, _, given in runs(name):
        result = tsbad_metrics(labels, score, sliding_window=window, predictions=given)
        assert all(math.isnan(result[c]) for c in TSBAD_COLUMNS), result


def test_all_anomalous():
    components = REFERENCE["all_anomalous"]["components"]
    for key, labels, score, window, pred, given in runs("all_anomalous"):
        result = tsbad_metrics(labels, score, sliding_window=window, predictions=given)
        assert all(math.isnan(result[c]) for c in FREE_COLUMNS)  # one class: no ranking
        # ranges 1-12, 14-25, 27-38 (None: score > 0) or their points >= 9 (case): gamma 1/3;
        # TSB-AD finds no range in all-ones labels (bug 3) and returns 0
        if pred in ("None", "case"):
            # PA: the one segment starts at 0, which TSB-AD never adjusts (bug 1)
            assert result["PA-F1"] == 1.0, key
            overlap = 36 / 40 if pred == "None" else 12 / 40
            recall = 0.2 + 0.8 * overlap / 3
            assert result["R-based-F1"] == pytest.approx(2 * recall / (1 + recall), abs=1e-12)
            reference = components[f"{key.split(',')[0]},pred={pred}"]
            for column in ("Standard-F1", "Event-based-F1", "Affiliation-F"):
                assert same(result[column], reference[column]), (key, column)
        else:  # mean+3std predicts nothing here
            assert all(result[c] == 0.0 for c in THRESHOLD_COLUMNS), key


# ---------------------------------------------------------------------- hand-made rules


def test_oracle_is_the_max_over_100_strict_thresholds():
    # linspace(0, 99, 100) is 0, 1, ..., 99 and predictions are score > t. t <= 50 predicts
    # {1, 2, 4}, t = 51..98 predicts {4}, t = 99 nothing. The best set {1, 4} (score >= 51, or any
    # t in [50.2, 51)) is never tried, so every F stays below 1.
    labels = [0, 1, 0, 0, 1, 0]
    scores = [0.0, 51.0, 50.2, 0.0, 99.0, 0.0]
    result = tsbad_threshold_metrics(labels, scores)
    assert result["PA-F1"] == pytest.approx(0.8, abs=1e-12)  # P 2/3, R 1 at t <= 50
    assert result["Event-based-F1"] == pytest.approx(0.8, abs=1e-12)
    # t <= 50: recall 1, precision mean(1/2, 1) = 3/4, F = 6/7 (t >= 51: 2/3)
    assert result["R-based-F1"] == pytest.approx(6 / 7, abs=1e-12)
    # Standard-F1 is not on the grid: precision_recall_curve tries every score, {1, 4} gives 1
    assert result["Standard-F1"] == pytest.approx(2 / (2 + 1e-5), abs=1e-15)


def test_standard_f1_keeps_tsbad_epsilon():
    # perfect ranking: P = R = 1 gives 2/(2 + 1e-5), not 1 (basic_metrics.py l.214)
    assert tsbad_threshold_metrics([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.2])["Standard-F1"] == (
        pytest.approx(2 / (2 + 1e-5), abs=1e-15)
    )
    # best point P = 1/2, R = 1: 2*(1/2)/(3/2 + 1e-5)
    assert tsbad_threshold_metrics([0, 1], [0.5, 0.5])["Standard-F1"] == pytest.approx(
        1 / (1.5 + 1e-5), abs=1e-15
    )
    # given predictions use the plain F1 (scikit-learn's f1 of those predictions)
    assert tsbad_threshold_metrics([0, 1], [0.0, 1.0], [0, 1])["Standard-F1"] == 1.0


def test_bad_input():
    with pytest.raises(DataError):
        tsbad_threshold_metrics([0, 1, 0], [0.1, 0.2])
    with pytest.raises(DataError):
        tsbad_threshold_metrics([0, 1, 0], [0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(DataError):
        tsbad_metrics([0, 1, 0], [0.1, float("nan"), 0.3])
    for window in (-1, 2.5, "10"):
        with pytest.raises(DataError, match="sliding_window"):
            tsbad_metrics([0, 1, 0], [0.1, 0.2, 0.3], sliding_window=window)
