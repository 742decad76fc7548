"""make_dataset's work: load a series, normalise, cut windows, write arrays, images or text.

For every series and split it writes, under ``<data_dir>/processed/<dataset>/<series>/<mode>/``:
``windows.npy`` (n_windows, window_size, channels; z-scored with train statistics), ``labels.npy``
(n_windows, window_size), ``series.npy`` and ``series_labels.npy`` (the whole normalised split),
``types.npy`` when the dataset annotates types, ``meta.json`` (window size, stride, starts,
normalisation, image style), and ``image/<window>-<channel>.png`` or ``text/<window>-<channel>.txt``.
``<data_dir>/processed/<dataset>/<mode>_structure.yaml`` lists normal and abnormal windows per series.
A modality folder is written beside the old one and swapped in at the end, so an interrupted run
leaves the previous version whole.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from tqdm.auto import tqdm

from lmad.errors import DataError
from lmad.io import atomic_save_npy, atomic_write_json, atomic_write_text, atomic_write_yaml
from lmad.series.base import SeriesData
from lmad.series.datasets import get_loader, list_series, load_series
from lmad.series.render import ImageStyle, WindowRenderer, style_for
from lmad.series.text import estimate_tokens, serialize
from lmad.series.windows import (
    ChannelScaler,
    cut_windows,
    structure_entry,
    window_name,
    window_starts,
)

log = logging.getLogger(__name__)
DEFAULT_SUBTASK = "detection"
MODES = ("train", "test")
MODALITIES = ("image", "text")


@dataclass
class PrepareOptions:
    """Everything make_dataset.py can be told; ``None`` means the dataset's published default."""

    dataset: str
    ids: list[str] | None = None
    mode: str = "test"
    modality: str = "image"
    window_size: int | None = None
    stride: int | None = None
    x_ticks: int | None = None
    aux_enable: bool = True
    subtask: str = DEFAULT_SUBTASK
    data_dir: str | Path = "data"
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    train_fraction: float = 0.3
    text_form: str = "tama"
    width: int | None = None
    height: int | None = None


@dataclass
class PreparedSeries:
    """What was written for one series: counts and where."""

    series_id: str
    folder: Path
    n_windows: int
    n_normal: int
    n_abnormal: int
    n_channels: int
    n_files: int
    window_size: int
    stride: int
    x_ticks: int
    tokens_per_window: float = 0.0


def processed_root(data_dir: str | Path, dataset: str, subtask: str | None = None) -> Path:
    """``<data_dir>/processed/<dataset>`` (``<dataset>-<subtask>`` for a non-default subtask)."""
    name = get_loader(dataset).name
    if subtask and subtask != DEFAULT_SUBTASK:
        name = f"{name}-{subtask}"
    return Path(data_dir) / "processed" / name


def prepare_dataset(options: PrepareOptions) -> list[PreparedSeries]:
    """Process every requested series of a dataset; returns one summary per series."""
    if options.mode not in MODES:
        raise DataError(f"unknown mode {options.mode!r}; use train or test")
    if options.modality not in MODALITIES:
        raise DataError(f"unknown modality {options.modality!r}; use image or text")
    loader = get_loader(options.dataset)
    ids = options.ids or list_series(loader.name, options.data_dir, options.subtask)
    root = processed_root(options.data_dir, loader.name, options.subtask)
    results = []
    for series_id in ids:
        data = load_series(
            loader.name, series_id, options.data_dir, options.train_fraction, options.subtask
        )
        results.append(prepare_series(data, options, root))
    update_structure(root / f"{options.mode}_structure.yaml", results, root, options.mode)
    return results


def prepare_series(data: SeriesData, options: PrepareOptions, root: Path) -> PreparedSeries:
    """Window, write and render one series (one split)."""
    spec = get_loader(data.dataset).spec
    window_size = options.window_size or spec.window_size
    stride = options.stride or spec.stride
    values, labels = data.split(options.mode)
    where = f"{data.dataset} series {data.series_id} ({options.mode} split, {len(values)} points)"
    try:
        starts = window_starts(len(values), window_size, stride)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    scaler = ChannelScaler.fit(data.train)
    normalised = scaler.transform(values)
    windows = cut_windows(normalised, starts, window_size).astype(np.float32)
    window_labels = cut_windows(labels, starts, window_size).astype(np.int8)
    folder = root / data.series_id / options.mode
    style = style_for(
        ImageStyle(width=spec.width, height=spec.height, x_ticks=spec.x_ticks),
        window_size,
        x_ticks=options.x_ticks or spec.x_ticks,
        aux_enable=options.aux_enable,
        **{k: v for k, v in (("width", options.width), ("height", options.height)) if v},
    )
    if style.x_ticks != (options.x_ticks or spec.x_ticks):
        log.warning(
            "x_ticks %s would make tick labels overlap at %d px for %d points; using %d",
            options.x_ticks or spec.x_ticks,
            style.width,
            window_size,
            style.x_ticks,
        )
    meta = _write_arrays(folder, data, options, windows, window_labels, normalised, scaler, starts)
    if options.modality == "image":
        n_files = write_images(folder / "image", windows, style, options.workers)
        meta["modalities"]["image"] = {
            "width": style.width,
            "height": style.height,
            "dpi": style.dpi,
            "x_ticks": style.x_ticks,
            "aux_enable": style.aux_enable,
        }
        tokens = 0.0
    else:
        n_files, tokens = write_texts(folder / "text", windows, options.text_form)
        meta["modalities"]["text"] = {"form": options.text_form, "tokens_per_window": tokens}
    atomic_write_json(folder / "meta.json", meta)
    abnormal = int((window_labels.sum(axis=1) > 0).sum())
    return PreparedSeries(
        data.series_id,
        folder,
        len(starts),
        len(starts) - abnormal,
        abnormal,
        windows.shape[2],
        n_files,
        window_size,
        stride,
        style.x_ticks,
        tokens,
    )


def _write_arrays(folder, data, options, windows, window_labels, normalised, scaler, starts):
    meta = {
        "dataset": data.dataset,
        "series": data.series_id,
        "mode": options.mode,
        "subtask": options.subtask,
        "window_size": int(windows.shape[1]),
        "stride": int(options.stride or get_loader(data.dataset).spec.stride),
        "length": len(normalised),
        "n_windows": len(starts),
        "starts": [int(s) for s in starts],
        "channels": data.channel_names,
        "mean": scaler.mean.tolist(),
        "std": scaler.std.tolist(),
        "modalities": {},
    }
    old = _read_meta(folder / "meta.json")
    keep = ("window_size", "stride", "length", "starts", "mean", "std")
    if old and all(old.get(k) == meta[k] for k in keep):
        meta["modalities"] = old.get("modalities", {})
    elif old:
        for stale in old.get("modalities", {}):
            log.warning("%s: removing %s/ made with other windows or data", folder, stale)
            shutil.rmtree(folder / stale, ignore_errors=True)
    _, labels = data.split(options.mode)
    atomic_save_npy(folder / "windows.npy", windows)
    atomic_save_npy(folder / "labels.npy", window_labels)
    atomic_save_npy(folder / "series.npy", normalised.astype(np.float32))
    atomic_save_npy(folder / "series_labels.npy", labels)
    if options.mode == "test" and data.test_types is not None:
        atomic_save_npy(folder / "types.npy", data.test_types)
    return meta


def _read_meta(path: Path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_texts(folder: Path, windows: np.ndarray, form: str) -> tuple[int, float]:
    """Write ``<window>-<channel>.txt`` files; returns the count and mean token estimate."""
    staging = _staging(folder)
    tokens = []
    for window in range(windows.shape[0]):
        for channel in range(windows.shape[2]):
            text = serialize(windows[window, :, channel], form)
            tokens.append(estimate_tokens(text))
            atomic_write_text(staging / f"{window_name(window, channel)}.txt", text)
    _swap_in(staging, folder)
    return len(tokens), float(np.mean(tokens)) if tokens else 0.0


def write_images(folder: Path, windows: np.ndarray, style: ImageStyle, workers: int = 1) -> int:
    """Render every (window, channel) to ``<window>-<channel>.png``, in worker processes."""
    staging = _staging(folder)
    jobs = [
        (str(staging / f"{window_name(w, c)}.png"), windows[w, :, c])
        for w in range(windows.shape[0])
        for c in range(windows.shape[2])
    ]
    progress = tqdm(total=len(jobs), desc=f"render {folder.parent.parent.name}", unit="img")
    if workers <= 1 or len(jobs) < 8:
        _render_chunk(style, jobs)
        progress.update(len(jobs))
    else:
        size = max(1, min(32, len(jobs) // (workers * 4)))
        chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_render_chunk, style, chunk) for chunk in chunks]
            for future in as_completed(futures):
                progress.update(future.result())
    progress.close()
    _swap_in(staging, folder)
    return len(jobs)


_RENDERERS: dict[tuple, WindowRenderer] = {}


def _render_chunk(style: ImageStyle, jobs: list[tuple[str, np.ndarray]]) -> int:
    for path, values in jobs:
        key = (style, len(values))
        if key not in _RENDERERS:
            _RENDERERS[key] = WindowRenderer(style, len(values))
        Path(path).write_bytes(_RENDERERS[key].render(values))
    return len(jobs)


def _staging(folder: Path) -> Path:
    staging = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp")
    staging.mkdir(parents=True)
    return staging


def _swap_in(staging: Path, folder: Path) -> None:
    if folder.exists():
        old = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.old")
        folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(folder)


def update_structure(path: Path, results: list[PreparedSeries], root: Path, mode: str) -> None:
    """Merge the processed series into ``<mode>_structure.yaml`` (other series are kept)."""
    structure = {}
    if path.exists():
        structure = yaml.safe_load(path.read_text()) or {}
    for result in results:
        window_labels = np.load(root / result.series_id / mode / "labels.npy")
        structure[result.series_id] = structure_entry(window_labels, result.n_channels)
    atomic_write_yaml(path, structure)
