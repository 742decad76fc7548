"""What every workflow method shares: the split CSVs, the four scores and the test-row sample.

    data = load_workflow_data("data", "eht_imaging", train_limit=None, seed=0)
    data.texts("test"), data.labels("test"), data.binary_labels("test"), data.feature_columns
    classification_scores(y_true, y_pred, data.num_labels)

The processed data set is ``<data_dir>/<dataset>/{train,validation,test}.csv`` (columns
``text,label`` first; labels 0/1 or class names with the normal class first). Fine-tuning, the
feature baselines, the zero-shot and in-context rows and the log-anomaly rows all read it here.
(``lmad.workflows.classifier`` re-exports these names, where they used to live.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmad.errors import DataError

SPLITS = ("train", "validation", "test")
NON_FEATURES = ("text", "label", "run", "job", "anomaly_type")
NORMAL_NAMES = ("None", "none", "normal", "Normal", "0")


@dataclass
class WorkflowData:
    """The three splits of one processed data set; label ids index ``label_names`` (0 = normal)."""

    name: str
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    label_names: list[str] = field(default_factory=lambda: ["normal", "anomalous"])

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def split(self, name: str) -> pd.DataFrame:
        return getattr(self, name)

    def labels(self, split: str) -> np.ndarray:
        """Label ids of a split (int64)."""
        return self.split(split)["label_id"].to_numpy(dtype=np.int64)

    def binary_labels(self, split: str) -> np.ndarray:
        """1 for every anomalous class, 0 for normal."""
        return (self.labels(split) != 0).astype(np.int64)

    def texts(self, split: str) -> list[str]:
        return self.split(split)["text"].tolist()

    @property
    def feature_columns(self) -> list[str]:
        """Numeric columns besides text, label, run, job and anomaly type."""
        frame = self.train
        return [
            c
            for c in frame.columns
            if c not in NON_FEATURES and c != "label_id" and pd.api.types.is_numeric_dtype(frame[c])
        ]


def _natural_key(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _read_split(path: Path) -> pd.DataFrame:
    try:
        header = pd.read_csv(path, nrows=0).columns
        missing = [c for c in ("text", "label") if c not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected text,label")
        frame = pd.read_csv(path)
        # "None" (the normal class of the multi-class variant) must stay a name, not become NaN
        labels = pd.read_csv(path, usecols=["label"], dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:  # EmptyDataError is a ValueError
        first = (str(exc).splitlines() or [""])[0]
        raise DataError(f"{path}: not a readable CSV ({first})") from None
    frame["label"] = labels["label"].str.strip()
    frame["text"] = frame["text"].fillna("").astype(str)
    return frame


def label_names_of(values: list[str]) -> list[str]:
    """Class names in id order: binary 0/1 as normal/anomalous, else the normal class first."""
    distinct = sorted(set(values), key=_natural_key)
    if set(distinct) <= {"0", "1"}:
        return ["normal", "anomalous"]
    normal = [n for n in NORMAL_NAMES if n in distinct][:1]
    return normal + [n for n in distinct if n not in normal]


def load_workflow_data(
    data_dir: str | Path,
    dataset: str,
    train_limit: int | None,
    seed: int,
) -> WorkflowData:
    """Read ``<data_dir>/<dataset>/{train,validation,test}.csv`` (columns ``text,label`` first).

    Labels may be 0/1 or class names (``None``, ``cpu_K``, ``hdd_K``); names get ids with the
    normal class first. ``train_limit`` keeps a seeded sample of that many train rows.
    """
    folder = Path(data_dir) / dataset
    missing = [s for s in SPLITS if not (folder / f"{s}.csv").exists()]
    if missing:
        raise DataError(
            f"no processed data set {dataset!r} in {folder} (missing {', '.join(missing)}.csv); "
            f"run python data_processing/flowbench.py --raw <zip or folder> --name {dataset} first, "
            f"or python data_processing/synthetic_workflow.py --name {dataset}"
        )
    frames = {s: _read_split(folder / f"{s}.csv") for s in SPLITS}
    for split in ("train", "test"):
        if frames[split].empty:
            raise DataError(f"{folder / f'{split}.csv'} has no rows; reprocess the data set")
    names = label_names_of([v for f in frames.values() for v in f["label"]])
    binary = names == ["normal", "anomalous"]
    index = {"0": 0, "1": 1} if binary else {n: i for i, n in enumerate(names)}
    for frame in frames.values():
        frame["label_id"] = frame["label"].map(index).astype(np.int64)
    if train_limit is not None and 0 < train_limit < len(frames["train"]):
        frames["train"] = frames["train"].sample(n=train_limit, random_state=seed).sort_index()
    return WorkflowData(dataset, frames["train"], frames["validation"], frames["test"], names)


def classification_scores(y_true: Any, y_pred: Any, num_labels: int = 2) -> dict[str, float]:
    """Accuracy, F1, precision, recall: binary (positive = 1) or macro-averaged over classes."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if num_labels <= 2:
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, average="binary", pos_label=1, zero_division=0
        )
    else:
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=list(range(num_labels)), average="macro", zero_division=0
        )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f),
        "precision": float(p),
        "recall": float(r),
    }


def sample_positions(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Row positions ``0..n-1``, or a seeded sample of ``limit`` of them in ascending order."""
    if limit is None or limit <= 0 or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
