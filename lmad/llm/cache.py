"""The response cache: one JSON file per answered request, content-addressed, written atomically.

The key (:func:`lmad.llm.messages.request_hash`) covers provider, model, messages (images by content
hash) and parameters, so the same work never pays twice, and a paper table can be rebuilt from the
cache without calling the API. A record holds the reply text, usage and cost: never a key.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from lmad.io import DATA_DIR, atomic_write_json
from lmad.llm.base import Reply, Usage


def cache_under(data_dir: str | Path) -> Path:
    """The response cache of the scripts working under ``data_dir``: ``<data_dir>/cache/llm``."""
    return Path(data_dir) / "cache" / "llm"


DEFAULT_CACHE = cache_under(DATA_DIR)
"""Where answers already paid for are kept unless a script says otherwise."""


class ResponseCache:
    """Replies stored under ``<root>/<hash[:2]>/<hash>.json``."""

    def __init__(self, root: str | Path = DEFAULT_CACHE) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Reply | None:
        """The cached reply, or None (an unreadable record counts as missing)."""
        try:
            record = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None
        usage = record.get("usage", {})
        return Reply(
            text=record["text"],
            usage=Usage(
                usage.get("prompt_tokens", 0),
                usage.get("completion_tokens", 0),
                usage.get("cached_tokens", 0),
            ),
            cost_usd=float(record.get("cost_usd", 0.0)),
            cached=True,
            request_hash=key,
            attempts=0,
            truncated=bool(record.get("truncated", False)),
        )

    def put(self, key: str, reply: Reply, provider: str, model: str) -> None:
        atomic_write_json(
            self.path(key),
            {
                "request_hash": key,
                "provider": provider,
                "model": model,
                "text": reply.text,
                "usage": {
                    "prompt_tokens": reply.usage.prompt_tokens,
                    "completion_tokens": reply.usage.completion_tokens,
                    "cached_tokens": reply.usage.cached_tokens,
                },
                "cost_usd": reply.cost_usd,
                "truncated": reply.truncated,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
