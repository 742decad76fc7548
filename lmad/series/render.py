"""Windows drawn as images in the TAMA look, fast, and pixel-identical to plain pyplot code.

The look (TAMA, arXiv 2411.02465, Sec. 4.1 and its code): figure size = pixels / dpi at dpi 100, a blue
line of default width, font size 8, an x tick every ``x_ticks`` points with labels rotated 90 degrees,
``xlim(0, L + 1)``, y autoscaled, no title, legend or grid, optional light-grey dashed vertical guides
(width 0.5) at every tick, tight layout. :func:`render_window_pyplot` is that straightforward code and
the reference every test compares against.

:class:`WindowRenderer` draws the same pixels several times faster. It keeps one figure per window
length and style, draws the guides as one dashed path instead of one line per tick, and caches what
does not change from window to window: the x axis (ticks and 90-degree labels, most of the drawing
cost) is rasterised once per axes position and restored under the y axis with matplotlib's blitting
API, in the order pyplot would have drawn it. tight_layout always starts from the default subplot
parameters, where the x axis' extent is the same for every window, so that extent is cached too.
"""

from __future__ import annotations

import io
import math
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from lmad.errors import DataError

MIN_TICK_SPACING_PX = 12.0
"""Tick labels (8 pt, rotated) need about this many pixels each to stay legible."""

NICE_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000)


@dataclass(frozen=True, kw_only=True)
class ImageStyle:
    """How a window is drawn: size in pixels, dpi, tick spacing and guides.

    Size, tick spacing and guides have no default here: a dataset's look is its
    :class:`~lmad.series.base.DatasetSpec`, and make_dataset's options are
    :class:`~lmad.series.prepare.PrepareOptions`. The dpi, font size and colour are TAMA's, fixed.
    """

    width: int
    height: int
    x_ticks: int
    aux_enable: bool
    dpi: int = 100
    fontsize: float = 8.0
    color: str = "blue"

    @property
    def figsize(self) -> tuple[float, float]:
        return self.width / self.dpi, self.height / self.dpi


ZOOM_STYLE = ImageStyle(width=1500, height=400, x_ticks=5, aux_enable=True)
"""Self-reflection zooms: 15 x 4 inches at dpi 100, ticks and guides every 5 points."""


def tick_positions(x_start: int, length: int, x_ticks: int) -> np.ndarray:
    """Tick positions: multiples of ``x_ticks`` from ``x_start`` to ``x_start + length``."""
    first = math.ceil(x_start / x_ticks) * x_ticks
    return np.arange(first, x_start + length + 1, x_ticks)


def legible_x_ticks(length: int, width: int, x_ticks: int) -> int:
    """``x_ticks``, or the smallest nicer spacing whose labels do not overlap.

    The LLM reads indices off the tick labels, so they must not run into each other: each needs about
    :data:`MIN_TICK_SPACING_PX` pixels of the (roughly 95 % usable) image width.
    """
    if x_ticks <= 0:
        raise DataError(f"x_ticks must be positive, got {x_ticks}")

    def spacing(step: int) -> float:
        return 0.95 * width * step / (length + 1)

    if spacing(x_ticks) >= MIN_TICK_SPACING_PX:
        return x_ticks
    for step in NICE_STEPS:
        if step > x_ticks and spacing(step) >= MIN_TICK_SPACING_PX:
            return step
    return max(x_ticks, math.ceil(MIN_TICK_SPACING_PX * (length + 1) / (0.95 * width)))


def render_window_pyplot(values: np.ndarray, style: ImageStyle, x_start: int = 0) -> bytes:
    """The straightforward pyplot drawing of one window (one new figure per image): the reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    length = len(values)
    fig = plt.figure(figsize=style.figsize, dpi=style.dpi)
    plt.plot(np.arange(x_start, x_start + length), values, color=style.color)
    ticks = tick_positions(x_start, length, style.x_ticks)
    plt.xticks(ticks, rotation=90, fontsize=style.fontsize)
    plt.yticks(fontsize=style.fontsize)
    plt.xlim(x_start, x_start + length + 1)
    if style.aux_enable:
        for tick in ticks:
            plt.axvline(tick, color="lightgray", linestyle="--", linewidth=0.5)
    plt.tight_layout()
    buffer = io.BytesIO()
    plt.savefig(buffer, format="png", dpi=style.dpi)
    plt.close(fig)
    return buffer.getvalue()


class WindowRenderer:
    """Draws windows of one length and style into PNG bytes, reusing one figure.

    >>> style = ImageStyle(width=1800, height=400, x_ticks=10, aux_enable=True)
    >>> png = WindowRenderer(style, 600).render(values)  # doctest: +SKIP
    """

    max_layers = 8

    def __init__(self, style: ImageStyle, length: int, x_start: int = 0) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.style = style
        self.length = length
        self.x_start = x_start
        self.fig = Figure(figsize=style.figsize, dpi=style.dpi)
        self.canvas = FigureCanvasAgg(self.fig)
        self._defaults = {
            k: getattr(self.fig.subplotpars, k) for k in ("left", "right", "bottom", "top")
        }
        ax = self.ax = self.fig.add_subplot()
        (self.line,) = ax.plot(
            np.arange(x_start, x_start + length), np.zeros(length), color=style.color
        )
        ticks = tick_positions(x_start, length, style.x_ticks)
        ax.set_xticks(ticks)
        ax.tick_params(axis="x", labelrotation=90, labelsize=style.fontsize)
        ax.tick_params(axis="y", labelsize=style.fontsize)
        ax.set_xlim(x_start, x_start + length + 1)
        self.guides = None
        if style.aux_enable:
            gx = np.repeat(ticks.astype(np.float64), 3)
            gx[2::3] = np.nan
            gy = np.tile([0.0, 1.0, np.nan], len(ticks))
            (self.guides,) = ax.plot(
                gx,
                gy,
                transform=ax.get_xaxis_transform(),
                color="lightgray",
                linestyle="--",
                linewidth=0.5,
            )
        self._layers: OrderedDict[tuple, object] = OrderedDict()
        self._xaxis_extent: dict[tuple, object] = {}
        self._layer = _RestoreRegion()
        ax.add_artist(self._layer)
        self._install_extent_cache()

    def _install_extent_cache(self) -> None:
        xaxis = self.ax.xaxis
        compute = xaxis.get_tightbbox

        def cached_extent(renderer=None, *, for_layout_only=False):
            key = (tuple(self.ax.get_position().bounds), for_layout_only)
            if key not in self._xaxis_extent:
                self._xaxis_extent[key] = compute(renderer, for_layout_only=for_layout_only)
            bbox = self._xaxis_extent[key]
            return None if bbox is None else bbox.frozen()

        xaxis.get_tightbbox = cached_extent

    def _layout(self, values: np.ndarray) -> None:
        if len(values) != self.length:
            raise DataError(f"window has {len(values)} points, renderer expects {self.length}")
        self.line.set_ydata(values)
        self.ax.relim()
        self.ax.autoscale_view(scalex=False, scaley=True)
        self.fig.subplots_adjust(**self._defaults)
        self.ax.xaxis.set_visible(True)
        self.fig.tight_layout()

    def _xaxis_layer(self) -> object:
        key = tuple(self.ax.get_position().bounds)
        if key in self._layers:
            self._layers.move_to_end(key)
            return self._layers[key]
        others = [a for a in (self.ax.yaxis, self.line, self.guides, *self.ax.spines.values()) if a]
        for artist in others:
            artist.set_visible(False)
        self._layer.region = None
        self.canvas.draw()
        layer = self.canvas.copy_from_bbox(self.fig.bbox)
        for artist in others:
            artist.set_visible(True)
        self._layers[key] = layer
        if len(self._layers) > self.max_layers:
            self._layers.popitem(last=False)
        return layer

    def draw_rgba(self, values: np.ndarray) -> np.ndarray:
        """Draw one window and return the (height, width, 4) RGBA pixels."""
        self._layout(np.asarray(values, dtype=np.float64))
        self._layer.region = self._xaxis_layer()
        self.ax.xaxis.set_visible(False)
        try:
            self.canvas.draw()
        finally:
            self.ax.xaxis.set_visible(True)
            self._layer.region = None
        return np.asarray(self.canvas.buffer_rgba())

    def render(self, values: np.ndarray, compress_level: int = 1) -> bytes:
        """Draw one window and return PNG bytes (lossless; only the zlib effort is lowered)."""
        from PIL import Image

        rgba = self.draw_rgba(values)
        buffer = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buffer, format="png", compress_level=compress_level)
        return buffer.getvalue()


class _RestoreRegion:
    """An artist drawn just before the axes' axis artists that restores a cached x-axis raster."""

    def __new__(cls):
        from matplotlib.artist import Artist

        class RestoreRegion(Artist):
            zorder = 1.4
            region = None

            def draw(self, renderer):
                if self.region is not None:
                    renderer.restore_region(self.region)

        artist = RestoreRegion()
        artist.set_in_layout(False)
        return artist


def zoom_bounds(length: int) -> list[tuple[int, int]]:
    """The two overlapping self-reflection views: ``[0, 2L/3)`` and ``[L/3, L)``."""
    third = length // 3
    return [(0, length - third), (third, length)]


def render_zoom_views(values: np.ndarray, style: ImageStyle = ZOOM_STYLE) -> list[bytes]:
    """The two zoomed views of a window, tick labels in window coordinates."""
    values = np.asarray(values, dtype=np.float64)
    return [
        WindowRenderer(style, end - start, x_start=start).render(values[start:end])
        for start, end in zoom_bounds(len(values))
    ]


def style_for(base: ImageStyle, length: int, **changes: object) -> ImageStyle:
    """``base`` with ``changes`` and tick spacing raised where labels would overlap."""
    style = replace(base, **changes)
    return replace(style, x_ticks=legible_x_ticks(length, style.width, style.x_ticks))
