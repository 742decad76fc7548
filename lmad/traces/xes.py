"""Import XES event logs (plain or gzip-compressed) with the standard library's XML parser.

A case is a ``<trace>``; its id is the trace-level ``concept:name``. Each ``<event>`` is one
activity, named by its ``concept:name``. Events are ordered by ``time:timestamp`` when every
event of the case has one (a stable sort: ties keep the file order), otherwise in file order.
Only attributes that are direct children of ``<trace>`` or ``<event>`` count; ``<global>``
defaults, classifiers and nested list/container attributes are ignored.

Labels, when the log has them (for example logs generated with anomalies): a trace attribute
``label``, ``anomaly``, ``anomalous`` or ``is_anomalous`` and the same keys on events. A value
like ``normal``, ``false``, ``0`` or empty means normal; ``true``, ``1``, ``anomalous`` means
anomalous; any other value means anomalous too and is kept as the kind (``raw_cause``), shortened
to a SemAD kind (Insert, SkipSequence, ...) when it names one. A trace attribute ``cause`` becomes
the cause sentence. A case without a trace label is anomalous when one of its events is. Anomalous
cases without event labels get all-zero event labels (usable for trace-level metrics only).

The file is read with ``iterparse`` and every finished case is dropped from memory, so logs of
hundreds of megabytes are fine.
"""

from __future__ import annotations

import gzip
import logging
import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from lmad.errors import DataError
from lmad.traces.log_io import KINDS, SEPARATOR, Trace

log = logging.getLogger(__name__)

LABEL_KEYS = ("label", "anomaly", "anomalous", "is_anomalous", "isanomalous")
NORMAL_VALUES = {"", "normal", "false", "0", "no", "none", "n", "f"}
ANOMALOUS_VALUES = {"true", "1", "yes", "anomalous", "anomaly", "abnormal", "y", "t"}
_ATTRIBUTE_TAGS = {"string", "date", "int", "float", "boolean", "id", "list", "container"}


def _local(tag: str) -> str:
    """A tag without its XML namespace: ``{http://www.xes-standard.org/}event`` -> ``event``."""
    return tag.rsplit("}", 1)[-1].lower()


def parse_label(value: str | None) -> tuple[bool, str]:
    """Whether a label attribute value means anomalous, and the anomaly kind it names (or "")."""
    text = (value or "").strip()
    if text.lower() in NORMAL_VALUES:
        return False, ""
    if text.lower() in ANOMALOUS_VALUES:
        return True, ""
    for kind in KINDS:
        if kind.lower() in text.lower():
            return True, kind
    return True, text


def _timestamp(value: str, case: str) -> float:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise DataError(
            f"case {case!r}: time:timestamp {value!r} is not an ISO 8601 date"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _open(path: Path):
    with open(path, "rb") as handle:
        magic = handle.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_xes(path: str | os.PathLike, lifecycle: str | None) -> list[Trace]:
    """Read the cases of an XES log (``.xes`` or ``.xes.gz``) as traces.

    ``lifecycle`` (e.g. ``"complete"``) keeps only events whose ``lifecycle:transition`` equals it
    (case-insensitive) or that have none; None keeps every event. Cases left without events are
    skipped with a warning.
    Activity names containing ``" , "`` (or ending with ``" ,"``) are written with ``", "``
    (``","``) instead, since the trace separator could not be told apart; a warning says how many.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"XES file {path} not found")
    traces: list[Trace] = []
    stats = {"empty": 0, "renamed": 0}
    try:
        with _open(path) as handle:
            _parse(handle, path, lifecycle, traces, stats)
    except ET.ParseError as exc:
        raise DataError(f"{path} is not a valid XES (XML) file: {exc}") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if stats["empty"]:
        log.warning("%s: skipped %d cases without events", path.name, stats["empty"])
    if stats["renamed"]:
        message = "%s: %d activity names contained ' , ' or ended with ' ,'; written with ','"
        log.warning(message, path.name, stats["renamed"])
    if not traces:
        raise DataError(f"{path} contains no case with events (no <trace> with <event> elements)")
    return traces


def _parse(handle, path: Path, lifecycle: str | None, traces: list[Trace], stats: dict) -> None:
    stack: list[str] = []
    root = None
    case: dict[str, str] = {}
    events: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for action, element in ET.iterparse(handle, events=("start", "end")):
        tag = _local(element.tag)
        if action == "start":
            if root is None:
                root = element
                if tag != "log":
                    raise DataError(f"{path} is not an XES log: the root element is <{tag}>")
            if tag == "trace" and stack == ["log"]:
                case, events = {}, []
            elif tag == "event" and stack == ["log", "trace"]:
                current = {}
            stack.append(tag)
            continue
        stack.pop()
        if tag in _ATTRIBUTE_TAGS and "key" in element.attrib:
            key, value = element.attrib["key"], element.attrib.get("value", "")
            if stack == ["log", "trace", "event"] and current is not None:
                current.setdefault(key, value)
            elif stack == ["log", "trace"]:
                case.setdefault(key, value)
        elif tag == "event" and stack == ["log", "trace"] and current is not None:
            events.append(current)
            current = None
        elif tag == "trace" and stack == ["log"]:
            trace = _make_trace(case, events, len(traces) + stats["empty"] + 1, lifecycle, stats)
            if trace is None:
                stats["empty"] += 1
            else:
                traces.append(trace)
            root.clear()


def _make_trace(
    case: dict[str, str], events: list[dict[str, str]], number: int, lifecycle, stats: dict
) -> Trace | None:
    name = case.get("concept:name", f"case {number}")
    if lifecycle is not None:
        wanted = lifecycle.lower()
        events = [
            e for e in events if e.get("lifecycle:transition", wanted).strip().lower() == wanted
        ]
    if not events:
        return None
    if all("time:timestamp" in e for e in events):
        times = [_timestamp(e["time:timestamp"], name) for e in events]
        order = sorted(range(len(events)), key=times.__getitem__)
        events = [events[i] for i in order]
    activities = []
    for index, event in enumerate(events, start=1):
        activity = event.get("concept:name", "").strip()
        if not activity:
            raise DataError(f"case {name!r}: event {index} has no concept:name (activity)")
        writable = _writable(activity)
        stats["renamed"] += writable != activity
        activities.append(writable)
    event_labels = [int((_find_label(e) or (False, ""))[0]) for e in events]
    trace_label = _find_label(case)
    anomalous, kind = trace_label if trace_label is not None else (any(event_labels), "")
    if not anomalous:
        return Trace(activities)
    return Trace(activities, "anomalous", case.get("cause", ""), event_labels, kind)


def _writable(name: str) -> str:
    """``name`` with ``" , "`` written ``", "`` and a trailing ``" ,"`` written ``","``."""
    while SEPARATOR in name:
        name = name.replace(SEPARATOR, ", ")
    while name.endswith(" ,"):
        name = name[:-2] + ","
    return name


def _find_label(attributes: dict[str, str]) -> tuple[bool, str] | None:
    lowered = {key.lower(): value for key, value in attributes.items()}
    for key in LABEL_KEYS:
        if key in lowered:
            return parse_label(lowered[key])
    return None
