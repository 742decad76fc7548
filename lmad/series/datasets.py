"""The dataset registry: one loader per dataset, each reading the layout the data is published in.

A loader has a ``name``, a :class:`~lmad.series.base.DatasetSpec` of published defaults, and two
methods: ``list_ids(root)`` and ``load(root, series_id, **options)`` returning
:class:`~lmad.series.base.SeriesData`. To add a dataset, write a loader class and add it to
``LOADERS`` below.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from lmad.errors import DataError
from lmad.io import atomic_save_npy
from lmad.names import check_name
from lmad.series.base import SeriesData
from lmad.series.loaders_archive import MSLLoader, NASALoader, SMDLoader, UCRLoader
from lmad.series.loaders_single import CSVLoader, DodgersLoader, ECGLoader, NormALoader
from lmad.series.synthetic import SyntheticLoader

log = logging.getLogger(__name__)

LOADERS: dict[str, Any] = {
    loader.name: loader
    for loader in (
        UCRLoader(),
        NASALoader(),
        MSLLoader(),
        SMDLoader(),
        NormALoader(),
        ECGLoader(),
        DodgersLoader(),
        CSVLoader(),
        SyntheticLoader(),
    )
}
ALIASES = {"SMAP": "NASA-SMAP", "MSL": "NASA-MSL", "SYNTHETIC_DATASETS": "synthetic"}
BUNDLED_UCR_ID = "135"


def get_loader(name: str) -> Any:
    """The loader registered as ``name`` (case-insensitive; ``SMAP``/``MSL`` are aliases)."""
    wanted = ALIASES.get(name.upper(), name)
    for key, loader in LOADERS.items():
        if key.lower() == wanted.lower():
            return loader
    raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(LOADERS)}")


def dataset_root(data_dir: str | Path, name: str) -> Path:
    """The folder a dataset's raw files live in: ``<data_dir>/<registered name>``."""
    return Path(data_dir) / get_loader(name).name


def write_bundled_ucr(root: Path) -> None:
    """Write UCR 135 (InternalBleeding16), shipped inside ``aeon``, in the TAMA layout.

    aeon's ``test`` split is the whole 7501-point series with labels; its first 1200 points are the
    train split (the ``trainEnd`` of ``135_UCR_Anomaly_InternalBleeding16_1200_4187_4199``) and the
    rest is TAMA's 6301-point test split. No network is needed.
    """
    from aeon.datasets import load_kdd_tsad_135

    train, _ = load_kdd_tsad_135("train")
    whole, labels = load_kdd_tsad_135("test")
    cut = len(train)
    if not np.allclose(whole[:cut], train):
        raise DataError("aeon's UCR 135 train split is not the head of its test split")
    atomic_save_npy(root / f"{BUNDLED_UCR_ID}_train.npy", np.asarray(train, dtype=np.float64))
    atomic_save_npy(root / f"{BUNDLED_UCR_ID}_test.npy", np.asarray(whole[cut:], dtype=np.float64))
    atomic_save_npy(root / f"{BUNDLED_UCR_ID}_labels.npy", np.asarray(labels[cut:], dtype=np.int8))
    log.info("wrote the bundled UCR series 135 (from aeon) to %s", root)


def check_series_id(series_id: str) -> str:
    """``series_id`` as a string, or a ConfigError when it is not safe as one file-name part.

    Loaders join the id into raw-file names (``<id>.csv``, ``<id>_test.npy``) and make_dataset into
    ``processed/<dataset>/<id>/``, so ``../x`` or ``a/b`` could reach files outside the dataset
    folder. lmad's reserved top-level folder names are allowed: a series always sits one level down.
    """
    return check_name(str(series_id), "series id", reserved=frozenset())


def list_series(name: str, data_dir: str | Path, subtask: str | None = None) -> list[str]:
    """Every series id of a dataset found under ``data_dir`` (UCR falls back to the bundled 135)."""
    loader = get_loader(name)
    root = dataset_root(data_dir, name)
    if loader.name == "synthetic":
        return loader.list_ids(root, subtask)
    ids = loader.list_ids(root) if root.is_dir() else []
    if not ids and loader.name == "UCR":
        return [BUNDLED_UCR_ID]
    if not ids:
        raise DataError(
            f"{loader.name}: no series found in {root}; {loader.spec.download}"
            if root.is_dir()
            else f"{loader.name}: folder {root} not found; {loader.spec.download}"
        )
    return ids


def load_series(
    name: str,
    series_id: str,
    data_dir: str | Path,
    *,
    train_fraction: float | None = None,
    subtask: str | None = None,
) -> SeriesData:
    """Load one series of a registered dataset from ``<data_dir>/<dataset>/``.

    ``train_fraction`` has no default value: datasets published as one file per series (NormA, ECG,
    Dodgers, CSV) need it, and their loaders raise a TypeError without it; the others ignore it.
    make_dataset passes ``PrepareOptions.train_fraction``, the one place of its default. ``subtask``
    matters for ``synthetic`` only (``None``: the default subtask).
    The id is checked with :func:`check_series_id` first, so no lookup leaves the dataset folder.
    """
    loader = get_loader(name)
    root = dataset_root(data_dir, name)
    series_id = check_series_id(series_id)
    if loader.name == "synthetic":
        return loader.load(root, series_id, subtask=subtask)
    if (
        loader.name == "UCR"
        and series_id == BUNDLED_UCR_ID
        and not (root / f"{series_id}_test.npy").exists()
        and series_id not in (loader.list_ids(root) if root.is_dir() else [])
    ):
        write_bundled_ucr(root)
    if not root.is_dir():
        raise DataError(f"{loader.name}: folder {root} not found; {loader.spec.download}")
    given = {} if train_fraction is None else {"train_fraction": train_fraction}
    return loader.load(root, series_id, **given)
