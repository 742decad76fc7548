"""The run log: one JSONL record per series, window, channel and stage, appended as answers arrive.

Records are described in :mod:`lmad.series.records`. Each record is one ``write`` of one line followed
by a flush and fsync, so a run killed at any moment loses at most the answer in flight. A line cut off
by a kill (no final newline, not valid JSON) is moved to ``<log>.torn`` (appended there, never
deleted) and the log is truncated to its last complete line before anything new is appended; a
reader that does not write skips it with a warning. Any other unreadable or malformed line is an
error that names ``file:line``. A rerun asks only what :class:`~lmad.series.run_state.RunState` says
is not answered.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from lmad.errors import DataError
from lmad.names import check_name
from lmad.series.records import check_record, located

log = logging.getLogger(__name__)
SETTINGS = ("modality", "window_size", "stride", "references")
"""Run settings every record of one series in one log must share."""
_FLAGS = {
    "modality": "modality",
    "window_size": "window size",
    "stride": "stride",
    "references": "--normal_reference",
}


def safe_name(text: str) -> str:
    """A file-name-safe form of an LLM name (``hf:/models/x`` -> ``hf__models_x``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.") or "run"


def run_log_path(
    data_dir: str | Path,
    subtask: str,
    dataset: str,
    llm: str,
    run_name: str = "",
    modality: str = "image",
) -> Path:
    """``<data_dir>/runs/<subtask>/<dataset>_<llm>_<modality>.jsonl`` (or ``<run_name>.jsonl``)."""
    check_name(subtask, "--subtask")
    if run_name:
        stem = check_name(run_name, "--run_name")
    else:
        stem = f"{safe_name(dataset)}_{safe_name(llm)}_{modality}"
    return Path(data_dir) / "runs" / subtask / f"{stem}.jsonl"


class RunLog:
    """Append-only JSONL log of a run; thread-safe. Opening it sets a torn last line aside."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.torn = set_aside_torn_tail(self.path)
        self.records: list[dict[str, Any]] = read_records(self.path)

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {**record, "time": record.get("time") or time.strftime("%Y-%m-%dT%H:%M:%S")}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self.records.append(record)
        return record

    def check_matches(self, expected: dict[str, tuple[dict[str, Any], str]]) -> None:
        """Refuse a log whose records were made with other settings than the run has now.

        ``expected`` maps a series to its settings now and where they come from (for the message).
        """
        for record in self.records:
            series = str(record["series"])
            if series not in expected:
                continue
            settings, where = expected[series]
            for name in SETTINGS:
                old, new = record.get(name), settings.get(name)
                if old is None or new is None or old == new:
                    continue
                raise DataError(
                    f"{self.path} was written for series {series} with {_FLAGS[name]} {old}, but "
                    f"{where} has {new}; use another --run_name (or --subtask), or move the old "
                    "log away"
                )


def set_aside_torn_tail(path: Path) -> str | None:
    """Move a torn final line of ``path`` to ``<path>.torn`` and truncate; returns the fragment.

    A final line without its newline that is still a whole JSON object only gets the newline.
    """
    if not path.exists():
        return None
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return None
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return None
        cut = _last_newline(handle, size) + 1
        handle.seek(cut)
        tail = handle.read()
        try:
            complete = isinstance(json.loads(tail), dict)
        except ValueError:
            complete = False
        if complete:
            handle.seek(size)
            handle.write(b"\n")
        else:
            with open(f"{path}.torn", "ab") as torn:
                torn.write(tail + b"\n")
                torn.flush()
                os.fsync(torn.fileno())
            handle.truncate(cut)
        handle.flush()
        os.fsync(handle.fileno())
    if complete:
        return None
    fragment = tail.decode("utf-8", errors="replace")
    log.warning(
        "%s: the last line was cut off (%d bytes, an interrupted write); moved it to %s.torn; "
        "its window is asked again",
        path,
        len(tail),
        path,
    )
    return fragment


def _last_newline(handle, size: int, chunk: int = 1 << 16) -> int:
    """Offset of the last ``\\n`` before ``size`` (-1 when there is none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        handle.seek(start)
        found = handle.read(end - start).rfind(b"\n")
        if found >= 0:
            return start + found
        end = start
    return -1


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record of a log, checked; each carries its line number as ``_line``.

    A torn final line (no newline, not JSON) is skipped with a warning; any other bad line raises a
    :class:`~lmad.errors.DataError` naming ``file:line``.
    """
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        lines = handle.readlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            if number == len(lines) and not line.endswith("\n"):
                log.warning("%s:%d: skipping a torn last line (interrupted write)", path, number)
                continue
            raise located(path, number, ValueError("not a JSON record")) from None
        try:
            record = check_record(value)
        except ValueError as exc:
            raise located(path, number, exc) from None
        records.append({**record, "_line": number})
    return records
