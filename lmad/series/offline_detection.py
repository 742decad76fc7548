"""The offline analyzer's detector: a nearest-neighbour distance profile of a window against its
normal references, its threshold, the intervals beyond it, and their type (see lmad.series.offline)."""

from __future__ import annotations

import numpy as np

from lmad.series.offline_features import (
    Normal,
    crossing_rate,
    edge_scores,
    estimate_period,
    jumps,
    linear_fit,
    nn_profile,
    offset_match,
    point_scores,
    runs,
)

CONFIDENCE_EDGES = (1.1, 1.25, 1.6)
"""Peak / threshold ratios where confidence steps up to 2, 3 and 4.

The threshold is already ``margin`` (1.2) times the largest nearest-neighbour distance between
normal references, so a peak 1.25x above it lies 1.5x beyond anything normal: strong evidence (3),
which three overlapping windows turn into TAMA's c0 = 9.
"""


def confidence_of(ratio: float) -> int:
    """Confidence 1-4 from how far a peak distance lies beyond the threshold."""
    return 1 + sum(ratio >= edge for edge in CONFIDENCE_EDGES)


class Detection:
    """The nearest-neighbour profile of one target window against its references."""

    def __init__(
        self,
        target: np.ndarray,
        refs: list[np.ndarray],
        margin: float,
        mad_k: float,
        m: int | None = None,
    ):
        self.target, n = target, len(target)
        period, strength = estimate_period(refs or [target])
        m = m or int(min(max(round(period or 32), 8), max(n // 4, 2)))
        refs = [r for r in refs if len(r) >= 2 * m]  # too short to hold a pattern: ignored
        self.m, exclusion = m, max(1, m // 2)
        if refs:
            self.profile = nn_profile(target, refs, m)
            if len(refs) == 1:
                normal = nn_profile(refs[0], refs, m, exclusion)
            else:
                normal = np.concatenate(
                    [nn_profile(r, refs[:i] + refs[i + 1 :], m) for i, r in enumerate(refs)]
                )
            normal = normal[np.isfinite(normal)]
            self.threshold = float(normal.max()) * margin if len(normal) else 0.0
        else:
            self.profile = nn_profile(target, [target], m, exclusion)
            finite = self.profile[np.isfinite(self.profile)]
            median = float(np.median(finite))
            mad = float(np.median(np.abs(finite - median)))
            self.threshold = median + mad_k * 1.4826 * mad if mad > 0 else median * margin
        self.profile = np.where(np.isfinite(self.profile), self.profile, 0.0)
        self.threshold = max(self.threshold, 1e-4)  # float noise of the norm expansion
        edges = edge_scores(target, refs or [target], m, 0 if refs else exclusion)
        self.score = point_scores(self.profile, m, self.threshold, edges)
        if refs:
            self.normal = Normal.of(refs, period, strength)
        else:  # the target outside what stands out is the normal data
            mask = self.score > self.threshold
            self.normal = Normal.of([target[a:b] for a, b in runs(~mask)], period, strength)
        self.has_refs, self.refs = bool(refs), refs or self.normal.pieces
        self.jumps = jumps(target)

    def peak(self, start: int, end: int) -> float:
        return float(self.score[start:end].max()) if end > start else 0.0

    def intervals(self) -> list[tuple[int, int]]:
        found: list[list[int]] = []
        for a, b in runs(self.score > self.threshold):
            if found and a - found[-1][1] < self.m / 2:
                found[-1][1] = b
            else:
                found.append([a, b])
        return [(a, b) for a, b in found if b - a >= 1]

    def far_points(self, std_beyond: float) -> np.ndarray:
        """Points beyond the normal range by more than ``std_beyond`` normal std."""
        nrm, x = self.normal, self.target
        return (x > nrm.high + std_beyond * nrm.std) | (x < nrm.low - std_beyond * nrm.std)

    def classify(self, start: int, end: int) -> tuple[str, str, int, int]:
        """(type, reason with numbers, start, end): the end points may shrink onto a spike."""
        x, nrm, length = self.target, self.normal, end - start
        seg = x[start:end]
        jumps = self.jumps[start:end]
        if length <= 3:
            i = start + int(np.argmax(jumps))
            if seg.max() > nrm.high or seg.min() < nrm.low or jumps.max() > nrm.jump:
                reason = f"{length} point(s); value {x[i]:.2f} at {i} jumps {jumps.max():.2f} from"
                reason += f" its neighbours (references: range [{nrm.low:.2f}, {nrm.high:.2f}]"
                return "global", reason + f", jumps up to {nrm.jump:.2f})", start, end
            reason = f"{length} point(s) inside the reference range [{nrm.low:.2f}, "
            reason += f"{nrm.high:.2f}], jumps no larger than the references'"
            return "contextual", reason, start, end
        far = np.flatnonzero(self.far_points(2.0)[start:end]) + start
        if 1 <= len(far) <= 3 and self.jumps[far].min() > max(2 * nrm.std, nrm.jump):
            i = int(far[np.argmax(np.abs(x[far] - nrm.mean))])
            reason = f"value {x[i]:.2f} at {i} is an isolated jump of {self.jumps[i]:.2f}, beyond"
            reason += " the reference range by > 2 std"
            return "global", reason, int(far[0]), int(far[-1]) + 1
        diff = offset_match(seg, self.refs)
        if diff is None:
            diff = seg - nrm.mean
        explained, offset, slope = linear_fit(diff)
        drift = abs(slope) * (length - 1)
        if explained >= 0.6 and (abs(offset) > 0.75 * nrm.std or drift > 1.5 * nrm.std):
            reason = (
                f"against the closest reference stretch it is shifted by {offset:.2f} "
                f"(drift {drift:.2f}; level and slope explain {explained:.0%} of the difference)"
            )
            return "trend", reason, start, end
        period = nrm.period
        if period and length >= 1.5 * period and nrm.rate > 0:
            rate = crossing_rate(seg, nrm.mean, 0.25 * nrm.std)
            if abs(rate / nrm.rate - 1) > 0.3:
                local = f"near {period * nrm.rate / rate:.0f}" if rate > 0 else "without"
                reason = f"its mean-crossing rate is {rate / nrm.rate:.2f}x the references' (a"
                reason += f" period {local} points vs {period:.0f})"
                return "frequency", reason, start, end
        if seg.min() >= nrm.low and seg.max() <= nrm.high and (not period or length < period):
            reason = f"values stay within [{nrm.low:.2f}, {nrm.high:.2f}] but the shape is off"
            return "contextual", reason + " for its place", start, end
        return "shapelet", "its shape differs from every reference stretch", start, end
