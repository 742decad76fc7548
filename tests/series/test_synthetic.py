"""The synthetic generator: each anomaly type is present where its annotation says."""

from __future__ import annotations

import numpy as np
import pytest

from lmad.anomaly_types import ANOMALY_TYPES
from lmad.errors import DataError
from lmad.series.synthetic import (
    BASE_KINDS,
    DEFAULT_SUBTASK,
    SUBTASKS,
    generate_series,
    is_default_subtask,
    subtask_types,
)


def _segments(types: np.ndarray, code: int) -> list[np.ndarray]:
    index = np.flatnonzero(types == code)
    if not len(index):
        return []
    return np.split(index, np.flatnonzero(np.diff(index) > 1) + 1)


def test_seeded_and_labels_match_annotation():
    a, b = generate_series(3), generate_series(3)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, generate_series(4).values)
    for seed in range(10):
        s = generate_series(seed)
        assert s.labels.tolist() == (s.types > 0).astype(int).tolist()
        assert s.labels[: s.train_length].sum() == 0  # train split is clean
        outside = s.labels == 0
        np.testing.assert_array_equal(s.values[outside], s.clean[outside])
        assert {s.kind} <= set(BASE_KINDS)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", BASE_KINDS)
def test_each_type_has_its_signature(kind, seed):
    for code, name in enumerate(ANOMALY_TYPES, 1):
        s = generate_series(seed, (name,), n_anomalies=2, kind=kind)
        segments = _segments(s.types, code)
        assert len(segments) == 2, name
        scale = np.std(s.clean)
        low, high = np.min(s.clean), np.max(s.clean)
        for seg in segments:
            diff = s.values[seg] - s.clean[seg]
            if name == "global":
                assert len(seg) == 1
                assert abs(s.values[seg[0]] - np.mean(s.clean)) > 3 * scale
            elif name == "contextual":
                assert np.all(s.values[seg] >= low - 0.3 * scale)
                assert np.all(s.values[seg] <= high + 0.3 * scale)
                assert np.mean(np.abs(diff)) > 0.2 * scale
            elif name == "frequency":
                assert len(seg) >= 2 * s.period - 1
                assert np.mean(np.abs(diff)) > 0.2 * scale
            elif name == "trend":
                assert abs(np.mean(diff)) > 0.9 * scale
                assert abs(diff[len(diff) // 2]) > 1.8 * scale  # the tent's peak
            elif name == "shapelet":
                assert np.corrcoef(s.values[seg], s.clean[seg])[0, 1] < 0.95
                spread = np.ptp(s.values[seg])
                assert 0.5 * (high - low) < spread < 1.3 * (high - low)  # same amplitude


def _crossings(x: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(np.sign(x)) != 0))


@pytest.mark.parametrize("kind", ["sine", "square"])
def test_frequency_anomaly_changes_the_crossing_rate(kind):
    code = ANOMALY_TYPES.index("frequency") + 1
    for seed in range(12):
        s = generate_series(seed, ("frequency",), n_anomalies=1, kind=kind)
        (seg,) = _segments(s.types, code)
        smooth = np.convolve(s.values - np.mean(s.clean), np.ones(5) / 5, mode="same")
        clean = np.convolve(s.clean - np.mean(s.clean), np.ones(5) / 5, mode="same")

        ratio = (_crossings(smooth[seg[2:-2]]) + 1) / (_crossings(clean[seg[2:-2]]) + 1)
        assert ratio <= 0.8 or ratio >= 1.3, (seed, ratio)


def test_subtasks():
    assert subtask_types(None) == (ANOMALY_TYPES, 4, False)
    assert subtask_types("detection") == subtask_types("") == subtask_types(None)
    default = generate_series(5)  # the generator's defaults are the detection set's
    assert (default.train_length, len(default.values)) == (1200, 4200)
    assert sum(len(_segments(default.types, code)) for code in range(1, 6)) == 4
    assert ("detection", "classification", *ANOMALY_TYPES) == SUBTASKS
    assert DEFAULT_SUBTASK == "detection" and is_default_subtask(None) and is_default_subtask("")
    assert not is_default_subtask("trend")
    assert subtask_types("classification") == (ANOMALY_TYPES, 1, True)
    assert subtask_types("trend") == (("trend",), 2, False)
    with pytest.raises(DataError, match="unknown subtask"):
        subtask_types("spikes")
    with pytest.raises(DataError, match="unknown anomaly type"):
        generate_series(0, ("spike",))
