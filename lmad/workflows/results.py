"""What every row of train_classifier.py's table leaves behind: its test predictions and scores.

Every row function (fine-tuning, the feature baselines, the zero-shot and in-context rows, the
log-anomaly rows) returns a result dict with, besides ``method``, ``model`` and the four scores:

- ``predictions``: 0/1 per scored test row (1 = anomalous; every anomalous class of the
  multi-class variant is 1), an integer array;
- ``scores``: a float per scored test row, higher = more anomalous, or None when the method has
  no score (in-context prompting answers with a category only);
- ``positions`` (optional): the test.csv row positions scored, ascending; absent or None means
  every test row in order (a ``--limit`` sample of the NLI and in-context rows sets it);
- ``train_time_s`` (fitting only; NaN when nothing is fitted) and ``eval_time_s`` (validation and
  test prediction);
- ``failed`` (optional): ``[(position, reason)]`` of the rows the method could not answer; they
  keep the prediction the method counted them as (in-context: normal) and the reason is written.

:func:`ranking_scores` turns ``scores`` into ROC-AUC and average precision (binary, anomalous vs
normal) and :func:`write_predictions` writes ``<model>_<method>_predictions.csv`` (``row, run, job,
label, prediction, score``, plus ``failure`` when the row has ``failed``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from lmad.workflows.data import WorkflowData

PREDICTION_COLUMNS = ("row", "run", "job", "label", "prediction", "score")
"""Columns of a predictions file (``failure`` follows them for rows that report failures)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def binary_predictions(predicted: Any) -> np.ndarray:
    """0/1 (int64): 1 for every class id but 0 (normal)."""
    return (np.asarray(predicted) != 0).astype(np.int64)


def softmax(logits: Any) -> np.ndarray:
    """Row-wise softmax in float64."""
    values = np.asarray(logits, dtype=np.float64)
    values = values - values.max(axis=-1, keepdims=True)
    exp = np.exp(values)
    return exp / exp.sum(axis=-1, keepdims=True)


def anomaly_probability(probabilities: Any, classes: Sequence[int] | None = None) -> np.ndarray:
    """The probability of any anomalous class: 1 - P(class 0) per row (float64).

    ``classes`` are the ids of the columns (scikit-learn's ``classes_``); None: 0, 1, 2, ...
    A model that never saw the normal class gives 1 everywhere.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    ids = np.arange(probabilities.shape[1]) if classes is None else np.asarray(classes)
    normal = probabilities[:, ids == 0].sum(axis=1)
    return np.clip(1.0 - normal, 0.0, 1.0)


def ranking_scores(labels: Any, scores: Any) -> dict[str, float]:
    """``roc_auc`` and ``ap`` (average precision) of ``scores`` against 0/1 ``labels``.

    Both are NaN when there are no scores, when the labels hold one class only, or when a score is
    NaN. Infinite scores keep their rank (both measures depend only on the order).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    nan = {"roc_auc": math.nan, "ap": math.nan}
    if scores is None:
        return nan
    labels = np.asarray(labels, dtype=np.int64)
    values = np.asarray(scores, dtype=np.float64).copy()
    if len(values) != len(labels) or len(np.unique(labels)) < 2 or np.isnan(values).any():
        return nan
    finite = values[np.isfinite(values)]
    high, low = (finite.max(), finite.min()) if len(finite) else (0.0, 0.0)
    values[values == np.inf] = high + 1.0
    values[values == -np.inf] = low - 1.0
    return {
        "roc_auc": float(roc_auc_score(labels, values)),
        "ap": float(average_precision_score(labels, values)),
    }


def row_positions(result: dict[str, Any], n_test: int) -> np.ndarray:
    """The test rows a result scored (its ``positions``, else all ``n_test``), checked against it.

    Raises:
        ValueError: ``predictions`` or ``scores`` do not have one entry per position.
    """
    positions = result.get("positions")
    positions = np.arange(n_test) if positions is None else np.asarray(positions, dtype=np.int64)
    if len(positions) and (positions.min() < 0 or positions.max() >= n_test):
        raise ValueError(f"{describe(result)}: positions outside the {n_test} test rows")
    for key in ("predictions", "scores"):
        value = result.get(key)
        if value is not None and len(value) != len(positions):
            raise ValueError(
                f"{describe(result)}: {len(value)} {key} for {len(positions)} test rows; the "
                "result dict needs one per test row (or per entry of 'positions')"
            )
    return positions


def describe(result: dict[str, Any]) -> str:
    return f"row {result.get('method')!r} / {result.get('model')!r}"


def predictions_name(result: dict[str, Any]) -> str:
    """``<model>_<method>_predictions.csv`` made safe as one file name (model alone can repeat:
    the MiniLM fine-tune and embedding zero-shot rows share it)."""
    from lmad.names import check_name

    parts = [_UNSAFE.sub("_", str(result[key])).strip("._") for key in ("model", "method")]
    name = "_".join(p for p in parts if p) or "row"
    return check_name(f"{name}_predictions.csv", "predictions file")


def predictions_frame(data: WorkflowData, result: dict[str, Any]) -> pd.DataFrame:
    """One line per scored test row: position, run, job, binary label, prediction, score."""
    import pandas as pd

    test = data.test
    positions = row_positions(result, len(test))
    n = len(positions)
    frame = pd.DataFrame({"row": positions})
    for column in ("run", "job"):
        values = test[column].to_numpy()[positions] if column in test.columns else [""] * n
        frame[column] = values
    frame["label"] = data.binary_labels("test")[positions]
    predictions = result.get("predictions")
    frame["prediction"] = (
        pd.array([pd.NA] * n, dtype="Int64")
        if predictions is None
        else binary_predictions(predictions)
    )
    scores = result.get("scores")
    frame["score"] = np.full(n, np.nan) if scores is None else np.asarray(scores, dtype=float)
    if "failed" in result:
        reasons = {int(p): str(reason) for p, reason in result["failed"]}
        frame["failure"] = [reasons.get(int(p), "") for p in positions]
    return frame


def write_predictions(folder: str | Path, data: WorkflowData, result: dict[str, Any]) -> Path:
    """Write (atomically, replacing a rerun's) the predictions file of ``result`` under ``folder``."""
    from lmad.io import atomic_write_text

    frame = predictions_frame(data, result)
    path = Path(folder) / predictions_name(result)
    return atomic_write_text(path, frame.to_csv(index=False))
