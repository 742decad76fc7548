"""Reading what make_dataset wrote, and choosing normal reference windows from the train split."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmad.errors import DataError
from lmad.series.defaults import subtask_flag
from lmad.series.windows import window_name


@dataclass
class ProcessedSplit:
    """One split of one series as written by make_dataset."""

    folder: Path
    meta: dict
    windows: np.ndarray  # (n_windows, window_size, channels)
    labels: np.ndarray  # (n_windows, window_size)

    @property
    def starts(self) -> list[int]:
        return self.meta["starts"]

    def png(self, window: int, channel: int) -> bytes:
        return (self.folder / "image" / f"{window_name(window, channel)}.png").read_bytes()

    def has(self, modality: str) -> bool:
        return modality in self.meta.get("modalities", {}) and (self.folder / modality).is_dir()


def make_dataset_hint(dataset: str, mode: str, modality: str, subtask: str) -> str:
    return (
        f"python make_dataset.py --dataset {dataset} --mode {mode} --modality {modality}"
        + subtask_flag(subtask)
    )


def load_split(
    root: Path, dataset: str, series_id: str, mode: str, modality: str, subtask: str
) -> ProcessedSplit:
    """Load ``<root>/<series>/<mode>``; a missing piece names the command that makes it."""
    folder = root / series_id / mode
    hint = make_dataset_hint(dataset, mode, modality, subtask)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        windows = np.load(folder / "windows.npy")
        labels = np.load(folder / "labels.npy")
    except (OSError, ValueError):
        raise DataError(f"no processed {mode} windows in {folder}; run first: {hint}") from None
    split = ProcessedSplit(folder, meta, windows, labels)
    expected = (len(meta.get("starts", [])), meta.get("window_size"))
    if windows.ndim != 3 or windows.shape[:2] != expected or labels.shape != windows.shape[:2]:
        raise DataError(
            f"{folder}: windows.npy {windows.shape} and labels.npy {labels.shape} do not match "
            f"meta.json ({expected[0]} windows of {expected[1]} points); run again: {hint}"
        )
    if not split.has(modality):
        raise DataError(f"no {modality} files for {mode} windows in {folder}; run first: {hint}")
    return split


def processed_series_ids(root: Path, dataset: str, modality: str, subtask: str) -> list[str]:
    """Series with processed test windows under ``root``."""
    ids = sorted(p.parent.parent.name for p in root.glob("*/test/meta.json"))
    if not ids:
        hint = make_dataset_hint(dataset, "test", modality, subtask)
        raise DataError(f"no processed windows under {root}; run first: {hint}")
    return ids


def normal_windows(split: ProcessedSplit) -> list[int]:
    """Windows of ``split`` without a labelled anomaly point."""
    return [int(w) for w in range(len(split.windows)) if split.labels[w].sum() == 0]


def choose_references(
    train: ProcessedSplit, n: int, seed: int, series: str, channel: int
) -> list[int]:
    """``n`` anomaly-free train windows, drawn reproducibly per (seed, series, channel).

    References come from the train split only (TAMA fell back to test windows: test leakage).
    """
    if n <= 0:
        return []
    normal = normal_windows(train)
    if not normal:
        raise DataError(f"series {series}: the train split has no anomaly-free window to show")
    stream = zlib.crc32(f"{seed}/{series}/{channel}".encode())
    rng = np.random.default_rng(stream)
    chosen = rng.choice(normal, size=min(n, len(normal)), replace=False)
    return sorted(int(w) for w in chosen)
