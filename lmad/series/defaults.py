"""Defaults every time-series stage shares, each written once.

``make_dataset.py`` (:class:`~lmad.series.prepare.PrepareOptions`), ``main_cli.py``
(:class:`~lmad.series.pipeline.RunOptions`), ``evaluation.py``
(:class:`~lmad.series.run_plan.EvalOptions`) and ``detect_baselines.py`` must agree on where the
data lives, which subtask and which modality a run means, or one stage looks where another did not
write. Their options classes take these values; the scripts' flags take the options classes'.
"""

from __future__ import annotations

from lmad.io import DATA_DIR
from lmad.llm.cache import DEFAULT_CACHE as LLM_CACHE

__all__ = [
    "DATA_DIR",
    "DEFAULT_MODALITY",
    "DEFAULT_SUBTASK",
    "LLM_CACHE",
    "is_default_subtask",
    "subtask_flag",
]
DEFAULT_SUBTASK = "detection"
"""The subtask every dataset has: plain detection (``processed/<dataset>/``, no suffix).
``None`` and ``""`` mean it too."""
DEFAULT_MODALITY = "image"
"""Windows drawn as line plots (TAMA's main setting); ``text`` writes them as numbers."""


def is_default_subtask(subtask: str | None) -> bool:
    """Whether ``subtask`` is the default one (:data:`DEFAULT_SUBTASK`, ``None`` or empty)."""
    return subtask in (None, "", DEFAULT_SUBTASK)


def subtask_flag(subtask: str | None) -> str:
    """`` --subtask <name>`` for a command shown to the user, empty for the default subtask."""
    return "" if is_default_subtask(subtask) else f" --subtask {subtask}"
