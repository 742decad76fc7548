"""How each log-anomaly row builds and loads its model (the one place of these choices).

``model_factory(name, splits, settings)`` returns ``(build, load, windows)``: ``build(window)`` makes
an unfitted model, ``load(path)`` a saved one, and ``windows`` are the candidates tried on
validation (``None``: the model sees whole runs). Model sizes are each class's own defaults
(:class:`~lmad.workflows.deeplog.DeepLog`, :class:`~lmad.workflows.loganomaly.LogAnomaly`,
:class:`~lmad.workflows.logbert.LogBERT`); ``settings.epochs`` overrides their epochs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmad.errors import ConfigError
from lmad.workflows.log_keys import KeyedSplits

Factory = tuple[Callable[[int | None], Any], Callable[[Path], Any], tuple[int | None, ...]]


def _epochs(settings: Any) -> dict[str, int]:
    return {} if settings.epochs is None else {"epochs": settings.epochs}


def _deeplog(splits: KeyedSplits, settings: Any) -> Factory:
    from lmad.workflows.deeplog import DeepLog

    def build(window: int | None) -> DeepLog:
        return DeepLog(
            len(splits.vocabulary), window=window, seed=settings.seed, **_epochs(settings)
        )

    return build, DeepLog.load, tuple(settings.windows)


@functools.cache
def _key_encoder() -> Any:
    """The packaged MiniLM, loaded once per process for every LogAnomaly candidate."""
    from lmad.workflows.zero_shot import EMBEDDING_MODEL, SentenceEncoder

    return SentenceEncoder(EMBEDDING_MODEL)


def _embed(texts: list[str]) -> Any:
    """MiniLM sentence vectors of key texts (template2vec's role in LogAnomaly)."""
    return _key_encoder().encode(texts)


def _loganomaly(splits: KeyedSplits, settings: Any) -> Factory:
    from lmad.workflows.loganomaly import LogAnomaly

    def build(window: int | None) -> LogAnomaly:
        return LogAnomaly(
            len(splits.vocabulary), embed=_embed, window=window, seed=settings.seed,
            **_epochs(settings),
        )  # fmt: skip

    def load(path: Path) -> LogAnomaly:
        return LogAnomaly.load(path, embed=_embed)

    return build, load, tuple(settings.windows)


def _logbert(splits: KeyedSplits, settings: Any) -> Factory:
    from lmad.workflows.logbert import LogBERT

    longest = max((len(k) for k in splits.train.keys), default=1)

    def build(window: int | None) -> LogBERT:
        return LogBERT(
            len(splits.vocabulary), max_length=max(64, longest), seed=settings.seed,
            **_epochs(settings),
        )  # fmt: skip

    return build, LogBERT.load, (None,)


FACTORIES = {"deeplog": _deeplog, "loganomaly": _loganomaly, "logbert": _logbert}


def model_factory(name: str, splits: KeyedSplits, settings: Any) -> Factory:
    """``(build, load, windows)`` of the log-anomaly model ``name``."""
    if name not in FACTORIES:
        raise ConfigError(f"unknown log-anomaly model {name!r}; use {', '.join(FACTORIES)}")
    return FACTORIES[name](splits, settings)
