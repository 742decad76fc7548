"""Loaders for benchmark archives with separate train and test files: UCR, NASA SMAP/MSL, SMD.

Each loader reads the layout the data is published in, and also the TAMA layout
(``<id>_train.npy``, ``<id>_test.npy``, ``<id>_labels.npy``) that TAMA's preprocessing produced.
"""

from __future__ import annotations

import ast
import csv
import re
from pathlib import Path

import numpy as np

from lmad.errors import DataError
from lmad.series.base import DatasetSpec, SeriesData, intervals_to_labels, require_files

UCR_NAME = re.compile(r"^(\d+)_UCR_Anomaly_(.+)_(\d+)_(\d+)_(\d+)\.txt$")
_HEAD_BYTES = 1 << 16


def check_not_empty(path: Path, expected: str) -> None:
    """Raise ``<path>: the file is empty; <expected>`` for a file of no bytes or only white space.

    Readers such as pandas and ``np.loadtxt`` fail on such a file with a traceback or a warning and
    an empty array; this says which file it is and what it should hold.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if len(head) < _HEAD_BYTES and not head.strip():
        raise DataError(f"{path}: the file is empty; {expected}")


def tama_npy_ids(root: Path) -> list[str]:
    """Series ids present in the TAMA layout (``<id>_test.npy`` with its labels)."""
    ids = []
    for path in root.glob("*_test.npy"):
        series_id = path.name[: -len("_test.npy")]
        if (root / f"{series_id}_labels.npy").exists():
            ids.append(series_id)
    return ids


def load_tama_npy(root: Path, dataset: str, series_id: str) -> SeriesData:
    """Read ``<id>_train.npy``, ``<id>_test.npy`` and ``<id>_labels.npy`` (TAMA layout)."""
    names = [f"{series_id}_{part}.npy" for part in ("train", "test", "labels")]
    train, test, labels = (_load_npy(root / name) for name in names)
    types_path = root / f"{series_id}_types.npy"
    types = _load_npy(types_path) if types_path.exists() else None
    return SeriesData(dataset, series_id, train, test, labels, test_types=types)


def _load_npy(path: Path) -> np.ndarray:
    check_not_empty(path, "expected a numpy array written by numpy.save")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def sort_ids(ids: list[str]) -> list[str]:
    """Numeric ids in numeric order, then the others alphabetically."""
    return sorted(set(ids), key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))


class UCRLoader:
    """UCR anomaly archive (Wu & Keogh 2021), KDD-21 competition files.

    Archive file ``<id>_UCR_Anomaly_<name>_<trainEnd>_<begin>_<end>.txt`` holds the whole series; the
    first ``trainEnd`` points are anomaly-free training data, and the anomaly covers the zero-based
    points ``[begin, end)`` (the convention of TimeEval and of aeon's copy of series 135). The test
    split is the series after ``trainEnd``, as in TAMA (series 135: 7501 - 1200 = 6301 test points).
    """

    name = "UCR"
    spec = DatasetSpec(
        600,
        200,
        width=2000,
        height=400,
        x_ticks=5,
        download="download the UCR Anomaly Archive (UCR_TimeSeriesAnomalyDatasets2021.zip, folder "
        "UCR_Anomaly_FullData) and put its <id>_UCR_Anomaly_*.txt files, or TAMA's "
        "<id>_train.npy/<id>_test.npy/<id>_labels.npy, in that folder",
    )

    def list_ids(self, root: Path) -> list[str]:
        ids = tama_npy_ids(root)
        ids += [str(int(m.group(1))) for p in root.rglob("*.txt") if (m := UCR_NAME.match(p.name))]
        return sort_ids(ids)

    def load(self, root: Path, series_id: str, **_: object) -> SeriesData:
        if (root / f"{series_id}_test.npy").exists():
            return load_tama_npy(root, self.name, series_id)
        for path in root.rglob("*.txt"):
            match = UCR_NAME.match(path.name)
            if match and series_id.isdigit() and int(match.group(1)) == int(series_id):
                return read_ucr_txt(path, series_id)
        raise DataError(
            f"UCR: no files for series {series_id} in {root} (expected {series_id}_test.npy, "
            f"{series_id}_labels.npy and {series_id}_train.npy, or "
            f"{int(series_id) if series_id.isdigit() else series_id:>03}_UCR_Anomaly_*.txt); "
            f"{self.spec.download}"
        )


def read_ucr_txt(path: Path, series_id: str) -> SeriesData:
    """Read one UCR archive ``.txt`` file (one value per line, or all on one line)."""
    match = UCR_NAME.match(path.name)
    if match is None:
        raise DataError(f"{path.name}: not a UCR archive file name")
    train_end, begin, end = (int(match.group(i)) for i in (3, 4, 5))
    expected = "expected the whole series as numbers, one number per line"
    check_not_empty(path, expected)
    try:
        values = np.array(path.read_text().split(), dtype=np.float64)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a list of numbers ({exc})") from None
    if not len(values):
        raise DataError(f"{path}: the file is empty; {expected}")
    if not 0 < train_end < begin < end <= len(values) + 1:
        raise DataError(f"{path.name}: trainEnd/begin/end do not fit a series of {len(values)}")
    labels = intervals_to_labels(len(values), [(begin, end)])
    return SeriesData("UCR", series_id, values[:train_end], values[train_end:], labels[train_end:])


class NASALoader:
    """NASA SMAP and MSL telemetry in the telemanom layout (Hundman et al. 2018).

    ``train/<chan>.npy`` and ``test/<chan>.npy`` hold (time, 1 + commands) arrays whose first column is
    the telemetry value (the others are one-hot command flags, not used); ``labeled_anomalies.csv``
    lists ``chan_id, spacecraft, anomaly_sequences`` with inclusive ``[start, end]`` index pairs.
    A series id is a channel name (``P-1``) or its zero-based position among the spacecraft's rows.
    """

    spacecraft = "SMAP"
    name = "NASA-SMAP"
    spec = DatasetSpec(
        600,
        200,
        width=1800,
        height=400,
        x_ticks=10,
        download="download the telemanom data (data.zip with train/ and test/, and "
        "labeled_anomalies.csv) from the NASA telemanom repository into that folder",
    )

    def _rows(self, root: Path) -> list[dict[str, str]]:
        path = root / "labeled_anomalies.csv"
        if not path.exists():
            return []
        check_not_empty(
            path, "expected telemanom's header chan_id,spacecraft,anomaly_sequences,... and rows"
        )
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        need = {"chan_id", "spacecraft", "anomaly_sequences"}
        if rows and not need <= set(rows[0]):
            raise DataError(f"{path}: missing column(s) {sorted(need - set(rows[0]))}")
        return [r for r in rows if r["spacecraft"].strip().upper() == self.spacecraft]

    def list_ids(self, root: Path) -> list[str]:
        return sort_ids(tama_npy_ids(root)) + [r["chan_id"] for r in self._rows(root)]

    def load(self, root: Path, series_id: str, **_: object) -> SeriesData:
        if (root / f"{series_id}_test.npy").exists():
            return load_tama_npy(root, self.name, series_id)
        require_files([root / "labeled_anomalies.csv"], self.name, self.spec.download)
        rows = self._rows(root)
        by_name = {r["chan_id"]: r for r in rows}
        if series_id in by_name:
            row = by_name[series_id]
        elif series_id.isdigit() and int(series_id) < len(rows):
            row = rows[int(series_id)]
        else:
            raise DataError(
                f"{self.name}: no channel {series_id!r}; known: {', '.join(list(by_name)[:12])}..."
            )
        chan = row["chan_id"]
        paths = [root / "train" / f"{chan}.npy", root / "test" / f"{chan}.npy"]
        require_files(paths, self.name, self.spec.download)
        train, test = (_load_npy(p) for p in paths)
        train, test = (a[:, :1] if a.ndim == 2 else a for a in (train, test))
        try:
            pairs = ast.literal_eval(row["anomaly_sequences"])
        except (ValueError, SyntaxError):
            raise DataError(
                f"{self.name}: bad anomaly_sequences for {chan}: {row['anomaly_sequences']!r}"
            ) from None
        labels = intervals_to_labels(len(test), [(s, e + 1) for s, e in pairs])
        return SeriesData(self.name, chan, train, test, labels, channel_names=["telemetry"])


class MSLLoader(NASALoader):
    """NASA MSL (Mars Science Laboratory) channels; same layout as SMAP."""

    spacecraft = "MSL"
    name = "NASA-MSL"


class SMDLoader:
    """Server Machine Dataset (Su et al. 2019): 38 comma-separated channels per machine.

    ``train/machine-x-y.txt``, ``test/machine-x-y.txt`` and ``test_label/machine-x-y.txt`` (one 0/1
    per line).
    """

    name = "SMD"
    spec = DatasetSpec(
        4500,
        1500,
        width=1800,
        height=400,
        x_ticks=100,
        download="download ServerMachineDataset (train/, test/, test_label/) from the "
        "OmniAnomaly repository into that folder",
    )

    def list_ids(self, root: Path) -> list[str]:
        ids = tama_npy_ids(root) + [p.stem for p in (root / "test").glob("machine-*.txt")]
        return sorted(set(ids))

    def load(self, root: Path, series_id: str, **_: object) -> SeriesData:
        if (root / f"{series_id}_test.npy").exists():
            return load_tama_npy(root, self.name, series_id)
        parts = ("train", "test", "test_label")
        paths = [root / part / f"{series_id}.txt" for part in parts]
        require_files(paths, self.name, self.spec.download)
        train, test = (_read_delimited(p, "comma-separated numbers") for p in paths[:2])
        labels = _read_delimited(paths[2], "one 0 or 1")
        return SeriesData(self.name, series_id, train, test, labels.reshape(-1))


def _read_delimited(path: Path, line: str) -> np.ndarray:
    check_not_empty(path, f"expected {line} per line, one line per time point")
    try:
        return np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataError(f"{path}: not comma-separated numbers ({exc})") from None
