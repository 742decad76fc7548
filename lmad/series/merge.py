"""From window answers to point scores and predictions (TAMA, Sec. 3.4 and its evaluation code).

Each interval ``[start, end)`` of a window answer is shifted by the window's start; a point's score is
the sum of the confidences of the intervals covering it, and ``coverage`` counts the windows that
cover the point. A point is predicted anomalous when its score reaches ``c0`` (TAMA: 9, since with
window = 3 x stride a point is seen by at most three windows of confidence at most 4, i.e. 12). The
normalised score ``sum / (4 * coverage)`` lies in [0, 1] and does not depend on the overlap.
The DCheck variants use the self-reflection answer of a window where there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmad.series.windows import point_coverage

VARIANTS = ("Pred", "DCheck")


@dataclass
class PredictedInterval:
    """An interval in series coordinates, with the window it came from."""

    start: int
    end: int
    confidence: int
    type: str
    explanation: str
    window: int
    channel: int


@dataclass
class MergedSeries:
    """Point scores of one series for one variant: the maximum over channels of each channel's sum."""

    scores: np.ndarray
    coverage: np.ndarray
    intervals: list[PredictedInterval] = field(default_factory=list)
    per_channel: np.ndarray | None = None
    """(channels, points) summed confidences of each channel before the maximum (TAMA's protocol
    scores every channel on its own)."""
    unanswered: int = 0
    """(window, channel) pairs without a usable answer (failed, blocked, never asked): scored 0."""

    @property
    def normalised(self) -> np.ndarray:
        """``scores / (4 * coverage)`` in [0, 1]."""
        return self.scores / np.maximum(1, 4 * self.coverage)

    def predictions(self, c0: float | None = 9, threshold: float | None = None) -> np.ndarray:
        """0/1 predictions: ``scores >= c0``, or ``normalised >= threshold`` when given."""
        if threshold is not None:
            return (self.normalised >= threshold).astype(np.int8)
        return (self.scores >= c0).astype(np.int8)


def merge_window_answers(
    answers: dict[tuple[int, int], dict],
    starts: list[int],
    window_size: int,
    length: int,
    channels: int | None = None,
) -> MergedSeries:
    """Point scores of one series from its answered windows: ``{(window, channel): answer}``.

    Windows without an answer add nothing; the caller counts them in ``unanswered``. ``channels``
    is the series' channel count (default: the highest channel answered).
    """
    coverage = point_coverage(length, np.asarray(starts), window_size)
    channels = channels or max((c for _, c in answers), default=0) + 1
    per_channel = np.zeros((channels, length), dtype=np.float64)
    merged = MergedSeries(np.zeros(length), coverage)
    for (window, channel), answer in sorted(answers.items()):
        offset = starts[window]
        for a in answer["anomalies"]:
            start = max(0, offset + int(a["start"]))
            end = min(length, offset + int(a["end"]), offset + window_size)
            if end <= start:
                continue
            per_channel[channel, start:end] += int(a["confidence"])
            merged.intervals.append(
                PredictedInterval(
                    start,
                    end,
                    int(a["confidence"]),
                    a["type"],
                    a.get("explanation", ""),
                    window,
                    channel,
                )
            )
    merged.scores = per_channel.max(axis=0)
    merged.per_channel = per_channel
    return merged


def interval_types(merged: MergedSeries, predictions: np.ndarray) -> list[tuple[int, int, str]]:
    """Predicted segments with the type of the highest-confidence interval inside each."""
    out = []
    index = np.flatnonzero(predictions)
    if not len(index):
        return out
    for run in np.split(index, np.flatnonzero(np.diff(index) > 1) + 1):
        start, end = int(run[0]), int(run[-1]) + 1
        inside = [i for i in merged.intervals if i.start < end and i.end > start]
        best = max(inside, key=lambda i: (i.confidence, min(i.end, end) - max(i.start, start)))
        out.append((start, end, best.type))
    return out
