"""Per-series evaluation plot: the series, true anomalies shaded, predicted intervals coloured by
type, and the point score with its threshold."""

from __future__ import annotations

import io

import numpy as np

TYPE_COLOURS = {
    "global": "tab:red",
    "contextual": "tab:orange",
    "frequency": "tab:purple",
    "trend": "tab:green",
    "shapelet": "tab:brown",
}


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
    scores: np.ndarray,
    intervals: list[tuple[int, int, str]],
    threshold: float,
    title: str,
) -> bytes:
    """PNG bytes of the evaluation plot of one series (``values``: (time, channels))."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    values = np.asarray(values).reshape(len(labels), -1)
    fig = Figure(figsize=(16, 5), dpi=100)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    x = np.arange(len(labels))
    for channel in range(values.shape[1]):
        top.plot(x, values[:, channel], lw=0.8, color="tab:blue" if values.shape[1] == 1 else None)
    for start, end in _runs(labels > 0):
        top.axvspan(start - 0.5, end - 0.5, color="grey", alpha=0.25, lw=0)
    low, high = top.get_ylim()
    for start, end, kind in intervals:
        top.hlines(low + 0.03 * (high - low), start, end, colors=TYPE_COLOURS.get(kind, "k"), lw=6)
    handles = [Patch(color="grey", alpha=0.25, label="true anomaly")]
    handles += [
        Patch(color=c, label=f"predicted: {t}")
        for t, c in TYPE_COLOURS.items()
        if any(k == t for _, _, k in intervals)
    ]
    top.legend(handles=handles, loc="upper right", fontsize=8)
    top.set_title(title)
    top.set_ylabel("value (z-score)")
    bottom.plot(x, scores, color="black", lw=0.8)
    bottom.axhline(threshold, color="tab:red", ls="--", lw=0.8, label=f"threshold {threshold:g}")
    bottom.set_ylabel("point score")
    bottom.set_xlabel("time index")
    bottom.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
