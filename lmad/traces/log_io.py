"""Read and write trace logs in the SemAD CSV format.

A training file has the columns ``trace,label,cause,evelabel``; a test or eval file has
``trace,label,raw_cause,cause,evelabel`` (that column order, as in SemAD's files):

- ``trace``: the activities joined by ``" , "`` (space, comma, space);
- ``label``: ``normal`` or ``anomalous``;
- ``raw_cause``: the anomaly kind (``Insert``, ``SkipSequence``, ``Rework``, ``Early``, ``Late``,
  ``Exclusive``), empty for normal traces. In SemAD's files this column holds the *kind*;
- ``cause``: a sentence that explains the anomaly ("The activity 'x' should not be executed."),
  empty for normal traces;
- ``evelabel``: one 0/1 label per event, printed the way numpy prints an integer array:
  ``[0 1 0]``, wrapped after 37 labels onto lines that start with a space.

Activity names may contain commas (``"Verify contents, inspect quality"``) as long as the
separator ``" , "`` cannot be found inside or across them: a name must not contain ``" , "`` and
must not end with ``" ,"``. :func:`write_traces` checks that every trace reads back unchanged and
raises :class:`~lmad.errors.DataError` otherwise.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lmad.errors import DataError
from lmad.io import atomic_write_text

SEPARATOR = " , "
LABELS = ("normal", "anomalous")
KINDS = ("Insert", "SkipSequence", "Rework", "Early", "Late", "Exclusive")
TRAIN_COLUMNS = ("trace", "label", "cause", "evelabel")
TEST_COLUMNS = ("trace", "label", "raw_cause", "cause", "evelabel")

_LINE_WIDTH = 75  # numpy's default print width, which SemAD's evelabel column was printed with
_SENTENCE_KINDS = (
    ("should not be executed", "Insert"),
    ("skipped before", "SkipSequence"),
    ("reworked after", "Rework"),
    ("too early", "Early"),
    ("too late", "Late"),
    ("mutually exclusive", "Exclusive"),
)


@dataclass
class Trace:
    """One case: its activities in order, the trace label, the cause and one label per event.

    ``cause`` is the explanatory sentence (the CSV's ``cause`` column) and ``raw_cause`` the
    anomaly kind (the ``raw_cause`` column of test files; ``None`` when the file has no such
    column). Normal traces have empty causes and all-zero ``event_labels``.
    """

    events: list[str]
    label: str = "normal"
    cause: str = ""
    event_labels: list[int] = field(default_factory=list)
    raw_cause: str | None = None

    def __post_init__(self) -> None:
        if not self.event_labels:
            self.event_labels = [0] * len(self.events)

    @property
    def is_anomalous(self) -> bool:
        """Whether the trace is labelled anomalous."""
        return self.label == "anomalous"

    @property
    def kind(self) -> str:
        """The anomaly kind: ``raw_cause`` when set, else recognised from the cause sentence."""
        if self.raw_cause:
            return self.raw_cause
        for phrase, kind in _SENTENCE_KINDS:
            if phrase in self.cause:
                return kind
        return ""

    @property
    def text(self) -> str:
        """The trace as one string, events joined by ``" , "``."""
        return trace_text(self.events)


def trace_text(events: Sequence[str]) -> str:
    """Join activity names with ``" , "``, the SemAD trace separator."""
    return SEPARATOR.join(events)


def split_trace(text: str) -> list[str]:
    """Split a trace on ``" , "`` exactly; commas without surrounding spaces stay in the names."""
    return text.split(SEPARATOR)


def format_event_labels(labels: Sequence[int]) -> str:
    """Print 0/1 labels as numpy prints an int array: ``[0 1 0]``, wrapped at 75 characters."""
    words = [str(int(label)) for label in labels]
    out, line = "", "["
    for index, word in enumerate(words):
        width = _LINE_WIDTH - (1 if index == len(words) - 1 else 0)
        if len(line) + len(word) > width and len(line) > 1:
            out += line.rstrip() + "\n"
            line = " "
        line += word
        if index < len(words) - 1:
            line += " "
    return out + line + "]"


def parse_event_labels(text: str) -> list[int]:
    """Parse ``[0 1 0]`` (numpy, possibly wrapped over lines) or ``[0, 1, 0]`` into 0/1 ints.

    Raises ValueError with a short reason when the text is not such a list.
    """
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise ValueError(f"expected a list like [0 1 0], got {_clip(text)!r}")
    if "..." in body:
        raise ValueError("the list was abbreviated with '...' when printed; write every label")
    labels = []
    for token in body[1:-1].replace(",", " ").split():
        try:
            value = float(token)
        except ValueError:
            raise ValueError(f"{token!r} is not 0 or 1") from None
        if value not in (0.0, 1.0):
            raise ValueError(f"{token!r} is not 0 or 1")
        labels.append(int(value))
    return labels


def read_traces(path: str | os.PathLike) -> list[Trace]:
    """Read a SemAD trace CSV (training, test or eval file) and validate every row.

    Only ``trace`` is required: a missing ``label`` is inferred from ``evelabel`` (or normal), a
    missing ``evelabel`` means all zeros for normal traces. ``raw_cause`` is ``None`` on every
    trace when the file has no such column. Raises :class:`DataError` naming the row (1-based,
    header not counted) for an empty trace or activity, an unknown label, a malformed ``evelabel``,
    an ``evelabel`` whose length differs from the number of events, or a normal trace with
    anomalous events.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"trace file {path} not found; run data_processing/process_logs.py first")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = columns
    if "trace" not in columns:
        shown = ", ".join(columns) if columns else "none: the file is empty"
        raise DataError(
            f"{path} has no 'trace' column (columns: {shown}); a trace CSV needs "
            f"{','.join(TRAIN_COLUMNS)} (+ raw_cause in test files)"
        )
    has_raw = "raw_cause" in columns
    traces = []
    for number, row in enumerate(reader, start=1):
        traces.append(_parse_row(row, has_raw, f"{path.name} row {number}"))
    return traces


def _parse_row(row: dict[str, str | None], has_raw: bool, where: str) -> Trace:
    trace = row.get("trace") or ""
    if not trace.strip():
        raise DataError(f"{where}: the trace is empty; every trace needs at least one activity")
    events = split_trace(trace)
    if any(not event.strip() for event in events):
        raise DataError(
            f"{where}: empty activity name in {_clip(trace)!r} (' ,  , ' or a ' , ' end)"
        )
    raw_label = row.get("evelabel")
    labels = None
    if raw_label is not None and raw_label.strip():
        try:
            labels = parse_event_labels(raw_label)
        except ValueError as exc:
            raise DataError(f"{where}: bad evelabel: {exc}") from None
        if len(labels) != len(events):
            raise DataError(
                f"{where}: evelabel has {len(labels)} labels but the trace has {len(events)} "
                f"events; give one 0/1 label per event (events are separated by ' , ')"
            )
    label = (row.get("label") or "").strip().lower()
    if not label:
        label = "anomalous" if labels and any(labels) else "normal"
    if label not in LABELS:
        raise DataError(f"{where}: label {row.get('label')!r} is neither 'normal' nor 'anomalous'")
    if labels is None:
        if label == "anomalous":
            raise DataError(f"{where}: anomalous trace without evelabel; give one label per event")
        labels = [0] * len(events)
    if label == "normal" and any(labels):
        raise DataError(f"{where}: label is 'normal' but evelabel marks anomalous events")
    raw_cause = (row.get("raw_cause") or "") if has_raw else None
    return Trace(events, label, row.get("cause") or "", labels, raw_cause)


def traces_to_csv(traces: Iterable[Trace], with_raw_cause: bool) -> str:
    """The CSV text of ``traces`` in the SemAD format (what :func:`write_traces` writes)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TEST_COLUMNS if with_raw_cause else TRAIN_COLUMNS)
    for number, trace in enumerate(traces, start=1):
        _check_writable(trace, number)
        evelabel = format_event_labels(trace.event_labels)
        if with_raw_cause:
            row = [trace.text, trace.label, trace.raw_cause or "", trace.cause, evelabel]
        else:
            row = [trace.text, trace.label, trace.cause, evelabel]
        writer.writerow(row)
    return buffer.getvalue()


def write_traces(path: str | os.PathLike, traces: Iterable[Trace], with_raw_cause: bool) -> Path:
    """Write ``traces`` atomically as a SemAD CSV; ``with_raw_cause`` for test/eval files.

    Reading a SemAD file and writing it back gives the same bytes.
    """
    return atomic_write_text(path, traces_to_csv(traces, with_raw_cause))


def _check_writable(trace: Trace, number: int) -> None:
    where = f"trace {number}"
    if not trace.events:
        raise DataError(f"{where} has no events; every trace needs at least one activity")
    if split_trace(trace.text) != list(trace.events):
        bad = [e for e in trace.events if SEPARATOR in e or e.endswith(" ,") or not e.strip()]
        raise DataError(
            f"{where}: activity {(bad or trace.events)[0]!r} cannot be written with the ' , ' "
            "separator (a name must be non-empty, must not contain ' , ' nor end with ' ,')"
        )
    if len(trace.event_labels) != len(trace.events):
        raise DataError(
            f"{where}: {len(trace.event_labels)} event labels for {len(trace.events)} events"
        )
    if trace.label not in LABELS:
        raise DataError(f"{where}: label {trace.label!r} is neither 'normal' nor 'anomalous'")


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
