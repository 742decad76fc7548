"""The five anomaly types of TAMA (arXiv 2411.02465, Sec. 3.3), the lowest floor of the package.

Answers name one of them per interval; the per-point type annotation of a series stores
``index + 1`` (0 is normal). Every layer uses this one tuple: the answer schema and the series
loaders (``lmad.series``) as well as the type-classification metrics (``lmad.metrics``).
"""

from __future__ import annotations

ANOMALY_TYPES: tuple[str, ...] = ("global", "contextual", "frequency", "trend", "shapelet")
