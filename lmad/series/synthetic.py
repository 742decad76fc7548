"""A seeded generator of series with injected anomalies of the five TAMA types.

Base signals: sine mixtures, square waves, ECG-like pulse trains, and random walks with seasonality.
Each is a periodic *shape* of continuous time plus noise, so an anomaly can re-evaluate the shape at
other times. The anomalies follow the type definitions of TAMA (arXiv 2411.02465, Sec. 3):

- global: a single point far from every other value (a spike of 4-6 standard deviations);
- contextual: a stretch whose values stay inside the normal range but are wrong for their place:
  the normal pattern half a period out of phase;
- frequency: a stretch where the period changes (the shape played at half or double speed);
- trend: a stretch whose level drifts away and back (a tent-shaped ramp of 2-3 standard deviations);
- shapelet: a stretch whose shape differs from the normal one (a sawtooth of the same period and
  amplitude).

Labels are 1 on every injected point and the per-point type annotation holds ``type index + 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmad.anomaly_types import ANOMALY_TYPES
from lmad.errors import DataError
from lmad.io import atomic_save_npy
from lmad.series.base import DatasetSpec
from lmad.series.defaults import DEFAULT_SUBTASK, is_default_subtask
from lmad.series.loaders_archive import load_tama_npy, sort_ids, tama_npy_ids

BASE_KINDS: tuple[str, ...] = ("sine", "square", "ecg", "seasonal_walk")
Shape = Callable[[np.ndarray], np.ndarray]

SUBTASKS: tuple[str, ...] = (DEFAULT_SUBTASK, "classification", *ANOMALY_TYPES)
"""The synthetic subtasks: mixed detection, one-anomaly classification, or one type name."""
DETECTION_ANOMALIES = 4
"""Anomalies per series of the detection set (of mixed types)."""
TYPE_ANOMALIES = 2
"""Anomalies per series when a subtask names one anomaly type."""
TRAIN_LENGTH = 1200
"""Points of a generated series' anomaly-free train split."""
TEST_LENGTH = 3000
"""Points of a generated series' test split, where the anomalies go."""


@dataclass
class SyntheticSeries:
    """A generated series: the anomalous values, the same series without anomalies, annotations."""

    values: np.ndarray
    clean: np.ndarray
    labels: np.ndarray
    types: np.ndarray
    train_length: int
    kind: str
    period: int


def base_shape(kind: str, period: float, rng: np.random.Generator) -> Shape:
    """A periodic function of continuous time with amplitude about 1."""
    if kind == "sine":
        harmonics = [(1, 1.0, 0.0)] + [
            (k, rng.uniform(0.2, 0.5), rng.uniform(0, 2 * np.pi))
            for k in (2, 3)[: rng.integers(1, 3)]
        ]
        return lambda t: sum(a * np.sin(2 * np.pi * k * t / period + p) for k, a, p in harmonics)
    if kind == "square":
        return lambda t: np.tanh(8 * np.sin(2 * np.pi * t / period))
    if kind == "ecg":
        waves = [(0.15, 0.035, 0.15), (0.40, 0.012, 1.0), (0.36, 0.01, -0.15), (0.65, 0.05, 0.3)]

        def pulse(t: np.ndarray) -> np.ndarray:
            phase = np.mod(t / period, 1.0)
            return sum(a * np.exp(-0.5 * ((phase - c) / w) ** 2) for c, w, a in waves)

        return pulse
    if kind == "seasonal_walk":
        shift = rng.uniform(0, 2 * np.pi)
        return lambda t: (
            np.sin(2 * np.pi * t / period) + 0.4 * np.sin(4 * np.pi * t / period + shift)
        )
    raise DataError(f"unknown synthetic base {kind!r}; choose from {', '.join(BASE_KINDS)}")


def generate_series(
    seed: int,
    anomaly_types: tuple[str, ...] = ANOMALY_TYPES,
    n_anomalies: int = DETECTION_ANOMALIES,
    train_length: int = TRAIN_LENGTH,
    test_length: int = TEST_LENGTH,
    kind: str | None = None,
) -> SyntheticSeries:
    """Generate one series; anomalies are injected into the test part only."""
    unknown = set(anomaly_types) - set(ANOMALY_TYPES)
    if unknown or not anomaly_types:
        raise DataError(
            f"unknown anomaly type(s) {sorted(unknown)}; use {', '.join(ANOMALY_TYPES)}"
        )
    rng = np.random.default_rng(seed)
    kind = kind or BASE_KINDS[int(rng.integers(len(BASE_KINDS)))]
    period = int(rng.integers(40, 121))
    shape = base_shape(kind, period, rng)
    total = train_length + test_length
    t = np.arange(total, dtype=np.float64)
    extra = rng.normal(0, 0.05, total)
    if kind == "seasonal_walk":
        walk = np.cumsum(rng.normal(0, 0.03, total))
        extra += walk - np.convolve(walk, np.ones(4 * period) / (4 * period), mode="same")
    clean = shape(t) + extra
    values = clean.copy()
    labels = np.zeros(total, dtype=np.int8)
    types = np.zeros(total, dtype=np.int8)
    chosen = [anomaly_types[int(rng.integers(len(anomaly_types)))] for _ in range(n_anomalies)]
    margin = 2 * period
    slot = (test_length - 2 * margin) // max(n_anomalies, 1)
    if slot < 4 * period + 2:
        raise DataError(f"test_length {test_length} is too short for {n_anomalies} anomalies")
    for i, name in enumerate(chosen):
        length = _anomaly_length(name, period, rng)
        start = train_length + margin + i * slot + int(rng.integers(0, slot - length))
        segment = np.arange(start, start + length)
        values[segment] = _inject(name, values, clean, shape, segment, period, rng)
        labels[segment] = 1
        types[segment] = ANOMALY_TYPES.index(name) + 1
    return SyntheticSeries(values, clean, labels, types, train_length, kind, period)


def _anomaly_length(name: str, period: int, rng: np.random.Generator) -> int:
    low, high = {
        "global": (1, 1),
        "contextual": (0.5, 1.0),
        "frequency": (2.0, 4.0),
        "trend": (1.0, 3.0),
        "shapelet": (1.0, 2.0),
    }[name]
    if name == "global":
        return 1
    return round(period * rng.uniform(low, high))


def _inject(name, values, clean, shape: Shape, segment, period, rng) -> np.ndarray:
    t = segment.astype(np.float64)
    noise = values[segment] - shape(t)
    scale = float(np.std(clean))
    if name == "global":
        sign = rng.choice([-1.0, 1.0])
        return clean[segment] + sign * rng.uniform(4, 6) * scale
    if name == "contextual":
        return shape(t + period / 2) + noise
    if name == "frequency":
        factor = rng.choice([0.5, 2.0]) * rng.uniform(0.9, 1.1)
        return shape(t[0] + (t - t[0]) * factor) + noise
    if name == "trend":
        tent = 1 - np.abs(np.linspace(-1, 1, len(segment)))
        return values[segment] + rng.choice([-1.0, 1.0]) * rng.uniform(2, 3) * scale * tent
    if name == "shapelet":
        amplitude = (np.max(clean) - np.min(clean)) / 2
        middle = (np.max(clean) + np.min(clean)) / 2
        saw = 2 * np.mod(t / period, 1.0) - 1
        return middle + amplitude * saw + noise
    raise DataError(f"unknown anomaly type {name!r}")


def subtask_types(subtask: str | None) -> tuple[tuple[str, ...], int, bool]:
    """Anomaly types, count per series and whether the type cycles with the id, for a subtask.

    ``detection`` (default): four anomalies of mixed types per series. ``classification``: one
    anomaly per series whose type cycles with the series id. A type name: two anomalies of that type.
    """
    if is_default_subtask(subtask):
        return ANOMALY_TYPES, DETECTION_ANOMALIES, False
    if subtask == "classification":
        return ANOMALY_TYPES, 1, True
    if subtask in ANOMALY_TYPES:
        return (subtask,), TYPE_ANOMALIES, False
    choices = ", ".join(SUBTASKS)
    raise DataError(f"synthetic: unknown subtask {subtask!r}; choose from {choices}")


def write_synthetic(root: Path, series_id: str, subtask: str | None) -> None:
    """Generate series ``series_id`` (its seed) and write it in the TAMA layout plus ``_types``."""
    if not series_id.isdigit():
        raise DataError(f"synthetic series ids are integers (the seed), got {series_id!r}")
    types, count, cycle = subtask_types(subtask)
    seed = int(series_id)
    if cycle:
        types = (types[seed % len(types)],)
    series = generate_series(seed, types, count)
    cut = series.train_length
    atomic_save_npy(root / f"{series_id}_train.npy", series.values[:cut, None])
    atomic_save_npy(root / f"{series_id}_test.npy", series.values[cut:, None])
    atomic_save_npy(root / f"{series_id}_labels.npy", series.labels[cut:])
    atomic_save_npy(root / f"{series_id}_types.npy", series.types[cut:])


class SyntheticLoader:
    """The synthetic set: generated on first use into ``data/synthetic/`` (one folder per subtask)."""

    name = "synthetic"
    default_ids = tuple(str(i) for i in range(10))
    spec = DatasetSpec(600, 200, width=1800, height=400, x_ticks=10, download="")

    def folder(self, root: Path, subtask: str | None) -> Path:
        subtask_types(subtask)
        return root if is_default_subtask(subtask) else root / subtask

    def list_ids(self, root: Path, subtask: str | None) -> list[str]:
        return sort_ids(tama_npy_ids(self.folder(root, subtask))) or list(self.default_ids)

    def load(self, root: Path, series_id: str, *, subtask: str | None, **_: object):
        folder = self.folder(root, subtask)
        if not (folder / f"{series_id}_test.npy").exists():
            write_synthetic(folder, series_id, subtask)
        data = load_tama_npy(folder, self.name, series_id)
        return data
