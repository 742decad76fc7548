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
    failed_windows: int = 0

    @property
    def normalised(self) -> np.ndarray:
        """``scores / (4 * coverage)`` in [0, 1]."""
        return self.scores / np.maximum(1, 4 * self.coverage)

    def predictions(self, c0: float | None = 9, threshold: float | None = None) -> np.ndarray:
        """0/1 predictions: ``scores >= c0``, or ``normalised >= threshold`` when given."""
        if threshold is not None:
            return (self.normalised >= threshold).astype(np.int8)
        return (self.scores >= c0).astype(np.int8)


def window_answers(records: list[dict], variant: str) -> dict[tuple[int, int], dict | None]:
    """The answer used for each (window, channel): analysis, or reflection in the DCheck variant.

    A failed window maps to None. Later records of the same key win (a rerun retried it).
    """
    analysis: dict[tuple[int, int], dict | None] = {}
    reflection: dict[tuple[int, int], dict] = {}
    for record in records:
        key = (record["window"], record["channel"])
        if record["stage"] == "analysis":
            if record.get("error") is None or key not in analysis or analysis[key] is None:
                analysis[key] = record["answer"] if record.get("error") is None else None
        elif record["stage"] == "reflection" and record.get("error") is None:
            reflection[key] = record["answer"]
    if variant == "DCheck":
        return {k: reflection.get(k, v) if v is not None else None for k, v in analysis.items()}
    return analysis


def merge_window_answers(
    records: list[dict], starts: list[int], window_size: int, length: int, variant: str = "Pred"
) -> MergedSeries:
    """Point scores of one series from its run-log records (all channels of it)."""
    coverage = point_coverage(length, np.asarray(starts), window_size)
    channels = sorted({r["channel"] for r in records if r["stage"] == "analysis"} or {0})
    per_channel = np.zeros((max(channels) + 1, length), dtype=np.float64)
    merged = MergedSeries(np.zeros(length), coverage)
    for (window, channel), answer in sorted(window_answers(records, variant).items()):
        if answer is None:
            merged.failed_windows += 1
            continue
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
