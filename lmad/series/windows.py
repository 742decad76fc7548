"""Sliding windows over a series, per-channel normalisation, window labels and the structure file.

Windows start at ``i * stride`` and have ``window_size`` points; when the last of them does not reach
the series end, one trailing window ``[length - window_size, length)`` is added, so every point is
covered and every window has the same length (TAMA, Sec. 4.1).

TAMA's evaluation flags a point when the confidences (1..4) of the windows covering it sum to
``c0 = 9``, which needs three windows per point: stride = window / 3. :func:`max_point_coverage` and
:func:`c0_reachable` tell whether a window and stride can reach a threshold at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmad.errors import DataError


def window_starts(length: int, window_size: int, stride: int) -> np.ndarray:
    """Start indices of the windows over a series of ``length`` points, trailing window included."""
    if window_size <= 0:
        raise DataError(f"window_size must be positive, got {window_size}")
    if stride <= 0:
        raise DataError(f"stride must be positive, got {stride}")
    if window_size > length:
        raise DataError(
            f"window_size {window_size} is longer than the series ({length} points); "
            f"use --window_size {length} or less"
        )
    starts = list(range(0, length - window_size + 1, stride))
    if starts[-1] + window_size < length:
        starts.append(length - window_size)
    return np.asarray(starts, dtype=np.int64)


def cut_windows(values: np.ndarray, starts: np.ndarray, window_size: int) -> np.ndarray:
    """Stack ``values[start:start + window_size]`` for every start: (n_windows, window_size, ...)."""
    index = np.asarray(starts)[:, None] + np.arange(window_size)[None, :]
    return np.asarray(values)[index]


def point_coverage(length: int, starts: np.ndarray, window_size: int) -> np.ndarray:
    """How many windows cover each point (TAMA's threshold c0 assumes at most three)."""
    counts = np.zeros(length + 1, dtype=np.int64)
    np.add.at(counts, np.asarray(starts), 1)
    np.add.at(counts, np.asarray(starts) + window_size, -1)
    return np.cumsum(counts)[:length]


TAMA_C0 = 9.0
"""TAMA's point threshold: the summed confidence a point needs to be flagged."""
MAX_CONFIDENCE = 4
"""The largest confidence an answer may give one interval."""


def tama_stride(window_size: int) -> int:
    """TAMA's stride for a window: ``window_size // 3`` (at least 1), so three windows see a point.

    The one place of the stride rule: a window given without a stride gets this stride, and the
    hints that suggest a stride name it.
    """
    return max(1, window_size // 3)


def max_point_coverage(length: int, window_size: int, stride: int) -> int:
    """The most windows starting at ``i * stride`` that cover any one point of the series.

    The trailing window is left out: it only patches the series end, and counting it would hide
    the case this answers (window 300, stride 200 over UCR 135's 6301 test points: two windows per
    point everywhere except on the last 300 points, where the trailing window makes three).
    Raises a :class:`DataError` where :func:`window_starts` would.
    """
    window_starts(length, window_size, stride)
    regular = np.arange(0, length - window_size + 1, stride)
    return int(point_coverage(length, regular, window_size).max())


def c0_reachable(
    max_coverage: int, c0: float = TAMA_C0, max_confidence: int = MAX_CONFIDENCE
) -> bool:
    """Whether a point covered by ``max_coverage`` windows can reach the threshold ``c0``.

    Each covering window adds at most ``max_confidence``, so the best score is their product; below
    ``c0`` no point is ever flagged and precision, recall and F1 are 0 whatever the answers.
    """
    return max_coverage * max_confidence >= c0


@dataclass(frozen=True)
class ChannelScaler:
    """Per-channel z-score with statistics of the train split.

    TAMA normalised the whole array at once, mixing channels of different scales; here each channel
    gets its own mean and standard deviation. A constant channel keeps a scale of 1.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, train: np.ndarray) -> ChannelScaler:
        train = np.asarray(train, dtype=np.float64)
        mean = train.mean(axis=0)
        std = train.std(axis=0)
        std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return cls(mean, std)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=np.float64) - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * self.std + self.mean


def window_name(window: int, channel: int) -> str:
    """The file stem of a window's image or text: ``<window>-<channel>``."""
    return f"{window}-{channel}"


def structure_entry(window_labels: np.ndarray, n_channels: int) -> dict[str, list[str]]:
    """Normal and abnormal windows of one series as ``<window>-<channel>`` names.

    A window is normal when its labels sum to 0 (docs/design.md, "Series and windows").
    """
    abnormal_windows = np.asarray(window_labels).reshape(len(window_labels), -1).sum(axis=1) > 0
    entry: dict[str, list[str]] = {"normal": [], "abnormal": []}
    for window, is_abnormal in enumerate(abnormal_windows):
        key = "abnormal" if is_abnormal else "normal"
        entry[key].extend(window_name(window, c) for c in range(n_channels))
    return entry
