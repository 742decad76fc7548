"""Range-based (Tatbul et al. 2018), event-wise and composite scores on hand-worked examples."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lmad.errors import ConfigError, DataError
from lmad.metrics.event import composite_f1, event_prf
from lmad.metrics.point import point_prf
from lmad.metrics.range_based import (
    positional_bias,
    range_precision,
    range_prf,
    range_recall,
)


def bits(text: str) -> np.ndarray:
    return np.array([int(c) for c in text])


# ---------------------------------------------------------------- positional bias δ


def test_positional_bias_values():
    assert positional_bias(4, "flat").tolist() == [1, 1, 1, 1]
    assert positional_bias(4, "front").tolist() == [4, 3, 2, 1]  # L - i + 1
    assert positional_bias(4, "back").tolist() == [1, 2, 3, 4]  # i
    assert positional_bias(4, "middle").tolist() == [1, 2, 2, 1]  # i ≤ 2: i; else L - i + 1
    assert positional_bias(5, "middle").tolist() == [1, 2, 3, 2, 1]  # i ≤ 2.5: i; 3 -> 3
    assert positional_bias(1, "middle").tolist() == [1]
    with pytest.raises(ConfigError, match="bias"):
        positional_bias(3, "sideways")


# ---------------------------------------------------------------- range-based P/R


def test_range_flat_hand_example():
    # index   0 1 2 3 4 5 6 7 8 9 10 11
    # labels  0 1 1 1 1 0 0 0 1 1 0  0   real R1 = [1,5) (L 4), R2 = [8,10) (L 2)
    # preds   0 0 1 1 0 0 1 1 1 0 0  1   pred P1 = [2,4) (L 2), P2 = [6,9) (L 3), P3 = [11,12)
    labels = bits("011110001100")
    preds = bits("001100111001")
    # recall: R1 ∩ P = {2,3}: 2/4; R2 ∩ P = {8}: 1/2 -> (1/2 + 1/2) / 2 = 1/2
    # precision: P1: 2/2; P2 ∩ R = {8}: 1/3; P3: 0 -> (1 + 1/3 + 0) / 3 = 4/9
    # F1 = 2·(4/9)(1/2) / (4/9 + 1/2) = (4/9) / (17/18) = 8/17
    m = range_prf(labels, preds)
    assert m["recall"] == pytest.approx(1 / 2)
    assert m["precision"] == pytest.approx(4 / 9)
    assert m["f1"] == pytest.approx(8 / 17)
    # point precision weighs points, not ranges: tp {2,3,8} = 3 of 6 predicted points = 1/2
    assert point_prf(labels, preds)["precision"] == pytest.approx(1 / 2)
    # alpha = 0.5: each real range is hit: 0.5·1 + 0.5·(1/2) = 3/4; alpha = 1: existence only
    assert range_recall(labels, preds, alpha=0.5) == pytest.approx(3 / 4)
    assert range_recall(labels, preds, alpha=1.0) == pytest.approx(1.0)
    # precision has no existence term: alpha does not change it
    assert range_prf(labels, preds, alpha=1.0)["precision"] == pytest.approx(4 / 9)


def test_range_front_back_middle_bias_hand_example():
    # real [0,4), predicted [2,6): the overlap {2,3} is the back half of R and the front of P
    labels = bits("11110000")
    preds = bits("00111100")
    # recall, front δ = (4,3,2,1): (2+1)/10 = 0.3; back δ = (1,2,3,4): (3+4)/10 = 0.7
    # middle δ = (1,2,2,1): (2+1)/6 = 0.5; flat: 2/4 = 0.5
    # precision, front: positions 2,3 are i = 1,2 of P -> (4+3)/10 = 0.7; back (1+2)/10 = 0.3
    front = range_prf(labels, preds, bias="front")
    assert front["recall"] == pytest.approx(0.3)
    assert front["precision"] == pytest.approx(0.7)
    assert front["f1"] == pytest.approx(2 * 0.3 * 0.7 / 1.0)
    back = range_prf(labels, preds, bias="back")
    assert (back["recall"], back["precision"]) == (pytest.approx(0.7), pytest.approx(0.3))
    middle = range_prf(labels, preds, bias="middle")
    assert (middle["recall"], middle["precision"]) == (pytest.approx(0.5), pytest.approx(0.5))
    # a flat bias for precision only (the paper's suggestion)
    mixed = range_prf(labels, preds, bias="front", precision_bias="flat")
    assert (mixed["recall"], mixed["precision"]) == (pytest.approx(0.3), pytest.approx(0.5))


def test_range_front_bias_early_detection_scores_higher():
    labels = bits("11110000")
    # predicting the first two points of [0,4): front (4+3)/10 = 0.7, back (1+2)/10 = 0.3
    assert range_recall(labels, bits("11000000"), bias="front") == pytest.approx(0.7)
    assert range_recall(labels, bits("11000000"), bias="back") == pytest.approx(0.3)


def test_range_cardinality():
    # real [0,7) is hit by two predicted ranges [0,2) and [3,5): overlap 4/7
    labels = bits("11111110")
    preds = bits("11011000")
    assert range_recall(labels, preds, cardinality="one") == pytest.approx(4 / 7)
    assert range_recall(labels, preds, cardinality="reciprocal") == pytest.approx(2 / 7)
    assert range_precision(labels, preds, cardinality="reciprocal") == pytest.approx(1.0)
    # one predicted range [0,5) over two real ranges [0,2), [3,5): overlap 4/5, γ = 1/2
    labels, preds = bits("11011"), bits("11111")
    assert range_precision(labels, preds, cardinality="one") == pytest.approx(4 / 5)
    assert range_precision(labels, preds, cardinality="reciprocal") == pytest.approx(2 / 5)
    assert range_recall(labels, preds, cardinality="reciprocal") == pytest.approx(1.0)


def test_range_edge_cases():
    # no real range: recall 0; the predicted range overlaps nothing: precision 0
    assert range_prf(bits("0000"), bits("0110")) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    # no prediction: precision 0, recall 0 (nothing overlapped), also with alpha = 1
    assert range_prf(bits("0110"), bits("0000"), alpha=1.0) == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
    }
    # neither: everything 0 (zero_division=0), not 1
    assert range_prf(bits("0000"), bits("0000"))["f1"] == 0.0
    # a range touching the last point: [2,4) fully predicted
    assert range_prf(bits("0011"), bits("0011")) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_range_rejects_bad_options():
    with pytest.raises(ConfigError, match="alpha"):
        range_prf(bits("01"), bits("01"), alpha=1.5)
    with pytest.raises(ConfigError, match="cardinality"):
        range_prf(bits("01"), bits("01"), cardinality="udf")
    with pytest.raises(ConfigError, match="bias"):
        range_prf(bits("01"), bits("01"), bias="none")
    with pytest.raises(DataError):
        range_prf(bits("01"), bits("011"))


@pytest.mark.parametrize("seed", range(5))
def test_range_equals_point_for_unit_ranges(seed):
    # every range a single point (anomalies only at even indices, never adjacent): each range
    # overlaps at most one range, δ has one position, so P_T and R_T are point P and R for any
    # bias and cardinality when alpha = 0.
    rng = np.random.default_rng(seed)
    labels, preds = np.zeros(200, int), np.zeros(200, int)
    labels[::2] = rng.random(100) < 0.3
    preds[::2] = rng.random(100) < 0.3
    point = point_prf(labels, preds)
    for bias in ("flat", "front", "back", "middle"):
        for cardinality in ("one", "reciprocal"):
            m = range_prf(labels, preds, 0.0, cardinality, bias)
            assert m["precision"] == pytest.approx(point["precision"])
            assert m["recall"] == pytest.approx(point["recall"])


@pytest.mark.parametrize("seed", range(5))
def test_range_equals_point_for_equal_length_ranges_each_overlapping_one(seed):
    # blocks of 5 points: real ranges [5k+1, 5k+4) (length 3), predicted [5k+o, 5k+o+2)
    # (length 2, o in 0..2): a range can only meet the range of its own block. With flat bias and
    # alpha 0 the mean of |R_i ∩ P| / 3 over real ranges is tp / (3·Nr) = point recall, and
    # likewise for precision.
    rng = np.random.default_rng(100 + seed)
    labels, preds = np.zeros(300, int), np.zeros(300, int)
    for k in range(60):
        if rng.random() < 0.5:
            labels[5 * k + 1 : 5 * k + 4] = 1
        if rng.random() < 0.5:
            offset = int(rng.integers(0, 3))
            preds[5 * k + offset : 5 * k + offset + 2] = 1
    point = point_prf(labels, preds)
    m = range_prf(labels, preds, alpha=0.0, cardinality="reciprocal", bias="flat")
    assert m["precision"] == pytest.approx(point["precision"])
    assert m["recall"] == pytest.approx(point["recall"])
    assert point["tp"] > 0


def test_range_matches_aeon_implementation():
    aeon_metrics = pytest.importorskip("aeon.benchmarking.metrics.anomaly_detection")
    rng = np.random.default_rng(5)
    for _ in range(40):
        labels = (rng.random(60) < 0.3).astype(int)
        preds = (rng.random(60) < 0.3).astype(int)
        if labels.sum() == 0 or preds.sum() == 0:
            continue
        for cardinality in ("one", "reciprocal"):
            for bias in ("flat", "front", "back", "middle"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # aeon also adds an existence term to precision; the paper has none: alpha 0
                    p = aeon_metrics.range_precision(
                        labels, preds, alpha=0.0, cardinality=cardinality, bias=bias
                    )
                    r = aeon_metrics.range_recall(
                        labels, preds, alpha=0.3, cardinality=cardinality, bias=bias
                    )
                assert range_precision(labels, preds, cardinality, bias) == pytest.approx(p)
                assert range_recall(labels, preds, 0.3, cardinality, bias) == pytest.approx(r)


# ---------------------------------------------------------------- event-wise and composite


def test_event_prf_hand_example():
    # index   0 1 2 3 4 5 6 7 8 9 10 11
    # labels  0 1 1 0 0 1 1 1 0 0 0  1   true events [1,3) [5,8) [11,12)
    # preds   0 0 1 0 0 0 0 0 0 1 1  0   predicted events [2,3) [9,11)
    labels = bits("011001110001")
    preds = bits("001000000110")
    # recall: [1,3) hit at 2; [5,8) and [11,12) missed -> 1/3
    # precision: [2,3) meets a true event, [9,11) does not -> 1/2
    # F1 = 2·(1/2)(1/3) / (1/2 + 1/3) = (1/3) / (5/6) = 2/5
    m = event_prf(labels, preds)
    assert m["recall"] == pytest.approx(1 / 3)
    assert m["precision"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(2 / 5)
    assert (m["true_events"], m["detected_events"]) == (3, 1)
    assert (m["predicted_events"], m["correct_predicted_events"]) == (2, 1)
    # composite: point precision tp {2} / predicted {2, 9, 10} = 1/3, event recall 1/3 -> 1/3
    assert composite_f1(labels, preds) == pytest.approx(1 / 3)


def test_composite_f1_second_example():
    # labels 0011100011, preds 0010000110: point precision 2/3 (tp 2 of 3 predicted points);
    # both true events [2,5) and [8,10) are hit: event recall 1 -> F_c = 2·(2/3)·1 / (5/3) = 4/5
    labels, preds = bits("0011100011"), bits("0010000110")
    assert event_prf(labels, preds)["recall"] == 1.0
    assert composite_f1(labels, preds) == pytest.approx(4 / 5)


def test_event_edge_cases():
    # no predictions: precision 0 (zero_division), recall 0/1
    m = event_prf(bits("0110"), bits("0000"))
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)
    assert composite_f1(bits("0110"), bits("0000")) == 0.0
    # no true events: recall 0, the predicted event matches nothing: precision 0
    m = event_prf(bits("0000"), bits("0011"))
    assert (m["precision"], m["recall"], m["true_events"]) == (0.0, 0.0, 0)
    # neither: 0, not 1
    assert event_prf(bits("0000"), bits("0000"))["f1"] == 0.0
    # one predicted event spanning two true events counts once for precision, both for recall
    m = event_prf(bits("1101100"), bits("1111100"))
    assert (m["precision"], m["recall"]) == (1.0, 1.0)
    with pytest.raises(DataError):
        event_prf(bits("01"), bits("0"))
