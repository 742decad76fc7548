"""Run-log records: what a valid one looks like, and its status.

A record (docs/design.md, "Run log") is one JSON object per line with ``dataset, series, window, channel,
stage, llm, request_hash, answer, raw, usage, error, time`` plus the run's settings (``subtask,
modality, window_size, stride, start, references, double_check``) and, since run-integrity tracking:

- ``status``: ``answered`` (the answer is usable), ``failed`` (asked, but no usable answer after
  retries and one repair request) or ``blocked`` (not asked: the reference it needs has failed);
- ``reference_hash``: for analysis and reflection records, the ``request_hash`` of the reference
  record whose description was in the conversation (``None`` when the run shows no references);
- ``analysis_hash``: for reflection records, the ``request_hash`` of the analysis they re-check.

Records written before these fields existed are completed by :func:`complete_legacy` from the order
of the log, so that a window whose reference had failed is never taken as done.
"""

from __future__ import annotations

from typing import Any

from lmad.anomaly_types import ANOMALY_TYPES
from lmad.errors import DataError

STAGES = ("reference", "analysis", "reflection")
STATUSES = ("answered", "failed", "blocked")
FAILED_REFERENCE = "failed-reference"
"""``reference_hash`` given to a legacy record that followed a failed reference: matches nothing."""


def record_status(record: dict[str, Any]) -> str:
    """``answered``, ``failed`` or ``blocked`` (legacy records: answered when ``error`` is None)."""
    status = record.get("status")
    if status in STATUSES:
        return status
    return "answered" if record.get("error") is None else "failed"


def record_key(record: dict[str, Any]) -> tuple:
    """``(series, window, channel, stage)``; ``window`` is None for references."""
    return (str(record["series"]), record.get("window"), record.get("channel"), record["stage"])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_anomaly(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object with start, end, confidence and type")
    start, end, confidence = item.get("start"), item.get("end"), item.get("confidence")
    if not (_is_int(start) and _is_int(end)) or not 0 <= start < end:
        raise ValueError(f"{where}: start and end must be integers with 0 <= start < end")
    if not _is_int(confidence) or not 1 <= confidence <= 4:
        raise ValueError(f"{where}: confidence must be an integer from 1 to 4, not {confidence!r}")
    if item.get("type") not in ANOMALY_TYPES:
        raise ValueError(f"{where}: type must be one of {', '.join(ANOMALY_TYPES)}")


def _check_answer(record: dict[str, Any]) -> None:
    answer = record.get("answer")
    if record["stage"] == "reference":
        if not isinstance(answer, dict) or not isinstance(answer.get("normal_pattern"), str):
            raise ValueError('an answered reference needs "answer": {"normal_pattern": "..."}')
        return
    if not isinstance(answer, dict) or not isinstance(answer.get("anomalies"), list):
        raise ValueError('an answered window needs "answer": {"anomalies": [...]}')
    for i, item in enumerate(answer["anomalies"]):
        _check_anomaly(item, f"anomaly {i}")


def check_record(record: Any) -> dict[str, Any]:
    """``record`` when it is a well-formed run record, else ``ValueError`` saying what is wrong."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object (a run record), got {type(record).__name__}")
    missing = [k for k in ("series", "stage", "channel") if k not in record]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if record["stage"] not in STAGES:
        raise ValueError(f"stage {record['stage']!r} is not one of {', '.join(STAGES)}")
    if not isinstance(record["series"], str | int) or isinstance(record["series"], bool):
        raise ValueError(f"series must be a string, not {record['series']!r}")
    if not _is_int(record["channel"]) or record["channel"] < 0:
        raise ValueError(f"channel must be an integer >= 0, not {record['channel']!r}")
    window = record.get("window")
    if record["stage"] == "reference":
        if window is not None:
            raise ValueError(f"a reference record has window null, not {window!r}")
    elif not _is_int(window) or window < 0:
        raise ValueError(f"window must be an integer >= 0, not {window!r}")
    if "status" in record and record["status"] not in STATUSES:
        raise ValueError(f"status {record['status']!r} is not one of {', '.join(STATUSES)}")
    if record.get("error") is not None and not isinstance(record["error"], str):
        raise ValueError("error must be a string or null")
    if record_status(record) == "answered":
        if record.get("error") is not None:
            raise ValueError("status is answered but error is set")
        _check_answer(record)
    return record


def check_against_data(
    record: dict[str, Any], n_windows: int, window_size: int, channels: int
) -> None:
    """``ValueError`` when ``record`` names a window, channel or interval the data does not have."""
    series, window = record["series"], record.get("window")
    if window is not None and window >= n_windows:
        raise ValueError(
            f"window {window} is out of range: series {series} has {n_windows} windows"
        )
    if record["channel"] >= channels:
        raise ValueError(
            f"channel {record['channel']} is out of range: series {series} has {channels}"
        )
    if record["stage"] != "reference" and record_status(record) == "answered":
        for i, item in enumerate(record["answer"]["anomalies"]):
            if item["end"] > window_size:
                raise ValueError(
                    f"anomaly {i}: end {item['end']} is beyond the window of {window_size} points"
                )


def located(path: Any, line: int, error: Exception) -> DataError:
    """The one-line error for a bad record: ``file:line: what is wrong`` and what to do."""
    return DataError(
        f"{path}:{line}: {error}; fix or delete that line (a deleted window is asked again by "
        "the next run, from the cache when it was answered before)"
    )


def complete_legacy(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill ``status``, ``reference_hash`` and ``analysis_hash`` of records written before them.

    In the order of the log, a legacy analysis record was conditioned on the latest reference
    record of its (series, channel) before it: its hash when that reference was answered, else
    :data:`FAILED_REFERENCE`; a legacy reflection on the latest answered analysis before it.
    """
    last_reference: dict[tuple, dict] = {}
    last_analysis: dict[tuple, dict] = {}
    out = []
    for record in records:
        record = dict(record)
        record.setdefault("status", record_status(record))
        series, window, channel, stage = record_key(record)
        if stage == "reference":
            last_reference[(series, channel)] = record
        elif "reference_hash" not in record:
            reference = last_reference.get((series, channel))
            if reference is None:
                record["reference_hash"] = None
            elif reference["status"] == "answered":
                record["reference_hash"] = reference.get("request_hash")
            else:
                record["reference_hash"] = FAILED_REFERENCE
        if stage == "analysis" and record["status"] == "answered":
            last_analysis[(series, window, channel)] = record
        if stage == "reflection" and "analysis_hash" not in record:
            analysis = last_analysis.get((series, window, channel))
            record["analysis_hash"] = analysis.get("request_hash") if analysis else None
        out.append(record)
    return out
