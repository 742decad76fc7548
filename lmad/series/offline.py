"""The offline analyzer: answers TAMA's time-series prompts without an LLM, a key or a GPU.

:class:`OfflineAnalyzer` is a :class:`~lmad.llm.base.Backend` that reads the series values attached
to message parts (``part.values``, z-scored 1-D arrays), never the pixels, and answers in the same
schemas as a hosted model (DESIGN.md, "Answer"). Its answers depend on those values, so
:meth:`OfflineAnalyzer.cache_extra` returns their hash. Every text it writes starts with
"Offline analyzer (not an LLM)".

Tasks:

- ``reference``: the value-carrying parts of the last user message are normal windows; the answer
  ``{"normal_pattern": ...}`` gives their period (autocorrelation), range, mean, stability (std of
  per-period means), trend (slope per 100 points) and typical peaks and troughs.
- ``analysis``: references are the value-carrying parts of every earlier user message; the target
  is the last value-carrying part of the last user message.
- ``reflection``: the last user message holds the full window (its longest value array) and the
  first answer (the JSON object in its text); each first-answer interval is re-scored.
- ``repair``: the last assistant text is returned unchanged.

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

import json
from typing import Any

import numpy as np

from lmad.llm.base import Backend, FatalError, Reply, Usage
from lmad.llm.messages import ChatRequest, Message, values_hash
from lmad.series.base import ANOMALY_TYPES
from lmad.series.offline_detection import Detection, confidence_of
from lmad.series.offline_features import (
    Normal,
    describe_normal,
    runs,
)

PREFIX = "Offline analyzer (not an LLM): "
NO_VALUES = "offline analyzer needs the window values attached to the prompt"


ALGORITHM_VERSION = 3
"""Bump when the analysis changes, so cached answers of the old algorithm are not reused."""


class OfflineAnalyzer(Backend):
    """A built-in analyzer with the interface of an LLM backend (see the module docstring)."""

    provider = "offline"
    takes_images = True

    def __init__(
        self,
        model: str = "nn-distance",
        margin: float = 1.2,
        reflection_margin: float = 1.1,
        mad_k: float = 5.0,
        max_intervals: int = 5,
    ) -> None:
        super().__init__(model)
        self.margin = margin
        self.reflection_margin = reflection_margin
        self.mad_k = mad_k
        self.max_intervals = max_intervals

    def cache_extra(self, request: ChatRequest) -> object:
        """The values (answers depend on them), the parameters and the algorithm's version."""
        return {
            "values": values_hash(request),
            "version": ALGORITHM_VERSION,
            "params": [self.margin, self.reflection_margin, self.mad_k, self.max_intervals],
        }

    def complete(self, request: ChatRequest, timeout: float | None = None) -> Reply:
        if request.task == "repair":
            earlier = [m for m in request.messages if m.role == "assistant"]
            if not earlier:
                raise FatalError("offline analyzer: a repair request without an assistant turn")
            return Reply(text=earlier[-1].text, usage=Usage(0, 0), cost_usd=0.0)
        handlers = {
            "reference": self.reference,
            "analysis": self.analysis,
            "reflection": self.reflection,
        }
        if request.task not in handlers:
            raise FatalError(
                "offline analyzer answers the time-series prompts only (reference, analysis, "
                f"reflection); task {request.task}"
            )
        answer = handlers[request.task](request)
        return Reply(text=json.dumps(answer), usage=Usage(0, 0), cost_usd=0.0)

    # -- tasks ------------------------------------------------------------------------------------

    def reference(self, request: ChatRequest) -> dict[str, str]:
        *_, last = _user_turns(request)
        windows = _values_of(last)
        if not windows:
            raise FatalError(NO_VALUES)
        return {"normal_pattern": PREFIX + describe_normal(Normal.of(windows))}

    def analysis(self, request: ChatRequest) -> dict[str, Any]:
        *earlier, last = _user_turns(request)
        windows = _values_of(last)
        if not windows:
            raise FatalError(NO_VALUES)
        target = windows[-1]
        detections = self.detections(target, _references(earlier, target))
        if not detections:
            return _answer([], PREFIX + f"the window of {len(target)} points is too short.")
        det = detections[0]
        chosen = []  # (ratio to the threshold, start, end, type, explanation)
        covered = np.zeros(len(target), dtype=bool)  # the primary finds, widened by m / 2
        for scale in detections:
            finds = []
            for start, end in scale.intervals():
                kind, reason, start, end = scale.classify(start, end)
                peak = scale.peak(start, end)
                note = f"Peak nearest-neighbour distance {peak:.2f} vs threshold "
                note += f"{scale.threshold:.2f} (subsequences of {scale.m} points)"
                ratio = peak / scale.threshold
                finds.append(
                    (ratio, start, end, kind, f"{note}, {ratio:.1f}x. Type {kind}: {reason}.")
                )
            finds = [f for f in finds if not covered[f[1] : f[2]].any()]
            chosen += finds
            for _, start, end, *_ in finds:
                covered[max(0, start - det.m // 2) : end + det.m // 2] = True
        covered[:] = False
        for _, start, end, *_ in chosen:
            covered[start:end] = True
        nrm = det.normal
        far = det.far_points(3.0) if det.has_refs else np.zeros_like(covered)
        for a, b in runs(far & ~covered):
            beyond = max(target[a:b].max() - nrm.high, nrm.low - target[a:b].min()) / nrm.std
            note = f"Value(s) {beyond:.1f} reference std beyond the reference range "
            note += (
                f"[{nrm.low:.2f}, {nrm.high:.2f}] (more than 3), missed by the distance profile."
            )
            chosen.append((beyond / 3.0, a, b, "global", note))
        chosen = sorted(chosen, key=lambda c: -c[0])[: self.max_intervals]
        anomalies = [
            {
                "start": int(start),
                "end": int(end),
                "confidence": confidence_of(ratio),
                "type": kind,
                "explanation": explanation,
            }
            for ratio, start, end, kind, explanation in sorted(chosen, key=lambda c: c[1])
        ]
        found = f"{len(anomalies)} interval(s)" if anomalies else "no interval"
        return _answer(
            anomalies,
            PREFIX + f"{found} beyond the reference nearest-neighbour distance "
            f"{det.threshold:.2f} (subsequence length {det.m}).",
        )

    def reflection(self, request: ChatRequest) -> dict[str, Any]:
        *earlier, last = _user_turns(request)
        windows = _values_of(last)
        if not windows:
            raise FatalError(NO_VALUES)
        target = max(reversed(windows), key=len)
        first = _first_answer(last.text)
        detections = self.detections(target, _references(earlier, target))
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


def _user_turns(request: ChatRequest) -> list[Message]:
    turns = [m for m in request.messages if m.role == "user"]
    if not turns:
        raise FatalError("offline analyzer: the request has no user message")
    return turns


def _values_of(message: Message) -> list[np.ndarray]:
    found = []
    for part in message.parts:
        if part.values is None:
            continue
        values = np.asarray(part.values, dtype=np.float64)
        if values.ndim > 1 and values.shape[1:] == (1,) * (values.ndim - 1):
            values = values.reshape(-1)
        if values.ndim != 1:
            raise FatalError(f"offline analyzer reads 1-D values, got shape {values.shape}")
        if not np.isfinite(values).all():
            raise FatalError("offline analyzer: the attached values contain NaN or infinity")
        found.append(values)
    return found


def _references(earlier: list[Message], target: np.ndarray) -> list[np.ndarray]:
    """Value arrays of earlier user turns, except copies of the target (a previous analysis)."""
    refs = [v for m in earlier for v in _values_of(m)]
    return [r for r in refs if not (len(r) == len(target) and np.array_equal(r, target))]


def _first_answer(text: str) -> list[dict[str, Any]]:
    """The anomalies of the JSON object in ``text``: first '{' to last '}', else the first object
    that decodes there with an ``anomalies`` list."""
    found: list[Any] = []
    try:
        found.append(json.loads(text[text.find("{") : text.rfind("}") + 1]))
    except ValueError:
        decoder = json.JSONDecoder()
        for pos in (i for i, ch in enumerate(text) if ch == "{"):
            try:
                found.append(decoder.raw_decode(text, pos)[0])
            except ValueError:
                continue
    for parsed in found:
        if isinstance(parsed, dict) and isinstance(parsed.get("anomalies"), list):
            return [a for a in parsed["anomalies"] if isinstance(a, dict)]
    raise FatalError("offline analyzer: no JSON first answer with 'anomalies' in the reflection")
