"""Anomaly segments and point adjustment with TAMA's PAT threshold.

Point adjustment (Xu et al., "Unsupervised Anomaly Detection via Variational Auto-Encoder for
Seasonal KPIs in Web Applications", WWW 2018): a true anomaly segment counts as detected as a whole
once any of its points is predicted, so every point of that segment is set to 1 in the adjusted
prediction; predictions outside true segments stay as they are.

TAMA (arXiv 2411.02465, "From windows to points") adds a point-adjustment threshold PAT: a true
segment of length L is fully credited only when the number of its predicted points is strictly
greater than ``L · PAT``. PAT = 0 is the classic rule above (at least one point); PAT = 0.5 needs
more than half of the segment; PAT = 1 never credits anything (no adjustment).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmad.errors import ConfigError
from lmad.metrics.point import check_binary, check_binary_pair, point_prf


def segments(labels: Any) -> list[tuple[int, int]]:
    """Runs of consecutive 1s as half-open ``(start, end)`` pairs, in time order.

    A run that touches the last point ends at ``len(labels)``; e.g. ``[0, 1, 1, 0, 1]`` gives
    ``[(1, 3), (4, 5)]``. An array without 1s gives ``[]``.

    Raises:
        DataError: ``labels`` is empty, not 1-D, or holds values other than 0/1.
    """
    y = check_binary(labels, "labels")
    padded = np.concatenate(([0], y, [0])).astype(np.int8)
    change = np.diff(padded)
    starts = np.flatnonzero(change == 1)
    ends = np.flatnonzero(change == -1)
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def check_pat(pat: float) -> float:
    """Return ``pat`` as a float in [0, 1], or raise :class:`ConfigError`."""
    value = float(pat)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"PAT must lie in [0, 1] (0 = classic point adjustment), got {pat!r}")
    return value


def point_adjust(labels: Any, predictions: Any, pat: float = 0.0) -> np.ndarray:
    """Adjusted predictions under TAMA's PAT rule.

    For every true segment ``[s, e)`` of length ``L = e - s``, when the number ``k`` of predicted
    points inside it satisfies ``k > L · pat`` (strictly), all of ``[s, e)`` is set to 1. Points
    outside true segments keep their prediction. ``pat = 0`` is the classic point adjustment of
    Xu et al. (2018): one predicted point is enough.

    Args:
        labels: 0/1 ground truth per point.
        predictions: 0/1 predictions per point, same length.
        pat: the point-adjustment threshold in [0, 1].

    Returns:
        A new int8 array of 0/1, same length; the inputs are not modified.

    Raises:
        DataError: invalid arrays. ConfigError: ``pat`` outside [0, 1].
    """
    threshold = check_pat(pat)
    y, p = check_binary_pair(labels, predictions)
    adjusted = p.copy()
    for start, end in segments(y):
        hits = int(p[start:end].sum())
        if hits > (end - start) * threshold:
            adjusted[start:end] = 1
    return adjusted


def adjusted_prf(labels: Any, predictions: Any, pat: float = 0.0) -> dict[str, float | int]:
    """:func:`lmad.metrics.point.point_prf` of the PAT-adjusted predictions.

    Same keys and zero-division conventions as ``point_prf`` (TAMA's "Pred_adjust" and
    "DCheck_adjust" columns with ``pat = 0``).
    """
    return point_prf(labels, point_adjust(labels, predictions, pat))
