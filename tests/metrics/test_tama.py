"""TAMA's evaluation (``lmad.metrics.tama``) against the values TAMA's own code printed.

``tests/fixtures/tama_reference.json`` was produced by ``tests/fixtures/make_tama_reference.py``,
which runs TAMA's unmodified ``Evaluator`` (commit db99a75) on the 41 cases of
``metric_cases.json``; nothing here needs TAMA's code. Every number must match to 1e-9, except the
AUC of a series with a single class, which TAMA prints as 0 and lmad as NaN (undefined).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmad.metrics.tama import (
    auc_from_curve,
    tama_curve,
    tama_metrics,
    tama_point_adjust,
)
from tests.conftest import load_fixture

CASES = {c["name"]: c for c in load_fixture("metric_cases.json")}
REFERENCE = load_fixture("tama_reference.json")
KEYS = {"Acc": "accuracy", "Pre": "precision", "Rec": "recall", "F1": "f1",
        "AUC_PR": "auc_pr", "AUC_ROC": "auc_roc", "TP": "tp", "FP": "fp", "TN": "tn", "FN": "fn"}  # fmt: skip


def single_class(labels) -> bool:
    return len(set(labels)) == 1


def assert_row(ours: dict, theirs: dict, undefined_auc: bool) -> None:
    for their_key, our_key in KEYS.items():
        if undefined_auc and their_key.startswith("AUC"):
            assert math.isnan(ours[our_key])
            continue
        assert ours[our_key] == pytest.approx(theirs[their_key], abs=1e-9), their_key


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_case_matches_tama(name):
    case, reference = CASES[name], REFERENCE[name]
    undefined = single_class(case["labels"])
    for pat, expected in reference["Pred_adjust"].items():
        ours = tama_metrics([case["labels"]], [case["scores"]], c0=9, pat=float(pat))
        assert_row(ours["Pred"], reference["Pred"], undefined)
        assert_row(ours["Pred_adjust"], expected, undefined)


@pytest.mark.parametrize("group", ["A", "B", "C"])
def test_pooled_groups_match_tama(group):
    reference = REFERENCE["pooled"][group]
    names = reference["ids"]
    labels = [CASES[n]["labels"] for n in names]
    scores = [CASES[n]["scores"] for n in names]
    for pat, expected in reference["Pred_adjust"].items():
        ours = tama_metrics(labels, scores, c0=9, pat=float(pat))
        assert_row(ours["Pred"], reference["Pred"], False)
        assert_row(ours["Pred_adjust"], expected, False)


def test_curve_counts_match_tama():
    for name, case in CASES.items():
        curve = REFERENCE[name]["curve"]
        np.testing.assert_array_equal(
            tama_curve(case["labels"], case["scores"]), [p["Pred"] for p in curve]
        )
        np.testing.assert_array_equal(
            tama_curve(case["labels"], case["scores"], adjusted=True),
            [p["Pred_adjust"] for p in curve],
        )


# -- the quirks, computed by hand ------------------------------------------------------------------
def test_a_segment_at_the_end_needs_one_hit_whatever_pat():
    # labels [0,0,0,1,1], one hit at index 3: TAMA credits the end segment even at PAT 1.0
    np.testing.assert_array_equal(
        tama_point_adjust([0, 0, 0, 1, 1], [0, 0, 0, 1, 0], 1.0), [0, 0, 0, 1, 1]
    )
    # the same segment one point earlier is not at the end: 1 hit of 2 is not > 0.6 * 2
    np.testing.assert_array_equal(
        tama_point_adjust([0, 0, 1, 1, 0], [0, 0, 1, 0, 0], 0.6), [0, 0, 1, 0, 0]
    )
    row = tama_metrics([[0, 0, 0, 1, 1]], [[0, 0, 0, 9, 0]], pat=1.0)["Pred_adjust"]
    assert (row["accuracy"], row["precision"], row["recall"], row["f1"]) == (1.0, 1.0, 1.0, 1.0)


def test_b_precision_zero_when_nothing_is_predicted_and_no_origin_on_roc():
    # labels [0,1], scores [0,9]: PR points (1,.5) x3, (1,1) x9, (0,0) x3, then (0,1):
    # area = 9 trapezoids of width 0 ... + (1 - 0) * (1 + 0) / 2 = 0.5 (lmad's AP would be 1.0)
    assert tama_metrics([[0, 1]], [[0, 9]])["Pred"]["auc_pr"] == pytest.approx(0.5)
    # labels [0,1,0,1], scores [12,12,0,0]: ROC points (1,1) x3, (0.5,0.5) x12, no (0,0): 0.375
    row = tama_metrics([[0, 1, 0, 1]], [[12, 12, 0, 0]])["Pred"]
    assert row["auc_roc"] == pytest.approx(0.375) and row["auc_pr"] == pytest.approx(0.625)


def test_c_adjusted_auc_uses_pat_zero():
    row = tama_metrics([[0, 1, 1, 1, 1, 0]], [[0, 12, 0, 0, 0, 0]], pat=0.4)["Pred_adjust"]
    assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((1.0, 0.25, 0.4))
    assert (row["auc_pr"], row["auc_roc"]) == pytest.approx((1.0, 1.0))  # as if PAT were 0


def test_d_pooled_auc_sums_counts_over_series():
    labels, scores = [[0, 1], [0, 1]], [[0, 12], [9, 0]]
    per_series = [tama_metrics([y], [s])["Pred"] for y, s in zip(labels, scores)]
    assert [(r["auc_pr"], r["auc_roc"]) for r in per_series] == [(1.0, 1.0), (0.25, 0.0)]
    pooled = tama_metrics(labels, scores)["Pred"]
    assert (pooled["auc_pr"], pooled["auc_roc"]) == pytest.approx((0.75, 0.625))
    assert (pooled["precision"], pooled["recall"], pooled["f1"]) == pytest.approx((0.5, 0.5, 0.5))


def test_single_class_auc_is_nan_not_zero():
    assert all(math.isnan(v) for v in auc_from_curve(tama_curve([0, 0], [0, 9])).values())
