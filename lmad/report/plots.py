"""Per-series evaluation plot: the series, true anomalies shaded, predicted intervals coloured by
type, the LLM's point score with its threshold, and under it each detector's score with its own."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TYPE_COLOURS = {
    "global": "tab:red",
    "contextual": "tab:orange",
    "frequency": "tab:purple",
    "trend": "tab:green",
    "shapelet": "tab:brown",
}


@dataclass(frozen=True)
class ScoreTrace:
    """One score line under the series: its axis label, scores and threshold (a dashed line)."""

    label: str
    scores: np.ndarray
    threshold: float
    threshold_label: str = "threshold"


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    index = np.flatnonzero(mask)
    if not len(index):
        return []
    return [
        (int(r[0]), int(r[-1]) + 1) for r in np.split(index, np.flatnonzero(np.diff(index) > 1) + 1)
    ]


def plot_series(
    values: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray | None,
    intervals: list[tuple[int, int, str]],
    threshold: float,
    title: str,
    detectors: Sequence[ScoreTrace] = (),
) -> bytes:
    """PNG bytes of the evaluation plot of one series (``values``: (time, channels)).

    Panels, top to bottom: the series with true anomalies shaded and predicted ``intervals``; the
    LLM's point ``scores`` with ``threshold`` (left out when ``scores`` is None: no LLM); one panel
    per detector in ``detectors``.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    traces = [ScoreTrace("point score", scores, threshold)] if scores is not None else []
    traces += list(detectors)
    fig = Figure(figsize=(16, 4 + 1.2 * max(1, len(traces))), dpi=100)
    axes = fig.subplots(
        1 + len(traces), 1, sharex=True, squeeze=False,
        gridspec_kw={"height_ratios": [3] + [1] * len(traces)},
    )[:, 0]  # fmt: skip
    _plot_values(axes[0], values, labels, intervals, title)
    for axis, trace in zip(axes[1:], traces):
        _plot_trace(axis, trace)
    axes[-1].set_xlabel("time index")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _plot_values(axis, values, labels, intervals, title: str) -> None:
    from matplotlib.patches import Patch

    values = np.asarray(values).reshape(len(labels), -1)
    x = np.arange(len(labels))
    for channel in range(values.shape[1]):
        axis.plot(x, values[:, channel], lw=0.8, color="tab:blue" if values.shape[1] == 1 else None)
    for start, end in _runs(labels > 0):
        axis.axvspan(start - 0.5, end - 0.5, color="grey", alpha=0.25, lw=0)
    low, high = axis.get_ylim()
    for start, end, kind in intervals:
        axis.hlines(low + 0.03 * (high - low), start, end, colors=TYPE_COLOURS.get(kind, "k"), lw=6)
    handles = [Patch(color="grey", alpha=0.25, label="true anomaly")]
    handles += [
        Patch(color=c, label=f"predicted: {t}")
        for t, c in TYPE_COLOURS.items()
        if any(k == t for _, _, k in intervals)
    ]
    axis.legend(handles=handles, loc="upper right", fontsize=8)
    axis.set_title(title)
    axis.set_ylabel("value (z-score)")


def _plot_trace(axis, trace: ScoreTrace) -> None:
    axis.plot(np.arange(len(trace.scores)), trace.scores, color="black", lw=0.8)
    axis.axhline(trace.threshold, color="tab:red", ls="--", lw=0.8,
                 label=f"{trace.threshold_label} {trace.threshold:.4g}")  # fmt: skip
    axis.set_ylabel(trace.label)
    axis.legend(loc="upper right", fontsize=8)
