"""DeepLog, LogAnomaly and LogBERT rows of train_classifier.py, end to end on a synthetic workflow:
anomalous jobs whose keys no normal run has are found, choices are made on validation, and a rerun
reuses the fitted models instead of training again."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from lmad.workflows.classifier import load_workflow_data
from lmad.workflows.log_anomaly import Choice, choose, job_f1
from lmad.workflows.log_keys import UNKNOWN, JobScores, JobSequences, keyed_splits
from lmad.workflows.synthetic import write_synthetic
from tests.conftest import assert_user_error
from tests.workflows.test_flowbench import SHARES, process

MODELS = ("deeplog", "loganomaly", "logbert")


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("logrows")
    raw = write_synthetic(root / "raw", n_runs=60, seed=5, **SHARES)
    process(raw.folder, root / "data", dag=raw.dag, name="syn")
    return root / "data"


def run_rows(script, data_dir, *extra):
    return script(
        "train_classifier.py", "--dataset", "syn", "--data_dir", str(data_dir),
        "--models", ",".join(MODELS), "--baselines", "False", "--key_quantiles", "0",
        "--windows", "3,5", "--sequence_epochs", "40", *extra,
    )  # fmt: skip


def test_rows_find_unseen_keys_and_a_rerun_trains_nothing(workflow, script):
    first = run_rows(script, workflow)
    assert first.returncode == 0, first.stderr
    results = pd.read_csv(workflow / "results" / "classifier" / "syn.csv")
    assert list(results["model"]) == list(MODELS)
    assert set(results["method"]) == {"log anomaly (normal runs only)"}
    data = load_workflow_data(workflow, "syn", None, 42)
    splits = keyed_splits(data.train, data.validation, data.test, data.feature_columns, 0.0)
    unseen = splits.test.to_rows(
        [(k == UNKNOWN).astype(float) for k in splits.test.keys], len(data.test)
    ).astype(bool)
    truth = (data.labels("test") != 0).astype(int)
    # the premise: anomalous jobs whose keys no normal train run has, normal jobs with known keys
    # (a normal test job beyond every normal train value gets an unseen key too, by construction)
    judged = (unseen & (truth == 1)) | (~unseen & (truth == 0))
    assert (unseen & (truth == 1)).sum() >= 5 and judged.sum() >= 0.8 * len(truth)
    models = workflow / "models" / "log_anomaly" / "syn"
    weights = {p: p.stat().st_mtime_ns for p in models.rglob("model.pt")}
    assert len(weights) == 2 + 2 + 1  # two windows each for deeplog and loganomaly, one logbert
    for model in MODELS:
        row = results[results["model"] == model].iloc[0]
        files = list(
            (workflow / "results" / "classifier" / "syn").glob(f"{model}*_predictions.csv")
        )
        assert len(files) == 1
        saved = pd.read_csv(files[0])
        assert list(saved["label"]) == list(truth)
        predicted = saved["prediction"].to_numpy()
        assert f1_score(truth[judged], predicted[judged]) >= 0.9, model
        assert row["f1"] == pytest.approx(f1_score(truth, predicted))
        assert 1 <= row["top_g"] <= 10 and row["train_time_s"] > 0 and row["eval_time_s"] > 0
    again = run_rows(script, workflow)
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in models.rglob("model.pt")} == weights
    rerun = pd.read_csv(workflow / "results" / "classifier" / "syn.csv").iloc[len(MODELS) :]
    for column in ("f1", "roc_auc", "train_time_s", "top_g", "window"):
        assert list(rerun[column].fillna(-1)) == list(results[column].fillna(-1)), column


def test_bad_sequence_flags_are_one_error_line(workflow, script):
    result = run_rows(script, workflow, "--windows", "0,x")
    assert_user_error(result, "--windows")
    result = run_rows(script, workflow, "--key_quantiles", "0.7")
    assert_user_error(result, "--key_quantiles")


def sequences(labels: list[list[int]]) -> JobSequences:
    keys = [np.full(len(lab), 2) for lab in labels]
    rows = np.split(np.arange(sum(map(len, labels))), np.cumsum([len(x) for x in labels])[:-1])
    texts = [["k"] * len(lab) for lab in labels]
    return JobSequences([f"r{i}" for i in range(len(labels))], keys,
                        [np.array(x) for x in labels], rows, texts)  # fmt: skip


def test_choice_is_the_best_validation_f1_with_ties_to_the_smaller():
    validation = sequences([[0, 1, 0], [1, 0, 0]])
    good = JobScores([np.array([1, 5, 1]), np.array([4, 1, 2])], [np.zeros(3), np.zeros(3)])
    worse = JobScores([np.array([5, 5, 5]), np.array([5, 5, 5])], [np.zeros(3), np.zeros(3)])
    choice = choose({(0.1, 5): good, (0.02, 3): worse, (0.1, 3): good}, validation, 4)
    assert choice == Choice(0.1, 3, 2, 1.0)  # g = 2 and 3 both reach F1 1: the smaller g
    assert job_f1(validation, good.flagged(2)) == 1.0
    # all six jobs flagged: precision 2/6, recall 1, F1 = 2 * (1/3) / (1/3 + 1) = 0.5
    assert job_f1(validation, worse.flagged(1)) == pytest.approx(0.5)
