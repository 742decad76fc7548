"""VUS speed: the literal definition (``vus_reference``) against the vectorised ``vus``.

Both run in this process on the same seeded input: a 100,000-point series with a few labelled
anomalies and noisy scores, buffer lengths 0..100 and the reference's 250 thresholds. The script
prints both times, whether VUS-PR (and VUS-ROC) agree to 1e-9, and the ratio.

If the literal version would take longer than ``--budget`` seconds (estimated from one buffer
length), it is timed on an evenly spaced subset of the buffer lengths instead and its time is
scaled to the full set; the output says so, and the agreement is checked on that subset.

    python bench/metrics.py [--n 100000] [--max-buffer 100] [--thresholds 250] [--budget 60]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmad.metrics.vus import buffer_lengths, range_auc_reference, vus, vus_reference


def make_series(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels with 8 anomalies of 20..150 points; scores = noise + a bump on (most) anomalies."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(n, dtype=np.int8)
    starts = np.sort(rng.choice(np.arange(200, n - 400), size=8, replace=False))
    for start in starts:
        labels[start : start + int(rng.integers(20, 151))] = 1
    scores = rng.normal(0.0, 0.5, size=n)
    for start in starts[:6]:  # two anomalies go unnoticed; the detected ones are a bit late
        scores[start + 10 : start + 60] += rng.uniform(0.8, 2.0)
    return labels, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="series length")
    parser.add_argument("--max-buffer", type=int, default=100, help="largest buffer length")
    parser.add_argument("--thresholds", type=int, default=250, help="thresholds per curve")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds for the literal one")
    args = parser.parse_args()

    labels, scores = make_series(args.n)
    buffers = buffer_lengths(args.max_buffer)
    print(
        f"series: {args.n} points, {int(labels.sum())} labelled in 8 anomalies; "
        f"buffers 0..{args.max_buffer} ({buffers.size}), {args.thresholds} thresholds"
    )

    start = time.perf_counter()
    range_auc_reference(labels, scores, int(buffers[-1]), args.thresholds)
    estimate = (time.perf_counter() - start) * buffers.size
    steps = None
    if estimate > args.budget:
        steps = max(2, int(args.budget / estimate * buffers.size))
    timed = buffer_lengths(args.max_buffer, steps)

    start = time.perf_counter()
    slow = vus_reference(labels, scores, args.max_buffer, steps, args.thresholds)
    slow_time = time.perf_counter() - start
    if steps is not None:
        print(
            f"vus_reference would take about {estimate:.0f} s: timed on {timed.size} of "
            f"{buffers.size} buffer lengths and scaled by {buffers.size / timed.size:.2f}"
        )
        slow_time *= buffers.size / timed.size

    fast_time = float("inf")
    for _ in range(3):  # best of three: the fast one is short enough to be noisy
        start = time.perf_counter()
        fast_same = vus(labels, scores, args.max_buffer, steps, args.thresholds)
        fast_time = min(fast_time, time.perf_counter() - start)
    if steps is not None:  # the reported fast time is on the full set of buffer lengths
        fast_time = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            vus(labels, scores, args.max_buffer, None, args.thresholds)
            fast_time = min(fast_time, time.perf_counter() - start)

    diff_pr = abs(slow["vus_pr"] - fast_same["vus_pr"])
    diff_roc = abs(slow["vus_roc"] - fast_same["vus_roc"])
    agree = diff_pr <= 1e-9 and diff_roc <= 1e-9
    print(f"vus_reference (literal):  {slow_time:9.3f} s   VUS-PR {slow['vus_pr']:.12f}")
    print(f"vus (vectorised):         {fast_time:9.3f} s   VUS-PR {fast_same['vus_pr']:.12f}")
    print(
        f"values agree: {'yes' if agree else 'NO'} (|ΔVUS-PR| = {diff_pr:.1e}, "
        f"|ΔVUS-ROC| = {diff_roc:.1e}; VUS-ROC {fast_same['vus_roc']:.6f})"
    )
    print(f"speed-up: {slow_time / fast_time:.0f}x")
    if not agree:
        sys.exit(1)


if __name__ == "__main__":
    main()
