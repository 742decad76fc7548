"""Windows written as text for the text modality, with a token estimate.

Two forms:

- TAMA's serialisation (arXiv 2411.02465, text variant; after Gruver et al. 2023, "LLMTime"): each
  value multiplied by 1000 and rounded to an integer, the characters of each number separated by
  spaces and numbers separated by commas: ``1 2 3 4,- 5 6 7``. Every value is written: the original
  let numpy abbreviate long arrays with "...", silently dropping most of the window.
- A compact ``index:value`` form, ``0:1.234,1:-0.567``, which states each point's index so the model
  need not count.
"""

from __future__ import annotations

import numpy as np

from lmad.errors import DataError
from lmad.llm.tokens import estimate_tokens

SCALE = 1000


def serialize_tama(values: np.ndarray, scale: int = SCALE) -> str:
    """TAMA's text form: ``round(value * scale)`` as integers, digits spaced, values comma-joined."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(values).all():
        raise DataError("cannot serialise NaN or inf values; clean the series first")
    integers = np.rint(values * scale).astype(np.int64)
    return ",".join(" ".join(str(number)) for number in integers.tolist())


def parse_tama(text: str, scale: int = SCALE) -> np.ndarray:
    """Invert :func:`serialize_tama` (to within ``1 / scale``)."""
    try:
        numbers = [int(part.replace(" ", "")) for part in text.strip().split(",")]
    except ValueError as exc:
        raise DataError(f"not TAMA's serialisation: {exc}") from None
    return np.asarray(numbers, dtype=np.float64) / scale


def serialize_index_value(values: np.ndarray, decimals: int = 3, start: int = 0) -> str:
    """Compact form ``index:value`` joined by commas; trailing zeros are dropped."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(values).all():
        raise DataError("cannot serialise NaN or inf values; clean the series first")
    parts = []
    for index, value in enumerate(values.tolist(), start):
        number = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
        parts.append(f"{index}:{'0' if number in ('-0', '') else number}")
    return ",".join(parts)


def parse_index_value(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Invert :func:`serialize_index_value`: the indices and the values."""
    try:
        pairs = [part.split(":") for part in text.strip().split(",")]
        indices = np.asarray([int(i) for i, _ in pairs], dtype=np.int64)
        values = np.asarray([float(v) for _, v in pairs], dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"not the index:value form: {exc}") from None
    return indices, values


__all__ = [
    "estimate_tokens",
    "parse_index_value",
    "parse_tama",
    "serialize",
    "serialize_index_value",
    "serialize_tama",
]

SERIALIZERS = {"tama": serialize_tama, "index_value": serialize_index_value}


def serialize(values: np.ndarray, form: str) -> str:
    """Serialise one channel of a window in ``form`` (a key of :data:`SERIALIZERS`).

    ``form`` has no default here; make_dataset's is ``PrepareOptions.text_form``.
    """
    if form not in SERIALIZERS:
        raise DataError(f"unknown text form {form!r}; choose from {', '.join(SERIALIZERS)}")
    return SERIALIZERS[form](values)
