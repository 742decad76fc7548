"""make_dataset's work: load a series, normalise, cut windows, write arrays, images or text.

For every series and split it writes, under ``<data_dir>/processed/<dataset>/<series>/<mode>/``:
``windows.npy`` (n_windows, window_size, channels; z-scored with train statistics), ``labels.npy``
(n_windows, window_size), ``series.npy`` and ``series_labels.npy`` (the whole normalised split),
``types.npy`` when the dataset annotates types, ``meta.json`` (window size, stride, starts,
normalisation, image style), and ``image/<window>-<channel>.png`` or ``text/<window>-<channel>.txt``.
``<data_dir>/processed/<dataset>/<mode>_structure.yaml`` lists normal and abnormal windows per series.
A modality folder is written beside the old one and swapped in at the end, so an interrupted run
leaves the previous version whole. Every series is loaded and checked before the first file is
written, so a bad series leaves ``processed/`` as it was.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from lmad.errors import ConfigError, DataError
from lmad.io import atomic_save_npy, atomic_write_json, atomic_write_yaml
from lmad.names import check_name
from lmad.series.base import DatasetSpec, SeriesData
from lmad.series.datasets import check_series_id, get_loader, list_series, load_series
from lmad.series.defaults import DATA_DIR, DEFAULT_MODALITY, DEFAULT_SUBTASK, is_default_subtask
from lmad.series.render import ImageStyle, style_for
from lmad.series.window_files import write_images, write_texts
from lmad.series.windows import (
    MAX_CONFIDENCE,
    TAMA_C0,
    ChannelScaler,
    c0_reachable,
    cut_windows,
    max_point_coverage,
    structure_entry,
    tama_stride,
    window_starts,
)

log = logging.getLogger(__name__)
MODES = ("train", "test")
MODALITIES = ("image", "text")


@dataclass
class PrepareOptions:
    """Everything make_dataset.py can be told; ``None`` means the dataset's published default.

    The one written place of every default of the time-series preparation: make_dataset.py's flags
    take theirs from these fields (:func:`lmad.cli.add_field_flag`), and the loaders, renderer and
    text writer take the values as required arguments. ``ids`` ``None``: every series found;
    ``stride`` ``None``: the dataset's stride, or :func:`~lmad.series.windows.tama_stride` of a
    given window.
    """

    dataset: str
    ids: list[str] | None = None
    mode: str = "test"
    modality: str = DEFAULT_MODALITY
    window_size: int | None = None
    stride: int | None = None
    x_ticks: int | None = None
    aux_enable: bool = True
    subtask: str = DEFAULT_SUBTASK
    data_dir: str | Path = DATA_DIR
    workers: int = 2
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
    """``<data_dir>/processed/<dataset>`` (``<dataset>-<subtask>`` for a non-default subtask).

    A subtask becomes part of a folder name, so one that is not a safe name (``x/../..``) is a
    :class:`~lmad.errors.ConfigError` (:func:`lmad.names.check_name`).
    """
    name = get_loader(dataset).name
    if not is_default_subtask(subtask):
        name = f"{name}-{check_name(subtask, '--subtask')}"
    return Path(data_dir) / "processed" / name


@dataclass
class SeriesPlan:
    """One series loaded and windowed, checked and ready to be written."""

    data: SeriesData
    values: np.ndarray
    labels: np.ndarray
    window_size: int
    stride: int
    starts: np.ndarray
    max_coverage: int


def prepare_dataset(options: PrepareOptions) -> list[PreparedSeries]:
    """Process every requested series of a dataset; returns one summary per series.

    Everything that can be wrong is checked before the first file is written under ``processed/``:
    the options, the subtask and every series id as folder names, and every series (it loads, and
    its split is at least one window long). A problem with the fifth series leaves the first four
    unwritten rather than half a dataset without its structure file.
    """
    check_options(options)
    loader = get_loader(options.dataset)
    window_size, stride = resolve_windows(options, loader.name, loader.spec)
    root = processed_root(options.data_dir, loader.name, options.subtask)
    ids = list(
        dict.fromkeys(options.ids or list_series(loader.name, options.data_dir, options.subtask))
    )
    for series_id in ids:
        check_series_id(series_id)
    plans = []
    for series_id in ids:
        data = load_series(
            loader.name,
            series_id,
            options.data_dir,
            train_fraction=options.train_fraction,
            subtask=options.subtask,
        )
        plans.append(plan_series(data, options.mode, window_size, stride))
    style = image_style(options, loader.spec, window_size)
    if options.mode == "test":
        warn_unreachable_c0(plans, window_size, stride)
    results = [write_series(plan, options, root, style) for plan in plans]
    update_structure(root / f"{options.mode}_structure.yaml", results, root, options.mode)
    return results


def check_options(options: PrepareOptions) -> None:
    """Refuse options no run can use (``PrepareOptions`` built in code bypasses argparse)."""
    if options.mode not in MODES:
        raise DataError(f"unknown mode {options.mode!r}; use train or test")
    if options.modality not in MODALITIES:
        raise DataError(f"unknown modality {options.modality!r}; use image or text")
    for name in ("window_size", "stride", "x_ticks", "width", "height", "workers"):
        value = getattr(options, name)
        if value is None and name != "workers":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"--{name} must be an integer >= 1, got {value!r}")
    if not 0.0 < options.train_fraction < 1.0:
        raise ConfigError(
            f"--train_fraction must lie between 0 and 1 (both excluded), got {options.train_fraction}"
        )


def resolve_windows(options: PrepareOptions, dataset: str, spec: DatasetSpec) -> tuple[int, int]:
    """Window size and stride of a run.

    Given values win. A window given without a stride gets :func:`tama_stride` (TAMA's window/3,
    so that three windows see each point); neither given: the dataset's defaults (which are window/3
    too). A stride above the window size leaves points in no window and is refused.
    """
    if options.window_size is None:
        window_size, origin = spec.window_size, f" (the {dataset} default)"
        stride = spec.stride if options.stride is None else options.stride
    else:
        window_size, origin = options.window_size, ""
        stride = tama_stride(window_size) if options.stride is None else options.stride
    if stride > window_size:
        raise ConfigError(
            f"--stride {stride} is larger than the window size {window_size}{origin}: the "
            f"{stride - window_size} point(s) between consecutive windows would be in no window; "
            f"use --stride {tama_stride(window_size)} (window/3, as TAMA) or at most {window_size}"
        )
    return window_size, stride


def image_style(options: PrepareOptions, spec: DatasetSpec, window_size: int) -> ImageStyle:
    """The image look: the dataset's, with the given size and x ticks (raised if unreadable)."""
    x_ticks = spec.x_ticks if options.x_ticks is None else options.x_ticks
    look = ImageStyle(
        width=spec.width if options.width is None else options.width,
        height=spec.height if options.height is None else options.height,
        x_ticks=x_ticks,
        aux_enable=options.aux_enable,
    )
    style = style_for(look, window_size)
    if style.x_ticks != x_ticks and options.modality == "image":
        log.warning(
            "x_ticks %s would make tick labels overlap at %d px for %d points; using %d",
            x_ticks,
            style.width,
            window_size,
            style.x_ticks,
        )
    return style


def plan_series(data: SeriesData, mode: str, window_size: int, stride: int) -> SeriesPlan:
    """Check that ``mode``'s split of ``data`` takes the window, and place the windows."""
    check_series_id(data.series_id)
    values, labels = data.split(mode)
    if window_size > len(values):
        raise DataError(
            f"{data.dataset} series {data.series_id} ({mode} split, {len(values)} points): "
            f"window size {window_size} is longer than the series; use --window_size "
            f"{len(values)} or less, or leave the series out with --data_id_list; "
            "no series was processed"
        )
    starts = window_starts(len(values), window_size, stride)
    coverage = max_point_coverage(len(values), window_size, stride)
    return SeriesPlan(data, values, labels, window_size, stride, starts, coverage)


def warn_unreachable_c0(plans: list[SeriesPlan], window_size: int, stride: int) -> None:
    """Warn when no point can reach TAMA's threshold c0 (too few windows cover any point)."""
    short = [plan for plan in plans if not c0_reachable(plan.max_coverage)]
    if not short:
        return
    most = max(plan.max_coverage for plan in short)
    where = ""
    if len(short) < len(plans):
        names = [plan.data.series_id for plan in short]
        where = f" in series {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}"
    better = tama_stride(window_size)
    if better < stride and all(
        c0_reachable(max_point_coverage(len(plan.values), window_size, better)) for plan in short
    ):
        fix = f"use --stride {better} (window/3) or "
    else:
        window = largest_c0_window(min(len(plan.values) for plan in short))
        fix = f"use --window_size {window} or less (stride window/3) or " if window else ""
    log.warning(
        f"window size {window_size} with stride {stride} covers a point with at most {most} "
        f"window{'' if most == 1 else 's'}{where}, so its summed confidence is at most "
        f"{most * MAX_CONFIDENCE} (confidence <= {MAX_CONFIDENCE}), below TAMA's c0 = {TAMA_C0:g}: "
        f"evaluation with --c0 {TAMA_C0:g} flags nothing; {fix}evaluate with --normalised_threshold"
    )


def largest_c0_window(length: int) -> int:
    """The largest window whose stride window/3 lets points of a series reach c0 (0: none).

    Three regular windows must overlap: starts 0, w/3 and 2w/3 fit when 5w/3 <= length.
    """
    window = 3 * length // 5
    return window if window >= 3 else 0


def write_series(
    plan: SeriesPlan, options: PrepareOptions, root: Path, style: ImageStyle
) -> PreparedSeries:
    """Write the arrays, meta.json and the images or texts of one planned series (one split)."""
    data = plan.data
    scaler = ChannelScaler.fit(data.train)
    normalised = scaler.transform(plan.values)
    windows = cut_windows(normalised, plan.starts, plan.window_size).astype(np.float32)
    window_labels = cut_windows(plan.labels, plan.starts, plan.window_size).astype(np.int8)
    folder = root / data.series_id / options.mode
    meta = _write_arrays(folder, plan, options, windows, window_labels, normalised, scaler)
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
        len(plan.starts),
        len(plan.starts) - abnormal,
        abnormal,
        windows.shape[2],
        n_files,
        plan.window_size,
        plan.stride,
        style.x_ticks,
        tokens,
    )


def _write_arrays(folder, plan, options, windows, window_labels, normalised, scaler):
    data, starts = plan.data, plan.starts
    meta = {
        "dataset": data.dataset,
        "series": data.series_id,
        "mode": options.mode,
        "subtask": options.subtask,
        "window_size": int(windows.shape[1]),
        "stride": int(plan.stride),
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
    atomic_save_npy(folder / "windows.npy", windows)
    atomic_save_npy(folder / "labels.npy", window_labels)
    atomic_save_npy(folder / "series.npy", normalised.astype(np.float32))
    atomic_save_npy(folder / "series_labels.npy", plan.labels)
    if options.mode == "test" and data.test_types is not None:
        atomic_save_npy(folder / "types.npy", data.test_types)
    return meta


def _read_meta(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def update_structure(path: Path, results: list[PreparedSeries], root: Path, mode: str) -> None:
    """Merge the processed series into ``<mode>_structure.yaml`` (other series are kept)."""
    structure = {}
    if path.exists():
        structure = yaml.safe_load(path.read_text()) or {}
    for result in results:
        window_labels = np.load(root / result.series_id / mode / "labels.npy")
        structure[result.series_id] = structure_entry(window_labels, result.n_channels)
    atomic_write_yaml(path, structure)
