"""Point metrics, segments, PAT point adjustment and AUCs, checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from lmad.errors import ConfigError, DataError
from lmad.metrics.adjust import adjusted_prf, point_adjust, segments
from lmad.metrics.auc import auc_pr, auc_roc, threshold_sweep_auc, threshold_sweep_curves
from lmad.metrics.point import point_prf


def bits(text: str) -> np.ndarray:
    return np.array([int(c) for c in text])


LABELS = bits("0011100011")
PREDS = bits("0010000110")


# ---------------------------------------------------------------- point_prf


def test_point_prf_hand_example():
    # index  0 1 2 3 4 5 6 7 8 9
    # labels 0 0 1 1 1 0 0 0 1 1
    # preds  0 0 1 0 0 0 0 1 1 0
    # tp = {2, 8} = 2; fp = {7} = 1; fn = {3, 4, 9} = 3; tn = {0, 1, 5, 6} = 4
    # P = 2/3, R = 2/5, F1 = 2·(2/3)(2/5) / (2/3 + 2/5) = (8/15) / (16/15) = 1/2, acc = 6/10
    m = point_prf(LABELS, PREDS)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 3, 4)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 5)
    assert m["f1"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(0.6)


def test_point_prf_matches_sklearn_on_random_data():
    rng = np.random.default_rng(7)
    for _ in range(20):
        y = (rng.random(200) < 0.2).astype(int)
        p = (rng.random(200) < 0.3).astype(int)
        m = point_prf(y, p)
        assert m["precision"] == pytest.approx(precision_score(y, p, zero_division=0))
        assert m["recall"] == pytest.approx(recall_score(y, p, zero_division=0))
        assert m["f1"] == pytest.approx(f1_score(y, p, zero_division=0))
        assert m["accuracy"] == pytest.approx(accuracy_score(y, p))


def test_point_prf_no_anomaly_and_no_prediction_is_zero_not_one():
    # P, R, F1 undefined (0/0) -> 0 by the zero_division=0 convention; accuracy 5/5.
    m = point_prf(np.zeros(5, int), np.zeros(5, int))
    assert (m["precision"], m["recall"], m["f1"], m["accuracy"]) == (0.0, 0.0, 0.0, 1.0)


def test_point_prf_no_prediction_and_false_alarms_only():
    m = point_prf(bits("0110"), bits("0000"))  # tp 0, fn 2, nothing predicted: P = 0, R = 0/2
    assert (m["precision"], m["recall"], m["f1"], m["accuracy"]) == (0.0, 0.0, 0.0, 0.5)
    m = point_prf(bits("0000"), bits("0100"))  # fp 1, no positive label: P = 0/1, R = 0
    assert (m["precision"], m["recall"], m["accuracy"]) == (0.0, 0.0, 0.75)


def test_point_prf_accepts_booleans():
    assert point_prf(LABELS.astype(bool), PREDS.astype(bool))["tp"] == 2


@pytest.mark.parametrize(
    ("labels", "preds", "message"),
    [
        ([0, 1, 1], [0, 1], "differ in length"),
        ([0, 2, 1], [0, 1, 1], "only 0 and 1"),
        ([0, np.nan, 1], [0, 1, 1], "only 0 and 1"),
        ([[0, 1]], [[0, 1]], "1-D"),
        ([], [], "empty"),
        (["a", "b"], [0, 1], "numbers"),
    ],
)
def test_point_prf_rejects_bad_input(labels, preds, message):
    with pytest.raises(DataError, match=message):
        point_prf(labels, preds)


# ---------------------------------------------------------------- segments and PAT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0011100011", [(2, 5), (8, 10)]),  # the second run touches the last point
        ("01101", [(1, 3), (4, 5)]),
        ("111", [(0, 3)]),
        ("1", [(0, 1)]),
        ("0000", []),
        ("1001", [(0, 1), (3, 4)]),
    ],
)
def test_segments(text, expected):
    assert segments(bits(text)) == expected


def test_point_adjust_classic_pat_zero():
    # segment [2, 5) holds 1 predicted point (> 3·0) -> 2, 3, 4 become 1;
    # segment [8, 10) holds 1 predicted point (> 2·0) -> 8, 9 become 1; the false alarm at 7 stays.
    adjusted = point_adjust(LABELS, PREDS, pat=0.0)
    assert adjusted.tolist() == bits("0011100111").tolist()
    # tp = 5, fp = 1, fn = 0, tn = 4: P = 5/6, R = 1, F1 = 2·5 / (2·5 + 1 + 0) = 10/11
    m = adjusted_prf(LABELS, PREDS)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (5, 1, 0, 4)
    assert m["precision"] == pytest.approx(5 / 6)
    assert m["f1"] == pytest.approx(10 / 11)
    assert PREDS.tolist() == bits("0010000110").tolist()  # input not modified


def test_point_adjust_pat_half():
    # [2, 5): 1 hit, 1 > 3·0.5 = 1.5 is false; [8, 10): 1 hit, 1 > 2·0.5 = 1.0 is false (strict).
    assert point_adjust(LABELS, PREDS, pat=0.5).tolist() == PREDS.tolist()
    m = adjusted_prf(LABELS, PREDS, pat=0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 3)


@pytest.mark.parametrize(
    ("preds", "pat", "expected"),
    [
        ("011000", 0.5, "011000"),  # 2 hits, L = 4: 2 > 2.0 is false (strict ">")
        ("011100", 0.5, "011110"),  # 3 > 2.0
        ("011000", 0.49, "011110"),  # 2 > 1.96
        ("011100", 0.75, "011100"),  # 3 > 3.0 is false
        ("011110", 1.0, "011110"),  # PAT 1 never credits; already complete anyway
        ("010000", 1.0, "010000"),
        ("000001", 0.0, "000001"),  # outside the segment: unchanged, never credits it
    ],
)
def test_point_adjust_strict_boundary(preds, pat, expected):
    labels = bits("011110")
    assert point_adjust(labels, bits(preds), pat).tolist() == bits(expected).tolist()


def test_point_adjust_segment_touching_last_point():
    assert point_adjust(bits("000111"), bits("000001")).tolist() == bits("000111").tolist()


def test_point_adjust_no_anomaly_labels_changes_nothing():
    preds = bits("010010")
    assert point_adjust(np.zeros(6, int), preds).tolist() == preds.tolist()


@pytest.mark.parametrize("pat", [-0.1, 1.5])
def test_point_adjust_rejects_pat(pat):
    with pytest.raises(ConfigError, match="PAT"):
        point_adjust(LABELS, PREDS, pat)


# ---------------------------------------------------------------- auc_pr / auc_roc


def test_auc_hand_example():
    labels = [0, 0, 1, 1]
    scores = [0.1, 0.4, 0.35, 0.8]
    # ROC: pairs (pos, neg) ranked right: 0.35>0.1, 0.8>0.1, 0.8>0.4; wrong: 0.35<0.4 -> 3/4.
    assert auc_roc(labels, scores) == pytest.approx(0.75)
    # AP, thresholds high to low: 0.8 (P 1, R 1/2), 0.4 (P 1/2, R 1/2), 0.35 (P 2/3, R 1):
    # AP = 1/2·1 + 0·1/2 + 1/2·2/3 = 5/6
    assert auc_pr(labels, scores) == pytest.approx(5 / 6)


def test_auc_matches_sklearn_on_random_data():
    rng = np.random.default_rng(3)
    for _ in range(10):
        y = (rng.random(300) < 0.1).astype(int)
        s = rng.integers(0, 13, size=300).astype(float)  # TAMA-like integer sums with ties
        assert auc_pr(y, s) == pytest.approx(average_precision_score(y, s))
        assert auc_roc(y, s) == pytest.approx(roc_auc_score(y, s))


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1]])
def test_auc_single_class_is_nan(labels):
    assert math.isnan(auc_pr(labels, [0.1, 0.2, 0.3]))
    assert math.isnan(auc_roc(labels, [0.1, 0.2, 0.3]))
    sweep = threshold_sweep_auc(labels, [0.1, 0.2, 0.3])
    assert math.isnan(sweep["auc_pr"]) and math.isnan(sweep["auc_roc"])


def test_auc_rejects_bad_scores():
    with pytest.raises(DataError, match="NaN"):
        auc_roc([0, 1], [0.1, np.nan])
    with pytest.raises(DataError, match="shape"):
        auc_pr([0, 1], [0.1, 0.2, 0.3])


# ---------------------------------------------------------------- threshold sweep (TAMA)

SWEEP_LABELS = [0, 1, 1, 0, 1, 0]
SWEEP_SCORES = [0, 3, 1, 2, 1, 0]


def test_threshold_sweep_hand_example():
    # positives: idx 1 (3), 2 (1), 4 (1); negatives: idx 0 (0), 3 (2), 5 (0)
    # c0=3: tp 1 fp 0 -> P 1,   R 1/3, fpr 0
    # c0=2: tp 1 fp 1 -> P 1/2, R 1/3, fpr 1/3
    # c0=1: tp 3 fp 1 -> P 3/4, R 1,   fpr 1/3
    # c0=0: tp 3 fp 3 -> P 1/2, R 1,   fpr 1
    curves = threshold_sweep_curves(SWEEP_LABELS, SWEEP_SCORES)
    assert curves["thresholds"].tolist() == [3, 2, 1, 0]
    assert curves["precision"] == pytest.approx([1, 1 / 2, 3 / 4, 1 / 2])
    assert curves["recall"] == pytest.approx([1 / 3, 1 / 3, 1, 1])
    assert curves["fpr"] == pytest.approx([0, 1 / 3, 1 / 3, 1])
    # PR points (0,1) (1/3,1) (1/3,1/2) (1,3/4) (1,1/2):
    #   1/3·(1+1)/2 + 0 + 2/3·(1/2+3/4)/2 + 0 = 1/3 + 5/12 = 3/4
    # ROC points (0,0) (0,1/3) (1/3,1/3) (1/3,1) (1,1) (1,1):
    #   0 + 1/3·(1/3+1/3)/2 + 0 + 2/3·(1+1)/2 + 0 = 1/9 + 2/3 = 7/9
    result = threshold_sweep_auc(SWEEP_LABELS, SWEEP_SCORES)
    assert result["auc_pr"] == pytest.approx(3 / 4)
    assert result["auc_roc"] == pytest.approx(7 / 9)
    # the trapezoid ROC over all distinct thresholds is the exact ROC AUC
    assert result["auc_roc"] == pytest.approx(roc_auc_score(SWEEP_LABELS, SWEEP_SCORES))


def test_threshold_sweep_with_point_adjustment_hand_example():
    # segments [1, 3) scores (3, 1) and [4, 5) score (1). PAT 0: [1, 3) is credited as soon as
    # its best point (3) is predicted, so at c0=3 and c0=2 tp = 2 (idx 1 and 2).
    # c0=3: tp 2 fp 0 -> P 1,   R 2/3, fpr 0
    # c0=2: tp 2 fp 1 -> P 2/3, R 2/3, fpr 1/3
    # c0=1: tp 3 fp 1 -> P 3/4, R 1,   fpr 1/3
    # c0=0: tp 3 fp 3 -> P 1/2, R 1,   fpr 1
    # PR: 2/3·(1+1)/2 + 0 + 1/3·(2/3+3/4)/2 + 0 = 2/3 + 17/72 = 65/72
    # ROC: (0,0) (0,2/3) (1/3,2/3) (1/3,1) (1,1): 0 + 1/3·2/3 + 0 + 2/3·1 = 8/9
    result = threshold_sweep_auc(SWEEP_LABELS, SWEEP_SCORES, adjust_pat=0.0)
    assert result["auc_pr"] == pytest.approx(65 / 72)
    assert result["auc_roc"] == pytest.approx(8 / 9)
    # PAT 0.5: [1, 3) needs 2 > 1 predicted points, reached only at c0=1 where both are
    # predicted anyway; [4, 5) needs 1 > 0.5: no change, same areas as without adjustment.
    result = threshold_sweep_auc(SWEEP_LABELS, SWEEP_SCORES, adjust_pat=0.5)
    assert result["auc_pr"] == pytest.approx(3 / 4)
    assert result["auc_roc"] == pytest.approx(7 / 9)


def test_threshold_sweep_custom_thresholds():
    # c0=2.5 only: tp 1 fp 0 -> (R 1/3, P 1), (fpr 0, tpr 1/3)
    # PR: (0,1) (1/3,1) -> 1/3; ROC: (0,0) (0,1/3) (1,1) -> 0 + 1·(1/3+1)/2 = 2/3
    result = threshold_sweep_auc(SWEEP_LABELS, SWEEP_SCORES, thresholds=[2.5])
    assert result["auc_pr"] == pytest.approx(1 / 3)
    assert result["auc_roc"] == pytest.approx(2 / 3)
    assert result["average_precision"] == pytest.approx(1 / 3)  # (1/3 - 0) * 1
    # a threshold above every score predicts nothing: (recall 0, precision 1); ROC the diagonal
    result = threshold_sweep_auc(SWEEP_LABELS, SWEEP_SCORES, thresholds=[5])
    assert result == {
        "auc_pr": pytest.approx(0.0),
        "auc_roc": pytest.approx(0.5),
        "average_precision": pytest.approx(0.0),
    }


def test_threshold_sweep_adjusted_curves_equal_brute_force():
    rng = np.random.default_rng(11)
    for pat in (0.0, 0.3, 0.5, 0.8):
        labels = np.zeros(120, int)
        for start in rng.choice(np.arange(0, 110, 12), size=5, replace=False):
            labels[start : start + rng.integers(1, 10)] = 1
        scores = rng.integers(0, 8, size=120).astype(float)
        curves = threshold_sweep_curves(labels, scores, adjust_pat=pat)
        for c0, precision, recall, fpr in zip(
            curves["thresholds"], curves["precision"], curves["recall"], curves["fpr"]
        ):
            m = adjusted_prf(labels, (scores >= c0).astype(int), pat)
            assert precision == pytest.approx(m["precision"])
            assert recall == pytest.approx(m["recall"])
            assert fpr == pytest.approx(m["fp"] / (m["fp"] + m["tn"]))


def test_sweep_average_precision_is_sklearn_ap_and_not_optimistic():
    """The step-wise area over the sweep equals sklearn's AP; a score that flags nothing gets the
    prevalence, where the trapezoid gives (1 + prevalence) / 2."""
    from sklearn.metrics import average_precision_score

    from tests.conftest import load_fixture

    cases = load_fixture("metric_cases.json")
    for case in cases:
        if len(set(case["labels"])) < 2:
            continue
        ours = threshold_sweep_auc(case["labels"], case["scores"])["average_precision"]
        assert ours == pytest.approx(average_precision_score(case["labels"], case["scores"]))
    labels = [0] * 9 + [1] * 3
    flat = threshold_sweep_auc(labels, [0.0] * 12)
    assert flat["average_precision"] == pytest.approx(0.25)
    assert flat["auc_pr"] == pytest.approx((1 + 0.25) / 2)
