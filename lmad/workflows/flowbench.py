"""Flow-Bench run data to sentence CSVs: read, order by the DAG, clean, split by run, write.

Flow-Bench publishes one CSV per workflow run (a zip of them, or a folder), one row per job: the first
column, unnamed, holds the job name (``eht-imaging_pipeline_ID0000001``,
``create_dir_eht-imaging_0_condorpool``, ``stage_out_local_condorpool_0_0``), then 44 columns (see
:data:`COLUMNS`). The workflow's DAG is ``adjacency_list_dags/<name>.json``, ``{job: [children]}``
with the same job names.

:func:`process_flowbench` writes ``<data_dir>/<name>/{all,train,validation,test}.csv`` with columns
``text,label`` (+ ``label_id`` when multi-class), ``run,job,anomaly_type`` and the numeric features,
plus ``meta.json``. Differences from the original code, on purpose: missing values are really filled
with 0 (the original forgot to assign ``fillna``, so ``nan`` stayed in the text) and the 80/10/10 split
is made by run (the original split rows, so jobs of one run sat on both sides).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lmad.errors import ConfigError, DataError
from lmad.io import atomic_write_json, atomic_write_text
from lmad.names import check_name
from lmad.workflows.dag import dag_order, find_dag, load_dag, match_jobs
from lmad.workflows.sentences import (
    COLUMNS,
    DELAY_FEATURES,
    NORMAL,
    TEMPLATES,
    TIMESTAMP_COLUMNS,
    binary_labels,
    label_order,
    normalise_anomaly_type,
    resolve_features,
    sentences,
)

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validation", "test")
# Strings read as missing. "None" is not among them: it is the label of a normal job.
_NA = ["", "nan", "NaN", "NA", "N/A", "n/a", "null", "NULL", "#N/A"]


@dataclass
class RawRuns:
    """Jobs of every run in one frame (columns ``run``, ``job`` and the file's), and their files."""

    frame: pd.DataFrame
    files: dict[str, str]


@dataclass
class ProcessSummary:
    """What :func:`process_flowbench` wrote."""

    name: str
    folder: Path
    features: list[str]
    template: str
    multiclass: bool
    rows: dict[str, int] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    anomalous: dict[str, int] = field(default_factory=dict)
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    filled: int = 0

    def anomalous_share(self, split: str) -> float:
        """The share of anomalous jobs in ``split`` (0 for an empty split)."""
        return self.anomalous[split] / self.rows[split] if self.rows[split] else 0.0


def parse_split(text: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` as three non-negative fractions summing to 1, train positive."""
    try:
        parts = [float(p) for p in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        parts = []
    if len(parts) != 3 or min(parts) < 0 or parts[0] <= 0 or abs(sum(parts) - 1) > 1e-6:
        raise ConfigError(f"split {text!r} must be three fractions summing to 1, e.g. 0.8,0.1,0.1")
    return parts[0], parts[1], parts[2]


def dataset_name(raw: str | os.PathLike, name: str | None) -> str:
    """``name``, or the raw file's stem with ``-`` read as ``_``; refused unless one safe folder name.

    The name becomes ``<data_dir>/<name>/``, so a path separator, ``..``, a leading dot or a folder
    lmad manages there (``processed``, ``results``, ...) is a :class:`ConfigError` naming the flag.
    """
    if name is not None:
        return check_name(name, "--name")
    raw = Path(raw)
    derived = (raw.stem if raw.suffix else raw.name).replace("-", "_")
    try:
        return check_name(derived, f"the dataset name taken from --raw {raw}")
    except ConfigError as exc:
        raise ConfigError(f"{exc}; or choose a name with --name") from None


def _csv_sources(raw: Path) -> tuple[list[tuple[str, bytes]], str]:
    if not raw.exists():
        raise DataError(f"no such file or folder: {raw}")
    if raw.is_dir():
        paths = sorted(
            p for p in raw.rglob("*") if p.suffix.lower() == ".csv" and not p.name.startswith(".")
        )
        return [(str(p.relative_to(raw)), p.read_bytes()) for p in paths], "folder"
    if raw.suffix.lower() == ".csv":
        return [(raw.name, raw.read_bytes())], "file"
    try:
        with zipfile.ZipFile(raw) as archive:
            names = sorted(
                n
                for n in archive.namelist()
                if n.lower().endswith(".csv")
                and not n.startswith("__MACOSX/")
                and not Path(n).name.startswith(".")
            )
            return [(n, archive.read(n)) for n in names], "zip"
    except zipfile.BadZipFile as exc:
        raise DataError(f"{raw} is neither a zip of run CSVs, a folder nor a CSV file") from exc


def _run_names(names: list[str]) -> list[str]:
    stems = [Path(n).stem for n in names]
    if len(set(stems)) == len(stems):
        return stems
    return [str(Path(n).with_suffix("")) for n in names]


def _record_count(body: bytes) -> int:
    if b'"' not in body:
        return sum(1 for line in body.splitlines() if line.strip())
    return sum(1 for row in csv.reader(io.StringIO(body.decode("utf-8", "replace"))) if row)


def _parse(data: bytes, where: str) -> pd.DataFrame:
    try:
        return pd.read_csv(
            io.BytesIO(data),
            keep_default_na=False,
            na_values=_NA,
            dtype={0: str, "anomaly_type": str},
            low_memory=False,
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse the run CSVs of {where}: {exc}") from exc


def read_runs(raw: str | os.PathLike, required: Sequence[str] = ("anomaly_type",)) -> RawRuns:
    """Read every run CSV of a zip, a folder (searched recursively) or one CSV file.

    Files with the same header are parsed in one pass (fast for hundreds of small runs). A file
    without the ``required`` columns raises :class:`DataError` naming it and them; a file with a
    header but no rows is skipped with a warning.
    """
    raw = Path(raw)
    sources, kind = _csv_sources(raw)
    if not sources:
        raise DataError(
            f"{raw} holds no run CSV files; Flow-Bench data is one CSV per workflow run "
            "(a zip or a folder of them)"
        )
    groups: dict[bytes, list[tuple[str, str, bytes, int]]] = {}
    files: dict[str, str] = {}
    for (name, blob), run in zip(sources, _run_names([n for n, _ in sources])):
        label = (
            str(raw / name) if kind == "folder" else (f"{raw}:{name}" if kind == "zip" else name)
        )
        header, _, body = blob.removeprefix(b"\xef\xbb\xbf").partition(b"\n")
        fields = next(csv.reader([header.decode("utf-8", "replace").strip()]), [])
        missing = [c for c in required if c not in fields[1:]]
        if missing:
            raise DataError(
                f"{label} lacks the columns {', '.join(missing)} (a Flow-Bench run CSV has the job "
                f"name first, then {len(COLUMNS)} columns such as anomaly_type, wms_delay, runtime)"
            )
        count = _record_count(body)
        if count == 0:
            log.warning("%s has no job rows; skipped", label)
            continue
        files[run] = label
        body = body if body.endswith(b"\n") else body + b"\n"
        groups.setdefault(header.strip(), []).append((run, label, body, count))
    if not files:
        raise DataError(f"{raw} holds no run with job rows")
    frames = []
    for header, members in groups.items():
        frame = _parse(header + b"\n" + b"".join(m[2] for m in members), str(raw))
        counts = [m[3] for m in members]
        if len(frame) != sum(counts):  # unusual quoting: parse file by file
            parts = [_parse(header + b"\n" + m[2], m[1]) for m in members]
            counts, frame = [len(p) for p in parts], pd.concat(parts, ignore_index=True)
        frame = frame.rename(columns={frame.columns[0]: "job"})
        frame.insert(0, "run", np.repeat([m[0] for m in members], counts))
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame["job"] = frame["job"].astype(str)
    return RawRuns(frame=frame, files=files)


def order_by_dag(runs: RawRuns, dag: Mapping[str, Sequence[str]], source: str) -> pd.DataFrame:
    """Jobs sorted by run name, then by the DAG's topological order; duplicate jobs are an error."""
    frame = runs.frame
    position = {node: i for i, node in enumerate(dag_order(dag, f"DAG {source}"))}
    mapping = match_jobs(frame["job"].tolist(), list(position), source)
    node = frame["job"].map(mapping)
    twice = frame.loc[pd.DataFrame({"run": frame["run"], "node": node}).duplicated()]
    if len(twice):
        run, job = twice.iloc[0][["run", "job"]]
        raise DataError(f"{runs.files[run]} has job {job} more than once")
    per_run = frame.groupby("run").size()
    short = per_run[per_run < len(position)]
    if len(short):
        log.warning("%d runs lack some jobs of the DAG (e.g. %s)", len(short), short.index[0])
    order = frame.assign(_pos=node.map(position)).sort_values(["run", "_pos"], kind="stable")
    return order.drop(columns="_pos").reset_index(drop=True)


def _numeric(frame: pd.DataFrame, columns: Sequence[str], files: Mapping[str, str]) -> None:
    for name in columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            frame[name] = column.astype(float)
            continue
        text = column.where(column.astype(str).str.strip() != "None")
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() & text.notna()
        if bad.any():
            row = frame.loc[bad.idxmax()]
            raise DataError(
                f"{files[row['run']]}: column {name} has a non-number {row[name]!r} (job {row['job']})"
            )
        frame[name] = values.astype(float)


def build_table(
    raw: str | os.PathLike,
    dag: str | os.PathLike,
    *,
    features: str | Sequence[str],
    multiclass: bool,
    template: str,
) -> tuple[pd.DataFrame, int]:
    """Every job of every run as a row: text, label(s), run, job, anomaly_type and the features.

    Rows follow run names, then the DAG. Timestamps are shifted to the run's start (its earliest
    timestamp); missing feature values become 0 (a warning says how many). Returns the table and the
    number of values filled.
    """
    if template not in TEMPLATES:
        raise ConfigError(f"unknown template {template!r}; choose one of: {', '.join(TEMPLATES)}")
    names = resolve_features(features)
    needed = list(dict.fromkeys([*names, *(DELAY_FEATURES if template == "newer" else ())]))
    runs = read_runs(raw, required=["anomaly_type", *needed])
    frame = order_by_dag(runs, load_dag(dag), str(dag))
    _numeric(frame, needed, runs.files)
    stamps = [c for c in TIMESTAMP_COLUMNS if c in frame.columns]
    if stamps:
        every = frame[stamps].apply(pd.to_numeric, errors="coerce").min(axis=1)
        start = every.groupby(frame["run"]).transform("min").fillna(0.0)
        shifted = [c for c in needed if c in stamps]
        frame[shifted] = frame[shifted].sub(start, axis=0)
    missing = frame[needed].isna().sum()
    filled = int(missing.sum())
    if filled:
        top = missing[missing > 0].sort_values(ascending=False, kind="stable")
        where = ", ".join(f"{k} {v}" for k, v in top.head(4).items())
        where += f" and {len(top) - 4} more columns" if len(top) > 4 else ""
        log.warning("filled %d missing values with 0 (%s)", filled, where)
        frame[needed] = frame[needed].fillna(0.0)
    anomaly = normalise_anomaly_type(frame["anomaly_type"])
    table = pd.DataFrame({"text": sentences(frame, template, names)})
    if multiclass:
        ids = {label: i for i, label in enumerate(label_order(anomaly))}
        table["label"], table["label_id"] = anomaly, anomaly.map(ids).astype(int)
    else:
        table["label"] = binary_labels(anomaly)
    table["run"], table["job"], table["anomaly_type"] = frame["run"], frame["job"], anomaly
    return pd.concat([table, frame[names]], axis=1), filled


def split_runs(runs: Sequence[str], fractions: Sequence[float], seed: int) -> dict[str, list[str]]:
    """Shuffle the runs with ``seed`` and cut them into train/validation/test by ``fractions``.

    Counts are the largest-remainder rounding of the fractions; a split with a positive fraction gets
    at least one run whenever there are enough runs. Each list keeps the runs' sorted order.
    """
    runs = sorted(set(runs))
    exact = np.asarray(fractions, dtype=float) * len(runs)
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: len(runs) - counts.sum()]:
        counts[i] += 1
    for i in range(len(counts)):
        if fractions[i] > 0 and counts[i] == 0 and counts.max() > 1:
            counts[int(np.argmax(counts))] -= 1
            counts[i] += 1
    shuffled = [runs[i] for i in np.random.default_rng(seed).permutation(len(runs))]
    edges = np.concatenate([[0], np.cumsum(counts)])
    return {split: sorted(shuffled[edges[i] : edges[i + 1]]) for i, split in enumerate(SPLITS)}


def process_flowbench(
    raw: str | os.PathLike,
    *,
    dag: str | os.PathLike | None,
    name: str | None,
    features: str | Sequence[str],
    multiclass: bool,
    template: str,
    seed: int,
    split: str | Sequence[float],
    data_dir: str | os.PathLike,
) -> ProcessSummary:
    """Turn Flow-Bench runs into ``<data_dir>/<name>/{all,train,validation,test}.csv``.

    ``name`` None takes the raw file's stem with ``-`` read as ``_``; either is checked by
    :func:`dataset_name` before anything is read. ``dag`` None takes the one :func:`find_dag`
    finds. ``seed`` and ``split`` (``"0.8,0.1,0.1"``) go to :func:`split_runs`. Files are written
    atomically, with ``meta.json`` listing the options and the runs of each split.
    """
    raw = Path(raw)
    name = dataset_name(raw, name)
    fractions = parse_split(split)
    resolve_features(features)
    if template not in TEMPLATES:
        raise ConfigError(f"unknown template {template!r}; choose one of: {', '.join(TEMPLATES)}")
    if not raw.exists():
        raise DataError(
            f"no such file or folder: {raw}; get Flow-Bench runs (github.com/PoSeiDon-Workflows/"
            "FlowBench, data/) or make synthetic ones: python data_processing/synthetic_workflow.py"
        )
    if dag is None:
        dag = find_dag(raw, name)
        if dag is None:
            raise DataError(
                f"no DAG for {name} beside {raw}; pass --dag adjacency_list_dags/{name}.json"
            )
    table, filled = build_table(
        raw, dag, features=features, multiclass=multiclass, template=template
    )
    names = resolve_features(features)
    parts = split_runs(table["run"].unique().tolist(), fractions, seed)
    folder = Path(data_dir) / name
    summary = ProcessSummary(name, folder, names, template, multiclass, filled=filled)
    frames = {"all": table} | {s: table[table["run"].isin(set(parts[s]))] for s in SPLITS}
    for split_name, frame in frames.items():
        atomic_write_text(folder / f"{split_name}.csv", frame.to_csv(index=False))
        summary.rows[split_name] = len(frame)
        summary.runs[split_name] = int(frame["run"].nunique())
        summary.anomalous[split_name] = int((frame["anomaly_type"] != NORMAL).sum())
        counts = frame["anomaly_type"].value_counts()
        summary.label_counts[split_name] = {
            label: int(counts.get(label, 0)) for label in label_order(table["anomaly_type"])
        }
    meta = {
        "name": name, "raw": str(raw), "dag": str(dag), "features": names, "template": template,
        "multiclass": multiclass, "seed": seed, "split": list(fractions), "filled": filled,
        "rows": summary.rows, "label_counts": summary.label_counts, "runs": parts,
    }  # fmt: skip
    atomic_write_json(folder / "meta.json", meta)
    return summary


def load_split(data_dir: str | os.PathLike, name: str, split: str = "train") -> pd.DataFrame:
    """Read ``<data_dir>/<name>/<split>.csv`` as written here (``None`` stays a label, not NaN)."""
    path = Path(data_dir) / name / f"{split}.csv"
    if not path.is_file():
        raise DataError(
            f"no processed data at {path}; make it with python data_processing/flowbench.py "
            f"--raw <zip or folder> --name {name} (or data_processing/synthetic_workflow.py)"
        )
    return pd.read_csv(path, keep_default_na=False, na_values=_NA, dtype={"text": str})


def summary_table(summary: ProcessSummary) -> str:
    """A short text table of what was written: runs, rows and anomalous jobs per split."""
    labels = "multi-class" if summary.multiclass else "binary"
    lines = [
        f"{summary.folder}: template {summary.template}, {len(summary.features)} features, "
        f"{labels} labels",
        f"{'split':<11} {'runs':>5} {'rows':>7} {'anomalous':>9} {'share':>6}",
    ]
    for split in ("all", *SPLITS):
        lines.append(
            f"{split:<11} {summary.runs[split]:>5} {summary.rows[split]:>7} "
            f"{summary.anomalous[split]:>9} {summary.anomalous_share(split):>6.1%}"
        )
    if summary.multiclass:
        counts = summary.label_counts["all"]
        lines.append("labels: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return "\n".join(lines)
