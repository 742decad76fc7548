"""Writing a split's windows as files: ``image/<window>-<channel>.png`` or ``text/...txt``.

A modality folder is written beside the old one and swapped in at the end, so an interrupted run
leaves the previous version whole. Images are rendered in worker processes, each reusing one
:class:`~lmad.series.render.WindowRenderer` per style and window length.
"""

from __future__ import annotations

import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lmad.io import atomic_write_text
from lmad.series.render import ImageStyle, WindowRenderer
from lmad.series.text import estimate_tokens, serialize
from lmad.series.windows import window_name


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
