"""The split CSVs every workflow method reads (lmad.workflows.data): label ids, missing data, the
four scores and the seeded test-row sample."""

from __future__ import annotations

import pandas as pd
import pytest

from lmad.errors import DataError
from lmad.workflows.data import classification_scores, sample_positions
from tests.workflows.test_classifier import SEED, load


def test_multiclass_labels_keep_none_first_and_map_to_ids(tmp_path):
    folder = tmp_path / "mc"
    folder.mkdir()
    labels = ["None", "cpu_2", "hdd_10", "cpu_10", "hdd_5", "None"]
    frame = pd.DataFrame({"text": [f"runtime is {i}" for i in range(6)], "label": labels})
    for split in ("train", "validation", "test"):
        frame.to_csv(folder / f"{split}.csv", index=False)
    loaded = load(tmp_path, "mc")
    assert loaded.label_names == ["None", "cpu_2", "cpu_10", "hdd_5", "hdd_10"]
    assert loaded.labels("test").tolist() == [0, 1, 4, 2, 3, 0]
    assert loaded.binary_labels("test").tolist() == [0, 1, 1, 1, 1, 0]
    assert loaded.feature_columns == []


def test_scores_by_hand():
    # binary: TP=2 FP=1 FN=1 TN=2
    s = classification_scores([1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 0, 0])
    assert s == pytest.approx({"accuracy": 4 / 6, "f1": 2 / 3, "precision": 2 / 3, "recall": 2 / 3})
    # macro over 3 classes: per-class P = (1, 1/3, 0), R = (1/2, 1, 0), F1 = (2/3, 1/2, 0)
    m = classification_scores([0, 0, 1, 2], [0, 1, 1, 1], num_labels=3)
    assert m["precision"] == pytest.approx(4 / 9) and m["recall"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(7 / 18) and m["accuracy"] == 0.5


def test_missing_columns_and_missing_dataset(tmp_path):
    with pytest.raises(DataError, match=r"data_processing/flowbench\.py"):
        load(tmp_path, "absent")
    folder = tmp_path / "bad"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        pd.DataFrame({"sentence": ["a"], "y": [0]}).to_csv(folder / f"{split}.csv", index=False)
    with pytest.raises(DataError, match=r"missing column.*text, label"):
        load(tmp_path, "bad")


def test_sample_positions_is_seeded_and_sorted():
    a = sample_positions(100, 10, seed=3)
    assert a.tolist() == sorted(a.tolist()) and len(set(a)) == 10
    assert a.tolist() == sample_positions(100, 10, seed=3).tolist()
    assert sample_positions(5, None, SEED).tolist() == [0, 1, 2, 3, 4]
