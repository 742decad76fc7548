"""learning_curve.py: budgets in steps and epochs, the overtaking budget, and a whole curve on a
tiny model: one row per budget, the same sample and baseline at each, a rerun that trains only the
new budgets, and the adapter of a resumed schedule equal to one trained straight through."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
import pytest

from lmad.errors import ConfigError
from lmad.traces.learning_curve import (
    CURVE_COLUMNS,
    budget_steps,
    overtaking_step,
    parse_budget,
    verdict,
)
from tests.conftest import assert_user_error


def test_budgets_in_steps_and_epochs():
    assert parse_budget("400") == (400, "steps")
    assert parse_budget(" 2ep ") == (2, "epochs")
    assert budget_steps(["0", "50", "1ep", "3ep"], 155) == [0, 50, 155, 465]
    for bad in ("-5", "abc", "0ep", "1.5ep", ""):
        with pytest.raises(ConfigError, match="budget"):
            parse_budget(bad)
    with pytest.raises(ConfigError, match="must increase"):
        budget_steps(["100", "1ep"], 100)
    with pytest.raises(ConfigError, match="must increase"):
        budget_steps([], 100)
    import learning_curve

    parse = learning_curve.build_parser().parse_args
    assert parse(["--sample", "all"]).sample is None and parse([]).sample == 400
    assert parse(["--budgets", "0, 50,2ep"]).budgets == ["0", "50", "2ep"]


def rows(lows: list[float]) -> list[dict]:
    """Curve rows whose trace-level gain interval starts at ``lows``; events never ahead."""
    steps = [0, 50, 100, 200, 400][: len(lows)]
    rows = []
    for s, low in zip(steps, lows):
        row = {"steps": s, "trace_ap_gain_low": low, "event_ap_gain_low": -0.1}
        for level, ap in (("trace", 0.7), ("event", 0.2)):
            row.update({f"semad_{level}_ap": ap, f"ngram_{level}_ap": 0.5,
                        f"{level}_anomaly_rate": 0.4, f"{level}_ap_gain": ap - 0.5,
                        f"{level}_ap_gain_high": 0.3})  # fmt: skip
        rows.append(row)
    return rows


def test_overtaking_budget_is_where_semad_stays_ahead_beyond_noise():
    # beyond noise at 100 but not at 200: it stays ahead only from 400 on
    curve = rows([-0.1, 0.01, 0.05, -0.02, 0.04])
    assert overtaking_step(curve, "trace") == 400
    assert overtaking_step(curve, "event") is None
    assert overtaking_step(rows([-0.1, 0.0]), "trace") is None  # 0 is not above 0
    assert overtaking_step(rows([-0.1, math.nan]), "trace") is None
    assert overtaking_step(rows([0.01, 0.02]), "trace") == 0
    assert verdict([{**r, "ngram_trace_ap": math.nan} for r in curve]) == []  # no baseline
    lines = verdict(list(reversed(curve)), "3-gram")  # row order does not matter
    assert lines == [
        "trace level: SemAD's AP is above the 3-gram baseline's beyond noise from 400 steps on "
        "(at 400 steps SemAD 0.700, 3-gram 0.500, chance 0.400: gain +0.200 [+0.040, +0.300])",
        "event level: SemAD's AP did not stay above the 3-gram baseline's beyond noise within "
        "400 steps (at 400 steps SemAD 0.200, 3-gram 0.500, chance 0.400: gain -0.300 "
        "[-0.100, +0.300])",
    ]


def curve_args(root, out, budgets: str) -> list[str]:
    return ["--llm_path", str(root / "base"), "--train_path", str(root / "training_data.csv"),
            "--test_path", str(root / "test_data.csv"), "--budgets", budgets, "--sample", "20",
            "--output_dir", str(out), "--learning_rate", "5e-3", "--qlora", "off",
            "--bootstrap", "50"]  # fmt: skip


def adapter_weights(folder) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_curve_rows_rerun_and_resumed_adapter(script, semad_files, tmp_path):
    """100 training traces (12 steps of 8 an epoch), 60 test traces."""
    root, out = semad_files, tmp_path / "curve"
    done = script("learning_curve.py", *curve_args(root, out, "0,4,8"))
    assert done.returncode == 0, done.stderr
    table = list(csv.DictReader((out / "curve.csv").open()))
    assert list(table[0]) == list(CURVE_COLUMNS)
    assert [int(r["steps"]) for r in table] == [0, 4, 8]
    assert [float(r["epochs"]) for r in table] == [0, 0.3333, 0.6667]
    assert table[0]["train_loss"] == "" and float(table[0]["train_seconds"]) == 0
    assert math.isfinite(float(table[2]["train_loss"]))
    assert float(table[1]["train_seconds"]) <= float(table[2]["train_seconds"])
    for row in table:  # the same stratified sample at every budget, so the same baseline
        assert row["sample"] == "20 of 60 traces, stratified by label, seed 42"
        assert row["ngram_trace_ap"] == table[0]["ngram_trace_ap"]
        assert row["ngram_event_roc_auc"] == table[0]["ngram_event_roc_auc"]
        assert float(row["trace_anomaly_rate"]) == int(row["positives"]) / 20
    for row in table:  # SemAD's AP gain over the baseline, inside its bootstrap interval
        gain, low, high = (float(row[f"trace_ap_gain{e}"]) for e in ("", "_low", "_high"))
        assert gain == pytest.approx(float(row["semad_trace_ap"]) - float(row["ngram_trace_ap"]))
        assert low <= high and low < gain + 0.3 and high > gain - 0.3
        assert float(row["event_ap_gain_low"]) <= float(row["event_ap_gain_high"])
    # each row is eval.py's metrics of that budget's scores file
    again = script("eval.py", "--from_scores", str(out / "scores" / "steps_8.csv"),
                   "--result_path", str(tmp_path / "r.csv"))  # fmt: skip
    assert again.returncode == 0, again.stderr
    semad = next(csv.DictReader((tmp_path / "r.csv").open()))
    assert (semad["method"], semad["level"]) == ("semad", "trace")
    assert semad["ap"] == table[2]["semad_trace_ap"]
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "SemAD's AP" in done.stdout and str(out / "curve.csv") in done.stdout

    # a longer schedule trains only the new budget, resuming from the 8-step checkpoint; gains
    # missing from a row (written before they existed) are filled in from its scores file
    frame = pd.read_csv(out / "curve.csv", dtype=str, keep_default_na=False)
    frame.loc[1, ["trace_ap_gain", "trace_ap_gain_low", "trace_ap_gain_high"]] = ""
    frame.to_csv(out / "curve.csv", index=False)
    longer = script("learning_curve.py", *curve_args(root, out, "0,4,8,12"))
    assert longer.returncode == 0, longer.stderr
    assert "8 steps: already in" in longer.stderr
    summary = json.loads((out / "adapter" / "semad_training.json").read_text())
    assert summary["global_step"] == 12 and summary["resumed_from"].endswith("checkpoint-8")
    table2 = list(csv.DictReader((out / "curve.csv").open()))
    assert [int(r["steps"]) for r in table2] == [0, 4, 8, 12]
    assert table2[:3] == table  # earlier rows unchanged, digit for digit

    # the curve keeps its settings: another learning rate would resume from these checkpoints
    settings = json.loads((out / "curve.json").read_text())
    assert settings["learning_rate"] == 5e-3 and settings["sample"] == 20
    other = curve_args(root, out, "0,4,8,12,16")
    other[other.index("--learning_rate") + 1] = "1e-3"
    assert_user_error(script("learning_curve.py", *other), "learning_rate 0.005", "0.001")
    # a budget below what the adapter was trained to cannot be added any more
    back = script("learning_curve.py", *curve_args(root, out, "0,6,12"))
    assert_user_error(back, "budget 6 lies below the 12 steps")
    assert list(csv.DictReader((out / "curve.csv").open())) == table2

    # the resumed schedule's adapter is the one a single 12-step run gives
    straight = tmp_path / "straight"
    one = script("learning_curve.py", *curve_args(root, straight, "12"))
    assert one.returncode == 0, one.stderr
    resumed, direct = adapter_weights(out / "adapter"), adapter_weights(straight / "adapter")
    assert resumed.keys() == direct.keys()
    for name in resumed:
        np.testing.assert_allclose(resumed[name], direct[name], rtol=1e-4, atol=1e-6)
    first = next(csv.DictReader((straight / "curve.csv").open()))
    assert first["semad_trace_ap"] == table2[3]["semad_trace_ap"]


@pytest.mark.parametrize(
    ("budgets", "needle"),
    [("100,50", "must increase"), ("10,abc", "budget"), ("0ep", "budget")],
)
def test_bad_budgets_are_one_error_line(script, tmp_path, budgets, needle):
    train = tmp_path / "train.csv"
    train.write_text("trace,label,raw_cause,cause,evelabel\n" + '"a , b",normal,,,[0 0]\n' * 9)
    args = ["--budgets", budgets, "--train_path", str(train), "--output_dir", str(tmp_path / "o")]
    assert_user_error(script("learning_curve.py", *args), needle)
    assert not (tmp_path / "o").exists()


def test_the_figure_is_drawn_with_and_without_a_baseline(tmp_path):
    from lmad.traces.learning_curve_plot import plot_curve

    curve = rows([-0.1, 0.01, 0.05])
    blind = [{**r, **dict.fromkeys([k for k in r if "ngram" in k or "gain" in k], math.nan)}
             for r in curve]  # fmt: skip
    for name, data in (("with.png", curve), ("without.png", blind)):
        path = plot_curve(data, tmp_path / "figs" / name, "title")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
