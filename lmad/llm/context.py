"""How many tokens a model takes at once (prompt and reply together), found before a run starts.

In order:

1. ``context_window`` of the model's entry in ``models.yaml`` (known values are filled in for the
   hosted models listed there);
2. for an ``hf:`` model, its ``config.json`` (``max_position_embeddings``, or the text model's for
   image-text models), read with ``AutoConfig`` only: no weights are loaded;
3. for an OpenAI-compatible server of one's own (``base_url``, no price): llama.cpp's
   ``GET /props`` at the server root (``default_generation_settings.n_ctx``: the context of one
   slot, what a request really gets),
   else ``GET {base_url}/models``, where vLLM reports ``max_model_len`` and llama.cpp
   ``meta.n_ctx_train`` (the context the model was trained with, which the server may cut);
4. otherwise unknown: the run is not checked, and ``--dry_run`` says so.

The server is asked with short timeouts, never with an API key in a message, and a server that does
not answer is taken as "unknown", not as an error: the run itself reports an unreachable server.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from lmad.llm.config import ModelConfig

PROBE_TIMEOUT = 5.0
"""Seconds to wait for a server's /props, /models or /tokenize."""
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


class ServerUnavailable(Exception):
    """A server endpoint that did not answer with JSON (refused, timeout, HTTP error, not JSON)."""


@dataclass(frozen=True)
class ContextWindow:
    """``tokens`` the model takes (None: unknown) and where that number comes from."""

    tokens: int | None
    source: str

    def describe(self) -> str:
        """``8,192 tokens (llama.cpp /props n_ctx)`` or ``unknown (why)``."""
        if self.tokens is None:
            return f"unknown ({self.source})"
        return f"{self.tokens:,} tokens ({self.source})"


def server_root(base_url: str) -> str:
    """The server's root for llama.cpp's own endpoints: ``http://h:8080/v1`` -> ``http://h:8080``."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def http_json(
    url: str, payload: Any | None = None, timeout: float = PROBE_TIMEOUT, api_key: str = ""
) -> Any:
    """GET (or POST ``payload`` as JSON) and return the decoded JSON reply.

    Loopback addresses bypass proxies from the environment (a proxy cannot reach this machine's
    server). Raises :class:`ServerUnavailable` with a short reason; the key never appears in it.
    """
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    request.add_header("Content-Type", "application/json")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    host = urllib.parse.urlsplit(url).hostname or ""
    handlers = [urllib.request.ProxyHandler({})] if host in _LOOPBACK else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise ServerUnavailable(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerUnavailable(str(reason) or type(exc).__name__) from None
    try:
        return json.loads(body)
    except ValueError:
        raise ServerUnavailable("the reply is not JSON") from None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _from_server(config: ModelConfig) -> ContextWindow:
    """llama.cpp's /props, else the model's entry of /v1/models (vLLM, llama.cpp)."""
    assert config.base_url is not None
    try:
        props = http_json(f"{server_root(config.base_url)}/props")
    except ServerUnavailable:
        props = None
    settings = props.get("default_generation_settings") if isinstance(props, dict) else None
    n_ctx = _positive_int(settings.get("n_ctx")) if isinstance(settings, dict) else None
    if n_ctx:
        return ContextWindow(n_ctx, "the server's /props n_ctx")
    try:
        listing = http_json(f"{config.base_url.rstrip('/')}/models")
    except ServerUnavailable as exc:
        return ContextWindow(None, f"no context_window in models.yaml; /models: {exc}")
    models = listing.get("data") if isinstance(listing, dict) else None
    models = [m for m in models if isinstance(m, dict)] if isinstance(models, list) else []
    chosen = [m for m in models if m.get("id") == config.model] or (
        models if len(models) == 1 else []
    )
    for entry in chosen:
        if _positive_int(entry.get("max_model_len")):
            return ContextWindow(entry["max_model_len"], "the server's /models max_model_len")
        meta = entry.get("meta")
        if isinstance(meta, dict) and _positive_int(meta.get("n_ctx_train")):
            return ContextWindow(meta["n_ctx_train"], "the server's /models meta.n_ctx_train")
    return ContextWindow(None, "no context_window in models.yaml and the server reports none")


def _from_hf_config(name: str) -> ContextWindow:
    """``max_position_embeddings`` (or a like key) of an ``hf:`` model's config, weights unread."""
    from lmad.llm.local_models import hf_model_source

    try:
        from transformers import AutoConfig
    except ImportError:
        return ContextWindow(None, "transformers is not installed")
    path, kwargs = hf_model_source(name)
    try:
        config = AutoConfig.from_pretrained(path, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        return ContextWindow(None, f"config.json unreadable: {' '.join(str(exc).split())[:120]}")
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for holder in (text, config):
        for key in _POSITION_KEYS:
            value = _positive_int(getattr(holder, key, None))
            if value:
                return ContextWindow(value, f"config.json {key}")
    return ContextWindow(None, "config.json gives no maximum length")


def self_hosted(config: ModelConfig) -> bool:
    """An OpenAI-compatible server of one's own (vLLM, llama.cpp, Ollama): a ``base_url`` and no
    price. A priced entry is a hosted API, whose /models says nothing of context or tokens."""
    return (
        config.provider == "openai-compatible"
        and bool(config.base_url)
        and config.price_input == 0
        and config.price_output == 0
    )


_FOUND: dict[tuple, ContextWindow] = {}
_LOCK = threading.Lock()


def context_window(config: ModelConfig) -> ContextWindow:
    """The context window of ``config``'s model (module docstring), found once per process."""
    if config.context_window:
        return ContextWindow(config.context_window, "models.yaml context_window")
    if config.provider != "hf" and not self_hosted(config):
        return ContextWindow(None, f"no context_window for {config.name} in models.yaml")
    key = (config.provider, config.model, config.base_url)
    with _LOCK:
        if key in _FOUND:
            return _FOUND[key]
    found = _from_hf_config(config.model) if config.provider == "hf" else _from_server(config)
    with _LOCK:
        _FOUND[key] = found
    return found


def forget_context_windows() -> None:
    """Ask again next time (tests start servers with other context sizes on reused ports)."""
    with _LOCK:
        _FOUND.clear()
