"""The per-trace and per-event scores of a SemAD evaluation, as a CSV a researcher can reuse.

``eval.py`` writes ``data/results/semad/<name>/<model>_scores.csv`` (``<name>`` = the stem of the
scored data file, ``<model>`` = the result row's model name; both checked by
:func:`lmad.names.check_name`), atomically, and ``eval.py --from_scores`` recomputes every metric
and threshold of the result rows from it (:func:`metric_rows`) without loading a model.

One file holds one run: the LM's scores (``method`` ``semad``) and the n-gram baseline's
(``method`` ``3-gram``), in that order. Per method, each trace gives one row of ``level``
``trace`` and then one row of ``level`` ``event`` per event. Columns (:data:`SCORE_COLUMNS`):

* ``method``, ``level``: as in result.csv;
* ``trace``: the trace's row in the data file, 0-based (the first trace under the header is 0);
* ``event``: the event's position in its trace, 0-based; empty on trace rows;
* ``label``: 1 = anomalous, 0 = normal (the trace's ``label``, or the event's ``evelabel``);
* ``score``: the trace score (max over the events and the end of trace) or the event score, in
  [0, 1], written with every digit (read with ``float_precision="round_trip"`` to get them back);
* ``model``, ``adapter``: the method's model and LoRA adapter (empty: none);
* ``data``, ``file_traces``, ``seed``: the scored file, its number of traces and the seed of a
  stratified sample (empty: every trace scored), repeated on every row so the file stands alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmad.errors import ConfigError, DataError
from lmad.names import check_name
from lmad.traces.sampling import Sample, describe
from lmad.traces.scoring import TraceScore, detection_metrics

SCORE_COLUMNS = (
    "method", "level", "trace", "event", "label", "score", "model", "adapter", "data",
    "file_traces", "seed",
)  # fmt: skip
LEVELS = ("trace", "event")
_TEXT = ("method", "level", "model", "adapter", "data")
_RUN = ("data", "file_traces", "seed")
"""Columns one file holds a single value of; ``model`` and ``adapter`` are single per method."""


def scores_path(result_path: Any, data_path: Any, model: str) -> Path:
    """``<folder of result_path>/<data file stem>/<model>_scores.csv``, names checked.

    Raises:
        ConfigError: a data file stem or model name that is no safe file name.
    """
    try:
        name = check_name(Path(data_path).stem, f"the folder name taken from --data_path "
                          f"{data_path}", frozenset())  # fmt: skip
        file = check_name(f"{model}_scores.csv", "the scores file name taken from --llm_path",
                          frozenset())  # fmt: skip
    except ConfigError as exc:
        raise ConfigError(f"{exc}; or pass --scores_path") from None
    return Path(result_path).parent / name / file


def score_frame(
    method: str,
    model: str,
    adapter: str,
    sample: Sample,
    data: str,
    trace_labels: Sequence[int],
    event_labels: Sequence[Sequence[int]],
    scores: Sequence[TraceScore],
) -> Any:
    """The rows of one method's scores of the traces ``sample.indices`` (a pandas DataFrame).

    Raises:
        DataError: labels and scores that do not match in number (of traces or of events).
    """
    import pandas as pd

    if not len(trace_labels) == len(event_labels) == len(scores) == sample.size:
        raise DataError(f"{len(scores)} scored traces for {len(trace_labels)} labels")
    columns: dict[str, list[Any]] = {key: [] for key in ("level", "trace", "event", "label")}
    values: list[float] = []
    for number, (row, y, events, score) in enumerate(
        zip(sample.indices, trace_labels, event_labels, scores)
    ):
        if len(events) != len(score.events):
            raise DataError(
                f"trace {number + 1}: {len(events)} event labels for {len(score.events)} events"
            )
        columns["level"] += ["trace"] + ["event"] * len(events)
        columns["trace"] += [row] * (len(events) + 1)
        columns["event"] += [None, *range(len(events))]
        columns["label"] += [int(y), *(int(e) for e in events)]
        values += [score.trace, *(float(e) for e in score.events)]
    frame = pd.DataFrame(columns)
    frame.insert(0, "method", method)
    frame["event"] = frame["event"].astype("Int64")
    frame["score"] = np.asarray(values, dtype=float)
    frame["model"], frame["adapter"], frame["data"] = model, adapter, data
    frame["file_traces"] = sample.total
    frame["seed"] = pd.array([sample.seed] * len(frame), dtype="Int64")
    return frame[list(SCORE_COLUMNS)]


def write_scores(path: Any, frames: Sequence[Any]) -> Path:
    """Write the methods' frames, in order, as one scores CSV (atomically)."""
    import pandas as pd

    from lmad.io import atomic_write_text

    return atomic_write_text(path, pd.concat(list(frames), ignore_index=True).to_csv(index=False))


def read_scores(path: Any) -> Any:
    """A scores CSV checked and typed (a pandas DataFrame in :data:`SCORE_COLUMNS` order).

    Raises:
        DataError: no such file, not a CSV, missing columns, no rows, a level other than trace
            or event, labels other than 0/1, missing or non-finite scores, rows of several runs.
    """
    import pandas as pd

    where = Path(path)
    if not where.is_file():
        raise DataError(
            f"--from_scores {path}: no such file; give a *_scores.csv that eval.py wrote "
            "(data/results/semad/<data name>/<model>_scores.csv)"
        )
    text = {key: str for key in _TEXT}
    try:
        frame = pd.read_csv(where, dtype=text, keep_default_na=False, float_precision="round_trip")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise DataError(f"{path} is not a scores CSV: {reason}") from None
    missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path} lacks the column(s) {', '.join(missing)}; a scores file has "
            f"{', '.join(SCORE_COLUMNS)}"
        )
    if frame.empty:
        raise DataError(f"{path} holds no scores")
    levels = set(frame["level"]) - set(LEVELS)
    if levels:
        raise DataError(f"{path}: level must be trace or event, not {sorted(levels)[0]!r}")
    frame = frame[list(SCORE_COLUMNS)].copy()
    for key in ("trace", "event", "label", "file_traces", "seed", "score"):
        frame[key] = pd.to_numeric(frame[key], errors="coerce")
    _check_values(frame, path)
    for key in ("trace", "event", "label", "file_traces", "seed"):
        frame[key] = frame[key].astype("Int64")
    return frame


def _check_values(frame: Any, path: Any) -> None:
    def bad(mask: Any, what: str) -> None:
        if mask.any():
            line = int(np.flatnonzero(np.asarray(mask))[0]) + 2  # header is line 1
            raise DataError(f"{path}, line {line}: {what}")

    bad(~frame["label"].isin([0, 1]), "label must be 0 or 1")
    bad(~np.isfinite(frame["score"].to_numpy(dtype=float)), "score is missing or not a number")
    bad(frame["trace"].isna(), "trace must be a row number")
    bad(frame["file_traces"].isna(), "file_traces must be a number of traces")
    bad((frame["level"] == "event") & frame["event"].isna(), "an event row needs its position")
    for key in _RUN:
        if frame[key].nunique(dropna=False) > 1:
            raise DataError(f"{path} holds rows of several runs ({key} differs); one run a file")
    for method, group in frame.groupby("method", sort=False):
        if group["model"].nunique() > 1 or group["adapter"].nunique() > 1:
            raise DataError(f"{path}: method {method} has rows of several models")


def metric_rows(frame: Any, threshold: float) -> list[dict[str, Any]]:
    """One result row per (method, level) of a scores frame, in the order of the file.

    Each holds ``data sample model adapter method level`` and
    :func:`~lmad.traces.scoring.detection_metrics` at ``threshold``.
    """
    import pandas as pd

    first = frame.iloc[0]
    seed = None if pd.isna(first["seed"]) else int(first["seed"])
    traces = frame.loc[frame["level"] == "trace", "trace"].nunique()
    if traces == 0:
        traces = frame["trace"].nunique()
    run = {"data": str(first["data"]), "sample": describe(traces, int(first["file_traces"]), seed)}
    rows = []
    for method, group in frame.groupby("method", sort=False):
        head = {"model": group["model"].iloc[0], "adapter": group["adapter"].iloc[0]}
        for level in LEVELS:
            part = group[group["level"] == level]
            if part.empty:
                continue
            metrics = detection_metrics(
                part["label"].to_numpy(dtype=int), part["score"].to_numpy(dtype=float), threshold
            )
            rows.append({**run, **head, "method": method, "level": level, **metrics})
    return rows
