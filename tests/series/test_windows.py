"""Window starts, the trailing window, window labels, per-channel normalisation, structure."""

from __future__ import annotations

import numpy as np
import pytest

from lmad.errors import DataError
from lmad.series.windows import (
    ChannelScaler,
    c0_reachable,
    cut_windows,
    max_point_coverage,
    point_coverage,
    structure_entry,
    tama_stride,
    window_starts,
)


@pytest.mark.parametrize(
    ("length", "size", "stride", "expected"),
    [
        (1000, 600, 200, [0, 200, 400]),  # the last window ends exactly at the end
        (1100, 600, 200, [0, 200, 400, 500]),  # trailing window [500, 1100)
        (6301, 600, 200, [*range(0, 5701, 200), 5701]),  # UCR 135 test: 29 + trailing
        (600, 600, 200, [0]),
        (10, 3, 5, [0, 5, 7]),
    ],
)
def test_window_starts(length, size, stride, expected):
    assert window_starts(length, size, stride).tolist() == expected


@pytest.mark.parametrize(
    ("size", "stride", "message"),
    [(700, 200, "longer than the series"), (100, 0, "stride must be positive"), (0, 1, "window")],
)
def test_window_starts_rejects(size, stride, message):
    with pytest.raises(DataError, match=message):
        window_starts(600, size, stride)


def test_cut_windows_values_and_labels():
    values = np.arange(20).reshape(10, 2)
    starts = window_starts(10, 4, 3)  # [0, 3, 6]
    windows = cut_windows(values, starts, 4)
    assert windows.shape == (3, 4, 2)
    assert windows[2, :, 1].tolist() == [13, 15, 17, 19]
    labels = np.zeros(10, dtype=int)
    labels[5] = 1
    assert cut_windows(labels, starts, 4).sum(axis=1).tolist() == [0, 1, 0]


def test_point_coverage_counts_overlaps():
    starts = window_starts(1000, 600, 200)
    coverage = point_coverage(1000, starts, 600)
    assert coverage[0] == 1 and coverage[450] == 3 and coverage[999] == 1
    assert coverage[200:400].tolist() == [2] * 200


@pytest.mark.parametrize(
    ("length", "size", "stride", "expected"),
    [
        (6301, 600, 200, 3),  # TAMA's window/3
        (6301, 300, 200, 2),  # the trailing window covers the end three times; not counted
        (6301, 300, 100, 3),
        (6301, 600, 150, 4),
        (6301, 600, 600, 1),
        (6301, 500, 200, 3),  # 500/200 = 2.5: points are covered by 2 or 3 windows
        (700, 600, 200, 1),  # one regular window fits
        (600, 600, 1, 1),
    ],
)
def test_max_point_coverage(length, size, stride, expected):
    assert max_point_coverage(length, size, stride) == expected
    regular = np.arange(0, length - size + 1, stride)
    assert point_coverage(length, regular, size).max() == expected


@pytest.mark.parametrize(
    ("size", "stride"), [(600, 200), (4500, 1500), (900, 300), (301, 100), (2, 1)]
)
def test_tama_stride_is_a_third_of_the_window(size, stride):
    assert tama_stride(size) == stride
    assert max_point_coverage(10 * size, size, tama_stride(size)) >= min(
        3, size
    )  # c0 = 9 reachable


def test_max_point_coverage_refuses_what_window_starts_refuses():
    with pytest.raises(DataError, match="longer than the series"):
        max_point_coverage(100, 200, 50)


@pytest.mark.parametrize(
    ("coverage", "c0", "max_confidence", "expected"),
    [
        (3, 9.0, 4, True),
        (2, 9.0, 4, False),
        (1, 4.0, 4, True),
        (2, 8.0, 4, True),
        (0, 0.5, 4, False),
    ],
)
def test_c0_reachable(coverage, c0, max_confidence, expected):
    assert c0_reachable(coverage, c0, max_confidence) is expected
    assert c0_reachable(2) is False and c0_reachable(3) is True  # TAMA: c0 = 9, confidence <= 4


def test_scaler_is_per_channel_with_train_statistics():
    rng = np.random.default_rng(0)
    train = np.column_stack(
        [rng.normal(5, 2, 5000), rng.normal(-1000, 300, 5000), np.full(5000, 7)]
    )
    scaler = ChannelScaler.fit(train)
    z = scaler.transform(train)
    np.testing.assert_allclose(z[:, :2].mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(z[:, :2].std(axis=0), 1, atol=1e-9)
    assert scaler.std[2] == 1.0 and np.all(z[:, 2] == 0)  # constant channel: scale 1
    test = np.array([[9.0, -400.0, 8.0]])
    expected = [
        (9 - train[:, 0].mean()) / train[:, 0].std(),
        (-400 - train[:, 1].mean()) / train[:, 1].std(),
        1.0,
    ]
    np.testing.assert_allclose(scaler.transform(test)[0], expected)
    np.testing.assert_allclose(scaler.inverse(scaler.transform(test)), test)


def test_structure_entry_names_windows_per_channel():
    labels = np.array([[0, 0], [0, 1], [0, 0]])
    assert structure_entry(labels, 2) == {
        "normal": ["0-0", "0-1", "2-0", "2-1"],
        "abnormal": ["1-0", "1-1"],
    }
