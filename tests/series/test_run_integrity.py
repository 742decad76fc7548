"""Run integrity: no answer conditioned on a failed reference, every failure counted, no lost record.

Each test reproduces one finding of the run-integrity issue on the toy CSV series of
``test_pipeline.py`` (180 test points, windows of 60 with stride 20: 7 windows, one channel), through
the scripts as a user runs them, against ``tests/fake_llm_server.py``.
"""

from __future__ import annotations

import json
import shutil

import pytest

from lmad.series.prepare import PrepareOptions, prepare_dataset
from tests.conftest import assert_user_error
from tests.fake_llm_server import FakeLLMServer
from tests.series.scripted import FOUND, LOG, NONE_FOUND, records_of, run
from tests.series.test_pipeline import make_data, models_file


# -- 1. a failed reference blocks its windows ---------------------------------------------------
def test_failed_reference_blocks_analysis_until_it_succeeds(toy):
    toy.script.broken.add(("reference", "*", None))
    result = run(toy.tmp_path, toy.data_dir, toy.models)
    assert result.returncode == 1, result.stderr
    assert toy.script.count("analysis") == 0 and toy.script.count("reflection") == 0  # nothing sent
    records = records_of(toy.data_dir)
    analysis = [r for r in records if r["stage"] == "analysis"]
    assert len(analysis) == 7 and {r["status"] for r in analysis} == {"blocked"}
    assert "7 blocked" in result.stdout
    toy.script.broken.clear()
    result = run(toy.tmp_path, toy.data_dir, toy.models)
    assert result.returncode == 0, result.stderr
    records = records_of(toy.data_dir)
    reference = [r for r in records if r["stage"] == "reference" and r["status"] == "answered"]
    assert len(reference) == 1
    answered = [r for r in records if r["stage"] == "analysis" and r["status"] == "answered"]
    assert len(answered) == 7
    assert {r["reference_hash"] for r in answered} == {reference[0]["request_hash"]}
    reflections = [r for r in records if r["stage"] == "reflection"]
    assert all(r["reference_hash"] == reference[0]["request_hash"] for r in reflections)


def test_legacy_windows_conditioned_on_a_failed_reference_are_asked_again(toy):
    """A log written before reference gating: analyses follow a failed reference record."""
    assert run(toy.tmp_path, toy.data_dir, toy.models).returncode == 0
    log = toy.data_dir.joinpath(*LOG)
    legacy = []
    for record in records_of(toy.data_dir):
        record.pop("status", None)
        record.pop("reference_hash", None)
        record.pop("analysis_hash", None)
        if record["stage"] == "reference":
            record.update(answer=None, error="no JSON object found", raw="{broken")
        legacy.append(record)
    log.write_text("".join(json.dumps(r) + "\n" for r in legacy))
    # The legacy requests carried the failed reply in their history: none of them is in the cache
    # for the conversation with the new reference.
    shutil.rmtree(toy.data_dir / "cache")
    asked_before = toy.script.count("analysis")
    result = run(toy.tmp_path, toy.data_dir, toy.models)
    assert result.returncode == 0, result.stderr
    assert (
        toy.script.count("analysis") - asked_before == 7
    )  # every window again, on the new reference


# -- 2, 3, 5. counts, exit codes, one source of truth --------------------------------------------
def test_counts_per_stage_in_summary_table_and_metrics(toy):
    toy.script.broken |= {("analysis", "toy", 4), ("reflection", "toy", 2)}
    result = run(toy.tmp_path, toy.data_dir, toy.models, "--limit", "6")
    assert result.returncode == 1, result.stderr
    assert "0 failed" not in result.stdout.split("usage:")[1]  # no second, disagreeing count
    assert "toy/4/0 analysis" in result.stderr and "toy/2/0 reflection" in result.stderr
    assert "rerun" in result.stderr
    evaluation = run(
        toy.tmp_path, toy.data_dir, toy.models, "--plots", "False", script="evaluation.py"
    )
    assert evaluation.returncode == 0, evaluation.stderr
    lines = evaluation.stdout.splitlines()
    line = next(i for i, text in enumerate(lines) if text.startswith("incomplete:"))
    assert "2 of 11 answers failed" in lines[line]  # 1 reference, 7 analyses, 3 reflections
    assert "1 window never asked" in lines[line]
    assert any("| Pred " in text for text in lines[line:])  # the line is above the table
    metrics = json.loads(
        (toy.data_dir / "results" / "detection" / "CSV_fake-vlm_image" / "metrics.json").read_text()
    )
    assert metrics["complete"] is False
    counts = metrics["counts"]
    assert counts["reference"] == dict(expected=1, answered=1, failed=0, blocked=0, missing=0)
    assert counts["analysis"] == dict(expected=7, answered=5, failed=1, blocked=0, missing=1)
    assert counts["reflection"] == dict(expected=3, answered=2, failed=1, blocked=0, missing=0)
    table = (toy.data_dir / "results" / "detection" / "CSV_fake-vlm_image" / "table.md").read_text()
    assert table.splitlines()[0].startswith("incomplete:")


def test_a_run_where_everything_failed(toy):
    toy.script.broken |= {("analysis", "toy", w) for w in range(7)}
    result = run(toy.tmp_path, toy.data_dir, toy.models)
    assert result.returncode == 1
    assert "7 failed" in result.stdout
    evaluation = run(toy.tmp_path, toy.data_dir, toy.models, script="evaluation.py")
    assert_user_error(evaluation, "no successful analysis answer")
    assert not (toy.data_dir / "results").exists()


# -- 6. a torn last line ----------------------------------------------------------------------------
def test_torn_last_line_is_moved_aside_before_appending(toy):
    assert run(toy.tmp_path, toy.data_dir, toy.models, "--limit", "3").returncode == 0
    log = toy.data_dir.joinpath(*LOG)
    fragment = '{"dataset": "CSV", "series": "toy", "wind'
    with log.open("a") as handle:
        handle.write(fragment)
    assert run(toy.tmp_path, toy.data_dir, toy.models).returncode == 0
    assert log.with_name(log.name + ".torn").read_text().startswith(fragment)
    records = [json.loads(line) for line in log.read_text().splitlines()]  # every line reads
    assert sum(r["stage"] == "analysis" for r in records) == 7
    evaluation = run(
        toy.tmp_path, toy.data_dir, toy.models, "--plots", "False", script="evaluation.py"
    )
    assert evaluation.returncode == 0 and "incomplete" not in evaluation.stdout


# -- 8. processed files checked before anything is sent; records validated when read ---------------
@pytest.mark.parametrize("damage", ["corrupt", "delete"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_damaged_png_is_refused_before_the_first_request(toy, damage, dry_run):
    png = toy.data_dir / "processed" / "CSV" / "toy" / "test" / "image" / "3-0.png"
    if damage == "corrupt":
        png.write_bytes(b"GIF89a not a png at all")
    else:
        png.unlink()
    result = run(toy.tmp_path, toy.data_dir, toy.models, *(["--dry_run"] if dry_run else []))
    assert_user_error(result, "3-0.png", "make_dataset.py")
    assert toy.server.count == 0
    assert not toy.data_dir.joinpath(*LOG).exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.update(window=999), "window 999"),
        (lambda r: r["answer"]["anomalies"][0].update(confidence="high"), "confidence"),
        (None, "expected a JSON object"),
    ],
)
def test_bad_records_are_named_by_file_and_line(toy, edit, message):
    assert run(toy.tmp_path, toy.data_dir, toy.models).returncode == 0
    log = toy.data_dir.joinpath(*LOG)
    lines = log.read_text().splitlines()
    number = next(
        i
        for i, line in enumerate(lines)
        if json.loads(line)["stage"] == "analysis" and json.loads(line)["answer"]["anomalies"]
    )
    if edit is None:
        lines[number] = "[1, 2]"
    else:
        record = json.loads(lines[number])
        edit(record)
        lines[number] = json.dumps(record)
    log.write_text("\n".join(lines) + "\n")
    result = run(toy.tmp_path, toy.data_dir, toy.models, script="evaluation.py")
    assert_user_error(result, f"{log.name}:{number + 1}:", message)


# -- 9. flags that were accepted silently ---------------------------------------------------------------
@pytest.mark.parametrize(
    "flags",
    [
        ("--limit", "-1"),
        ("--limit", "0"),
        ("--timeout", "0"),
        ("--concurrency", "0"),
        ("--normal_reference", "-1"),
    ],
)
def test_bad_run_flags_are_refused(toy, flags):
    assert_user_error(run(toy.tmp_path, toy.data_dir, toy.models, *flags), flags[0])
    assert toy.server.count == 0


def test_more_references_than_available_warns_with_the_number(toy):
    result = run(toy.tmp_path, toy.data_dir, toy.models, "--normal_reference", "50", "--limit", "1")
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "50" in result.stderr and "4" in result.stderr


# -- 10. a user's own series -----------------------------------------------------------------------------
def test_series_with_different_windows_rerun(tmp_path):
    data_dir = make_data(tmp_path)
    csv_file = data_dir / "CSV" / "toy.csv"
    (data_dir / "CSV" / "wide.csv").write_text(csv_file.read_text())
    for mode in ("train", "test"):
        prepare_dataset(
            PrepareOptions(
                dataset="CSV", ids=["wide"], mode=mode, window_size=90, stride=30,
                data_dir=data_dir, workers=1,
            )
        )  # fmt: skip
    with FakeLLMServer() as server:
        server.default = {"answer": json.dumps(NONE_FOUND)}
        models = models_file(tmp_path, server)
        server.push(*[{"answer": json.dumps({"normal_pattern": "sine"})}] * 2)
        first = run(tmp_path, data_dir, models, "--normal_reference", "0")
        assert first.returncode == 0, first.stderr
        again = run(tmp_path, data_dir, models, "--normal_reference", "0")
        assert again.returncode == 0, again.stderr
        assert "already done" in again.stdout


def test_text_and_image_runs_have_their_own_logs(tmp_path):
    data_dir = make_data(tmp_path)
    for mode in ("train", "test"):
        prepare_dataset(
            PrepareOptions(
                dataset="CSV", mode=mode, modality="text", window_size=60, stride=20,
                data_dir=data_dir, workers=1,
            )
        )  # fmt: skip
    with FakeLLMServer() as server:
        server.default = {"answer": json.dumps(NONE_FOUND)}
        models = models_file(tmp_path, server)
        image = run(tmp_path, data_dir, models, "--normal_reference", "0")
        assert image.returncode == 0, image.stderr
        text = run(
            tmp_path, data_dir, models, "--normal_reference", "0", script="main_cli_text.py",
            llm="fake-vlm",
        )  # fmt: skip
        assert text.returncode == 0, text.stderr
    runs = data_dir / "runs" / "detection"
    assert sorted(p.name for p in runs.glob("*.jsonl")) == [
        "CSV_fake-vlm_image.jsonl",
        "CSV_fake-vlm_text.jsonl",
    ]


def test_unreachable_c0_is_reported_by_evaluation(tmp_path):
    data_dir = make_data(tmp_path)
    for mode in ("train", "test"):  # stride 40 with window 60: at most 2 windows cover a point
        prepare_dataset(
            PrepareOptions(
                dataset="CSV", mode=mode, window_size=60, stride=40, subtask="wide",
                data_dir=data_dir, workers=1,
            )
        )  # fmt: skip
    with FakeLLMServer() as server:
        server.default = {"answer": json.dumps(FOUND)}
        models = models_file(tmp_path, server)
        result = run(tmp_path, data_dir, models, "--normal_reference", "0", "--subtask", "wide")
        assert result.returncode == 0, result.stderr
    evaluation = run(
        tmp_path, data_dir, models, "--subtask", "wide", "--plots", "False",
        script="evaluation.py",
    )  # fmt: skip
    assert evaluation.returncode == 0, evaluation.stderr
    warning = next(line for line in evaluation.stderr.splitlines() if "c0" in line)
    assert warning.startswith("warning:") and "2 windows" in warning and "8" in warning
    assert "--normalised_threshold" in warning


def test_limit_leaves_windows_never_asked_and_says_so(toy):
    assert run(toy.tmp_path, toy.data_dir, toy.models, "--limit", "2").returncode == 0
    evaluation = run(
        toy.tmp_path, toy.data_dir, toy.models, "--plots", "False", script="evaluation.py"
    )
    assert evaluation.returncode == 0, evaluation.stderr
    assert "5 windows never asked" in evaluation.stdout


def test_series_never_run_are_named_in_the_incomplete_line(toy):
    (toy.data_dir / "CSV" / "other.csv").write_text((toy.data_dir / "CSV" / "toy.csv").read_text())
    for mode in ("train", "test"):
        prepare_dataset(
            PrepareOptions(
                dataset="CSV", ids=["other"], mode=mode, window_size=60, stride=20,
                data_dir=toy.data_dir, workers=1,
            )
        )  # fmt: skip
    ran = run(toy.tmp_path, toy.data_dir, toy.models, "--data_id_list", "[toy]")
    assert ran.returncode == 0, ran.stderr
    evaluation = run(
        toy.tmp_path, toy.data_dir, toy.models, "--plots", "False", script="evaluation.py"
    )
    assert evaluation.returncode == 0, evaluation.stderr
    line = next(text for text in evaluation.stdout.splitlines() if text.startswith("incomplete:"))
    assert "7 windows never asked" in line and "1 reference never asked" in line
    assert "(1 of 2 series not run at all, e.g. other" in line
    subset = run(
        toy.tmp_path, toy.data_dir, toy.models, "--plots", "False", "--data_id_list", "[toy]",
        script="evaluation.py",
    )  # fmt: skip
    assert subset.returncode == 0 and "incomplete" not in subset.stdout
