"""Scoring every processed series with aeon's detectors: the loop behind ``detect_baselines.py``.

For each processed series (``<data_dir>/processed/<dataset>/<series>/{train,test}/series.npy``, as
make_dataset wrote them: z-scored with train statistics) and each detector of
:mod:`lmad.series.detectors`, the test split is scored and written with :mod:`lmad.series.scores`
to ``<data_dir>/scores/<subtask>/<dataset>/<detector>/<series>.npy`` plus an entry in that
folder's ``meta.json``. The train split is used when it was processed (``--mode train``).

Resumable: a series whose ``meta.json`` entry has the same parameters (window, period, aeon
arguments, fit, channel handling) is skipped unless ``refresh``; each series is written as soon as
it is scored, so an interrupted run loses at most the one being scored. A detector that raises on
a series is recorded under ``"failures"`` in ``meta.json`` and the run goes on. Every input is
checked before the first file is written: an unknown dataset or detector, or nothing processed,
is a :class:`~lmad.errors.UserError`.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lmad.errors import DataError
from lmad.names import check_name
from lmad.series.datasets import check_series_id, get_loader
from lmad.series.detectors import AEON, DETECTORS, plan_series, resolve_detectors, run_plan
from lmad.series.prepare import DEFAULT_SUBTASK, processed_root
from lmad.series.processed import make_dataset_hint, processed_series_ids
from lmad.series.scores import (
    SeriesScores,
    detector_folder,
    read_meta,
    write_failure,
    write_series_scores,
)


@dataclass
class BaselineOptions:
    """What detect_baselines.py can be told."""

    dataset: str
    detectors: str = "all"
    ids: list[str] | None = None
    subtask: str = DEFAULT_SUBTASK
    data_dir: str | Path = "data"
    refresh: bool = False
    progress: bool = True


@dataclass
class BaselineJob:
    """The checked inputs of a run: nothing has been written yet."""

    dataset: str  # the registered name (``SMAP`` -> ``NASA-SMAP``)
    root: Path  # processed data of the dataset
    series: list[str]
    detectors: list[str]
    folders: dict[str, Path]
    not_installed: list[str] = field(default_factory=list)
    without_train: list[str] = field(default_factory=list)


@dataclass
class BaselineSummary:
    """What a run did, per detector, and the failures as one line each."""

    job: BaselineJob
    counts: dict[str, Counter] = field(default_factory=dict)  # detector -> scored/skipped/failed
    failures: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for name in self.job.detectors:
            c = self.counts.get(name, Counter())
            out.append(
                f"{name}: {c['scored']} scored, {c['skipped']} already scored (skipped), "
                f"{c['failed']} failed -> {self.job.folders[name]}"
            )
        return out


def prepare_job(options: BaselineOptions) -> BaselineJob:
    """Check every input (names, processed files and their shapes); raise a UserError if wrong."""
    detectors, not_installed = resolve_detectors(options.detectors)
    check_name(options.subtask, "--subtask")
    dataset = get_loader(options.dataset).name
    root = processed_root(options.data_dir, dataset, options.subtask)
    found = processed_series_ids(root, dataset, "image", options.subtask)
    series = found
    if options.ids:
        wanted = [check_series_id(s) for s in options.ids]
        missing = [s for s in wanted if s not in found]
        if missing:
            hint = make_dataset_hint(dataset, "test", "image", options.subtask)
            raise DataError(
                f"series {', '.join(missing)} not processed under {root}; run first: {hint} "
                f'--data_id_list "[{", ".join(missing)}]"'
            )
        series = list(dict.fromkeys(wanted))
    without_train = [s for s in series if not _check_shapes(root, dataset, s, options.subtask)]
    folders = {
        name: detector_folder(options.data_dir, options.subtask, dataset, name)
        for name in detectors
    }
    for folder in folders.values():
        if folder.is_dir():
            read_meta(folder)  # a broken meta.json is a DataError now, not after hours of scoring
    return BaselineJob(dataset, root, series, detectors, folders, not_installed, without_train)


def _check_shapes(root: Path, dataset: str, series: str, subtask: str) -> bool:
    """Check the series' arrays by their headers; True when a train split was processed."""
    test_path = root / series / "test" / "series.npy"
    if not test_path.exists():
        hint = make_dataset_hint(dataset, "test", "image", subtask)
        raise DataError(f"{test_path} is missing; run again: {hint}")
    test = np.load(test_path, mmap_mode="r")
    train_path = root / series / "train" / "series.npy"
    train = np.load(train_path, mmap_mode="r") if train_path.exists() else None
    for split, array in (("test", test), ("train", train)):
        if array is not None and (array.ndim not in (1, 2) or len(array) == 0):
            raise DataError(f"{root / series / split}/series.npy has shape {array.shape}")
    if train is not None and _channels(train) != _channels(test):
        raise DataError(
            f"series {series}: the train split has {_channels(train)} channels, the test split "
            f"{_channels(test)}; process both again with make_dataset.py"
        )
    return train is not None


def _channels(array: np.ndarray) -> int:
    return 1 if array.ndim == 1 else array.shape[1]


def load_splits(root: Path, series: str) -> tuple[np.ndarray | None, np.ndarray]:
    """(train or None, test) of one processed series, as float64 (time, channels)."""
    test = np.load(root / series / "test" / "series.npy").astype(np.float64)
    path = root / series / "train" / "series.npy"
    train = np.load(path).astype(np.float64) if path.exists() else None
    return (None if train is None else train.reshape(len(train), -1)), test.reshape(len(test), -1)


def detector_meta(name: str) -> dict[str, Any]:
    """The folder-level part of ``meta.json``: which class, which paper, which versions."""
    spec = DETECTORS[name]
    versions = {pkg: importlib.metadata.version(pkg) for pkg in ("aeon", *spec.requires)}
    return {
        "detector": name,
        "aeon_class": f"{AEON}.{spec.aeon_class}",
        "source": spec.source,
        "aeon_version": versions.pop("aeon"),
        "packages": versions,
    }


def score_one(
    name: str,
    series: str,
    train: np.ndarray | None,
    test: np.ndarray,
    folder: Path,
    refresh: bool,
) -> str:
    """Score one series with one detector and write it: "scored", "skipped" or an error line."""
    try:
        plan = plan_series(name, train, test)
        parameters = json.loads(json.dumps(plan.parameters))  # as meta.json will hold them
        entry = read_meta(folder)["series"].get(series) if folder.is_dir() else None
        done = entry is not None and (folder / f"{series}.npy").exists()
        if done and not refresh and entry.get("parameters") == parameters:
            return "skipped"
        start = time.perf_counter()
        scores, warned = run_plan(plan, train, test)
        seconds = time.perf_counter() - start
    except Exception as exc:  # a detector's failure on one series must not stop the others
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        info = {"error": error, "at": _now()}
        write_failure(folder, series, info, detector_meta(name))
        return error
    info = {
        "parameters": parameters,
        "seconds": round(seconds, 3),
        "points": len(test),
        "channels": test.shape[1],
        "columns": scores.shape[1],
        "fit": plan.fit,
        "channel_handling": plan.channel_handling,
        "scored_at": _now(),
    }
    if warned:
        info["warnings"] = warned
    write_series_scores(folder, SeriesScores(series, scores, info), detector_meta(name))
    return "scored"


def run_baselines(options: BaselineOptions) -> BaselineSummary:
    """Score every selected series with every selected detector (see the module docstring)."""
    job = prepare_job(options)
    summary = BaselineSummary(job, {name: Counter() for name in job.detectors})
    total = len(job.series) * len(job.detectors)
    with tqdm(total=total, disable=not options.progress, unit="score", file=sys.stderr) as bar:
        for series in job.series:
            train, test = load_splits(job.root, series)
            for name in job.detectors:
                bar.set_postfix_str(f"{name} on {series}", refresh=False)
                outcome = score_one(name, series, train, test, job.folders[name], options.refresh)
                if outcome in ("scored", "skipped"):
                    summary.counts[name][outcome] += 1
                else:
                    summary.counts[name]["failed"] += 1
                    line = f"failed: {name} on series {series}: {outcome}"
                    summary.failures.append(line)
                    tqdm.write(line, file=sys.stderr)
                bar.update()
    return summary


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
