"""The learning curve's figure (``learning_curve.py``'s curve.png), from curve.csv's rows
(:mod:`lmad.traces.learning_curve`)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def plot_curve(rows: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    """Two panels against the budgets (equally spaced, labelled with their steps): AP of SemAD and
    the n-gram baseline at trace and event level with each level's anomaly rate (AP's chance
    level); below, SemAD's AP gain over the baseline with its 95 % bootstrap interval."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from lmad.io import atomic_write_bytes

    ordered = sorted(rows, key=lambda r: r["steps"])
    x = list(range(len(ordered)))
    fig = Figure(figsize=(7.5, 6.4), dpi=120, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    for shift, (level, colour) in zip(
        (-0.06, 0.06), (("trace", "tab:blue"), ("event", "tab:orange"))
    ):
        for method, style, name in (("semad", "-o", "SemAD"), ("ngram", "--s", "n-gram")):
            values = [r[f"{method}_{level}_ap"] for r in ordered]
            top.plot(x, values, style, color=colour, label=f"{name}, {level} AP", ms=4)
        rate = [r[f"{level}_anomaly_rate"] for r in ordered]
        top.plot(x, rate, ":", color=colour, lw=1, label=f"{level} anomaly rate (chance)")
        gain = np.array([r[f"{level}_ap_gain"] for r in ordered], dtype=float)
        low = np.array([r[f"{level}_ap_gain_low"] for r in ordered], dtype=float)
        high = np.array([r[f"{level}_ap_gain_high"] for r in ordered], dtype=float)
        # the interval as a line from low to high (a percentile interval need not hold the
        # point estimate; NaN, without a baseline, draws nothing)
        at = np.array(x) + shift
        bottom.vlines(at, low, high, color=colour, lw=1.5)
        bottom.plot(at, gain, "o", color=colour, ms=4, label=f"{level} level")
    bottom.axhline(0, color="black", lw=0.8)
    top.set_ylabel("average precision")
    top.set_ylim(0, 1)
    top.set_title(title, fontsize=8)
    top.legend(fontsize=7, loc="upper left", ncol=2)
    bottom.set_ylabel("AP gain, 95 % interval", fontsize=9)
    bottom.legend(fontsize=7, loc="upper left")
    bottom.set_xticks(x, [str(int(r["steps"])) for r in ordered])
    bottom.set_xlabel("training steps (budgets of the schedule)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.align_ylabels([top, bottom])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return atomic_write_bytes(path, buffer.getvalue())
