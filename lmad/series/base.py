"""The series every loader returns, and the checks every loader applies.

Contract (docs/design.md, "Series and windows"): values are float arrays of shape (time, channels);
labels are int 0/1 of shape (time,); an optional per-point type annotation uses 0 = normal and 1..5
for the five TAMA anomaly types.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lmad.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """Published defaults of one dataset: window, stride and the TAMA image look."""

    window_size: int = 600
    stride: int = 200
    width: int = 1800
    height: int = 400
    x_ticks: int = 10
    download: str = ""


@dataclass
class SeriesData:
    """One series of a dataset: train split, test split and test labels.

    Attributes:
        dataset: registered dataset name.
        series_id: the id used on the command line (``135``, ``P-1``, ``machine-1-1``).
        train: (time, channels) float64 values of the anomaly-free (or mostly free) train split.
        test: (time, channels) float64 values of the test split.
        test_labels: (time,) int8 0/1 labels of the test split.
        train_labels: (time,) int8 labels of the train split (zeros when the dataset has none).
        test_types: optional (time,) int8 type annotation of the test split.
        channel_names: one name per channel.
    """

    dataset: str
    series_id: str
    train: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    train_labels: np.ndarray | None = None
    test_types: np.ndarray | None = None
    channel_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        where = f"{self.dataset} series {self.series_id}"
        self.train = clean_values(as_2d(self.train, where + " train"), where + " train")
        self.test = clean_values(as_2d(self.test, where + " test"), where + " test")
        if self.train.shape[1] != self.test.shape[1]:
            raise DataError(
                f"{where}: train has {self.train.shape[1]} channels but test has "
                f"{self.test.shape[1]}; both splits must have the same channels"
            )
        self.test_labels = check_labels(self.test_labels, len(self.test), where + " test labels")
        if self.train_labels is None:
            self.train_labels = np.zeros(len(self.train), dtype=np.int8)
        self.train_labels = check_labels(
            self.train_labels, len(self.train), where + " train labels"
        )
        if self.test_types is not None:
            self.test_types = np.asarray(self.test_types, dtype=np.int8).reshape(-1)
            if len(self.test_types) != len(self.test):
                raise DataError(
                    f"{where}: type annotation has {len(self.test_types)} points, "
                    f"the test series {len(self.test)}"
                )
        if not self.channel_names:
            self.channel_names = [str(i) for i in range(self.test.shape[1])]

    def split(self, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """Values and labels of ``mode`` (``train`` or ``test``)."""
        if mode == "train":
            return self.train, self.train_labels
        if mode == "test":
            return self.test, self.test_labels
        raise DataError(f"unknown mode {mode!r}; use train or test")


def as_2d(values: np.ndarray, where: str) -> np.ndarray:
    """Return ``values`` as a float64 (time, channels) array."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: values are not numeric ({exc})") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"{where}: expected a (time, channels) array, got shape {array.shape}")
    return array


def clean_values(values: np.ndarray, where: str) -> np.ndarray:
    """Interpolate NaN and inf linearly per channel, with a warning naming how many.

    A channel with no finite value at all cannot be interpolated and is refused.
    """
    bad = ~np.isfinite(values)
    if not bad.any():
        return values
    values = values.copy()
    for channel in range(values.shape[1]):
        missing = bad[:, channel]
        if not missing.any():
            continue
        if missing.all():
            raise DataError(
                f"{where}: channel {channel} has no finite value; drop the channel or fix the file"
            )
        index = np.arange(len(values))
        values[missing, channel] = np.interp(
            index[missing], index[~missing], values[~missing, channel]
        )
    log.warning(
        "%s: %d missing or non-finite value(s) interpolated linearly", where, int(bad.sum())
    )
    return values


def check_labels(labels: np.ndarray, length: int, where: str) -> np.ndarray:
    """Return labels as int8 0/1 of ``length`` points, or raise a :class:`DataError`."""
    array = np.asarray(labels).reshape(-1)
    if len(array) != length:
        raise DataError(f"{where}: {len(array)} labels for a series of {length} points")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError(f"{where}: labels contain NaN")
    values = set(np.unique(array).tolist())
    if not values <= {0, 1}:
        raise DataError(f"{where}: labels must be 0 or 1, found {sorted(values)[:5]}")
    return array.astype(np.int8)


def split_single_series(
    values: np.ndarray, labels: np.ndarray, train_fraction: float, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split a series published as one file into train (leading part) and test (the rest).

    Datasets such as TSB-UAD's NormA and ECG or the Dodgers loop sensor have no separate train file.
    The first ``train_fraction`` of the points become the train split, from which only windows
    without labelled anomalies serve as normal references; the remainder is the test split, so no
    test point is ever shown as a reference.
    """
    if not 0.0 < train_fraction < 1.0:
        raise DataError(f"{where}: train_fraction must lie in (0, 1), got {train_fraction}")
    cut = round(len(values) * train_fraction)
    if cut < 1 or cut >= len(values):
        raise DataError(f"{where}: series of {len(values)} points is too short to split")
    return values[:cut], labels[:cut], values[cut:], labels[cut:]


def require_files(paths: list[Path], dataset: str, hint: str) -> None:
    """Raise a :class:`DataError` naming the first missing file and where to get the data."""
    for path in paths:
        if not path.exists():
            raise DataError(f"{dataset}: missing {path}; {hint}")


def intervals_to_labels(length: int, intervals: list[tuple[int, int]]) -> np.ndarray:
    """0/1 labels of ``length`` points with ``[start, end)`` intervals set to 1 (clipped)."""
    labels = np.zeros(length, dtype=np.int8)
    for start, end in intervals:
        labels[max(0, int(start)) : min(length, int(end))] = 1
    return labels
