"""VUS of the paper and of TSB-AD: reference values, hand values, vectorised against literal code.

Reference values (``tests/fixtures/vus_reference.json``, ``tsbad_reference.json``, written by
``tests/fixtures/make_reference_metrics.py``) come from running the published code on the 41 cases
of ``metric_cases.json``: the VUS paper's ``metricor`` (PyPI vus==0.0.4) and TSB-AD 1.5's
``basic_metricor.RangeAUC_volume_opt`` / ``get_metrics``. The paper's code has an asymmetric right
ramp (an off-by-one, see :mod:`lmad.metrics.vus`), so it is compared with ``ramp="reference"``;
the default symmetric ramp equals it at buffers 0 and 1 and is checked by hand and against the
literal definition.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from lmad.errors import DataError
from lmad.metrics import vus as vus_module
from lmad.metrics.vus import (
    buffer_lengths,
    range_auc_paper,
    range_auc_tsbad,
    soft_labels,
    threshold_values,
    vus_paper,
    vus_tsbad,
)
from lmad.metrics.vus_reference import (
    range_auc_paper_literal,
    range_auc_tsbad_literal,
    soft_labels_literal,
    vus_paper_literal,
    vus_tsbad_literal,
)
from tests.conftest import load_fixture

CASES = load_fixture("metric_cases.json")
PAPER = load_fixture("vus_reference.json")
TSBAD = load_fixture("tsbad_reference.json")
DEGENERATE = {"no_anomaly", "no_anomaly_no_prediction", "all_anomalous"}
R = math.sqrt(0.5)  # the ramp value next to a segment at buffer 2 and 3


def binary(n: int, *runs: tuple[int, int]) -> np.ndarray:
    out = np.zeros(n, dtype=int)
    for start, stop in runs:
        out[start:stop] = 1
    return out


def case_arrays(case: dict) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(case["labels"], dtype=int), np.asarray(case["scores"], dtype=float)


def close(got: dict[str, float], roc: float, pr: float, keys=("vus_roc", "vus_pr")) -> bool:
    return abs(got[keys[0]] - roc) <= 1e-9 and abs(got[keys[1]] - pr) <= 1e-9


def all_nan(result: dict[str, float]) -> bool:
    return all(math.isnan(v) for v in result.values())


# ------------------------------------------------------------------------- reference values
def test_fixture_cases_are_the_reference_inputs():
    names = [c["name"] for c in CASES]
    assert len(names) == 41 and set(names) == set(PAPER) - {"meta"} == set(TSBAD) - {"meta"}
    assert PAPER["meta"]["version"] == "0.0.4" and TSBAD["meta"]["version"] == "1.5"
    assert {c["name"] for c in CASES if sum(c["labels"]) in (0, len(c["labels"]))} == DEGENERATE


def test_range_auc_paper_matches_the_paper_code():
    """``metricor().RangeAUC(window=b)`` for b = 0, 1, 2, 5, 20 and the two get_metrics windows."""
    matched = 0
    for case in CASES:
        y, s = case_arrays(case)
        ref = PAPER[case["name"]]
        calls = [(int(b), r) for b, r in ref["RangeAUC"].items()]
        calls += [(r["slidingWindow"], r) for r in ref["get_metrics_vus"].values()]
        for buffer, r in calls:
            got = range_auc_paper(y, s, buffer, ramp="reference")
            if case["name"] in DEGENERATE:
                assert all_nan(got)
                continue
            assert close(got, r["R_AUC_ROC"], r["R_AUC_PR"], ("roc", "pr")), (case["name"], buffer)
            matched += 1
    assert matched == 38 * 7


def test_vus_paper_matches_the_paper_code():
    """``RangeAUC_volume(windowSize=w)`` for w = 0, 1, 2, 5, 20, 2*find_length and 2*100."""
    matched = 0
    for case in CASES:
        y, s = case_arrays(case)
        ref = PAPER[case["name"]]
        calls = [
            (r.get("windowSize", int(w) if w.isdigit() else None), r)
            for w, r in ref["RangeAUC_volume"].items()
        ]
        calls += [(2 * r["slidingWindow"], r) for r in ref["get_metrics_vus"].values()]
        for window, r in calls:
            got = vus_paper(y, s, window, ramp="reference")
            if case["name"] in DEGENERATE:
                assert all_nan(got)
                continue
            assert close(got, r["VUS_ROC"], r["VUS_PR"]), (case["name"], window)
            matched += 1
    assert matched == 38 * 8


def test_the_paper_codes_failures_are_nan_in_lmad():
    """The paper code divides by zero without anomalies (ZeroDivisionError: no segment) and gives
    ROC NaN, PR 1.0 with nothing but anomalies (N' = 0); lmad returns NaN for both."""
    for name in DEGENERATE:
        volume = PAPER[name]["RangeAUC_volume"]["5"]
        if name == "all_anomalous":
            assert math.isnan(volume["VUS_ROC"]) and volume["VUS_PR"] == 1.0
        else:
            assert volume == {"error": "ZeroDivisionError: division by zero"}


def test_vus_tsbad_matches_range_auc_volume_opt():
    """``RangeAUC_volume_opt(windowSize=w, thre=250)`` for w = 0, 1, 2, 5, 20, 100."""
    matched = 0
    for case in CASES:
        y, s = case_arrays(case)
        for window, r in TSBAD[case["name"]]["RangeAUC_volume_opt"].items():
            got = vus_tsbad(y, s, int(window))
            if case["name"] in DEGENERATE:  # TSB-AD: IndexError (no segment to start from)
                assert r == {"error": "IndexError: list index out of range"} and all_nan(got)
                continue
            assert close(got, r["VUS-ROC"], r["VUS-PR"]), (case["name"], window)
            matched += 1
    assert matched == 38 * 6


def test_vus_tsbad_matches_get_metrics():
    """``get_metrics(score, labels, slidingWindow=sw)`` VUS columns: raw and min-max scores, sw from
    TSB-AD's find_length_rank or 100 (get_metrics passes sw itself, not 2*sw, as windowSize)."""
    matched = 0
    for case in CASES:
        y, raw = case_arrays(case)
        span = raw.max() - raw.min()
        forms = {"raw": raw, "minmax": (raw - raw.min()) / span if span else np.zeros_like(raw)}
        ref = TSBAD[case["name"]]
        for key, r in ref["get_metrics"].items():
            form, sw, _ = key.split(",")
            window = 100 if sw == "sw=100" else ref["sliding_window"][f"{form}_scores"]
            got = vus_tsbad(y, forms[form], window)
            if case["name"] in DEGENERATE:
                assert "error" in r and all_nan(got)
                continue
            assert close(got, r["VUS-ROC"], r["VUS-PR"]), (case["name"], key)
            matched += 1
    assert matched == 38 * 6


def test_literal_definitions_match_the_reference_code():
    """The slow literal versions against the same reference values (small windows, for time)."""
    for case in CASES:
        if case["name"] in DEGENERATE:
            continue
        y, s = case_arrays(case)
        for b in ("2", "5"):
            r = PAPER[case["name"]]["RangeAUC"][b]
            got = range_auc_paper_literal(y, s, int(b), ramp="reference")
            assert close(got, r["R_AUC_ROC"], r["R_AUC_PR"], ("roc", "pr")), case["name"]
        r = PAPER[case["name"]]["RangeAUC_volume"]["5"]
        assert close(vus_paper_literal(y, s, 5, ramp="reference"), r["VUS_ROC"], r["VUS_PR"])
        r = TSBAD[case["name"]]["RangeAUC_volume_opt"]["5"]
        assert close(vus_tsbad_literal(y, s, 5), r["VUS-ROC"], r["VUS-PR"]), case["name"]


def test_symmetric_ramp_equals_the_code_below_buffer_2_and_differs_above():
    differ = 0
    for case in CASES:
        if case["name"] in DEGENERATE:
            continue
        y, s = case_arrays(case)
        for b in (0, 1):
            assert range_auc_paper(y, s, b) == range_auc_paper(y, s, b, ramp="reference")
        symmetric, code = range_auc_paper(y, s, 5), range_auc_paper(y, s, 5, ramp="reference")
        differ += not close(symmetric, code["roc"], code["pr"], ("roc", "pr"))
    assert differ >= 30


# ---------------------------------------------------------------------------------- hand values
def test_soft_labels_symmetric_and_reference_ramps():
    r75, r50 = math.sqrt(0.75), math.sqrt(0.5)
    y = binary(12, (5, 7))
    expected = [0, 0, 0, r50, r75, 1, 1, r75, r50, 0, 0, 0]
    np.testing.assert_allclose(soft_labels(y, 4), expected, atol=1e-15)
    expected[8] = 0  # the paper code's right ramp stops one point short: e+1 .. e+h-1
    np.testing.assert_allclose(soft_labels(y, 4, ramp="reference"), expected, atol=1e-15)
    np.testing.assert_allclose(soft_labels(y, 2), [0] * 4 + [r50, 1, 1, r50] + [0] * 4)
    # buffer 3: h = 1, so the code has no right ramp at all
    at_3 = [0] * 4 + [math.sqrt(2 / 3), 1, 1] + [0] * 5
    np.testing.assert_allclose(soft_labels(y, 3, ramp="reference"), at_3)
    # at the series start only the right ramp exists; odd buffers use h = buffer // 2
    np.testing.assert_allclose(
        soft_labels(binary(6, (0, 1)), 7),
        [1, math.sqrt(6 / 7), math.sqrt(5 / 7), math.sqrt(4 / 7), 0, 0],
    )
    # ramps of neighbouring segments add up and are capped at 1
    soft = soft_labels(binary(12, (2, 3), (6, 7)), 6)
    np.testing.assert_allclose(soft[2:7], 1.0)
    np.testing.assert_allclose(soft[[1, 0, 7, 8, 9]], np.sqrt([5 / 6, 4 / 6, 5 / 6, 4 / 6, 0.5]))
    y = binary(12, (2, 3), (6, 8))
    for ramp in ("symmetric", "reference"):
        assert np.array_equal(soft_labels(y, 0, ramp), y)
        assert np.array_equal(soft_labels(y, 1, ramp), y)
        for b in range(12):
            np.testing.assert_allclose(soft_labels(y, b, ramp), soft_labels_literal(y, b, ramp))


def paper_three_thresholds(a: float, f1: float, p1: float) -> tuple[float, float]:
    """Paper areas for points (0,0) -> (0, a) -> (f1, 1) -> (f2, 1) -> (1, 1), precisions 1, p1, p2.

    ROC = f1 (a + 1) / 2 + (1 - f1); PR = trapezoids from (0, 1): a + (1 - a)(1 + p1) / 2."""
    return f1 * (a + 1) / 2 + (1 - f1), a + (1 - a) * (1 + p1) / 2


def test_smallest_examples_of_the_asymmetric_ramp():
    """labels [1, 0], scores [1, 0], buffer 2: the code gives point 1 no ramp, so the perfect
    detector scores 1; the symmetric ramp gives it sqrt(1/2): P' = 1 + r/2, threshold 1 has TPR
    1/P', threshold 0 has FPR (1 - r)/(1 - r/2) and precision (1 + r)/2."""
    y, s = np.array([1, 0]), np.array([1.0, 0.0])
    assert range_auc_paper(y, s, 2, ramp="reference") == {"roc": 1.0, "pr": 1.0}
    roc, pr = paper_three_thresholds(1 / (1 + R / 2), (1 - R) / (1 - R / 2), (1 + R) / 2)
    got = range_auc_paper(y, s, 2)
    assert got["roc"] == pytest.approx(roc, abs=1e-15) and got["pr"] == pytest.approx(pr, abs=1e-15)
    assert (round(roc, 5), round(pr, 5)) == (0.94083, 0.98087)

    # labels [0,0,1,0,0], scores [0,1,2,1,0]; thresholds 2, 1, 0. Buffers 0 and 1 score 1.
    y, s = np.array([0, 0, 1, 0, 0]), np.array([0.0, 1, 2, 1, 0])
    # symmetric: soft [0, r, 1, r, 0], P' = 1 + r, N' = 4 - r
    sym = paper_three_thresholds(1 / (1 + R), (2 - 2 * R) / (4 - R), (1 + 2 * R) / 3)
    # code: soft [0, r, 1, 0, 0], P' = 1 + r/2, N' = 4 - r/2
    code = paper_three_thresholds(1 / (1 + R / 2), (2 - R) / (4 - R / 2), (1 + R) / 3)
    for ramp, (roc, pr) in (("symmetric", sym), ("reference", code)):
        got = range_auc_paper(y, s, 2, ramp=ramp)
        assert got["roc"] == pytest.approx(roc, abs=1e-15) and got["pr"] == pytest.approx(
            pr, abs=1e-15
        )
        volume = vus_paper(y, s, 2, ramp=ramp)
        assert volume["vus_roc"] == pytest.approx((2 + roc) / 3, abs=1e-15)
        assert volume["vus_pr"] == pytest.approx((2 + pr) / 3, abs=1e-15)
    code_volume, sym_volume = vus_paper(y, s, 2, ramp="reference"), vus_paper(y, s, 2)
    assert [round(v, 5) for v in code_volume.values()] == [0.98456, 0.98124]  # the paper's code
    assert [round(v, 5) for v in sym_volume.values()] == [0.98772, 0.98652]


def test_tsbad_perfect_detector_scores_one_and_the_paper_does_not():
    """TSB-AD: at the threshold that predicts exactly the labels no buffer point is predicted, so
    P' = P and TPR = 1 at FPR 0. The paper keeps P' = (P + S)/2 > P for buffers of 2 or more."""
    y = binary(200, (80, 100), (150, 153))
    assert vus_tsbad(y, y, 40) == {"vus_roc": 1.0, "vus_pr": 1.0}
    assert vus_tsbad(y, y, 0) == {"vus_roc": 1.0, "vus_pr": 1.0}
    tiny = np.array([0, 0, 1, 0, 0])
    assert range_auc_tsbad(tiny, np.array([0.0, 1, 2, 1, 0]), 2) == {"roc": 1.0, "pr": 1.0}
    paper = vus_paper(y, y, 40)
    assert paper["vus_roc"] < 0.95 and paper["vus_pr"] < 0.95


def test_tsbad_predicted_buffer_mass_moves_p_prime():
    """labels [0,0,1,0,0], scores [0,2,1,0,0], buffer 2 (soft [0, r, 1, r, 0]), by hand.

    t=2 predicts point 1: TP = r, P' = 1 + r/2, TPR a = r/P', FPR f1 = (1 - r)/(5 - P'), prec r.
    t=1 adds point 2: TP = 1 + r, same P', TPR min(.., 1) = 1, same FPR, prec (1 + r)/2.
    t=0 predicts all: TP = 1 + 2r, P' = 1 + r, TPR 1, FPR (4 - 2r)/(4 - r).
    ROC: (0,0) (f1,a) (f1,1) (f3,1) (1,1); PR step-wise: a r + (1 - a)(1 + r)/2.
    """
    y, s = np.array([0, 0, 1, 0, 0]), np.array([0.0, 2, 1, 0, 0])
    a, f1 = R / (1 + R / 2), (1 - R) / (4 - R / 2)
    got = range_auc_tsbad(y, s, 2)
    assert got["roc"] == pytest.approx(f1 * a / 2 + 1 - f1, abs=1e-15)
    assert got["pr"] == pytest.approx(a * R + (1 - a) * (1 + R) / 2, abs=1e-15)
    assert range_auc_tsbad_literal(y, s, 2) == pytest.approx(got, abs=1e-15)


def test_windows_that_only_touch_merge_in_the_paper_but_not_in_tsbad():
    """labels [0,1,0,0,1,0], scores hit point 1 only, buffer 2 (h = 1, soft [r,1,r,r,1,r]).

    The gap between the segments is 2h = 2 points: the paper's soft labels form one run (the first
    threshold detects it whole), TSB-AD's windows [0,2] and [3,5] stay apart (existence 1/2).
    t=1: TP = 1. Paper: P' = 2 + 2r, TPR a = 1/P'. TSB-AD: P' = 2, TPR 1/2 * 1/2 = 1/4.
    t=0: TPR 1, FPR f = (4 - 4r)/(4 - 2r) in both, precision (2 + 4r)/6.
    """
    y, s = binary(6, (1, 2), (4, 5)), np.array([0.0, 1, 0, 0, 0, 0])
    f, p = (4 - 4 * R) / (4 - 2 * R), (2 + 4 * R) / 6
    a = 1 / (2 + 2 * R)
    paper = range_auc_paper(y, s, 2)
    assert paper["roc"] == pytest.approx(f * (a + 1) / 2 + 1 - f, abs=1e-15)
    assert paper["pr"] == pytest.approx(a + (1 - a) * (1 + p) / 2, abs=1e-15)
    tsbad = range_auc_tsbad(y, s, 2)
    assert tsbad["roc"] == pytest.approx(f * 1.25 / 2 + 1 - f, abs=1e-15)
    assert tsbad["pr"] == pytest.approx(0.25 + 0.75 * p, abs=1e-15)


def ramp_mass(buffer: int, points: int | None = None) -> float:
    """Soft-label mass of one ramp: sum of sqrt(1 - d/l) for d = 1..points (default l//2)."""
    points = buffer // 2 if points is None else points
    return sum(math.sqrt(1 - d / buffer) for d in range(1, points + 1))


@pytest.mark.parametrize("thresholds", [250, None])
@pytest.mark.parametrize("ramp", ["symmetric", "reference"])
def test_paper_perfect_detector(thresholds, ramp):
    """scores = labels, one segment of P = 20 in n = 200, buffer l >= 2, by hand:

    threshold 1: TPR r = P / P' with P' = (P + S)/2, S = P + left ramp + right ramp, FPR 0,
    precision 1. Threshold 0: TPR 1, FPR f = (n - S)/(n - P'), precision S/n. Trapezoids:
    ROC = 1 - f (1 - r)/2, PR = r + (1 - r)(1 + S/n)/2.
    """
    n, y = 200, binary(200, (80, 100))
    assert vus_paper(y, y, 1, thresholds=thresholds, ramp=ramp) == {"vus_roc": 1.0, "vus_pr": 1.0}
    rocs, prs = [], []
    for buffer in range(0, 31):
        half = buffer // 2
        right = half if ramp == "symmetric" else max(half - 1, 0)
        big_p, s = 20, 20 + ramp_mass(buffer) + ramp_mass(buffer, right) if buffer else 20
        p_new = (big_p + s) / 2
        r, f = big_p / p_new, (n - s) / (n - p_new)
        rocs.append(1 - f * (1 - r) / 2)
        prs.append(r + (1 - r) * (1 + s / n) / 2)
        got = range_auc_paper(y, y, buffer, thresholds, ramp=ramp)
        assert got["roc"] == pytest.approx(rocs[-1], abs=1e-12)
        assert got["pr"] == pytest.approx(prs[-1], abs=1e-12)
    result = vus_paper(y, y, 30, thresholds=thresholds, ramp=ramp)
    assert result["vus_roc"] == pytest.approx(np.mean(rocs), abs=1e-12)
    assert result["vus_pr"] == pytest.approx(np.mean(prs), abs=1e-12)


def test_constant_scores():
    """One threshold predicts everything: TPR 1, TP = S, FPR f = (n - S)/(n - P') with
    P' = (P + S)/2 in both definitions (TSB-AD: P + (S - P)/2), precision S/n.

    ROC = 1 - f/2 (0.5 at buffer 0) in both; PR: paper trapezoid from (0, 1): (1 + S/n)/2,
    TSB-AD step: S/n.
    """
    n, y = 100, binary(100, (40, 45), (70, 72))
    scores = np.full(n, 0.3)
    assert range_auc_paper(y, scores, 0) == pytest.approx({"roc": 0.5, "pr": (1 + 7 / n) / 2})
    assert range_auc_tsbad(y, scores, 0) == pytest.approx({"roc": 0.5, "pr": 7 / n})
    s = 7 + 4 * ramp_mass(10)
    f = (n - s) / (n - (7 + s) / 2)
    assert range_auc_paper(y, scores, 10) == pytest.approx(
        {"roc": 1 - f / 2, "pr": (1 + s / n) / 2}
    )
    assert range_auc_tsbad(y, scores, 10) == pytest.approx({"roc": 1 - f / 2, "pr": s / n})


@pytest.mark.parametrize("seed", range(8))
def test_buffer_zero_single_segment_is_plain_auc(seed):
    """One segment, buffer 0, every threshold: sklearn's ROC-AUC in both; PR the trapezoid
    ``auc(recall, precision)`` for the paper and average precision for TSB-AD."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 400))
    start = int(rng.integers(0, n - 10))
    y = binary(n, (start, start + int(rng.integers(1, 10))))
    scores = np.round(rng.normal(size=n) + y * rng.uniform(0, 2), 1)  # with ties
    precision, recall, _ = precision_recall_curve(y, scores)
    paper = range_auc_paper(y, scores, 0, thresholds=None)
    assert paper["roc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert paper["pr"] == pytest.approx(auc(recall, precision), abs=1e-12)
    assert range_auc_paper(y, scores, 1, thresholds=None) == paper  # buffer 1 adds nothing
    tsbad = range_auc_tsbad(y, scores, 0, thresholds=None)
    assert tsbad["roc"] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert tsbad["pr"] == pytest.approx(average_precision_score(y, scores), abs=1e-12)


def test_buffer_zero_multiplies_tpr_by_the_detected_fraction():
    """Two segments, only the first scored: threshold 2 gives TPR = 1/2 recall * 1/2 existence.

    ROC: (0,0) → (0, 0.25) → (1, 1): area 0.625 in both (plain ROC-AUC: 0.75).
    PR, paper: (0, 1) → (0.25, 1) → (1, 0.2): 0.25 + 0.75 * 0.6 = 0.7; TSB-AD step:
    0.25 * 1 + 0.75 * 0.2 = 0.4.
    """
    y = binary(10, (1, 2), (6, 7))
    scores = np.zeros(10)
    scores[1] = 2.0
    assert range_auc_paper(y, scores, 0) == pytest.approx({"roc": 0.625, "pr": 0.7}, abs=1e-15)
    assert range_auc_tsbad(y, scores, 0) == pytest.approx({"roc": 0.625, "pr": 0.4}, abs=1e-15)
    assert roc_auc_score(y, scores) == pytest.approx(0.75)


def test_reference_thresholds_and_buffer_lengths():
    scores = np.arange(1000.0)
    t = threshold_values(scores)  # 250 positions of the decreasing scores, as the reference
    assert t.size == 250 and t[0] == 999 and t[-1] == 0 and t[1] == 999 - int(999 / 249)
    assert list(threshold_values([3.0, 1.0, 3.0, 2.0], None)) == [3.0, 2.0, 1.0]
    assert list(buffer_lengths(4)) == [0, 1, 2, 3, 4]
    assert list(buffer_lengths(10, 3)) == [0, 5, 10]


def test_250_thresholds_use_every_score_on_short_series():
    rng = np.random.default_rng(3)
    y = binary(200, (50, 60), (120, 125))
    scores = rng.normal(size=200) + y
    assert vus_paper(y, scores, 20) == pytest.approx(vus_paper(y, scores, 20, thresholds=None))
    assert vus_tsbad(y, scores, 20) == pytest.approx(vus_tsbad(y, scores, 20, thresholds=None))


def test_volumes_average_the_range_aucs():
    rng = np.random.default_rng(5)
    y, scores = binary(300, (100, 110), (200, 204)), rng.normal(size=300)
    result = vus_paper(y, scores, 40, steps=5)
    parts = [range_auc_paper(y, scores, b) for b in (0, 10, 20, 30, 40)]
    assert result["vus_roc"] == pytest.approx(np.mean([p["roc"] for p in parts]), abs=1e-15)
    assert result["vus_pr"] == pytest.approx(np.mean([p["pr"] for p in parts]), abs=1e-15)
    result = vus_tsbad(y, scores, 12)
    parts = [range_auc_tsbad(y, scores, b) for b in range(13)]
    assert result["vus_roc"] == pytest.approx(np.mean([p["roc"] for p in parts]), abs=1e-15)
    assert result["vus_pr"] == pytest.approx(np.mean([p["pr"] for p in parts]), abs=1e-15)


def test_reference_threshold_count_is_tsbad_and_paper_default():
    assert vus_module.REFERENCE_THRESHOLDS == 250


# ---------------------------------------------------------------------- vectorised == literal
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
    ramp = "symmetric" if seed % 2 else "reference"
    window = int(rng.integers(0, 40))
    steps = None if seed % 3 else int(rng.integers(1, 8))
    fast = vus_paper(y, scores, window, steps, thresholds, ramp=ramp)
    slow = vus_paper_literal(y, scores, window, steps, thresholds, ramp=ramp)
    assert fast == pytest.approx(slow, abs=1e-9)
    fast = vus_tsbad(y, scores, window, thresholds)
    assert fast == pytest.approx(vus_tsbad_literal(y, scores, window, thresholds), abs=1e-9)
    buffer = int(rng.integers(0, 30))
    fast = range_auc_paper(y, scores, buffer, thresholds, ramp=ramp)
    assert fast == pytest.approx(
        range_auc_paper_literal(y, scores, buffer, thresholds, ramp=ramp), abs=1e-9
    )
    fast = range_auc_tsbad(y, scores, buffer, thresholds)
    assert fast == pytest.approx(range_auc_tsbad_literal(y, scores, buffer, thresholds), abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_equals_literal_dense_segments(seed):
    """Many short segments with small gaps: ramps overlap, windows and runs merge or just touch."""
    rng = np.random.default_rng(100 + seed)
    n = 120
    y = (rng.random(n) < 0.15).astype(int)
    y[0] = 0 if y.all() else y[0]
    scores = np.round(rng.normal(size=n) + y, 1)
    for ramp in ("symmetric", "reference"):
        assert vus_paper(y, scores, 12, ramp=ramp) == pytest.approx(
            vus_paper_literal(y, scores, 12, ramp=ramp), abs=1e-9
        )
    assert vus_tsbad(y, scores, 12) == pytest.approx(vus_tsbad_literal(y, scores, 12), abs=1e-9)


def test_a_lagged_detector_is_forgiven_by_buffers():
    """A score peaking some points after each event: the buffers credit it, the nearer the more."""
    rng = np.random.default_rng(0)
    y = binary(1000, (200, 210), (600, 610))
    lagged = 0.1 * rng.random(1000) + np.roll(y, 13)  # lagged enough to miss the events
    near = 0.1 * rng.random(1000) + np.roll(y, 12)
    far = 0.1 * rng.random(1000) + np.roll(y, 30)
    for one, volume in ((range_auc_paper, vus_paper), (range_auc_tsbad, vus_tsbad)):
        assert one(y, lagged, 0)["roc"] < one(y, lagged, 40)["roc"]
        assert volume(y, near, 40)["vus_roc"] > volume(y, far, 40)["vus_roc"]
        assert volume(y, near, 40)["vus_pr"] > volume(y, far, 40)["vus_pr"]


# -------------------------------------------------------------------------- degenerate, errors
def test_degenerate_labels_give_nan():
    scores = np.arange(5.0)
    for labels in (np.zeros(5, dtype=int), np.ones(5, dtype=int)):
        for result in (
            vus_paper(labels, scores, 4),
            vus_paper(labels, scores, 4, ramp="reference"),
            range_auc_paper(labels, scores, 2),
            vus_tsbad(labels, scores, 4),
            range_auc_tsbad(labels, scores, 2),
            vus_paper_literal(labels, scores, 4),
            range_auc_paper_literal(labels, scores, 2),
            vus_tsbad_literal(labels, scores, 4),
            range_auc_tsbad_literal(labels, scores, 2),
        ):
            assert all_nan(result)


def test_bad_inputs():
    scores = np.arange(5.0)
    y = binary(5, (1, 2))
    with pytest.raises(DataError, match="differ in shape"):
        vus_paper(y, np.arange(4.0))
    with pytest.raises(DataError, match="NaN"):
        range_auc_paper(y, np.array([0, 1, np.nan, 0, 0]), 2)
    with pytest.raises(DataError, match="only 0 and 1"):
        vus_tsbad(np.array([0, 2, 0, 0, 0]), scores, 4)
    with pytest.raises(DataError, match="non-negative"):
        range_auc_tsbad(y, scores, -1)
    with pytest.raises(DataError, match="window"):
        vus_tsbad(y, scores, 2.5)
    with pytest.raises(DataError, match="thresholds"):
        vus_paper(y, scores, 4, thresholds=0)
    with pytest.raises(DataError, match="steps"):
        vus_paper(y, scores, 4, steps=0)
    with pytest.raises(DataError, match="ramp"):
        vus_paper(y, scores, 4, ramp="left")
    with pytest.raises(DataError, match="ramp"):
        soft_labels(y, 4, ramp="asymmetric")
