"""Reading a model's answer for one window: find the JSON, accept TAMA's legacy forms, validate.

:func:`parse_answer` turns a reply into the answer schema (docs/design.md, "Answer schema"):
anomalies with window-local ``[start, end)`` intervals (end exclusive; a point ``i`` is
``[i, i + 1)``), a confidence 1-4 and one of the five TAMA types, sorted by start. It also reads
TAMA's legacy dicts (``abnormal_index`` as a string ``"[(s, e)/c/type, (i)/c/type]"`` or a list,
``corrected_abnormal_index`` from the reflection step).
Small slips are fixed and noted in ``Answer.warnings``; anything else raises :class:`AnswerError`,
whose message is short enough to show the model in :func:`repair_prompt`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from itertools import accumulate
from typing import Any

from lmad.anomaly_types import ANOMALY_TYPES
from lmad.series.answer_schema import CONFIDENCE_MAX, CONFIDENCE_MIN


class AnswerError(ValueError):
    """A reply that cannot be used; the message says why, in words the model can act on."""


@dataclass
class Anomaly:
    """One predicted interval ``[start, end)`` in window coordinates."""

    start: int
    end: int
    confidence: int
    type: str
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """A validated answer for one window; ``warnings`` lists what the parser had to fix."""

    anomalies: list[Anomaly]
    description: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON form (warnings are not part of it)."""
        return {"anomalies": [a.to_dict() for a in self.anomalies], "description": self.description}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Answer:
        """Read back an answer written by :meth:`to_dict` (no validation: run logs are trusted)."""
        keys = ("start", "end", "confidence", "type")
        anomalies = [
            Anomaly(*(a[k] for k in keys), a.get("explanation", "")) for a in d["anomalies"]
        ]
        return cls(anomalies, d.get("description", ""))


_TYPE_DEFINITIONS = {
    "global": "a point far from all the others",
    "contextual": "a value that is abnormal only in its local context",
    "frequency": "a change of frequency or period",
    "trend": "a change of the overall direction or level",
    "shapelet": "a subsequence whose shape differs from the normal pattern",
}
_ALLOWED = ", ".join(ANOMALY_TYPES)

ANSWER_SCHEMA_TEXT = (
    '{"anomalies": [{"start": <int>, "end": <int>, '
    f'"confidence": <{CONFIDENCE_MIN}-{CONFIDENCE_MAX}>, '
    '"type": "<' + "|".join(ANOMALY_TYPES) + '>", "explanation": "<why>"}], '
    '"description": "<what the window shows>"}\n'
    "- start and end are integer positions inside the window, counted from its first point (0); "
    "end is exclusive: 0 <= start < end <= window_length, and a single point i is start=i, end=i+1.\n"
    "- confidence is an integer from 1 (not sure) to 4 (more than 95 % of the evidence).\n"
    "- type is one of: " + "; ".join(f"{t} ({_TYPE_DEFINITIONS[t]})" for t in ANOMALY_TYPES) + ".\n"
    '- with no anomaly, answer {"anomalies": [], "description": "<what the window shows>"}.'
)

_SYNONYMS = {
    **dict.fromkeys(("seasonal", "seasonality", "period", "periodic"), "frequency"),
    **dict.fromkeys(("point", "outlier", "spike", "global outlier"), "global"),
    **dict.fromkeys(("level shift", "level", "shift"), "trend"),
    "shape": "shapelet",
    "contextual outlier": "contextual",
}
_NONE_TYPES = {"", "none", "null", "normal", "no anomaly", "n/a"}

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)(?:```|\Z)", re.S)
_STRING_OR_TRAILING_COMMA = re.compile(r'("(?:\\.|[^"\\])*")|,\s*(?=[}\]])')
_DECODER = json.JSONDecoder()


def _strip_trailing_commas(text: str) -> str:
    """Drop commas that directly precede ``}`` or ``]``, leaving strings alone."""
    return _STRING_OR_TRAILING_COMMA.sub(lambda m: m.group(1) or "", text)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(_strip_trailing_commas(text))


def _decode_at(text: str, start: int) -> Any:
    """The JSON value that starts at ``start`` (strings respected), ignoring whatever follows."""
    try:
        return _DECODER.raw_decode(text, start)[0]
    except json.JSONDecodeError:
        return _DECODER.raw_decode(_strip_trailing_commas(text[start:]))[0]


def extract_json(text: str) -> dict:
    """The JSON object in a reply: plain, fenced, or the first one amid prose that parses.

    Trailing commas are tolerated; a top-level list is returned as ``{"anomalies": list}``.
    """
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the reply is empty")
    for candidate in [text.strip()] + [m.group(1).strip() for m in _FENCE.finditer(text)]:
        try:
            value = _loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict | list):
            return value if isinstance(value, dict) else {"anomalies": value}
    error: json.JSONDecodeError | None = None
    for start, ch in enumerate(text):
        if ch not in "{[":
            continue
        try:
            value = _decode_at(text, start)
        except json.JSONDecodeError as exc:
            error = error or (exc if ch == "{" else None)
            continue
        if isinstance(value, dict):
            return value
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return {"anomalies": value}
    if error is not None:
        raise AnswerError(f"the reply is not valid JSON: {error}")
    raise AnswerError("no JSON object found in the reply")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        x = float(value)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _to_int(value: Any, what: str) -> int:
    x = _number(value)
    if x is None:
        raise AnswerError(f"{what} must be an integer, not {value!r}")
    return round(x)


def _to_confidence(value: Any, where: str, warnings: list[str]) -> int:
    if value is None:
        raise AnswerError(f"{where}: confidence missing")
    x = _number(value)
    if x is None or not x.is_integer():
        raise AnswerError(
            f"{where}: confidence must be an integer from {CONFIDENCE_MIN} to {CONFIDENCE_MAX}, "
            f"not {value!r}"
        )
    clamped = min(CONFIDENCE_MAX, max(CONFIDENCE_MIN, int(x)))
    if clamped != x:
        warnings.append(f"{where}: confidence {int(x)} clamped to {clamped}")
    return clamped


def _normalise_type(value: Any, where: str) -> str:
    """One of the five types, or ``"none"``; synonyms mapped, case and separators ignored."""
    t = re.sub(r"[\s_\-]+", " ", str(value)).strip().lower()
    if t in _NONE_TYPES:
        return "none"
    for candidate in (t, re.sub(r" (anomaly|outlier)$", "", t)):
        if candidate in ANOMALY_TYPES:
            return candidate
        if candidate in _SYNONYMS:
            return _SYNONYMS[candidate]
    raise AnswerError(f"{where}: unknown type {value!r}; use one of {_ALLOWED}")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _build(
    item: dict, where: str, warnings: list[str], legacy: bool, defaults: dict | None = None
) -> Anomaly | None:
    """One anomaly from a dict with start/end/confidence/type/explanation (None when ignored).

    ``legacy`` items may lack a type (or say "none"): a point becomes global, an interval shapelet.
    """
    d = defaults or {}
    type_value = item.get("type") if _text(item.get("type")) else d.get("type")
    kind = None if type_value is None else _normalise_type(type_value, where)
    start_value, end_value = item.get("start"), item.get("end")
    if start_value is None:
        if end_value is None and (kind == "none" or (legacy and kind is None)):
            warnings.append(f"{where}: no interval and no anomaly type, ignored")
            return None
        raise AnswerError(f"{where}: start missing")
    start = _to_int(start_value, f"{where}: start")
    end = start + 1 if end_value is None else _to_int(end_value, f"{where}: end")
    if end == start:
        end = start + 1
    elif end < start:
        warnings.append(f"{where}: end {end} before start {start}, swapped")
        start, end = end, start
    conf = item.get("confidence")
    confidence = _to_confidence(d.get("confidence") if conf is None else conf, where, warnings)
    if kind in (None, "none"):
        if not legacy:
            said = "missing" if kind is None else "'none' is not allowed for an anomaly"
            raise AnswerError(f"{where}: type {said}; use one of {_ALLOWED}")
        kind = "global" if end - start == 1 else "shapelet"
        warnings.append(f"{where}: no anomaly type given, used {kind!r}")
    explanation = _text(item.get("explanation")) or _text(d.get("explanation"))
    return Anomaly(start, end, confidence, kind, explanation)


_NUM = r"[-+]?\d+(?:\.\d+)?"
_LEGACY_ITEM = re.compile(
    rf"(?:[(\[]\s*(?P<a>{_NUM})\s*(?:,\s*(?P<b>{_NUM})\s*)?[)\]]|(?P<p>{_NUM}))"
    rf"\s*(?:/\s*(?P<c>{_NUM})\s*)?(?:/\s*(?P<t>[A-Za-z][A-Za-z _\-]*?)\s*)?"
)


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside parentheses and brackets."""
    items, current, depth = [], [], 0
    for ch in text:
        depth += (ch in "([") - (ch in ")]")
        if ch == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [s.strip() for s in items if s.strip()]


def _legacy_items(text: str) -> list[dict]:
    """Raw items of ``"[(s, e)/c/type, (i)/c/type]"``; absent parts are None."""
    s = text.strip().strip("'\"").strip()
    depths = accumulate((ch in "([") - (ch in ")]") for ch in s[1:-1])
    if s[:1] == "[" and s[-1:] == "]" and min(depths, default=0) >= 0:
        s = s[1:-1].strip()
    if s.lower() in _NONE_TYPES:
        return []
    items = []
    for raw in _split_top_level(s):
        m = _LEGACY_ITEM.fullmatch(raw.strip("'\" "))
        if m is None:
            raise AnswerError(
                f"cannot read {raw!r} in the anomaly index; write each as (start, end)/confidence/type"
            )
        start = m["a"] if m["p"] is None else m["p"]
        items.append({"start": start, "end": m["b"], "confidence": m["c"], "type": m["t"]})
    return items


def _index_items(index: Any) -> list[dict]:
    """Raw items of an ``abnormal_index`` value: a legacy string, a number or a list."""
    if index is None:
        return []
    if isinstance(index, str):
        return _legacy_items(index)
    if _number(index) is not None:
        return [{"start": index}]
    if not isinstance(index, list):
        raise AnswerError(f"cannot read the anomaly index {index!r}")
    items: list[dict] = []
    for value in index:
        if isinstance(value, dict):
            items.append(value)
        elif isinstance(value, str):
            items.extend(_legacy_items(value))
        elif _number(value) is not None:
            items.append({"start": value})
        elif isinstance(value, list | tuple) and 1 <= len(value) <= 4:
            items.append(dict(zip(("start", "end", "confidence", "type"), value)))
        else:
            raise AnswerError(f"cannot read {value!r} in the anomaly index; use [start, end]")
    return items


def parse_legacy_index(text: str, default_confidence: int, default_type: str) -> list[Anomaly]:
    """TAMA's ``"[(s, e)/c/type, (i)/c/type]"`` string as anomalies, in the order written.

    Missing confidences and types take the defaults; a point ``(i)`` is ``[i, i + 1)``; a type
    "none" becomes global for a point and shapelet for an interval. No window check here.
    """
    defaults = {"confidence": default_confidence, "type": default_type}
    built = [
        _build(item, f"anomaly {i}", [], legacy=True, defaults=defaults)
        for i, item in enumerate(_legacy_items(text))
    ]
    return [a for a in built if a is not None]


def _from_legacy(data: dict, warnings: list[str]) -> tuple[list[tuple[str, Anomaly]], str]:
    key = "corrected_abnormal_index" if "corrected_abnormal_index" in data else "abnormal_index"
    items = _index_items(data.get(key))
    flag = {"true": True, "false": False}.get(_text(data.get("has_abnormality")).lower())
    if flag is False and items:
        warnings.append("has_abnormality is false but the index lists anomalies; kept them")
    defaults = {
        "confidence": data.get("confidence"),
        "type": data.get("abnormal_type"),
        "explanation": data.get("abnormal_type_description"),
    }
    pairs = []
    for i, item in enumerate(items):
        anomaly = _build(item, f"anomaly {i}", warnings, legacy=True, defaults=defaults)
        if anomaly is not None:
            pairs.append((f"anomaly {i}", anomaly))
    parts = (_text(data.get("abnormal_description")), _text(data.get("reason")))
    return pairs, "\n\n".join(p for p in parts if p)


def _from_design(data: dict, warnings: list[str]) -> tuple[list[tuple[str, Anomaly]], str]:
    items = data.get("anomalies")
    if not isinstance(items, list | None):
        raise AnswerError('"anomalies" must be a list')
    pairs = []
    for i, item in enumerate(items or []):
        where = f"anomaly {i}"
        if not isinstance(item, dict):
            raise AnswerError(f"{where}: expected an object with start, end, confidence and type")
        anomaly = _build(item, where, warnings, legacy=False)
        if anomaly is not None:
            pairs.append((where, anomaly))
    return pairs, _text(data.get("description"))


def parse_answer(
    text_or_dict: str | dict, window_length: int, on_out_of_window: str = "clamp"
) -> Answer:
    """Parse and validate a window answer (lmad's answer schema or TAMA's legacy dicts).

    Intervals outside ``[0, window_length)`` are clipped, or dropped when nothing is left
    (``on_out_of_window="clamp"``, each with a warning), or raise :class:`AnswerError` (``"reject"``).
    """
    if on_out_of_window not in ("clamp", "reject"):
        raise ValueError(f"on_out_of_window must be 'clamp' or 'reject', not {on_out_of_window!r}")
    if window_length < 1:
        raise ValueError(f"window_length must be positive, not {window_length}")
    data = extract_json(text_or_dict) if isinstance(text_or_dict, str) else text_or_dict
    if not isinstance(data, dict):
        raise TypeError(f"expected a reply text or a dict, not {type(data).__name__}")
    warnings: list[str] = []
    if "anomalies" in data:
        pairs, description = _from_design(data, warnings)
    elif {"abnormal_index", "corrected_abnormal_index", "has_abnormality"} & data.keys():
        pairs, description = _from_legacy(data, warnings)
    else:
        raise AnswerError('the reply has no "anomalies" list')
    kept = []
    for where, a in pairs:
        if a.start >= 0 and a.end <= window_length:
            kept.append(a)
            continue
        span = f"[{a.start}, {a.end})"
        if on_out_of_window == "reject":
            raise AnswerError(
                f"{where}: interval {span} is outside the window of {window_length} points; "
                f"use 0 <= start < end <= {window_length}"
            )
        start, end = max(a.start, 0), min(a.end, window_length)
        if end <= start:
            warnings.append(f"{where}: interval {span} is outside the window, dropped")
            continue
        warnings.append(f"{where}: interval {span} clipped to [{start}, {end})")
        kept.append(replace(a, start=start, end=end))
    kept.sort(key=lambda a: (a.start, a.end))
    return Answer(kept, description, warnings)


def parse_reference(text: str) -> str:
    """The normal-pattern description of a reference-learning reply (JSON or plain text)."""
    if not isinstance(text, str) or not text.strip():
        raise AnswerError("the reply is empty")
    try:
        data = extract_json(text)
    except AnswerError:
        if text.strip().startswith(("{", "```")):
            raise
        return text.strip()
    if "normal_pattern" not in data:
        raise AnswerError('the reply has no "normal_pattern"; answer {"normal_pattern": "..."}')
    pattern = _text(data["normal_pattern"])
    if not pattern:
        raise AnswerError("normal_pattern is empty")
    return pattern


def repair_prompt(error: str, window_length: int) -> str:
    """The user turn asking the model to fix its previous reply."""
    reason = _text(error).rstrip(".") or "it could not be read"
    return (
        f"Your previous reply could not be used: {reason}.\n"
        f"Answer again for the same window. It has {window_length} points (window_length = "
        f"{window_length}), so every interval needs 0 <= start < end <= {window_length}. "
        "Use exactly this JSON schema:\n"
        f"{ANSWER_SCHEMA_TEXT}\n"
        "Reply with only the JSON object: no text before or after it and no code fences."
    )
