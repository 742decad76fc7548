"""Which traces of a test file an evaluation scores: all of them, or a seeded sample stratified by
label (``eval.py --limit N --seed S``).

The sample of ``N`` out of ``M`` traces, ``P`` of them anomalous, takes ``k = round(N P / M)``
anomalous traces (halves rounded up) and ``N - k`` normal ones, each drawn without replacement by
``numpy.random.default_rng(S)``; so its anomaly share ``k / N`` is the file's ``P / M`` up to
``1 / (2N)``, and the same seed on the same file gives the same sample. The traces keep their order
in the file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmad.errors import ConfigError


@dataclass(frozen=True)
class Sample:
    """Row indices (0-based, in file order) of the traces scored, out of ``total`` in the file."""

    indices: tuple[int, ...]
    total: int
    seed: int | None = None
    """The seed of a stratified sample; None when every trace is scored."""

    @property
    def size(self) -> int:
        return len(self.indices)

    def describe(self) -> str:
        """``all 80 traces`` or ``20 of 80 traces, stratified by label, seed 42``."""
        return describe(self.size, self.total, self.seed)


def describe(size: int, total: int, seed: int | None) -> str:
    """How many traces of how many a run scored, and how they were drawn (a result row's
    ``sample``)."""
    if seed is None:
        return f"all {total} traces"
    return f"{size} of {total} traces, stratified by label, seed {seed}"


def stratified_sample(
    labels: Sequence[int], limit: int | None, seed: int, source: str = "the file"
) -> Sample:
    """``limit`` traces drawn per label in the file's proportion (see the module docstring).

    ``limit`` None, or equal to the number of traces, takes every trace. ``source`` names the
    file in the error message.

    Raises:
        ConfigError: ``limit`` below 1 or above the number of traces.
    """
    y = np.asarray(labels, dtype=int).ravel()
    total = int(y.size)
    if limit is None or int(limit) == total:
        return Sample(tuple(range(total)), total)
    limit = int(limit)
    if not 1 <= limit <= total:
        raise ConfigError(
            f"--limit {limit} is more than the {total} traces in {source}; "
            "leave --limit out to score them all"
            if limit > total
            else f"--limit must be at least 1, not {limit}"
        )
    positive, negative = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
    k = math.floor(limit * positive.size / total + 0.5)
    k = min(max(k, limit - negative.size), positive.size)
    rng = np.random.default_rng(seed)
    chosen = np.concatenate(
        [
            rng.choice(positive, size=k, replace=False),
            rng.choice(negative, size=limit - k, replace=False),
        ]
    )
    return Sample(tuple(int(i) for i in np.sort(chosen)), total, int(seed))
