"""The offline analyzer (``--LLM offline``): TAMA's three stages without an LLM, a key or a GPU.

:class:`OfflineAnalyzer` is an :class:`~lmad.series.analyzers.Analyzer` that works on the window
arrays of each job (z-scored, one channel), never on pixels or prompts, and answers in the same
schema as a model (docs/design.md, "Answer schema"). Tables label it "offline (non-LLM baseline)";
every text it writes starts with "Offline analyzer (not an LLM)".

Stages:

- ``reference``: the job's reference windows are normal; the answer ``{"normal_pattern": ...}``
  gives their period (autocorrelation), range, mean, stability (std of per-period means), trend
  (slope per 100 points) and typical peaks and troughs.
- ``analyse``: the job's window against its reference windows (none: the window by itself).
- ``reflect``: each interval of the first answer (the job's analysis record) is re-scored.

Analysis algorithm (nearest-neighbour distance, a matrix-profile AB-join):

1. Subsequence length ``m``: the references' period (mean autocorrelation), else 32, clipped to
   [8, len(window) // 4]; references shorter than 2m are ignored.
2. Profile: for each length-``m`` subsequence of the target, the Euclidean distance to its nearest
   length-``m`` subsequence among all references (squared norms and a matrix product).
3. Threshold: the largest leave-one-reference-out nearest-neighbour distance of the reference
   subsequences (one reference: a self-join excluding pairs closer than m/2), times ``margin``
   (1.2). With no references the profile is a self-join of the target and the threshold
   ``median + mad_k * 1.4826 * MAD`` of it (mad_k 5).
4. Point score: the smallest distance among the subsequences covering the point (an erosion: a
   spike keeps its single point, a long anomaly its own extent); near the window's ends the
   subsequences sticking out are scored on their inside part; a run of above-threshold
   subsequences shorter than ``m`` marks the points all of them share. Points above the
   threshold form intervals; intervals closer than m/2 merge. Points beyond the references'
   range by more than 3 reference std that no interval covers are added as global.
5. Confidence from peak score / threshold (for the added points: std beyond the range / 3):
   < 1.25 -> 1, < 1.6 -> 2, < 2.2 -> 3, else 4. At most ``max_intervals`` (5) intervals, largest
   ratio first, reported sorted by start.
6. Type, first rule that holds: global (<= 3 points outside the reference range or jumping from
   their neighbours more than any reference point does; or 1-3 such isolated points beyond the
   range by > 2 std, to which the interval shrinks); contextual (<= 3 points otherwise); trend
   (against the closest mean-centred reference stretch the difference is a level or a slope:
   offset + slope explain >= 60 % of it and its mean exceeds 0.75 std or its drift 1.5 std);
   frequency (interval >= 1.5 periods and its mean-crossing rate differs from the references' by
   > 30 %); contextual (inside the reference range and shorter than one period); else shapelet.

Reflection keeps a first-answer interval when its peak point score exceeds the threshold times
``reflection_margin`` (1.1). Deterministic: no randomness anywhere.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmad.anomaly_types import ANOMALY_TYPES
from lmad.series.analyzers import OFFLINE, ZERO_USAGE, Analyzer, Job
from lmad.series.answers import parse_answer
from lmad.series.offline_detection import Detection, confidence_of
from lmad.series.offline_features import Normal, describe_normal, runs

PREFIX = "Offline analyzer (not an LLM): "
LABEL = "offline (non-LLM baseline)"
ALGORITHM_VERSION = 3
"""Bump when the analysis changes: it is part of every request hash, so a changed algorithm makes
the answers of the old one stale and a rerun asks again."""


@dataclass(frozen=True)
class Finding:
    """One interval the detector reports, with how far its peak lies beyond the threshold."""

    ratio: float
    start: int
    end: int
    kind: str
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": int(self.start),
            "end": int(self.end),
            "confidence": confidence_of(self.ratio),
            "type": self.kind,
            "explanation": self.explanation,
        }


class OfflineAnalyzer(Analyzer):
    """A built-in nearest-neighbour analyzer with the interface of the LLM one (module docstring)."""

    name = OFFLINE
    label = LABEL
    takes_images = True

    def __init__(
        self,
        margin: float = 1.2,
        reflection_margin: float = 1.1,
        mad_k: float = 5.0,
        max_intervals: int = 5,
    ) -> None:
        self.margin = margin
        self.reflection_margin = reflection_margin
        self.mad_k = mad_k
        self.max_intervals = max_intervals

    # -- the Analyzer interface ----------------------------------------------------------------
    def reference(self, job: Job, refresh: bool = False) -> dict[str, Any]:
        refs = job.reference_values()
        answer = {"normal_pattern": PREFIX + describe_normal(Normal.of(refs))}
        return self._record(job, answer, self._hash(job, refs))

    def analyse(self, job: Job, refresh: bool = False) -> dict[str, Any]:
        target = job.values()
        answer = self.analysis(target, job.reference_values())
        return self._record(job, answer, self._hash(job, [target]))

    def reflect(self, job: Job, refresh: bool = False) -> dict[str, Any]:
        target = job.values()
        first = list((job.first or {}).get("answer", {}).get("anomalies", []))
        answer = self.reflection(target, job.reference_values(), first)
        return self._record(job, answer, self._hash(job, [target], first))

    def _hash(self, job: Job, arrays: list[np.ndarray], first: Any = None) -> str:
        """What decides the answer: algorithm, parameters, stage, the arrays, what it builds on."""
        digest = hashlib.sha256()
        head = {
            "analyzer": OFFLINE, "version": ALGORITHM_VERSION, "stage": job.stage,
            "params": [self.margin, self.reflection_margin, self.mad_k, self.max_intervals],
            "links": job.links(), "first": first,
        }  # fmt: skip
        digest.update(json.dumps(head, sort_keys=True).encode("utf-8"))
        for array in arrays:
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes() + b"|")
        return digest.hexdigest()

    @staticmethod
    def _record(job: Job, answer: dict[str, Any], request_hash: str) -> dict[str, Any]:
        raw = json.dumps(answer)
        warnings = None
        if job.stage != "reference":
            parsed = parse_answer(raw, job.item.test.meta["window_size"])
            answer, warnings = parsed.to_dict(), parsed.warnings
        record = job.record(
            status="answered", request_hash=request_hash, answer=answer, raw=raw,
            usage=dict(ZERO_USAGE), error=None, repaired=False, cached=False,
        )  # fmt: skip
        if job.stage == "analysis":
            record["warnings"] = warnings
        return record

    def usage_summary(self) -> str:
        return "no requests: the offline analyzer is not an LLM"

    # -- the detector --------------------------------------------------------------------------
    def analysis(self, target: np.ndarray, refs: list[np.ndarray]) -> dict[str, Any]:
        """The answer for ``target`` against the normal windows ``refs`` (empty: a self-join)."""
        detections = self.detections(target, refs)
        if not detections:
            return _answer([], PREFIX + f"the window of {len(target)} points is too short.")
        det = detections[0]
        chosen = self._profile_findings(detections, len(target))
        covered = np.zeros(len(target), dtype=bool)
        for find in chosen:
            covered[find.start : find.end] = True
        nrm = det.normal
        far = det.far_points(3.0) if det.has_refs else np.zeros_like(covered)
        for a, b in runs(far & ~covered):
            beyond = max(target[a:b].max() - nrm.high, nrm.low - target[a:b].min()) / nrm.std
            note = f"Value(s) {beyond:.1f} reference std beyond the reference range "
            note += (
                f"[{nrm.low:.2f}, {nrm.high:.2f}] (more than 3), missed by the distance profile."
            )
            chosen.append(Finding(beyond / 3.0, a, b, "global", note))
        chosen = sorted(chosen, key=lambda f: -f.ratio)[: self.max_intervals]
        anomalies = [f.to_dict() for f in sorted(chosen, key=lambda f: f.start)]
        found = f"{len(anomalies)} interval(s)" if anomalies else "no interval"
        return _answer(
            anomalies,
            PREFIX + f"{found} beyond the reference nearest-neighbour distance "
            f"{det.threshold:.2f} (subsequence length {det.m}).",
        )

    @staticmethod
    def _profile_findings(detections: list[Detection], length: int) -> list[Finding]:
        """Intervals above each scale's threshold; a later (shorter) scale adds only intervals
        away from the earlier ones (more than m / 2 of the first scale from them)."""
        chosen: list[Finding] = []
        covered = np.zeros(length, dtype=bool)
        half = detections[0].m // 2
        for scale in detections:
            finds = []
            for start, end in scale.intervals():
                kind, reason, start, end = scale.classify(start, end)
                peak = scale.peak(start, end)
                note = f"Peak nearest-neighbour distance {peak:.2f} vs threshold "
                note += f"{scale.threshold:.2f} (subsequences of {scale.m} points)"
                ratio = peak / scale.threshold
                explanation = f"{note}, {ratio:.1f}x. Type {kind}: {reason}."
                finds.append(Finding(ratio, start, end, kind, explanation))
            finds = [f for f in finds if not covered[f.start : f.end].any()]
            chosen += finds
            for f in finds:
                covered[max(0, f.start - half) : f.end + half] = True
        return chosen

    def reflection(
        self, target: np.ndarray, refs: list[np.ndarray], first: list[Any]
    ) -> dict[str, Any]:
        """Keep each interval of the first answer whose peak lies beyond the threshold times
        ``reflection_margin``; drop the others (and any malformed item)."""
        detections = self.detections(target, refs)
        kept, dropped = [], 0
        for item in first:
            try:
                start, end = max(int(item["start"]), 0), min(int(item["end"]), len(target))
            except (KeyError, TypeError, ValueError):
                dropped += 1
                continue
            ratios = [d.peak(start, end) / d.threshold for d in detections] if end > start else []
            ratio = max(ratios, default=0.0)
            if ratio <= self.reflection_margin:
                dropped += 1
                continue
            confidence = item.get("confidence")
            if confidence not in (1, 2, 3, 4):
                confidence = confidence_of(ratio)
            kind = item.get("type") if item.get("type") in ANOMALY_TYPES else "shapelet"
            note = f"confirmed: peak nearest-neighbour distance {ratio:.2f}x the threshold"
            note += f" (> {self.reflection_margin:g}x)."
            before = str(item.get("explanation", "")).strip()
            kept.append(
                {
                    "start": start,
                    "end": end,
                    "confidence": confidence,
                    "type": kind,
                    "explanation": f"{note} {before}".strip(),
                }
            )
        return _answer(
            kept,
            PREFIX + f"kept {len(kept)} and dropped {dropped} of the first answer's intervals "
            f"(re-check at {self.reflection_margin:g}x the nearest-neighbour threshold).",
        )

    def detections(self, target: np.ndarray, refs: list[np.ndarray]) -> list[Detection]:
        """Profiles at the pattern's scale and, when that is long, at a short one.

        A subsequence as long as the period misses an anomaly of a few points (its distance is
        diluted over the whole subsequence), so a second profile with subsequences of m / 8 points
        (at least 8) catches short ones; each scale has its own threshold from the references.
        """
        if len(target) < 8:
            return []
        first = Detection(target, refs, self.margin, self.mad_k)
        out = [first]
        short = max(8, first.m // 8)
        if first.m >= 3 * short:
            out.append(Detection(target, refs, self.margin, self.mad_k, m=short))
        return out


def _answer(anomalies: list[dict[str, Any]], description: str) -> dict[str, Any]:
    return {"anomalies": anomalies, "description": description}
