"""Rendering speed: naive pyplot (one new figure per image) against lmad's renderer.

Both draw the same windows of the bundled UCR 135 test series (600 points, stride 200, the UCR look:
2000x400 px, a tick every 5 points, guides on) and write PNG files. The script also checks that a
sample of images are pixel-identical. Prints images per second of both and the ratio (goal: >= 5x).

    python bench/render.py [--windows 60] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmad.series import window_files
from lmad.series.datasets import load_series
from lmad.series.render import ImageStyle, render_window_pyplot
from lmad.series.window_files import write_images
from lmad.series.windows import ChannelScaler, cut_windows, window_starts


def load_windows(count: int, data_dir: Path) -> np.ndarray:
    series = load_series("UCR", "135", data_dir)
    values = ChannelScaler.fit(series.train).transform(series.test)
    windows = cut_windows(values, window_starts(len(values), 600, 200), 600)
    reps = -(-count // len(windows))
    return np.concatenate([windows] * reps)[:count].astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=60, help="images to draw with each method")
    parser.add_argument("--workers", type=int, default=2, help="processes for lmad's renderer")
    args = parser.parse_args()
    style = ImageStyle(width=2000, height=400, dpi=100, x_ticks=5, aux_enable=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        windows = load_windows(args.windows, tmp / "data")
        start = time.perf_counter()
        for i, window in enumerate(windows):
            (tmp / f"naive-{i}.png").write_bytes(render_window_pyplot(window[:, 0], style))
        naive = len(windows) / (time.perf_counter() - start)
        window_files._RENDERERS.clear()  # every method starts cold
        start = time.perf_counter()
        write_images(tmp / "single", windows, style, workers=1)
        single = len(windows) / (time.perf_counter() - start)
        window_files._RENDERERS.clear()
        start = time.perf_counter()
        write_images(tmp / "ours", windows, style, workers=args.workers)
        ours = len(windows) / (time.perf_counter() - start)
        same = all(
            np.array_equal(
                np.asarray(Image.open(tmp / f"naive-{i}.png")),
                np.asarray(Image.open(tmp / "ours" / f"{i}-0.png")),
            )
            for i in range(0, len(windows), max(1, len(windows) // 10))
        )
    print(f"images: {len(windows)} windows of 600 points, 2000x400 px, ticks every 5, guides on")
    print(f"naive pyplot (1 process):       {naive:7.2f} images/s")
    print(f"lmad renderer (1 process):      {single:7.2f} images/s  ({single / naive:.1f}x)")
    print(f"lmad renderer ({args.workers} processes):    {ours:7.2f} images/s")
    print(f"ratio: {ours / naive:.1f}x   pixel-identical sample: {same}")


if __name__ == "__main__":
    main()
