"""Names that become folders (--name, --dataset, a name taken from --raw) are refused in one line
before anything is written, and nothing the workflow scripts write leaves --data_dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmad.workflows.synthetic import write_synthetic
from tests.conftest import assert_refused, tree

BAD_NAMES = ["../../x", "processed", "a/b", ".hidden"]


pytestmark = pytest.mark.usefixtures("no_escapee")


@pytest.fixture
def raw(tmp_path) -> Path:
    """A small folder of synthetic Flow-Bench runs (with its DAG) outside the data dir."""
    runs = write_synthetic(tmp_path / "src" / "syn", 10, 1, normal_share=0.4, affected_share=0.5)
    return runs.folder


# --- flowbench.py ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_flowbench_refuses_a_bad_name(name, raw, tmp_path, script):
    before = tree(tmp_path)
    result = script(
        "data_processing/flowbench.py", "--raw", str(raw), "--dag",
        str(raw / "synthetic_workflow.json"), "--name", name, "--data_dir", str(tmp_path / "data"),
    )  # fmt: skip
    assert_refused(result, "--name", tmp_path, before)


@pytest.mark.parametrize("folder", ["processed", "results", "..", ".hidden"])
def test_flowbench_refuses_a_bad_name_taken_from_the_raw_path(folder, raw, tmp_path, script):
    source = raw.parent / folder
    if folder not in ("..",):
        source = raw.rename(source)
    before = tree(tmp_path)
    result = script(
        "data_processing/flowbench.py", "--raw", str(source), "--dag",
        str(source / "synthetic_workflow.json"), "--data_dir", str(tmp_path / "data"),
    )  # fmt: skip
    line = assert_refused(result, "--raw", tmp_path, before)
    assert "--name" in line  # says how to choose another name


def test_flowbench_refuses_a_bad_name_before_reading_the_raw_data(tmp_path, script):
    big = tmp_path / "missing" / "processed.zip"  # refused before it is even looked for
    before = tree(tmp_path)
    result = script("data_processing/flowbench.py", "--raw", str(big), "--data_dir", str(tmp_path))
    assert_refused(result, "--raw", tmp_path, before)


def test_process_flowbench_checks_the_name_itself(raw, tmp_path):
    from lmad.errors import ConfigError
    from lmad.workflows.flowbench import dataset_name, process_flowbench

    with pytest.raises(ConfigError, match="--name"):
        process_flowbench(
            raw, dag=None, name="processed", features="default", multiclass=False,
            template="paper", seed=42, split="0.8,0.1,0.1", data_dir=tmp_path / "data",
        )  # fmt: skip
    assert not (tmp_path / "data").exists()
    assert dataset_name("data/raw/flowbench/eht-imaging.zip", None) == "eht_imaging"
    assert dataset_name("x.zip", "montage") == "montage"


# --- synthetic_workflow.py ------------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_synthetic_workflow_refuses_a_bad_name_before_writing_runs(name, tmp_path, script):
    before = tree(tmp_path)
    result = script(
        "data_processing/synthetic_workflow.py", "--runs", "5", "--name", name,
        "--raw_dir", str(tmp_path / "raw"), "--data_dir", str(tmp_path / "data"),
    )  # fmt: skip
    assert_refused(result, "--name", tmp_path, before)


def test_synthetic_workflow_checks_split_and_features_before_writing_runs(tmp_path, script):
    before = tree(tmp_path)
    for flags, needle in (
        (["--split", "0.5,0.5"], "split"),
        (["--features", "nope"], "unknown features"),
        (["--runs", "0"], "--runs"),
    ):
        result = script(
            "data_processing/synthetic_workflow.py", "--runs", "5", *flags,
            "--data_dir", str(tmp_path / "data"),
        )  # fmt: skip
        assert_refused(result, needle, tmp_path, before)


def test_synthetic_workflow_writes_only_under_data_dir(tmp_path, script):
    work = tmp_path / "work"  # the current directory: nothing may land in work/data/raw
    work.mkdir()
    data = tmp_path / "data"
    result = script(
        "data_processing/synthetic_workflow.py", "--runs", "5", "--data_dir", str(data), cwd=work
    )
    assert result.returncode == 0, result.stderr
    assert not any(work.iterdir())
    assert len(list((data / "raw" / "synthetic_workflow").glob("*.csv"))) == 5
    assert (data / "synthetic_workflow" / "train.csv").is_file()
    assert {p.parts[0] for p in (Path(p) for p in tree(tmp_path))} == {"work", "data"}


# --- train_classifier.py --------------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_train_classifier_refuses_a_bad_dataset(name, tmp_path, script):
    data = tmp_path / "data"
    data.mkdir()
    before = tree(tmp_path)
    result = script("train_classifier.py", "--dataset", name, "--data_dir", str(data))
    assert_refused(result, "--dataset", tmp_path, before)


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--epochs", "0"),
        ("--lr", "0"),
        ("--batch_size", "0"),
        ("--max_length", "0"),
        ("--train_limit", "0"),
        ("--k_shot", "-1"),
        ("--limit", "0"),
        ("--concurrency", "0"),
        ("--max_steps", "0"),
        ("--max_steps", "-2"),
    ],
)
def test_train_classifier_refuses_non_positive_numbers(flag, value, tmp_path, script):
    before = tree(tmp_path)
    result = script("train_classifier.py", flag, value, "--data_dir", str(tmp_path / "data"))
    assert_refused(result, flag, tmp_path, before)


def test_script_defaults_are_unchanged():
    import train_classifier
    from data_processing import flowbench, synthetic_workflow

    args = train_classifier.build_parser().parse_args([])
    assert (args.epochs, args.batch_size, args.k_shot, args.max_steps, args.limit) == (
        train_classifier.EPOCHS, train_classifier.BATCH_SIZE, train_classifier.K_SHOT, -1, None,
    )  # fmt: skip
    assert train_classifier.build_parser().parse_args(["--k_shot", "0"]).k_shot == 0
    args = synthetic_workflow.build_parser().parse_args([])
    assert (args.runs, args.name, args.data_dir) == (200, "synthetic_workflow", "data")
    assert flowbench.build_parser().parse_args([]).name is None
