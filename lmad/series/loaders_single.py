"""Loaders for series published as one file: TSB-UAD ``.out`` (NormA, ECG), Dodgers, generic CSV.

These datasets have no separate train file. The leading ``train_fraction`` of each series becomes the
train split (normal references are drawn only from its anomaly-free windows) and the rest the test
split; see :func:`lmad.series.base.split_single_series`. The TAMA ``.npy`` layout is read too.

``train_fraction`` is a required keyword of every ``load`` here: its default is written once, in
:class:`lmad.series.prepare.PrepareOptions`, and a caller that forgets it gets a TypeError rather
than a silently different split.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lmad.anomaly_types import ANOMALY_TYPES
from lmad.errors import DataError
from lmad.series.base import DatasetSpec, SeriesData, split_single_series
from lmad.series.loaders_archive import check_not_empty, load_tama_npy, sort_ids, tama_npy_ids


def out_file_id(path: Path) -> str:
    """Series id of a TSB-UAD file: its name without ``.out`` and ``.test``."""
    name = path.name[: -len(".out")]
    return name[: -len(".test")] if name.endswith(".test") else name


def read_out_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a TSB-UAD ``.out`` file: one ``value,label`` pair per line."""
    check_not_empty(path, "expected one 'value,label' line per time point")
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{path}: expected 'value,label' lines ({exc})") from None
    if table.shape[1] != 2:
        raise DataError(f"{path}: expected 2 columns (value,label), found {table.shape[1]}")
    return table[:, 0], table[:, 1]


class TSBLoader:
    """A TSB-UAD folder of ``.out`` files (Paparrizos et al. 2022), one series per file.

    A series id is the file name without ``.out``/``.test``; a number ``n`` also matches a file whose
    name starts with ``n`` followed by a non-digit (``1`` matches ``1_marotta_valve.out``).
    """

    name = "TSB"
    spec = DatasetSpec()

    def _files(self, root: Path) -> dict[str, Path]:
        files = sorted(p for p in root.rglob("*.out") if not p.name.startswith("."))
        return {out_file_id(p): p for p in files}

    def list_ids(self, root: Path) -> list[str]:
        return sort_ids(tama_npy_ids(root) + list(self._files(root)))

    def find(self, root: Path, series_id: str) -> Path | None:
        files = self._files(root)
        if series_id in files:
            return files[series_id]
        pattern = re.compile(rf"^0*{re.escape(series_id)}(\D|$)")
        matches = [path for key, path in files.items() if pattern.match(key)]
        if len(matches) > 1:
            names = ", ".join(p.name for p in matches[:5])
            raise DataError(f"{self.name}: series id {series_id!r} is ambiguous: {names}")
        return matches[0] if matches else None

    def load(self, root: Path, series_id: str, *, train_fraction: float, **_: object):
        if (root / f"{series_id}_test.npy").exists():
            return load_tama_npy(root, self.name, series_id)
        path = self.find(root, series_id)
        if path is None:
            known = ", ".join(self.list_ids(root)[:10]) or "none"
            raise DataError(
                f"{self.name}: no series {series_id!r} in {root} (known: {known}); "
                f"{self.spec.download}"
            )
        values, labels = read_out_file(path)
        train, train_labels, test, test_labels = split_single_series(
            values, labels, train_fraction, f"{self.name} {path.name}"
        )
        return SeriesData(self.name, series_id, train, test, test_labels, train_labels)


class NormALoader(TSBLoader):
    """NormA series (Boniol et al. 2021) as distributed in TSB-UAD; TAMA used window 900/300."""

    name = "NormA"
    spec = DatasetSpec(
        900,
        300,
        width=2000,
        height=400,
        x_ticks=5,
        download="download TSB-UAD's NormA folder (*.out files: value,label per line) into that folder",
    )


class ECGLoader(TSBLoader):
    """ECG series (MBA) as distributed in TSB-UAD."""

    name = "ECG"
    spec = DatasetSpec(
        600,
        200,
        width=1800,
        height=400,
        x_ticks=25,
        download="download TSB-UAD's ECG folder (*.out files: value,label per line) into that folder",
    )


class DodgersLoader(TSBLoader):
    """Dodgers loop sensor (UCI 157): 5-minute car counts on the 101 freeway near Dodger Stadium.

    ``Dodgers.data`` lines are ``M/D/YYYY H:MM,count`` with ``-1`` for a missing count; missing counts
    become NaN and are interpolated (with a warning) instead of being drawn as a drop to -1.
    ``Dodgers.events`` lines are ``MM/DD/YY,begin,end,attendance,score``; points during a game are
    labelled anomalous. TSB-UAD's ``101-freeway-traffic.test.out`` is read as well.
    """

    name = "Dodgers"
    series = "101-freeway-traffic"
    spec = DatasetSpec(
        600,
        200,
        width=1800,
        height=400,
        x_ticks=20,
        download="download Dodgers.data and Dodgers.events from the UCI repository (dataset 157, "
        "Dodgers Loop Sensor) into that folder",
    )

    def list_ids(self, root: Path) -> list[str]:
        ids = super().list_ids(root)
        if (root / "Dodgers.data").exists() and self.series not in ids:
            ids.append(self.series)
        return ids

    def load(self, root: Path, series_id: str, *, train_fraction: float, **kw: object):
        if (root / "Dodgers.data").exists() and series_id in {self.series, "0"}:
            values, labels = read_dodgers(root / "Dodgers.data", root / "Dodgers.events")
            train, train_labels, test, test_labels = split_single_series(
                values, labels, train_fraction, "Dodgers"
            )
            return SeriesData(self.name, self.series, train, test, test_labels, train_labels)
        return super().load(root, series_id, train_fraction=train_fraction, **kw)


def read_dodgers(data_path: Path, events_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Counts (missing ``-1`` as NaN) and game labels of the UCI Dodgers loop-sensor files."""
    if not events_path.exists():
        raise DataError(f"Dodgers: missing {events_path}; {DodgersLoader.spec.download}")
    check_not_empty(data_path, "expected 'M/D/YYYY H:MM,count' lines, one per 5 minutes")
    check_not_empty(events_path, "expected 'MM/DD/YY,HH:MM:SS,HH:MM:SS,...' lines, one per game")
    frame = pd.read_csv(data_path, header=None, names=["time", "count"], skipinitialspace=True)
    try:
        times = pd.to_datetime(frame["time"], format="%m/%d/%Y %H:%M")
    except ValueError as exc:
        raise DataError(f"{data_path}: expected 'M/D/YYYY H:MM,count' lines ({exc})") from None
    counts = pd.to_numeric(frame["count"], errors="coerce").to_numpy(dtype=np.float64)
    counts[counts < 0] = np.nan
    labels = np.zeros(len(counts), dtype=np.int8)
    stamps = times.to_numpy()
    for begin, end in read_dodgers_events(events_path):
        labels[(stamps >= np.datetime64(begin)) & (stamps <= np.datetime64(end))] = 1
    return counts, labels


def read_dodgers_events(path: Path) -> list[tuple[dt.datetime, dt.datetime]]:
    """Game intervals from ``Dodgers.events`` (``MM/DD/YY,HH:MM:SS,HH:MM:SS,...``)."""
    intervals = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 3 or not fields[0]:
            continue
        try:
            day = dt.datetime.strptime(fields[0], "%m/%d/%y")
            begin = dt.datetime.strptime(fields[1], "%H:%M:%S").time()
            end = dt.datetime.strptime(fields[2], "%H:%M:%S").time()
        except ValueError:
            raise DataError(f"{path}:{number}: expected 'MM/DD/YY,HH:MM:SS,HH:MM:SS,...'") from None
        intervals.append((dt.datetime.combine(day, begin), dt.datetime.combine(day, end)))
    return intervals


CSV_TIME_COLUMNS = ("timestamp", "time", "date", "datetime", "index")
CSV_EXPECTED = (
    "expected a header line naming the value column(s) and 'label' (e.g. 'value,label'), "
    "then one row per time point"
)


class CSVLoader:
    """Bring your own series: ``<name>.csv`` files with value columns and a ``label`` column.

    Optional columns: ``split`` (``train``/``test`` per row; otherwise the leading ``train_fraction``
    is the train split), ``type`` (anomaly type name or 1..5 per point), and a time column
    (``timestamp``, ``time``, ``date`` or ``index``) that is ignored. Every other column is a channel.
    """

    name = "CSV"
    spec = DatasetSpec(
        600,
        200,
        width=1800,
        height=400,
        x_ticks=10,
        download="put <name>.csv files (value columns plus a 'label' column) in that folder",
    )
    ignored = frozenset({*CSV_TIME_COLUMNS, "split", "label", "type"})

    def list_ids(self, root: Path) -> list[str]:
        return sorted(p.stem for p in root.glob("*.csv") if not p.name.startswith("."))

    def load(self, root: Path, series_id: str, *, train_fraction: float, **_: object):
        path = root / f"{series_id}.csv"
        if not path.exists():
            raise DataError(f"CSV: missing {path}; {self.spec.download}")
        frame = read_csv_frame(path)
        if "label" not in frame.columns:
            raise DataError(f"{path}: no 'label' column (columns: {', '.join(frame.columns)})")
        channels = [c for c in frame.columns if c.lower() not in self.ignored]
        if not channels:
            raise DataError(f"{path}: no value column besides {', '.join(frame.columns)}")
        values = frame[channels].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
        empty = [c for c, finite in zip(channels, np.isfinite(values).any(axis=0)) if not finite]
        if empty:
            raise DataError(
                f"{path}: column(s) {', '.join(empty)} hold no numbers; every column except "
                f"label, split, type and a time column ({', '.join(CSV_TIME_COLUMNS)}) is read "
                "as a value channel: put numbers in it or remove it"
            )
        labels = frame["label"].to_numpy()
        types = _type_column(frame, path)
        if "split" in frame.columns:
            is_train = frame["split"].astype(str).str.strip().str.lower().eq("train").to_numpy()
            if is_train.all() or not is_train.any():
                raise DataError(f"{path}: 'split' must mark both train and test rows")
            return SeriesData(
                self.name,
                series_id,
                values[is_train],
                values[~is_train],
                labels[~is_train],
                labels[is_train],
                None if types is None else types[~is_train],
                channels,
            )
        train, train_labels, test, test_labels = split_single_series(
            values, labels, train_fraction, str(path)
        )
        test_types = None if types is None else types[len(train) :]
        return SeriesData(
            self.name, series_id, train, test, test_labels, train_labels, test_types, channels
        )


def read_csv_frame(path: Path) -> pd.DataFrame:
    """Read a series CSV with stripped column names; empty or malformed files are a DataError."""
    check_not_empty(path, CSV_EXPECTED)
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; {CSV_EXPECTED}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a well-formed CSV file ({reason}); {CSV_EXPECTED}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(
            f"{path}: has a header ({', '.join(frame.columns)}) but no rows; "
            "expected one row per time point below it"
        )
    return frame


def _type_column(frame: pd.DataFrame, path: Path) -> np.ndarray | None:
    if "type" not in frame.columns:
        return None
    codes = {name: i + 1 for i, name in enumerate(ANOMALY_TYPES)}
    codes.update({"": 0, "none": 0, "normal": 0, "nan": 0})
    out = []
    for value in frame["type"].astype(str).str.strip().str.lower():
        if value in codes:
            out.append(codes[value])
        elif value.isdigit() and int(value) <= len(ANOMALY_TYPES):
            out.append(int(value))
        else:
            raise DataError(f"{path}: unknown anomaly type {value!r} in column 'type'")
    return np.array(out, dtype=np.int8)
