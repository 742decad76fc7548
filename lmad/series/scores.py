"""Point scores of score-based detectors on disk: ``data/scores/<subtask>/<dataset>/<detector>/``.

One folder per detector holds, per processed series, ``<series>.npy``: float64 scores of shape
``(n_points, n_channels)`` aligned point by point with the processed test split
(``data/processed/<dataset>/<series>/test/series.npy``), and one ``meta.json``::

    {"detector": "stomp", "aeon_version": "1.6.0",
     "series": {"135": {"parameters": {"window_size": 24}, "seconds": 0.8, "points": 6301,
                        "channels": 1, "fit": "train", "channel_handling": "per channel"}}}

A series counts as scored when both its ``.npy`` and its ``meta.json`` entry exist; the ``.npy`` is
written first, so an interrupted run leaves no entry without scores. A series whose scoring failed
is listed under ``"failures"`` (with the error) instead, until it is scored. :func:`combined_score`
turns the channels into the one score per point that evaluation uses: the maximum over channels,
as lmad merges an LLM's per-channel point scores (lmad/series/merge.py), after min-max scaling
each channel so that no channel dominates by its units.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmad.errors import DataError
from lmad.io import atomic_save_npy, atomic_write_json
from lmad.names import check_name
from lmad.series.defaults import subtask_flag


@dataclass
class SeriesScores:
    """One detector's scores for one series: per channel, and what produced them."""

    series: str
    channel_scores: np.ndarray  # (n_points, n_channels)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> np.ndarray:
        return combined_score(self.channel_scores)


def combined_score(channel_scores: np.ndarray) -> np.ndarray:
    """One score per point: each channel min-max scaled to [0, 1], then the maximum over channels.

    A constant channel scales to 0. NaN or infinite scores are refused (a detector that produced
    them did not work on this series).
    """
    scores = np.asarray(channel_scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    if not np.isfinite(scores).all():
        raise DataError("detector scores contain NaN or infinity")
    low, high = scores.min(axis=0), scores.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    return ((scores - low) / span).max(axis=1)


def detector_folder(data_dir: str | Path, subtask: str, dataset: str, detector: str) -> Path:
    """``<data_dir>/scores/<subtask>/<dataset>/<detector>``; every name is checked first."""
    for value, what in ((subtask, "--subtask"), (dataset, "--dataset"), (detector, "detector")):
        check_name(value, what)
    return Path(data_dir) / "scores" / subtask / dataset / detector


def read_meta(folder: Path) -> dict[str, Any]:
    """The folder's ``meta.json``, or an empty one when there is none yet."""
    path = folder / "meta.json"
    if not path.exists():
        return {"detector": folder.name, "series": {}}
    try:
        meta = json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); delete it to score again") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("series"), dict):
        raise DataError(f"{path}: no 'series' object; delete it to score again")
    return meta


def write_series_scores(folder: Path, scores: SeriesScores, detector_meta: dict[str, Any]) -> None:
    """Save one series' scores, then record it in ``meta.json`` (so a crash loses at most it)."""
    array = np.asarray(scores.channel_scores, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    atomic_save_npy(folder / f"{scores.series}.npy", array)
    meta = read_meta(folder)
    meta.update(detector_meta)
    meta["series"][scores.series] = scores.info
    meta.get("failures", {}).pop(scores.series, None)
    atomic_write_json(folder / "meta.json", meta)


def write_failure(
    folder: Path, series: str, info: dict[str, Any], detector_meta: dict[str, Any]
) -> None:
    """Record in ``meta.json`` ("failures") that scoring ``series`` failed; older scores go.

    Scores of an earlier run with other parameters would otherwise pass for this run's.
    """
    meta = read_meta(folder)
    meta.update(detector_meta)
    meta["series"].pop(series, None)
    meta.setdefault("failures", {})[series] = info
    atomic_write_json(folder / "meta.json", meta)
    (folder / f"{series}.npy").unlink(missing_ok=True)


def scored_series(folder: Path) -> set[str]:
    """Series whose scores and meta entry are both present."""
    meta = read_meta(folder)
    return {s for s in meta["series"] if (folder / f"{s}.npy").exists()}


def read_detector_scores(
    data_dir: str | Path, subtask: str, dataset: str, detector: str
) -> tuple[dict[str, Any], dict[str, SeriesScores]]:
    """(meta, scores by series) of one detector; an error naming the command when none exist."""
    folder = detector_folder(data_dir, subtask, dataset, detector)
    done = scored_series(folder) if folder.is_dir() else set()
    if not done:
        raise DataError(
            f"no scores of detector {detector!r} in {folder}; run first: python "
            f"detect_baselines.py --dataset {dataset} --detectors {detector}"
            + subtask_flag(subtask)
        )
    meta = read_meta(folder)
    out = {}
    for series in sorted(done):
        array = np.load(folder / f"{series}.npy", allow_pickle=False)
        out[series] = SeriesScores(series, array, meta["series"][series])
    return meta, out


def scored_detectors(data_dir: str | Path, subtask: str, dataset: str) -> list[str]:
    """Detectors with at least one scored series for this dataset and subtask."""
    root = Path(data_dir) / "scores" / subtask / dataset
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and scored_series(p))
