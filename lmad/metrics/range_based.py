"""Range-based precision and recall of Tatbul et al., "Precision and Recall for Time Series", NeurIPS 2018.

Real anomaly ranges R = {R_1..R_Nr} and predicted ranges P = {P_1..P_Np} are the runs of 1s in the
label and prediction arrays (:func:`lmad.metrics.adjust.segments`). With 0 ≤ α ≤ 1:

- Recall_T(R, P) = (1/Nr) Σ_i [α · Existence(R_i, P) + (1 − α) · Overlap(R_i, P)], where
  Existence(R_i, P) = 1 when R_i shares at least one point with some P_j, else 0;
- Precision_T(R, P) = (1/Np) Σ_j Overlap(P_j, R) (the paper's precision has no existence term);
- Overlap(A, B) = CardinalityFactor(A, B) · Σ_k ω(A, A ∩ B_k, δ);
- CardinalityFactor(A, B) = 1 when A overlaps at most one range of B, else γ = 1/x for
  ``cardinality="reciprocal"`` (x = the number of ranges of B that A overlaps) or γ = 1 for
  ``cardinality="one"``;
- ω(A, O, δ) = Σ_{i ∈ O} δ(i, |A|) / Σ_{i=1}^{|A|} δ(i, |A|), positions i = 1..|A| inside A;
- the positional bias δ(i, L): ``flat`` 1; ``front`` L − i + 1; ``back`` i; ``middle`` i when
  i ≤ L/2, else L − i + 1 (the paper's Figure 3).

F1 = 2·P·R / (P + R). Edge cases (the package's ``zero_division=0`` convention): without real ranges
recall is 0, without predicted ranges precision is 0, and F1 is 0 when P + R = 0. A series without
anomalies and without predictions therefore scores P = R = F1 = 0.

Special case: with α = 0, flat bias and every range of one set overlapping at most one range of the
other, Recall_T is the mean over real ranges of |R_i ∩ P| / |R_i| and Precision_T the mean over
predicted ranges of |P_j ∩ R| / |P_j|; when all real (predicted) ranges have the same length this
equals point recall (precision), e.g. when every range is a single point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmad.errors import ConfigError
from lmad.metrics.adjust import segments
from lmad.metrics.point import check_binary_pair, harmonic_mean

BIASES: tuple[str, ...] = ("flat", "front", "back", "middle")
CARDINALITIES: tuple[str, ...] = ("one", "reciprocal")


def positional_bias(length: int, bias: str = "flat") -> np.ndarray:
    """δ(i, length) for i = 1..length as a float array (Tatbul et al. 2018, Figure 3).

    ``flat``: 1; ``front``: length − i + 1; ``back``: i; ``middle``: i for i ≤ length/2, else
    length − i + 1. Raises ConfigError for another name.
    """
    if bias not in BIASES:
        raise ConfigError(f"unknown positional bias {bias!r}; use one of {', '.join(BIASES)}")
    i = np.arange(1, length + 1, dtype=float)
    if bias == "flat":
        return np.ones(length)
    if bias == "front":
        return length - i + 1
    if bias == "back":
        return i
    return np.where(i <= length / 2, i, length - i + 1)


def _range_scores(
    ranges: list[tuple[int, int]],
    others: list[tuple[int, int]],
    cardinality: str,
    bias: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Per range of ``ranges``: (existence 0/1, cardinality-weighted overlap reward)."""
    existence = np.zeros(len(ranges))
    overlap = np.zeros(len(ranges))
    other_starts = np.array([s for s, _ in others], dtype=np.int64)
    other_ends = np.array([e for _, e in others], dtype=np.int64)
    for n, (start, end) in enumerate(ranges):
        # others are sorted and disjoint: those overlapping [start, end) have end > start and
        # start < end, a contiguous block of indices [first, last).
        first = int(np.searchsorted(other_ends, start, side="right"))
        last = int(np.searchsorted(other_starts, end, side="left"))
        count = max(last - first, 0)
        if count == 0:
            continue
        existence[n] = 1.0
        weights = positional_bias(end - start, bias)
        covered = 0.0
        for k in range(first, last):
            lo = max(start, int(other_starts[k])) - start
            hi = min(end, int(other_ends[k])) - start
            covered += float(weights[lo:hi].sum())
        factor = 1.0 / count if (cardinality == "reciprocal" and count > 1) else 1.0
        overlap[n] = factor * covered / float(weights.sum())
    return existence, overlap


def range_recall(
    labels: Any,
    predictions: Any,
    alpha: float = 0.0,
    cardinality: str = "one",
    bias: str = "flat",
) -> float:
    """Recall_T of Tatbul et al. (2018); 0.0 when ``labels`` has no anomaly range."""
    y, p = check_binary_pair(labels, predictions)
    _check_options(alpha, cardinality, bias)
    real, predicted = segments(y), segments(p)
    if not real:
        return 0.0
    existence, overlap = _range_scores(real, predicted, cardinality, bias)
    return float(np.mean(alpha * existence + (1.0 - alpha) * overlap))


def range_precision(
    labels: Any,
    predictions: Any,
    cardinality: str = "one",
    bias: str = "flat",
) -> float:
    """Precision_T of Tatbul et al. (2018) (no existence term); 0.0 without predicted ranges."""
    y, p = check_binary_pair(labels, predictions)
    _check_options(0.0, cardinality, bias)
    real, predicted = segments(y), segments(p)
    if not predicted:
        return 0.0
    _, overlap = _range_scores(predicted, real, cardinality, bias)
    return float(np.mean(overlap))


def range_prf(
    labels: Any,
    predictions: Any,
    alpha: float = 0.0,
    cardinality: str = "one",
    bias: str = "flat",
    *,
    precision_bias: str | None = None,
) -> dict[str, float]:
    """Range-based precision, recall and F1 (Tatbul et al., NeurIPS 2018).

    Args:
        labels: 0/1 ground truth per point; its runs of 1s are the real ranges.
        predictions: 0/1 predictions per point; its runs of 1s are the predicted ranges.
        alpha: weight of the existence reward in recall (0 = overlap only, 1 = existence only).
        cardinality: ``"one"`` (γ = 1, fragmentation is not penalised) or ``"reciprocal"``
            (γ = 1/x for a range overlapping x > 1 ranges of the other set).
        bias: positional bias δ, one of ``flat``, ``front``, ``back``, ``middle``; used for recall
            and, unless ``precision_bias`` is given, for precision too.
        precision_bias: a different δ for precision (the paper suggests flat for precision).

    Returns:
        ``{"precision", "recall", "f1"}``. Recall is 0 without real ranges, precision is 0 without
        predicted ranges, F1 is 0 when both are 0.

    Raises:
        DataError: invalid arrays. ConfigError: alpha outside [0, 1] or an unknown option.
    """
    precision = range_precision(
        labels, predictions, cardinality, bias if precision_bias is None else precision_bias
    )
    recall = range_recall(labels, predictions, alpha, cardinality, bias)
    return {"precision": precision, "recall": recall, "f1": harmonic_mean(precision, recall)}


def _check_options(alpha: float, cardinality: str, bias: str) -> None:
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"alpha must lie in [0, 1], got {alpha!r}")
    if cardinality not in CARDINALITIES:
        raise ConfigError(
            f"unknown cardinality {cardinality!r}; use one of {', '.join(CARDINALITIES)}"
        )
    if bias not in BIASES:
        raise ConfigError(f"unknown positional bias {bias!r}; use one of {', '.join(BIASES)}")
