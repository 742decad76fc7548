"""detect_baselines.py end to end, as a user runs it, on the toy CSV series.

The toy series (tests/series/test_pipeline.py::make_data): a sine of period 20, train split 120
points, test split 180 points with a +3 bump at test points 70..79, processed with make_dataset.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import detect_baselines
from lmad.series import detect_run
from lmad.series.scores import read_detector_scores, scored_detectors
from tests.conftest import assert_user_error, run_script, tree
from tests.series.test_pipeline import make_data

TEST_POINTS = 180


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("baselines"))


def run(data_dir, *args):
    return run_script(
        "detect_baselines.py", "--dataset", "CSV", "--data_dir", str(data_dir), "--quiet", *args
    )


def meta_of(data_dir, detector) -> dict:
    return json.loads((data_dir / "scores/detection/CSV" / detector / "meta.json").read_text())


def test_scores_are_written_then_skipped_then_refreshed(toy):
    first = run(toy, "--detectors", "kmeans,dwt_mlead")
    assert first.returncode == 0, first.stderr
    assert "kmeans: 1 scored, 0 already scored" in first.stdout
    assert scored_detectors(toy, "detection", "CSV") == ["dwt_mlead", "kmeans"]
    labels = np.load(toy / "processed/CSV/toy/test/series_labels.npy")
    for name in ("kmeans", "dwt_mlead"):
        meta, scores = read_detector_scores(toy, "detection", "CSV", name)
        assert list(scores) == ["toy"] and scores["toy"].channel_scores.shape == (TEST_POINTS, 1)
        assert roc_auc_score(labels, scores["toy"].score) >= 0.9
        info = meta["series"]["toy"]
        assert meta["aeon_version"] and meta["aeon_class"].startswith("aeon.anomaly_detection")
        assert info["points"] == TEST_POINTS and info["channels"] == 1 and info["seconds"] >= 0
        assert info["parameters"]["period"] == pytest.approx(20, abs=0.5)
    assert meta_of(toy, "kmeans")["series"]["toy"]["fit"] == "train"
    assert meta_of(toy, "kmeans")["series"]["toy"]["parameters"]["window_size"] == 20
    assert meta_of(toy, "dwt_mlead")["series"]["toy"]["fit"] == "none"

    npy = toy / "scores/detection/CSV/kmeans/toy.npy"
    before = (npy.stat().st_mtime_ns, meta_of(toy, "kmeans"))
    again = run(toy, "--detectors", "kmeans,dwt_mlead")
    assert again.returncode == 0, again.stderr
    assert "kmeans: 0 scored, 1 already scored (skipped), 0 failed" in again.stdout
    assert (npy.stat().st_mtime_ns, meta_of(toy, "kmeans")) == before  # nothing rewritten

    fresh = run(toy, "--detectors", "kmeans", "--refresh", "--data_id_list", "[toy]")
    assert fresh.returncode == 0, fresh.stderr
    assert "kmeans: 1 scored, 0 already scored" in fresh.stdout
    assert npy.stat().st_mtime_ns != before[0]
    assert (
        meta_of(toy, "kmeans")["series"]["toy"]["parameters"]
        == before[1]["series"]["toy"]["parameters"]
    )


def test_bad_input_is_one_error_line_and_writes_nothing(toy):
    before = tree(toy)
    line = assert_user_error(run(toy, "--detectors", "kmeans,bogus"), "bogus", "available")
    assert "dwt_mlead" in line  # the available ones are listed
    assert_user_error(run(toy, "--detectors", "kmeans", "--data_id_list", "[nope]"), "nope")
    assert_user_error(run(toy, "--detectors", "kmeans", "--subtask", "../x"), "--subtask")
    unknown = run_script("detect_baselines.py", "--dataset", "NoSuch", "--data_dir", str(toy))
    assert_user_error(unknown, "unknown dataset")
    empty = run_script("detect_baselines.py", "--dataset", "UCR", "--data_dir", str(toy))
    assert_user_error(empty, "make_dataset.py")  # nothing processed for UCR
    assert tree(toy) == before


def test_a_failing_detector_is_recorded_and_exits_1(toy, monkeypatch, capsys):
    real = detect_run.run_plan

    def flaky(plan, train, test):
        if plan.spec.name == "eif":
            raise RuntimeError("injected failure")
        return real(plan, train, test)

    monkeypatch.setattr(detect_run, "run_plan", flaky)
    argv = ["--dataset", "CSV", "--data_dir", str(toy), "--quiet", "--detectors", "eif,ocsvm"]
    assert detect_baselines.main(argv) == 1
    err = capsys.readouterr().err
    failed = [line for line in err.splitlines() if line.startswith("failed:")]
    assert failed == ["failed: eif on series toy: RuntimeError: injected failure"]
    assert meta_of(toy, "eif")["failures"]["toy"]["error"] == "RuntimeError: injected failure"
    assert not (toy / "scores/detection/CSV/eif/toy.npy").exists()
    assert (toy / "scores/detection/CSV/ocsvm/toy.npy").exists()  # the others went on

    monkeypatch.setattr(detect_run, "run_plan", real)
    assert detect_baselines.main(argv) == 0  # the rerun scores just the failed one
    assert "toy" not in meta_of(toy, "eif")["failures"]
    assert np.load(toy / "scores/detection/CSV/eif/toy.npy").shape == (TEST_POINTS, 1)


def test_help_names_every_flag():
    result = run_script("detect_baselines.py", "--help")
    assert result.returncode == 0
    for flag in ("--dataset", "--detectors", "--data_id_list", "--subtask", "--data_dir"):
        assert flag in result.stdout
    assert "--refresh" in result.stdout and "Exit codes" in result.stdout
