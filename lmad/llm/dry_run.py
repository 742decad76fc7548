"""A client for ``--dry_run``: it knows the model and counts its requests, and sends nothing.

An ``hf:`` model's weights are never loaded: whether it takes images is read from its config
(``AutoConfig``), its tokens are counted by its tokenizer (:mod:`lmad.llm.token_count`). A missing
API key is not an error here; the caller says the run itself will need one.
"""

from __future__ import annotations

from pathlib import Path

from lmad.errors import ConfigError
from lmad.llm.base import Backend, FatalError, Reply
from lmad.llm.cache import ResponseCache
from lmad.llm.client import LLMClient
from lmad.llm.config import KEYS_FILE, MODELS_FILE, ModelConfig, load_api_key, resolve_model
from lmad.llm.messages import ChatRequest


class NoSendBackend(Backend):
    """Stands in for the model's backend under ``--dry_run``: any request is refused."""

    def __init__(self, config: ModelConfig, takes_images: bool) -> None:
        super().__init__(config.model)
        self.provider = config.provider
        self.takes_images = takes_images
        self.url = config.base_url

    def complete(self, request: ChatRequest, timeout: float | None = None) -> Reply:
        raise FatalError("a dry run sends nothing")


def hf_takes_images(name: str) -> bool:
    """Whether an ``hf:`` model is an image-text model, from its config alone (no weights)."""
    from lmad.llm.hf_backend import is_vision_config
    from lmad.llm.local_models import hf_model_source

    try:
        from transformers import AutoConfig
    except ImportError as exc:
        raise ConfigError(f"hf: {exc}; install the extras with pip install 'lmad[hf]'") from exc
    path, kwargs = hf_model_source(name)
    try:
        return is_vision_config(AutoConfig.from_pretrained(path, **kwargs))
    except (OSError, ValueError, KeyError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise ConfigError(f"hf: cannot read the config of {name!r}: {reason}") from exc


def open_dry_client(
    name: str,
    models_path: str | Path = MODELS_FILE,
    keys_path: str | Path = KEYS_FILE,
    cache_dir: str | Path | None = None,
) -> tuple[LLMClient, str | None]:
    """A client for ``--LLM name`` that sends nothing, and a note when the run will lack a key.

    ``cache_dir``: the response cache the run would read, to leave out what it already answers.
    """
    config = resolve_model(name, models_path)
    note = None
    if config.provider == "hf":
        images = hf_takes_images(config.model)
    else:
        images = config.images
        try:
            load_api_key(config, keys_path)
        except ConfigError as exc:
            note = f"{exc} (the run itself needs it)"
    cache = ResponseCache(cache_dir) if cache_dir is not None else None
    return LLMClient(config, NoSendBackend(config, images), cache), note
