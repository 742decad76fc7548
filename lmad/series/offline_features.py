"""Numeric helpers of the offline analyzer: period, nearest-neighbour distance profiles, features.

Everything here is plain numpy and deterministic; see :mod:`lmad.series.offline` for how it is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

BLOCK = 1024
"""Query subsequences per matrix product: bounds memory on long windows (4500-point SMD windows)."""


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Biased autocorrelation of ``x`` for lags 0..max_lag (by FFT), 1 at lag 0."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    size = 1 << int(np.ceil(np.log2(2 * len(x))))
    spectrum = np.fft.rfft(x, size)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), size)[: max_lag + 1]
    return acov / acov[0] if acov[0] > 0 else np.zeros(max_lag + 1)


def estimate_period(series: list[np.ndarray], min_lag: int = 4) -> tuple[float | None, float]:
    """(period, autocorrelation there) from the mean autocorrelation of ``series``; None if none.

    The period is the first local maximum after the first negative autocorrelation that reaches 0.2
    and at least 80 % of the highest such maximum, refined by a parabola through its neighbours.
    """
    series = [s for s in series if len(s) >= 4 * min_lag]
    if not series:
        return None, 0.0
    max_lag = min(len(s) for s in series) // 2
    acf = np.mean([autocorrelation(s, max_lag) for s in series], axis=0)
    negative = np.flatnonzero(acf < 0)
    if not len(negative):
        return None, 0.0
    inner = acf[1:-1]
    peaks = np.flatnonzero((inner >= acf[:-2]) & (inner >= acf[2:]) & (inner > 0.2)) + 1
    peaks = peaks[(peaks > negative[0]) & (peaks >= min_lag)]
    if not len(peaks):
        return None, 0.0
    lag = int(peaks[np.argmax(acf[peaks] >= 0.8 * acf[peaks].max())])
    left, mid, right = acf[lag - 1], acf[lag], acf[lag + 1]
    curve = left - 2 * mid + right
    shift = 0.5 * (left - right) / curve if curve < 0 else 0.0
    return lag + float(np.clip(shift, -0.5, 0.5)), float(mid)


def crossing_rate(x: np.ndarray, center: float, band: float) -> float:
    """Crossings of ``center`` per point, with hysteresis ``band`` so noise does not count."""
    state = np.where(x > center + band, 1, np.where(x < center - band, -1, 0))
    state = state[state != 0]
    return float(np.count_nonzero(np.diff(state))) / max(len(x), 1)


def nn_profile(query: np.ndarray, refs: list[np.ndarray], m: int, exclusion: int = 0) -> np.ndarray:
    """Distance of each length-``m`` subsequence of ``query`` to its nearest one among ``refs``.

    Euclidean distance on raw (already z-scored) values, from squared norms and a matrix product.
    ``exclusion`` > 0 makes a self-join (``refs`` is ``[query]``): pairs closer than it are skipped.
    """
    q = sliding_window_view(query, m)
    q_norm = np.einsum("ij,ij->i", q, q)
    best = np.full(len(q), np.inf)
    for ref in refs:
        r = np.ascontiguousarray(sliding_window_view(ref, m))
        r_norm = np.einsum("ij,ij->i", r, r)
        for lo in range(0, len(q), BLOCK):
            block = np.ascontiguousarray(q[lo : lo + BLOCK])
            d2 = q_norm[lo : lo + len(block), None] + r_norm[None, :] - 2.0 * (block @ r.T)
            if exclusion:
                rows = np.arange(lo, lo + len(block))[:, None]
                d2[np.abs(rows - np.arange(len(r))[None, :]) < exclusion] = np.inf
            best[lo : lo + len(block)] = np.minimum(best[lo : lo + len(block)], d2.min(axis=1))
    return np.sqrt(np.maximum(best, 0.0))


def edge_scores(
    query: np.ndarray, refs: list[np.ndarray], m: int, exclusion: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the first and last m - 1 points from the windows that stick out of the query.

    Such a window is scored on its part inside the query: the distance of that prefix (suffix) to
    the nearest reference stretch of its length (cumulative sums over every alignment). Without it
    the edge points, covered by fewer windows, would inherit an anomaly up to m points inside.
    ``exclusion`` as in :func:`nn_profile`.
    """
    k = m - 1
    head, tail = np.full(k, np.inf), np.full(k, np.inf)
    for ref in refs:
        stretches = sliding_window_view(ref, k)
        for lo in range(0, len(stretches), BLOCK):
            block = stretches[lo : lo + BLOCK]
            rows = np.arange(lo, lo + len(block))
            first = np.cumsum((block - query[:k]) ** 2, axis=1)
            last = np.cumsum(((block - query[-k:]) ** 2)[:, ::-1], axis=1)[:, ::-1]
            if exclusion:
                first[rows < exclusion] = np.inf
                last[rows > len(query) - k - exclusion] = np.inf
            head = np.minimum(head, first.min(axis=0))
            tail = np.minimum(tail, last.min(axis=0))
    return np.sqrt(head), np.sqrt(tail)


def jumps(x: np.ndarray, half: int = 3) -> np.ndarray:
    """How far each point lies from the median of its 2 * half + 1 neighbours (a spike detector)."""
    padded = np.pad(x, half, mode="edge")
    return np.abs(x - np.median(sliding_window_view(padded, 2 * half + 1), axis=1))


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of every run of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask, dtype=np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def point_scores(
    profile: np.ndarray, m: int, threshold: float, edges: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Per point: the smallest distance among the subsequences covering it (an erosion).

    A point scores high only when every window through it is unlike the references, which keeps a
    spike to its one point and a long anomaly to its own extent. A run of above-threshold windows
    shorter than ``m`` leaves no such point; the points shared by all its windows then get the run's
    smallest distance. ``edges`` scores the windows sticking out of the query (:func:`edge_scores`).
    """
    padded = np.concatenate([np.full(m - 1, np.inf), profile, np.full(m - 1, np.inf)])
    score = sliding_window_view(padded, m).min(axis=1)
    if m > 1:
        score[: m - 1] = np.minimum(score[: m - 1], edges[0])
        score[1 - m :] = np.minimum(score[1 - m :], edges[1])
    for i0, i1 in runs(profile > threshold):
        if not (score[i0 : i1 - 1 + m] > threshold).any():
            lo, hi = i1 - 1, i0 + m
            score[lo:hi] = np.maximum(score[lo:hi], profile[i0:i1].min())
    return score


def offset_match(segment: np.ndarray, refs: list[np.ndarray]) -> np.ndarray | None:
    """``segment`` minus the reference stretch closest to it once both are mean-centred.

    Centring lets a shifted copy of the normal pattern find its phase; the difference then holds
    the shift. None when no reference is as long as the segment.
    """
    n = len(segment)
    centred = segment - segment.mean()
    best, match = np.inf, None
    for ref in refs:
        if len(ref) < n:
            continue
        sums = np.convolve(ref, np.ones(n), mode="valid")
        squares = np.convolve(ref * ref, np.ones(n), mode="valid")
        d2 = centred @ centred + squares - sums**2 / n - 2 * np.correlate(ref, centred, "valid")
        j = int(np.argmin(d2))
        if d2[j] < best:
            best, match = float(d2[j]), ref[j : j + n]
    return None if match is None else segment - match


def linear_fit(diff: np.ndarray) -> tuple[float, float, float]:
    """(share of the squared difference that offset + slope explain, mean offset, slope)."""
    t = np.arange(len(diff), dtype=np.float64)
    if len(diff) < 2:
        return 1.0, float(diff.mean()), 0.0
    slope, intercept = np.polyfit(t, diff, 1)
    residual = diff - (intercept + slope * t)
    total = float(diff @ diff)
    explained = 1.0 - float(residual @ residual) / total if total > 0 else 0.0
    return explained, float(diff.mean()), float(slope)


@dataclass
class Normal:
    """What the normal data shows: level, spread, range, period and crossing rate."""

    pieces: list[np.ndarray]
    mean: float
    std: float
    low: float
    high: float
    period: float | None
    strength: float
    rate: float
    jump: float

    @classmethod
    def of(cls, pieces: list[np.ndarray], period: float | None = None, strength: float = 0.0):
        pieces = [p for p in pieces if len(p)]
        joined = np.concatenate(pieces) if pieces else np.zeros(1)
        if period is None:
            period, strength = estimate_period(pieces)
        mean, std = float(joined.mean()), float(joined.std()) or 1.0
        rate = float(np.mean([crossing_rate(p, mean, 0.25 * std) for p in pieces] or [0.0]))
        jump = max((float(jumps(p).max()) for p in pieces), default=0.0)
        low, high = float(joined.min()), float(joined.max())
        return cls(pieces, mean, std, low, high, period, strength, rate, jump)


def describe_normal(normal: Normal) -> str:
    """Numbers about the normal windows: period, range, stability, trend, peaks and troughs."""
    p = normal.period
    parts = [
        f"{len(normal.pieces)} normal reference window(s), {sum(map(len, normal.pieces))} points."
    ]
    if p:
        parts.append(f"Estimated period {round(p)} points (autocorrelation {normal.strength:.2f}).")
    else:
        parts.append("No clear period (the autocorrelation shows no repeating peak).")
    parts.append(
        f"Values range from {normal.low:.2f} to {normal.high:.2f}, mean {normal.mean:.2f}, "
        f"std {normal.std:.2f}."
    )
    span = round(p) if p else 50
    chunks = [x[i : i + span] for x in normal.pieces for i in range(0, len(x) - span + 1, span)]
    chunks = chunks or normal.pieces
    level = float(np.std([c.mean() for c in chunks]))
    word = "stable" if level < 0.1 * normal.std else "moderately stable"
    word = word if level < 0.3 * normal.std else "unstable"
    unit = "per-period means" if p else f"{span}-point means"
    parts.append(f"Stability: the {unit} vary with std {level:.2f} ({word}).")
    slopes = [np.polyfit(np.arange(len(x)), x, 1)[0] * 100 for x in normal.pieces if len(x) > 1]
    slope = float(np.mean(slopes)) if slopes else 0.0
    lengths = np.mean([len(x) for x in normal.pieces])
    flat = abs(slope) * lengths / 100 < 0.5 * normal.std
    trend = "no clear trend" if flat else ("rising" if slope > 0 else "falling")
    parts.append(f"Trend: slope {slope:.3f} per 100 points ({trend}).")
    peaks = (
        np.median([c.max() for c in chunks])
        if p
        else np.percentile(np.concatenate(normal.pieces), 95)
    )
    troughs = (
        np.median([c.min() for c in chunks])
        if p
        else np.percentile(np.concatenate(normal.pieces), 5)
    )
    parts.append(f"Typical peaks near {peaks:.2f} and troughs near {troughs:.2f}.")
    return " ".join(parts)
