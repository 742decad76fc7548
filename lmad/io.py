"""Atomic file writes: write to a temporary name in the same folder, then rename.

A reader (or a crash) never sees a half-written file, and an interrupted run leaves the previous
version of every file intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

DATA_DIR = "data"
"""Root of everything the scripts read and write (raw data, processed data, runs, the LLM cache,
scores, results): the one written default of every ``--data_dir``."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()
"""What ``open(path, "w")`` would give: mkstemp alone creates files readable by the owner only."""


def _write_via_temp(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, _MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; parent folders are created."""
    return _write_via_temp(Path(path), lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_write_yaml(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as block-style YAML atomically."""
    return atomic_write_text(path, yaml.safe_dump(obj, sort_keys=False, default_flow_style=None))


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Save ``array`` in ``.npy`` format atomically."""
    return _write_via_temp(Path(path), lambda handle: np.save(handle, array, allow_pickle=False))
