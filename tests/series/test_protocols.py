"""evaluation.py --protocol lmad|tama|tsb-ad on a scripted run: each protocol's rows are its metric
functions applied to the merged point scores, pooled the way the protocol says."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from lmad.metrics.tama import tama_metrics
from lmad.metrics.tsbad import tsbad_metrics, tsbad_sliding_window
from lmad.series.evaluate import EvalOptions, evaluate_llm
from lmad.series.merge import merge_window_answers
from lmad.series.protocols import PROTOCOLS
from lmad.series.run_plan import variant_answers
from lmad.series.run_state import Plan, RunState
from tests.conftest import assert_user_error
from tests.series.scripted import run


@pytest.fixture
def answered(toy):
    toy.script.broken.add(("reflection", "toy", 2))  # a failed self-reflection
    assert run(toy.tmp_path, toy.data_dir, toy.models).returncode == 1
    return toy


def evaluate(run_dir, protocol, **extra):
    options = EvalOptions("CSV", ["fake-vlm"], data_dir=run_dir.data_dir, plots=False,
                          protocol=protocol, **extra)  # fmt: skip
    return evaluate_llm(options, "fake-vlm")


def test_lmad_protocol_uses_average_precision(answered):
    result = evaluate(answered, "lmad")
    series = result["_evals"][0]
    scores = series.merged["Pred"].scores
    expected = average_precision_score(series.labels, scores)
    assert result["series"]["toy"]["Pred"]["ap"] == pytest.approx(expected)
    assert result["protocol"] == "lmad" and result["parameters"]["vus_buffer"] == {"toy": 10}


def test_tama_protocol_pools_counts_and_drops_failed_reflections(answered):
    result = evaluate(answered, "tama", pat=0.2)
    series = result["_evals"][0]
    labels = series.labels
    pred = series.merged["Pred"].per_channel
    expected = tama_metrics([labels] * len(pred), list(pred), 9, 0.2)
    assert result["pooled"]["Pred"] == pytest.approx({**expected["Pred"], "unanswered_windows": 0})
    assert result["pooled"]["Pred_adjust"]["f1"] == pytest.approx(expected["Pred_adjust"]["f1"])
    # DCheck: the window whose self-reflection failed counts as answered with no anomaly
    log = [json.loads(line) for line in next(answered.data_dir.glob("runs/*/*.jsonl")).open()]
    state = RunState.resolve(log, Plan((("toy", 0),), tuple(("toy", w, 0) for w in range(7))))
    dcheck = variant_answers(state, "toy", "DCheck", fallback=False)
    assert dcheck[(2, 0)] == {"anomalies": []}
    merged = merge_window_answers(dcheck, series.meta["starts"], 60, 180, 1)
    np.testing.assert_array_equal(series.merged["DCheck"].scores, merged.scores)
    assert result["parameters"]["auc_grid"] == list(range(-2, 13))


def test_tsbad_protocol_is_get_metrics_with_tsbad_window(answered):
    result = evaluate(answered, "tsb-ad")
    series = result["_evals"][0]
    window = tsbad_sliding_window(series.values[:, 0] if series.values.ndim > 1 else series.values)
    expected = tsbad_metrics(series.labels, series.merged["Pred"].scores, window)
    row = result["series"]["toy"]["Pred"]
    for column in PROTOCOLS["tsb-ad"].columns:
        assert row[column] == pytest.approx(expected[column], nan_ok=True), column
    assert result["parameters"]["sliding_window"] == {"toy": window}
    assert set(result["pooled"]) == {"Pred", "DCheck"}
    fixed = evaluate(answered, "tsb-ad", vus_buffer=7)
    assert fixed["parameters"]["sliding_window"] == {"toy": 7}


@pytest.mark.parametrize("protocol", ["lmad", "tama", "tsb-ad"])
def test_each_protocol_names_its_pooling_in_the_table(answered, protocol):
    result = run(answered.tmp_path, answered.data_dir, answered.models, "--plots", "False",
                 "--protocol", protocol, script="evaluation.py")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        f"{protocol} protocol, pooled over series: {PROTOCOLS[protocol].pooling}" in result.stdout
    )
    for header in PROTOCOLS[protocol].columns.values():
        assert f" {header} |" in result.stdout
    metrics = json.loads(next(answered.data_dir.glob("results/*/*/metrics.json")).read_text())
    assert metrics["protocol"] == protocol and metrics["parameters"]


def test_tama_protocol_refuses_a_normalised_threshold(answered):
    result = run(answered.tmp_path, answered.data_dir, answered.models, "--protocol", "tama",
                 "--normalised_threshold", "0.5", script="evaluation.py")  # fmt: skip
    assert_user_error(result, "--protocol tama", "--c0")


def test_rows_carry_their_variant_and_adjustment():
    lmad = PROTOCOLS["lmad"]
    assert lmad.rows == ("Pred", "Pred_adjust", "DCheck", "DCheck_adjust")
    assert [(r.name, r.variant, r.adjusted) for r in lmad.rows_of("DCheck")] == [
        ("DCheck", "DCheck", False),
        ("DCheck_adjust", "DCheck", True),
    ]
    assert [r.name for r in PROTOCOLS["tsb-ad"].rows_of("Pred")] == ["Pred"]
    assert [r.name for r in PROTOCOLS["tama"].rows_of("Pred")] == ["Pred", "Pred_adjust"]


def test_lmad_pooled_adjusts_each_series_then_concatenates():
    from lmad.metrics.adjust import point_adjust
    from lmad.metrics.point import point_prf
    from lmad.series.protocols import PRED_ADJUST, lmad_pooled

    labels = [np.array([0, 1, 1, 0], dtype=np.int8), np.array([1, 1, 0, 0], dtype=np.int8)]
    preds = [{"Pred": np.array([0, 1, 0, 1], dtype=np.int8)},
             {"Pred": np.array([0, 0, 1, 0], dtype=np.int8)}]  # fmt: skip
    per_series = [
        {"Pred_adjust": {"f1": 0.25, "ap": 0.5}},
        {"Pred_adjust": {"f1": 0.75, "ap": 1.0}},
    ]
    pooled = lmad_pooled((PRED_ADJUST,), labels, preds, per_series, 0.0)["Pred_adjust"]
    adjusted = np.concatenate([point_adjust(y, p["Pred"]) for y, p in zip(labels, preds)])
    assert adjusted.tolist() == [0, 1, 1, 1, 0, 0, 1, 0]  # first segment credited, second not
    assert pooled["f1"] == point_prf(np.concatenate(labels), adjusted)["f1"] == 0.5
    assert pooled["ap"] == 0.75  # any other column: the mean over series
    assert (pooled["f1_max"], pooled["f1_min"]) == (0.75, 0.25)
    assert "unanswered_windows" not in pooled  # only LLM rows count unanswered windows


@pytest.mark.parametrize(
    ("dataset", "subtask", "expected"),
    [("SMAP", "w600", "NASA-SMAP"), ("NASA-MSL", "t25", "NASA-MSL"), ("ucr", "detection", "UCR"),
     ("UCR", "w300", "UCR")],
)  # fmt: skip
def test_dataset_name_keeps_a_hyphenated_name_under_a_subtask(tmp_path, dataset, subtask, expected):
    """Run logs and scores are filed under the registered name, whatever the subtask's suffix."""
    from lmad.series.run_plan import dataset_name

    options = EvalOptions(dataset, ["x"], subtask=subtask, data_dir=tmp_path)
    assert dataset_name(options) == expected
