"""The scripts chained as a user runs them: text modality, type confusion, ablation tables."""

from __future__ import annotations

import csv
import json
import re

import numpy as np

from tests.series.test_pipeline import make_data


def test_synthetic_classification_text_flow(tmp_path, script):
    data = str(tmp_path / "data")
    common = ["--dataset", "synthetic", "--subtask", "classification", "--data_dir", data]
    for mode in ("train", "test"):
        result = script(
            "make_dataset.py",
            *common,
            "--data_id_list",
            "[0,1,2,3,4]",
            "--mode",
            mode,
            "--modality",
            "text",
        )
        assert result.returncode == 0, result.stderr
    result = script("main_cli_text.py", *common, "--LLM", "offline", "--normal_reference", "2")
    assert result.returncode == 0, result.stderr
    assert "not an LLM" in result.stderr
    log = tmp_path / "data" / "runs" / "classification" / "synthetic_offline_text.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["modality"] for r in records} == {"text"}
    assert sum(r["stage"] == "analysis" for r in records) == 5 * 13  # starts 0, 200, ..., 2400
    result = script(
        "evaluation.py", *common, "--LLM", "offline", "--modality", "text",
        "--normalised_threshold", "0.5",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "type-acc" in result.stdout and "offline (non-LLM baseline)" in result.stdout
    folder = tmp_path / "data" / "results" / "classification" / "synthetic_offline_text"
    metrics = json.loads((folder / "metrics.json").read_text())
    conf = metrics["type_confusion"]["DCheck"]
    matrix = np.array(conf["matrix"])
    assert matrix.sum() == conf["segments"] == 5  # one anomaly per series
    assert conf["accuracy"] == np.trace(matrix[:5, :5]) / 5
    rows = list(csv.reader((folder / "confusion_DCheck.csv").read_text().splitlines()))
    assert rows[0][1:] == conf["labels"] and len(rows) == 1 + len(conf["labels"])
    assert (folder / "report.html").read_text().count("data:image/png;base64,") == 5


def test_ablation_runs_and_aggregates(tmp_path, script):
    data_dir = make_data(tmp_path, modality="text")
    common = [
        "--dataset",
        "CSV",
        "--LLM",
        "offline",
        "--data_dir",
        str(data_dir),
        "--modality",
        "text",
    ]
    result = script(
        "ablation_eval.py", "--ablation", "references", "--values", "0,2", "--run", *common
    )
    assert result.returncode == 0, result.stderr
    table = list(
        csv.reader((data_dir / "results/ablation/references_CSV.csv").read_text().splitlines())
    )
    assert [row[1] for row in table[1:]] == ["0", "2"]
    assert all(0.0 <= float(v) <= 1.0 for row in table[1:] for v in row[2:-1] if v)
    assert [row[-1] for row in table[1:]] == ["7/7", "7/7"]  # answered / expected windows
    for n in (0, 2):
        log = data_dir / "runs" / "detection" / f"CSV_offline_text_ref{n}.jsonl"
        assert {json.loads(line)["references"] for line in log.read_text().splitlines()} == {n}
    result = script(
        "ablation_eval.py",
        "--ablation",
        "window",
        "--values",
        "60,90",
        "--run",
        *common,
        "--normal_reference",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert (data_dir / "processed" / "CSV-w90" / "toy" / "test" / "meta.json").exists()
    meta = json.loads(
        (data_dir / "processed" / "CSV-w90" / "toy" / "test" / "meta.json").read_text()
    )
    assert (meta["window_size"], meta["stride"]) == (90, 30)
    again = script("ablation_eval.py", "--ablation", "window", "--values", "60,90,120", *common)
    assert again.returncode == 0  # without --run: aggregates, a missing setting is a '-' row
    assert "not run yet: offline/120" in again.stderr
    assert re.search(r"\| offline \(non-LLM baseline\) \|\s+120 \|\s+- \|", again.stdout)


def test_offline_run_with_a_detector_in_one_table(tmp_path, script):
    from lmad.series.scores import SeriesScores, detector_folder, write_series_scores

    data_dir = make_data(tmp_path, modality="text")
    common = ["--dataset", "CSV", "--data_dir", str(data_dir)]
    result = script("main_cli_text.py", *common, "--LLM", "offline")
    assert result.returncode == 0, result.stderr
    labels = np.load(data_dir / "processed/CSV/toy/test/series_labels.npy")
    scores = np.where(labels == 1, 5.0, 1.0)  # a perfect detector: flags exactly the anomaly
    folder = detector_folder(data_dir, "detection", "CSV", "perfect")
    write_series_scores(folder, SeriesScores("toy", scores, {"parameters": {}}),
                        {"detector": "perfect", "aeon_version": "1.2.0"})  # fmt: skip
    result = script("evaluation.py", *common, "--LLM", "offline", "--modality", "text",
                    "--baselines", "all")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "| offline (non-LLM baseline) | DCheck_adjust |" in result.stdout
    row = re.search(r"\| perfect \(aeon\)\s+\| Pred\s+\|([^\n]*)", result.stdout).group(1)
    assert row.split("|")[:3] == [" 1.0000 ", " 1.0000 ", " 1.0000 "]  # P, R, F1
    results = tmp_path / "data" / "results" / "detection" / "CSV_offline_text"
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["baselines"]["perfect"]["pooled"]["Pred"]["f1"] == 1.0
    assert "Detectors: perfect (aeon)" in (results / "report.html").read_text()
