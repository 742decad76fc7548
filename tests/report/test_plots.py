"""The evaluation plot: one panel for the series, one per score line (LLM, then each detector)."""

from __future__ import annotations

import struct

import numpy as np

from lmad.report.plots import ScoreTrace, plot_series


def height(png: bytes) -> int:
    """Pixel height from the PNG's IHDR chunk."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", png[20:24])[0]


def test_each_score_gets_a_panel():
    labels = np.zeros(50, dtype=np.int8)
    labels[20:25] = 1
    values = np.sin(np.arange(50) / 3)
    llm = np.where(labels == 1, 12.0, 0.0)
    detector = ScoreTrace("stomp (aeon)", np.linspace(0, 1, 50), 0.8, "mean + 3 std")
    # 4 inches for the series plus 1.2 per score panel (at least one), 100 dpi
    assert height(plot_series(values, labels, llm, [(20, 25, "global")], 9, "t")) == 520
    both = plot_series(values, labels, llm, [], 9, "t", detectors=[detector, detector])
    assert height(both) == 760
    alone = plot_series(values, labels, None, [], 0.0, "t", detectors=[detector])
    assert height(alone) == 520
