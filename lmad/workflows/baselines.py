"""Plain classifiers on the numeric job features: does the language model beat them?

Both train on the train split's numeric columns (the delays, byte counts and cpu time the job
sentences are written from) and are scored on the test split like the fine-tuned models:

- logistic regression on standardised features (missing values imputed with the train median);
- gradient-boosted trees (scikit-learn's ``HistGradientBoostingClassifier``, which takes missing
  values as they are).

Each row's ``scores`` are the predicted probability of the anomalous class(es), 1 - P(normal);
``train_time_s`` is the fit, ``eval_time_s`` the prediction on test.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from lmad.errors import DataError
from lmad.workflows.data import WorkflowData, classification_scores
from lmad.workflows.results import anomaly_probability, binary_predictions

BASELINES = ("logistic regression", "gradient-boosted trees")


def _model(name: str, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logistic regression":
        return make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(max_iter=2000, random_state=seed),
        )
    if name == "gradient-boosted trees":
        return HistGradientBoostingClassifier(random_state=seed)
    raise ValueError(f"unknown baseline {name!r}; use one of {', '.join(BASELINES)}")


def feature_matrix(data: WorkflowData, split: str, columns: list[str]) -> np.ndarray:
    """The numeric ``columns`` of a split as float64 (NaN kept)."""
    frame = data.split(split)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{data.name} {split}.csv lacks feature column(s) {', '.join(missing)}")
    return frame[columns].to_numpy(dtype=np.float64)


def run_baseline(
    data: WorkflowData, name: str, columns: list[str] | None, seed: int
) -> dict[str, Any]:
    """Fit one baseline on train, score it on test; ``columns`` None: every numeric feature.

    Returns ``model``, ``method`` (``baseline``), ``train_time_s`` (the fit), ``eval_time_s`` (the
    test prediction), ``accuracy``, ``f1``, ``precision``, ``recall`` (on the class ids: binary, or
    macro over the classes), ``predictions`` (0/1: any anomalous class is 1),
    ``class_predictions`` (class ids), ``scores`` (1 - P(normal)), ``features`` and ``n_test``.

    Raises:
        DataError: the CSVs have no numeric feature columns (only ``text,label``).
    """
    columns = columns or data.feature_columns
    if not columns:
        raise DataError(
            f"{data.name}: no numeric feature columns next to text,label; the baselines need "
            "them (reprocess with data_processing/flowbench.py, or turn --baselines False)"
        )
    x_train = feature_matrix(data, "train", columns)
    x_test = feature_matrix(data, "test", columns)
    y_train = data.labels("train")
    if len(np.unique(y_train)) < 2:
        raise DataError(f"{data.name}: the train split holds one class only; nothing to learn")
    model = _model(name, seed)
    start = time.perf_counter()
    model.fit(x_train, y_train)
    train_time = time.perf_counter() - start
    start = time.perf_counter()
    predicted = np.asarray(model.predict(x_test), dtype=np.int64)
    scores = anomaly_probability(model.predict_proba(x_test), model.classes_)
    eval_time = time.perf_counter() - start
    return {
        "model": name,
        "method": "baseline",
        "train_time_s": train_time,
        "eval_time_s": eval_time,
        **classification_scores(data.labels("test"), predicted, data.num_labels),
        "predictions": binary_predictions(predicted),
        "class_predictions": predicted,
        "scores": scores,
        "features": list(columns),
        "n_test": len(predicted),
    }


def run_baselines(data: WorkflowData, columns: list[str] | None, seed: int) -> list[dict[str, Any]]:
    """Logistic regression and gradient-boosted trees, in that order."""
    return [run_baseline(data, name, columns, seed) for name in BASELINES]
