"""Flow-Bench processing on hand-made runs and the real shared zips; the synthetic generator; CLIs."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmad.errors import ConfigError, DataError
from lmad.workflows.flowbench import (
    build_table,
    dag_order,
    load_split,
    match_jobs,
    parse_split,
    process_flowbench,
    read_runs,
    split_runs,
)
from lmad.workflows.sentences import COLUMNS, NUMERIC_COLUMNS, TIMESTAMP_COLUMNS
from lmad.workflows.synthetic import (
    CPU_STRETCH,
    generate_runs,
    job_specs,
    synthetic_dag,
    write_synthetic,
)
from tests.conftest import SHARED_DATA, assert_user_error

DAG = {
    "create_dir_demo_0_condorpool": ["task_ID0000001", "task_ID0000002"],
    "task_ID0000001": ["merge_ID0000003"],
    "task_ID0000002": ["merge_ID0000003"],
    "merge_ID0000003": ["cleanup_demo_0_condorpool"],
    "cleanup_demo_0_condorpool": [],
}
ORDER = list(DAG)  # already topological, ties (the two tasks) by name
SENTENCES = {"features": "default", "multiclass": False, "template": "paper"}
"""The sentence settings of these tests unless one says otherwise: the paper's, binary labels."""
FRACTIONS = (0.8, 0.1, 0.1)
SHARES = {"normal_share": 0.4, "affected_share": 0.5}
"""Synthetic runs: 40% normal, half the compute jobs of an anomalous run hit."""
PAPER = (
    "wms_delay is 6.0 queue_delay is 1006.0 runtime is 808.0 post_script_delay is 5.0 "
    "stage_in_delay is 15.0 stage_out_delay is 4.0 stage_in_bytes is 1014254291.0 "
    "stage_out_bytes is 401318.0 kickstart_executables_cpu_time is 771.8"
)  # the paper's CSV example (PoSeiDon-Workflows/LLM_AD); its text ends with one more space
NEWER = (
    "Job has wms delay 5 sec, queue delay 20 sec, runtime 987 sec, post script delay 5 sec, "
    "stage in delay 65 sec, and stage out delay 4 sec"
)


def job_row(job: str, start: float, anomaly: str = "None", **values) -> dict:
    """One job in the real layout: compute jobs have staging, auxiliary ones NaN there."""
    compute = not job.startswith(("create_dir_", "cleanup_"))
    row = dict.fromkeys(COLUMNS, np.nan)
    row.update(
        anomaly_type=anomaly,
        type="compute" if compute else "auxiliary",
        is_clustered=0,
        ready=start + 10,
        submit=start + 15,
        execute_start=start + 20,
        execute_end=start + 120,
        post_script_start=start + 120,
        post_script_end=start + 125,
        wms_delay=5.0,
        queue_delay=5.0,
        runtime=100.0,
        post_script_delay=5.0,
        kickstart_user="poseidon",
        kickstart_site="condorpool" if compute else "local",
        kickstart_hostname="worker-1",
        kickstart_transformations=job.split("_ID")[0],
        kickstart_executables="/srv/x",
        kickstart_executables_argv="pegasus-kickstart -n x, quoted",
        kickstart_executables_cpu_time=60.0,
        kickstart_status=0,
        kickstart_executables_exitcode=0,
    )
    if compute:
        row.update(stage_in_delay=16.0, stage_in_bytes=1.0e9, stage_out_delay=4.0)
        row.update(stage_out_bytes=5.0e5, stage_in_start=start + 20, stage_in_end=start + 36)
    row.update(values)
    return row


def write_run(folder: Path, name: str, rows: dict[str, dict], drop: tuple[str, ...] = ()) -> Path:
    """A run CSV as Flow-Bench writes it: job names first (unnamed column), rows reversed."""
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))
    frame = frame.drop(columns=list(drop)).iloc[::-1]
    path = folder / f"{name}.csv"
    frame.to_csv(path, index_label="")
    return path


def make_runs(folder: Path, n: int = 3, anomalous_run: int = 1) -> Path:
    """``n`` runs of the demo DAG; run ``anomalous_run`` has cpu_2 on task 1 and merge."""
    folder.mkdir(parents=True, exist_ok=True)
    for r in range(n):
        start = 1.7e9 + 1000 * r
        rows = {job: job_row(job, start + 10 * i) for i, job in enumerate(ORDER)}
        if r == anomalous_run:
            rows["task_ID0000001"]["anomaly_type"] = "cpu_2"
            rows["merge_ID0000003"]["anomaly_type"] = "cpu_2"
        if r == 0:
            rows["task_ID0000001"].update(
                wms_delay=6.0, queue_delay=1006.0, runtime=808.0, stage_in_delay=15.0,
                stage_in_bytes=1014254291.0, stage_out_bytes=401318.0,
                kickstart_executables_cpu_time=771.8,
            )  # fmt: skip
            rows["task_ID0000002"].update(queue_delay=20.0, runtime=987.0, stage_in_delay=65.0)
        write_run(folder, f"demo-run{r + 1:04d}", rows)
    (folder / "demo.json").write_text(json.dumps(DAG))
    return folder


def table_of(raw: Path, dag: Path, **changes):
    """:func:`build_table` with :data:`SENTENCES`, ``changes`` applied."""
    return build_table(raw, dag, **(SENTENCES | changes))


def process(raw: Path, data_dir: Path, **changes):
    """:func:`process_flowbench` with :data:`SENTENCES`, seed 42 and an 80/10/10 split."""
    values = {"dag": None, "name": None, **SENTENCES, "seed": 42, "split": FRACTIONS}
    return process_flowbench(raw, data_dir=data_dir, **(values | changes))


@pytest.fixture
def runs(tmp_path) -> Path:
    return make_runs(tmp_path / "raw")


def test_rows_labels_text_and_dag_order(runs, tmp_path):
    summary = process(runs, tmp_path / "data", name="demo")
    table = pd.read_csv(tmp_path / "data" / "demo" / "all.csv")
    assert len(table) == 15 and summary.rows["all"] == 15 and summary.runs["all"] == 3
    assert list(table.columns[:5]) == ["text", "label", "run", "job", "anomaly_type"]
    assert table["label"].sum() == 2 and summary.anomalous["all"] == 2
    assert summary.label_counts["all"] == {"None": 13, "cpu_2": 2}
    for _, jobs in table.groupby("run")["job"]:
        assert list(jobs) == ORDER  # the CSVs list jobs reversed
    known = table[(table["run"] == "demo-run0001") & (table["job"] == "task_ID0000001")]
    assert known["text"].item() == PAPER + " "
    assert (tmp_path / "data" / "demo" / "meta.json").is_file()


def test_newer_template_and_multiclass(runs, tmp_path):
    process(runs, tmp_path, name="demo", template="newer", multiclass=True)
    table = load_split(tmp_path, "demo", "all")
    row = table[(table["run"] == "demo-run0001") & (table["job"] == "task_ID0000002")]
    assert row["text"].item() == NEWER
    assert set(table["label"]) == {"None", "cpu_2"}  # "None" stays a label, not NaN
    assert dict(zip(table["label"], table["label_id"])) == {"None": 0, "cpu_2": 1}
    with pytest.raises(DataError, match=r"synthetic_workflow\.py"):
        load_split(tmp_path, "nothing", "train")


def test_missing_values_filled_with_a_warning(runs, caplog):
    with caplog.at_level(logging.WARNING, logger="lmad"):
        table, filled = table_of(runs, runs / "demo.json")
    assert filled == 3 * 2 * 4  # two auxiliary jobs per run lack both stagings and byte counts
    assert any("filled 24 missing values with 0" in r.getMessage() for r in caplog.records)
    assert not table["text"].str.contains("nan").any() and not table.isna().any().any()
    aux = table[table["job"] == "cleanup_demo_0_condorpool"].iloc[0]
    assert "stage_in_delay is 0.0 stage_out_delay is 0.0" in aux["text"]


def test_timestamps_shift_to_the_run_start(runs):
    table, _ = table_of(runs, runs / "demo.json", features="all")
    assert list(table.columns[5:]) == list(NUMERIC_COLUMNS)
    stamps = [c for c in TIMESTAMP_COLUMNS if c not in ("pre_script_start", "pre_script_end")]
    for _, run in table.groupby("run"):
        assert run[stamps].min().min() == 0.0  # the earliest timestamp of the run
        first = run[run["job"] == ORDER[0]].iloc[0]
        assert (first["ready"], first["post_script_end"]) == (0.0, 115.0)


def test_split_is_by_run_seeded_and_80_10_10(tmp_path):
    raw = make_runs(tmp_path / "raw", n=20)
    summary = process(raw, tmp_path / "data", name="demo", seed=7)
    parts = {s: pd.read_csv(tmp_path / "data" / "demo" / f"{s}.csv") for s in summary.runs}
    sets = {s: set(f["run"]) for s, f in parts.items() if s != "all"}
    assert (len(sets["train"]), len(sets["validation"]), len(sets["test"])) == (16, 2, 2)
    assert not (sets["train"] & sets["validation"]) and not (sets["train"] & sets["test"])
    assert not (sets["validation"] & sets["test"])
    assert set().union(*sets.values()) == set(parts["all"]["run"])
    assert sum(len(parts[s]) for s in sets) == len(parts["all"]) == 100
    again = process(raw, tmp_path / "data", name="again", seed=7)
    assert again.label_counts == summary.label_counts
    other = split_runs([f"r{i}" for i in range(20)], FRACTIONS, seed=8)
    assert other != split_runs([f"r{i}" for i in range(20)], FRACTIONS, seed=7)


def test_split_counts_for_few_runs():
    assert [len(v) for v in split_runs(["a", "b", "c"], FRACTIONS, 42).values()] == [1, 1, 1]
    assert [len(v) for v in split_runs(["a"], FRACTIONS, 42).values()] == [1, 0, 0]
    many = split_runs([str(i) for i in range(501)], FRACTIONS, 42)
    assert [len(v) for v in many.values()] == [401, 50, 50]
    assert parse_split("0.7,0.2,0.1") == (0.7, 0.2, 0.1)
    for bad in ("0.5,0.5", "0.8,0.1,0.2", "a,b,c", "0,0.5,0.5"):
        with pytest.raises(ConfigError):
            parse_split(bad)


def test_zip_gives_the_same_rows_as_the_folder(runs, tmp_path):
    archive = tmp_path / "demo.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(runs.glob("*.csv")):
            z.write(path, f"demo/{path.name}")
        z.writestr("__MACOSX/demo/._demo-run0001.csv", "junk")
    from_zip, _ = table_of(archive, runs / "demo.json")
    from_folder, _ = table_of(runs, runs / "demo.json")
    pd.testing.assert_frame_equal(from_zip, from_folder)


def test_dag_order_parents_first_ties_by_name():
    dag = {"b": ["d"], "a": ["d", "c"], "c": ["d"], "d": []}
    assert dag_order(dag) == ["a", "b", "c", "d"]
    order = dag_order(synthetic_dag())
    for parent, children in synthetic_dag().items():
        assert all(order.index(parent) < order.index(c) for c in children)
    with pytest.raises(DataError, match="cycle"):
        dag_order({"a": ["b"], "b": ["a"]})


def test_missing_columns_name_them_and_the_file(tmp_path):
    folder = make_runs(tmp_path / "raw", n=2)
    rows = {job: job_row(job, 0.0) for job in ORDER}
    bad = write_run(folder, "demo-run0009", rows, drop=("runtime", "queue_delay"))
    with pytest.raises(DataError) as info:
        table_of(folder, folder / "demo.json")
    assert "runtime" in str(info.value) and "queue_delay" in str(info.value)
    assert str(bad) in str(info.value)


def test_empty_inputs_and_bad_values(tmp_path):
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("README.txt", "no runs here")
    with pytest.raises(DataError, match="no run CSV"):
        read_runs(empty)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="no run CSV"):
        read_runs(tmp_path / "nothing")
    folder = make_runs(tmp_path / "raw", n=1)
    rows = {job: job_row(job, 0.0) for job in ORDER}
    rows["merge_ID0000003"]["runtime"] = "fast"
    write_run(folder, "demo-run0002", rows)
    with pytest.raises(DataError, match="runtime has a non-number 'fast'"):
        table_of(folder, folder / "demo.json")


def test_dag_that_does_not_match_the_jobs(runs, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"x_ID0000001": ["y_ID0000002"]}))
    with pytest.raises(DataError, match=r"DAG .*other.json does not match the jobs: ") as info:
        table_of(runs, other)
    assert "merge_ID0000003" in str(info.value) and "and 2 more" in str(info.value)
    # the original code's alias for create_dir_/cleanup_ jobs whose site suffix differs
    dag_nodes = ["create_dir_1000-genome_0_condorpool", "individuals_ID0000001"]
    jobs = ["create_dir_1000-genome_0_local", "individuals_ID0000001"]
    assert match_jobs(jobs, dag_nodes, "g.json")[jobs[0]] == dag_nodes[0]


def test_synthetic_labels_stretches_and_seed(tmp_path):
    runs = generate_runs(n_runs=120, seed=3, **SHARES)
    assert generate_runs(n_runs=5, seed=3, **SHARES).keys() <= runs.keys()
    pd.testing.assert_frame_equal(generate_runs(5, seed=3, **SHARES)["synthetic-workflow-run0005"],
                                  runs["synthetic-workflow-run0005"])  # fmt: skip
    assert not generate_runs(5, seed=4, **SHARES)["synthetic-workflow-run0001"].equals(
        runs["synthetic-workflow-run0001"]
    )
    jobs = pd.concat(frame.assign(run=name) for name, frame in runs.items())
    jobs["job"] = jobs.index
    assert list(runs["synthetic-workflow-run0001"].columns) == list(COLUMNS)
    assert (jobs.loc[jobs["type"] != "compute", "anomaly_type"] == "None").all()
    kinds = jobs[jobs["anomaly_type"] != "None"].groupby("run")["anomaly_type"].nunique()
    assert (kinds == 1).all() and len(kinds) > 40
    assert set(jobs["anomaly_type"]) == {"None", "cpu_2", "cpu_3", "cpu_4", "hdd_5", "hdd_10"}
    simulate = jobs[jobs["job"].str.startswith("simulate_")]
    mean = simulate.groupby("anomaly_type")[
        ["runtime", "kickstart_executables_cpu_time", "stage_in_delay", "stage_out_delay"]
    ].mean()
    for kind in CPU_STRETCH:
        assert mean.loc[kind, "runtime"] > 1.4 * mean.loc["None", "runtime"]
        assert mean.loc[kind, "kickstart_executables_cpu_time"] > 1.4 * mean.loc["None"].iloc[1]
    for kind in ("hdd_5", "hdd_10"):
        assert mean.loc[kind, "stage_in_delay"] > 2 * mean.loc["None", "stage_in_delay"]
        assert mean.loc[kind, "stage_out_delay"] > 2 * mean.loc["None", "stage_out_delay"]
    # a job is ready when its parents' post scripts have ended
    run = runs["synthetic-workflow-run0001"]
    merge = next(s for s in job_specs() if s.name.startswith("merge_"))
    assert run.loc[merge.name, "ready"] == max(run.loc[list(merge.parents), "post_script_end"])


def test_synthetic_files_process_like_real_data(tmp_path):
    raw = write_synthetic(tmp_path / "raw", n_runs=30, seed=1, **SHARES)
    # a smaller rerun removes stale runs
    write_synthetic(tmp_path / "raw", n_runs=20, seed=1, **SHARES)
    assert len(list((tmp_path / "raw").glob("*.csv"))) == 20
    header = (tmp_path / "raw" / "synthetic-workflow-run0001.csv").read_text().splitlines()[0]
    assert header.split(",") == ["", *COLUMNS]
    summary = process(raw.folder, tmp_path / "d", dag=raw.dag, name="syn")
    assert summary.rows["all"] == 20 * 12 and summary.runs == {
        "all": 20, "train": 16, "validation": 2, "test": 2,
    }  # fmt: skip
    table = pd.read_csv(tmp_path / "d" / "syn" / "all.csv")
    assert list(table["job"][:12]) == dag_order(synthetic_dag())


def test_cli_writes_the_splits(runs, tmp_path, script):
    data = tmp_path / "data"
    result = script(
        "data_processing/flowbench.py", "--raw", str(runs), "--dag", str(runs / "demo.json"),
        "--name", "demo", "--template", "newer", "--data_dir", str(data),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert all((data / "demo" / f"{s}.csv").is_file() for s in ("all", "train", "validation"))
    assert "validation" in result.stdout and "share" in result.stdout
    assert "warning: filled 24 missing values" in result.stderr
    result = script(
        "data_processing/synthetic_workflow.py", "--runs", "10", "--raw_dir",
        str(tmp_path / "raw_syn"), "--data_dir", str(data), "--multiclass",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (data / "synthetic_workflow" / "test.csv").is_file() and "labels: None" in result.stdout


def test_cli_bad_input_is_one_error_line(runs, tmp_path, script):
    run = "data_processing/flowbench.py"
    assert_user_error(script(run, "--raw", str(tmp_path / "missing.zip")), "no such file")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"x": []}))
    result = script(
        run, "--raw", str(runs), "--name", "demo", "--dag", str(other), "--data_dir", str(tmp_path)
    )
    assert_user_error(result, "does not match the jobs")
    result = script(
        run, "--raw", str(runs), "--name", "demo", "--split", "0.5,0.5", "--data_dir", str(tmp_path)
    )
    assert_user_error(result, "split")
    result = script(
        run, "--raw", str(runs), "--name", "demo", "--features", "nope", "--data_dir", str(tmp_path)
    )
    assert_user_error(result, "unknown features")
    rows = {job: job_row(job, 0.0) for job in ORDER}
    write_run(runs, "demo-run0009", rows, drop=("anomaly_type",))
    assert_user_error(
        script(run, "--raw", str(runs), "--name", "demo", "--data_dir", str(tmp_path)),
        "anomaly_type",
    )
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("notes.txt", "")
    assert_user_error(script(run, "--raw", str(empty), "--dag", str(other)), "no run CSV")


def raw_counts(archive: Path) -> tuple[int, dict[str, int], dict[str, int]]:
    """Runs, jobs per run and label counts of a zip, counted with the csv module alone."""
    per_run, labels = {}, {}
    with zipfile.ZipFile(archive) as z:
        for name in z.namelist():
            rows = list(csv.DictReader(io.StringIO(z.read(name).decode())))
            per_run[Path(name).stem] = len(rows)
            for row in rows:
                labels[row["anomaly_type"]] = labels.get(row["anomaly_type"], 0) + 1
    return len(per_run), per_run, labels


@pytest.mark.integration
@pytest.mark.parametrize("name", ["eht_imaging", "pycbc_inference"])
def test_real_flowbench_zips(name, tmp_path):
    archive = SHARED_DATA / "flowbench" / f"{name}.zip"
    dag = SHARED_DATA / "flowbench" / "adjacency_list_dags" / f"{name}.json"
    if not archive.is_file():
        pytest.skip(f"{archive} is absent")
    n_runs, per_run, labels = raw_counts(archive)
    began = time.perf_counter()
    summary = process(archive, tmp_path, dag=dag, name=name)
    assert time.perf_counter() - began < 20
    assert summary.rows["all"] == sum(per_run.values()) and summary.runs["all"] == n_runs
    assert summary.label_counts["all"] == labels
    splits = {s: load_split(tmp_path, name, s) for s in ("train", "validation", "test")}
    runs = {s: set(f["run"]) for s, f in splits.items()}
    assert sum(len(r) for r in runs.values()) == len(set().union(*runs.values())) == n_runs
    assert abs(len(runs["train"]) - 0.8 * n_runs) <= 1
    for label, count in labels.items():
        assert sum(summary.label_counts[s][label] for s in splits) == count
    for split, frame in splits.items():
        assert len(frame) == sum(per_run[r] for r in runs[split]) == summary.rows[split]
        assert frame["label"].sum() == summary.anomalous[split]
    order = dag_order(json.loads(dag.read_text()))
    first = load_split(tmp_path, name, "all").groupby("run")["job"].apply(list).iloc[0]
    assert first == order
