"""What train_classifier.py leaves for a researcher to reuse: each row's predictions file, ROC-AUC
and AP from its scores, train time apart from evaluation time, and --models none."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from transformers import TrainerCallback

from lmad.report.tables import Table
from lmad.workflows import classifier
from lmad.workflows.baselines import run_baselines
from lmad.workflows.comparison import (
    TABLE_COLUMNS,
    ComparisonOptions,
    ComparisonReport,
    RowRecorder,
)
from lmad.workflows.data import classification_scores
from lmad.workflows.results import PREDICTION_COLUMNS, ranking_scores
from tests.conftest import assert_user_error
from tests.workflows.saved_predictions import assert_saved_predictions
from tests.workflows.test_classifier import (  # noqa: F401  (one_torch_thread: autouse fixture)
    SEED,
    load,
    one_torch_thread,
    settings,
    tiny_bert,
    write_dataset,
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), "toy")


@pytest.fixture(scope="module")
def data(data_dir):
    return load(data_dir, "toy")


def comparison_options(data_dir) -> ComparisonOptions:
    return ComparisonOptions(
        dataset="toy", data_dir=str(data_dir), model="minilm", epochs=1.0, lr=1e-3, batch_size=4,
        seed=SEED, k_shot=0, llm_models="m.yaml", keys="k.yaml",
    )  # fmt: skip


def recorder(data, tmp_path) -> tuple[RowRecorder, ComparisonReport]:
    options = comparison_options(tmp_path)
    report = ComparisonReport(
        Table(list(TABLE_COLUMNS)), options.results_path(), options.predictions_dir()
    )
    return RowRecorder(options, report, data), report


# -- ROC-AUC and AP -------------------------------------------------------------------------------
def test_ranking_scores_by_hand():
    # scikit-learn's own example: one swapped pair of four -> ROC-AUC 3/4; AP = 1/2 * 1 + 1/2 * 2/3
    found = ranking_scores([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert found == pytest.approx({"roc_auc": 0.75, "ap": 5 / 6})
    assert ranking_scores([0, 1, 1], [-np.inf, 3.0, np.inf]) == {"roc_auc": 1.0, "ap": 1.0}
    for labels, scores in (([0, 1], None), ([1, 1], [0.2, 0.9]), ([0, 1], [0.2, np.nan])):
        assert all(math.isnan(v) for v in ranking_scores(labels, scores).values())


# -- the recorder: predictions file, ROC-AUC / AP columns, table ----------------------------------
def test_recorder_writes_each_rows_predictions_and_ranking_columns(data, tmp_path):
    record, report = recorder(data, tmp_path)
    n = len(data.test)
    truth = data.binary_labels("test")
    scores = np.random.default_rng(0).random(n) + 0.5 * truth  # informative, not perfect
    predictions = (scores > 0.75).astype(np.int64)
    scored = {
        "method": "fine-tune", "model": "org/model x", "train_time_s": 2.0, "eval_time_s": 0.5,
        **classification_scores(truth, predictions), "predictions": predictions,
        "scores": scores, "n_test": n,
    }  # fmt: skip
    positions = np.array([1, 4, 7])
    asked = np.array([1, 0, 0])
    unscored = {
        "method": "in-context (0-shot)", "model": "llm", "train_time_s": math.nan,
        "eval_time_s": 0.25, **classification_scores(truth[positions], asked),
        "predictions": asked, "scores": None, "positions": positions, "n_test": 3,
        "failed": [(7, "no category in reply 'hmm'")],
    }  # fmt: skip
    record(scored, epochs=1.0)
    record(unscored)

    folder = tmp_path / "results" / "classifier" / "toy"
    first = pd.read_csv(
        folder / "org_model_x_fine-tune_predictions.csv", float_precision="round_trip"
    )
    assert tuple(first.columns) == PREDICTION_COLUMNS
    assert first["row"].tolist() == list(range(n)) and first["label"].tolist() == truth.tolist()
    assert first["prediction"].tolist() == predictions.tolist()
    assert first["score"].tolist() == scores.tolist()  # exactly what the model gave
    assert set(first["run"]) == {"r0"} and set(first["job"]) == {"j"}
    second = pd.read_csv(folder / "llm_in-context_0-shot_predictions.csv", keep_default_na=False)
    assert second["row"].tolist() == [1, 4, 7] and second["prediction"].tolist() == [1, 0, 0]
    assert second["score"].tolist() == ["", "", ""]  # no score: no ROC-AUC, no AP
    assert second["failure"].tolist() == ["", "", "no category in reply 'hmm'"]

    results = pd.read_csv(report.results_path)
    assert results["roc_auc"].iloc[0] == pytest.approx(roc_auc_score(truth, scores), rel=1e-12)
    assert results["ap"].iloc[0] == pytest.approx(average_precision_score(truth, scores), rel=1e-12)
    assert 0.5 < results["roc_auc"].iloc[0] < 1.0
    assert results["eval_time_s"].tolist() == [0.5, 0.25] and results["epochs"].iloc[0] == 1.0
    assert_saved_predictions(results, data)
    assert report.table.columns == TABLE_COLUMNS
    cells = report.table.cells()
    assert cells[0][2:4] == ["2.0000", "0.5000"] and cells[1][2:4] == ["-", "0.2500"]
    assert cells[1][-2:] == ["-", "-"] and cells[0][-1] != "-"

    # a rerun replaces the file (atomically: nothing else is left in the folder)
    record({**scored, "predictions": 1 - predictions})
    again = pd.read_csv(folder / "org_model_x_fine-tune_predictions.csv")
    assert again["prediction"].tolist() == (1 - predictions).tolist()
    assert len(list(folder.iterdir())) == 2 and len(pd.read_csv(report.results_path)) == 3


def test_recorder_refuses_scores_that_do_not_line_up_with_the_test_rows(data, tmp_path):
    record, report = recorder(data, tmp_path)
    n = len(data.test)
    row = {"method": "m", "model": "x", "train_time_s": 1.0, "eval_time_s": 1.0,
           "accuracy": 1.0, "f1": 1.0, "precision": 1.0, "recall": 1.0,
           "predictions": np.zeros(n, dtype=int), "scores": np.zeros(n - 1)}  # fmt: skip
    with pytest.raises(ValueError, match=r"59 scores for 60 test rows"):
        record(row)
    assert not report.results_path.exists() and not report.table.rows  # nothing half-recorded


def test_multiclass_rows_predict_anomalous_and_score_one_minus_normal(data_dir, tmp_path):
    folder = tmp_path / "mc"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        frame = pd.read_csv(data_dir / "toy" / f"{split}.csv")
        anomaly = np.where(frame["stage_in_delay"] % 2 == 0, "cpu_2", "hdd_5")
        frame["label"] = np.where(frame["label"] == 1, anomaly, "None")
        frame.to_csv(folder / f"{split}.csv", index=False)
    multi = load(tmp_path, "mc")
    assert multi.label_names == ["None", "cpu_2", "hdd_5"]
    for result in run_baselines(multi, None, SEED):
        classes = result["class_predictions"]
        assert set(classes.tolist()) <= {0, 1, 2}
        assert result["predictions"].tolist() == (classes != 0).astype(int).tolist()
        # accuracy, F1, precision, recall stay on the class ids (macro), as before
        kept = classification_scores(multi.labels("test"), classes, 3)
        assert {k: result[k] for k in kept} == pytest.approx(kept)
        assert np.all((result["scores"] >= 0) & (result["scores"] <= 1))
        ranked = ranking_scores(multi.binary_labels("test"), result["scores"])
        assert ranked["roc_auc"] > 0.9  # runtime separates normal from either anomaly


# -- train time apart from evaluation time ----------------------------------------------------------
def test_train_time_excludes_the_validation_passes(data, tmp_path_factory, tmp_path, monkeypatch):
    """Each validation pass 'takes' 1000 s on a fake clock: all of it lands in eval time."""
    bert = tiny_bert(tmp_path_factory.mktemp("bert"), data.texts("train"))
    slow = [0.0]
    real = classifier.clock
    monkeypatch.setattr(classifier, "clock", lambda: real() + slow[0])

    class SlowEvaluation(TrainerCallback):
        def on_evaluate(self, *args, **kwargs):  # runs inside Trainer.evaluate
            slow[0] += 1000.0

    args = settings(
        str(bert), tmp_path / "run", epochs=2, lr=5e-3, callbacks=[SlowEvaluation()],
        save_final_model=False,
    )  # fmt: skip
    result = classifier.train_classifier(data, args)
    assert slow[0] == 2000.0  # one validation pass per epoch
    assert 0 < result["train_time_s"] < 1000, result["train_time_s"]
    assert 2000 <= result["eval_time_s"] < 3000, result["eval_time_s"]


# -- --models none -----------------------------------------------------------------------------------
def test_models_none_runs_only_the_baseline_rows(script, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    root = write_dataset(tmp_path / "data", "toy")
    run = script(
        "train_classifier.py", "--dataset", "toy", "--data_dir", str(root), "--models", "none"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "fine-tune" not in run.stdout and "zero-shot embedding" in run.stdout
    results = pd.read_csv(root / "results" / "classifier" / "toy.csv")
    assert results["method"].tolist() == ["baseline", "baseline", "zero-shot embedding"]
    assert results["model"].tolist()[:2] == ["logistic regression", "gradient-boosted trees"]
    assert not (root / "models").exists()  # nothing fine-tuned, no checkpoint folder
    assert (results["eval_time_s"] > 0).all()
    assert_saved_predictions(results, load(root, "toy"))


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--models", ""], "--models none"),
        (["--models", " , "], "--models none"),
        (["--models", "none,minilm"], "cannot go with other models"),
        (["--models", "none", "--baselines", "False"], "no row to run"),
    ],
)
def test_models_that_name_nothing_are_user_errors(flags, needle, script, tmp_path):
    run = script("train_classifier.py", "--dataset", "toy", "--data_dir", str(tmp_path), *flags)
    assert_user_error(run, needle)
    assert not any(tmp_path.iterdir())
