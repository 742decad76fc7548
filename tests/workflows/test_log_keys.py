"""Workflow runs as log-key sequences: job types, bucket edges from normal train jobs, DAG order,
rows that map back, and runs that never cross splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmad.errors import DataError
from lmad.workflows.classifier import load_workflow_data
from lmad.workflows.dag import dag_order
from lmad.workflows.log_keys import (
    PAD,
    UNKNOWN,
    JobScores,
    KeyScheme,
    Vocabulary,
    build_sequences,
    job_type,
    keyed_splits,
)
from lmad.workflows.synthetic import synthetic_dag, write_synthetic
from tests.workflows.test_flowbench import SHARES, process


def test_job_type_drops_instance_numbers():
    assert job_type("eht-imaging_pipeline_ID0000003") == "eht-imaging_pipeline"
    assert job_type("stage_out_local_condorpool_0_0") == "stage_out_local_condorpool"
    assert job_type("create_dir_eht-imaging_0_condorpool") == "create_dir_eht-imaging_condorpool"
    assert job_type("merge_ID0000008") == "merge"


def frame(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    """(run, job, runtime, label) rows as a split frame."""
    out = pd.DataFrame(rows, columns=["run", "job", "runtime", "label_id"])
    out["text"], out["label"] = "", out["label_id"]
    return out


def test_edges_come_from_normal_train_jobs_of_the_same_type():
    train = frame(
        [("r1", "a_ID01", float(v), 0) for v in range(1, 101)]
        + [("r2", "a_ID02", 1e6, 1)]  # anomalous: must not widen the edges
        + [("r3", "b_ID01", 500.0 + v, 0) for v in range(11)]
    )
    scheme = KeyScheme.fit(train, ["runtime"], 0.05)
    low, high = np.quantile(np.arange(1, 101, dtype=float), [0.05, 0.95])
    assert scheme.edges[("a", "runtime")] == (low, high)
    assert scheme.edges[("b", "runtime")] == (500.5, 509.5)
    assert scheme.key("a_ID07", [50.0]) == "a"
    assert scheme.key("a_ID07", [1e6]) == "a runtime=high"
    assert scheme.key("a_ID07", [0.0]) == "a runtime=low"
    assert scheme.key("c_ID01", [1e9]) == "c"  # a type never seen: no edges, its name alone
    with pytest.raises(DataError, match="missing queue_delay"):
        KeyScheme.fit(train, ["queue_delay"], 0.05)
    with pytest.raises(DataError, match="quantile"):
        KeyScheme.fit(train, ["runtime"], 0.5)


def test_sequences_keep_csv_order_rows_and_unknown_keys():
    train = frame([("r1", "a_ID1", 1.0, 0), ("r1", "b_ID2", 2.0, 0), ("r1", "c_ID3", 3.0, 0)])
    scheme = KeyScheme.fit(train, ["runtime"], 0.0)
    vocabulary = Vocabulary.of(scheme.keys(train))
    assert vocabulary.texts == ["<pad>", "<unknown>", "a", "b", "c"]
    test = frame(
        [("t1", "b_ID2", 2.0, 0), ("t2", "a_ID1", 1.0, 0), ("t1", "c_ID3", 99.0, 1),
         ("t2", "d_ID4", 1.0, 1)]
    )  # fmt: skip
    seqs = build_sequences(test, scheme, vocabulary)
    assert seqs.runs == ["t1", "t2"]
    assert [list(k) for k in seqs.keys] == [[3, UNKNOWN], [2, UNKNOWN]]
    assert seqs.texts == [["b", "c runtime=high"], ["a", "d"]]
    assert [list(r) for r in seqs.rows] == [[0, 2], [1, 3]]
    assert [list(lab) for lab in seqs.labels] == [[0, 1], [0, 1]]
    placed = seqs.to_rows([np.array([10.0, 11.0]), np.array([20.0, 21.0])], len(test))
    assert list(placed) == [10.0, 20.0, 11.0, 21.0]
    assert seqs.normal().runs == [] and len(seqs.subset([1])) == 1
    assert PAD not in np.concatenate(seqs.keys)


def test_top_g_rule():
    scores = JobScores([np.array([1, 3, 10])], [np.array([0.1, 2.0, 27.6])])
    assert [list(f) for f in scores.flagged(2)] == [[0, 1, 1]]
    assert [list(f) for f in scores.flagged(10)] == [[0, 0, 0]]


def test_runs_follow_the_dag_and_never_cross_splits(tmp_path):
    raw = write_synthetic(tmp_path / "raw", n_runs=30, seed=3, **SHARES)
    process(raw.folder, tmp_path / "d", dag=raw.dag, name="syn")
    data = load_workflow_data(tmp_path / "d", "syn", None, 42)
    splits = keyed_splits(data.train, data.validation, data.test, data.feature_columns, 0.02)
    order = [job_type(j) for j in dag_order(synthetic_dag())]
    runs = {}
    for name in ("train", "validation", "test"):
        seqs, table = getattr(splits, name), data.split(name)
        runs[name] = set(seqs.runs)
        rows = np.concatenate(seqs.rows)
        assert sorted(rows) == list(range(len(table)))  # every job once, in its own split
        for run, run_rows, labels in zip(seqs.runs, seqs.rows, seqs.labels):
            jobs = table["job"].to_numpy()[run_rows]
            assert set(table["run"].to_numpy()[run_rows]) == {run}
            assert [job_type(j) for j in jobs] == order  # DAG order within the run
            assert list(labels) == list((table["label_id"].to_numpy()[run_rows] != 0).astype(int))
    assert not runs["train"] & runs["validation"] and not runs["train"] & runs["test"]
    assert not runs["validation"] & runs["test"]
    normal = splits.train.normal()
    assert normal.runs and all(not lab.any() for lab in normal.labels)
    known = set(splits.vocabulary.ids(np.concatenate(normal.texts).tolist()))
    assert UNKNOWN not in known  # the vocabulary is made of the normal train keys
