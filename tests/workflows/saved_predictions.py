"""Check the predictions files train_classifier.py leaves next to its results CSV.

Shared by the tests of the comparison rows (tests/workflows/test_classifier*.py).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

from lmad.workflows.data import WorkflowData
from lmad.workflows.results import PREDICTION_COLUMNS


def assert_saved_predictions(results: pd.DataFrame, data: WorkflowData) -> dict[str, pd.DataFrame]:
    """Every line of ``results`` (the results CSV) has a predictions file that matches it.

    One line per scored test row (``n_test``) with the run, job and binary label of that test.csv
    row; the row's accuracy (binary data), ROC-AUC and AP are sklearn's on the saved file.
    Returns the files by method and model.
    """
    test = data.test.reset_index(drop=True)
    found = {}
    for _, row in results.iterrows():
        saved = pd.read_csv(
            row["predictions_file"], keep_default_na=False, na_values=[""],
            float_precision="round_trip",  # the scores exactly as written
        )  # fmt: skip
        name = f"{row['method']} / {row['model']}"
        assert tuple(saved.columns[:6]) == PREDICTION_COLUMNS, (name, list(saved.columns))
        assert len(saved) == row["n_test"] and saved["row"].is_monotonic_increasing, name
        positions = saved["row"].to_numpy()
        assert saved["label"].tolist() == data.binary_labels("test")[positions].tolist(), name
        for column in ("run", "job"):
            expected = test.loc[positions, column].astype(str).tolist()
            assert saved[column].astype(str).tolist() == expected, name
        assert set(saved["prediction"]) <= {0, 1}, name
        assert row["accuracy"] == pytest.approx(accuracy_score(saved["label"], saved["prediction"]))
        if saved["score"].isna().all():
            assert math.isnan(row["roc_auc"]) and math.isnan(row["ap"]), name
        else:
            auc = roc_auc_score(saved["label"], saved["score"])
            ap = average_precision_score(saved["label"], saved["score"])
            assert row["roc_auc"] == pytest.approx(auc, rel=1e-12), name
            assert row["ap"] == pytest.approx(ap, rel=1e-12), name
        found[name] = saved
    return found
