"""The run log: one JSONL record per series, window, channel and stage, appended as answers arrive.

Record (DESIGN.md): ``dataset, series, window, channel, stage, llm, request_hash, answer, raw,
usage {prompt_tokens, completion_tokens, cost_usd}, error, time``; lmad adds ``subtask, modality,
window_size, stride, start, references, repaired, cached`` so that a log can be checked against the
processed data it came from. Each record is one ``write`` of one line followed by a flush and fsync,
so a run killed at any moment loses at most the answer in flight; a truncated last line is ignored.
A rerun skips every (series, window, channel, stage) that has an answer.
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

log = logging.getLogger(__name__)
STAGES = ("reference", "analysis", "reflection")


def safe_name(text: str) -> str:
    """A file-name-safe form of an LLM or run name (``hf:/models/x`` -> ``hf__models_x``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def run_log_path(
    data_dir: str | Path, subtask: str, dataset: str, llm: str, run_name: str = ""
) -> Path:
    """``<data_dir>/runs/<subtask>/<dataset>_<llm>.jsonl`` (or ``<run_name>.jsonl``)."""
    stem = safe_name(run_name) if run_name else f"{safe_name(dataset)}_{safe_name(llm)}"
    return Path(data_dir) / "runs" / safe_name(subtask) / f"{stem}.jsonl"


def record_key(record: dict[str, Any]) -> tuple:
    return (str(record["series"]), record.get("window"), record.get("channel"), record["stage"])


class RunLog:
    """Append-only JSONL log of a run; thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.records: list[dict[str, Any]] = read_records(self.path)

    def done(self) -> dict[tuple, dict[str, Any]]:
        """The latest successful record of every key."""
        return {record_key(r): r for r in self.records if r.get("error") is None}

    def append(self, record: dict[str, Any]) -> None:
        record = {**record, "time": record.get("time") or time.strftime("%Y-%m-%dT%H:%M:%S")}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self.records.append(record)

    def check_matches(self, window_size: int, stride: int, where: str) -> None:
        """Refuse a log written for other windows than the processed data has now."""
        for record in self.records:
            if record.get("window_size") not in (None, window_size) or record.get("stride") not in (
                None,
                stride,
            ):
                raise DataError(
                    f"{self.path} was written for windows of {record.get('window_size')}/"
                    f"{record.get('stride')} but {where} has {window_size}/{stride}; use another "
                    "--subtask or --run_name, or move the old log away"
                )


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a log (a torn last line from a killed run is skipped)."""
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                log.warning(
                    "%s:%d: skipping an unreadable record (interrupted write?)", path, number
                )
    return records
