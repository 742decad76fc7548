"""Rendering: the fast renderer draws the same pixels as plain pyplot; sizes, ticks, zooms."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lmad.series.datasets import get_loader
from lmad.series.render import (
    ZOOM_STYLE,
    ImageStyle,
    WindowRenderer,
    legible_x_ticks,
    render_window_pyplot,
    render_zoom_views,
    tick_positions,
    zoom_bounds,
)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def windows(length: int, count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    out = []
    for _ in range(count):
        scale, offset = rng.uniform(0.1, 40), rng.uniform(-100, 100)
        out.append(offset + scale * np.sin(t / rng.uniform(5, 40)) + rng.normal(0, 0.1, length))
    out.append(np.full(length, 3.0))  # a constant window
    out.append(np.where(t == length // 2, 50.0, 0.0))  # a single spike
    return out


@pytest.mark.parametrize(
    "style",
    [
        ImageStyle(width=2000, height=400, x_ticks=5, aux_enable=True),
        ImageStyle(width=1800, height=400, x_ticks=10, aux_enable=False),
    ],
    ids=["UCR-guides", "SMAP-no-guides"],
)
def test_fast_renderer_is_pixel_identical_to_pyplot(style):
    renderer = WindowRenderer(style, 600)
    for values in windows(600, 6):
        fast = pixels(renderer.render(values))
        reference = pixels(render_window_pyplot(values, style))
        assert fast.shape == (400, style.width, 4)
        assert np.array_equal(fast, reference)


def test_zoom_views_are_pixel_identical_and_in_window_coordinates():
    values = windows(600, 1)[0]
    assert zoom_bounds(600) == [(0, 400), (200, 600)]
    views = render_zoom_views(values)
    assert len(views) == 2
    style = ImageStyle(width=1500, height=400, x_ticks=5, aux_enable=True)
    for png, (start, end) in zip(views, zoom_bounds(600)):
        reference = render_window_pyplot(values[start:end], style, x_start=start)
        assert np.array_equal(pixels(png), pixels(reference))
    renderer = WindowRenderer(style, 400, x_start=200)
    assert renderer.ax.get_xticks()[[0, -1]].tolist() == [200, 600]


@pytest.mark.parametrize(
    ("dataset", "size", "ticks"),
    [("UCR", (2000, 400), 5), ("NormA", (2000, 400), 5), ("NASA-SMAP", (1800, 400), 10),
     ("synthetic", (1800, 400), 10), ("ECG", (1800, 400), 25), ("Dodgers", (1800, 400), 20),
     ("SMD", (1800, 400), 100)],
)  # fmt: skip
def test_dataset_image_looks(dataset, size, ticks):
    spec = get_loader(dataset).spec
    assert (spec.width, spec.height, spec.x_ticks) == (*size, ticks)


def test_ticks_present_and_labels_drawn():
    style = ImageStyle(width=2000, height=400, x_ticks=5, aux_enable=True)
    renderer = WindowRenderer(style, 600)
    image = pixels(renderer.render(windows(600, 1)[0]))[..., :3].astype(int)
    assert renderer.ax.get_xticks().tolist() == list(range(0, 601, 5))
    labels = [t.get_text() for t in renderer.ax.get_xticklabels()]
    assert labels[:3] == ["0", "5", "10"] and labels[-1] == "600"
    bottom = renderer.ax.get_position().y0 * 400  # axes bottom in pixels from below
    below = image[int(400 - bottom) + 8 :, :, :]
    dark_columns = np.flatnonzero((below.sum(axis=2) < 300).any(axis=0))
    assert dark_columns.max() - dark_columns.min() > 1800  # labels span the whole axis
    band = image[60:340]
    grey = (band[..., 0] == band[..., 1]) & (band[..., 1] == band[..., 2])
    grey &= (band[..., 0] > 150) & (band[..., 0] < 250)  # thin lightgray dashes, antialiased
    assert grey.any(axis=0).sum() >= 115  # one guide column per tick (121 ticks)


def test_style_size_comes_from_the_caller_and_dpi_is_tamas():
    with pytest.raises(TypeError, match="width"):
        ImageStyle(height=400, x_ticks=5, aux_enable=True)  # no size of its own to fall back to
    style = ImageStyle(width=2000, height=400, x_ticks=5, aux_enable=False)
    assert (style.dpi, style.figsize) == (100, (20.0, 4.0))
    assert (ZOOM_STYLE.width, ZOOM_STYLE.height, ZOOM_STYLE.dpi, ZOOM_STYLE.x_ticks) == (
        1500,
        400,
        100,
        5,
    )


def test_tick_spacing_stays_legible():
    assert legible_x_ticks(600, 2000, 5) == 5
    assert legible_x_ticks(1200, 2000, 5) == 10
    assert legible_x_ticks(4500, 1800, 10) == 50
    assert tick_positions(203, 100, 25).tolist() == [225, 250, 275, 300]
