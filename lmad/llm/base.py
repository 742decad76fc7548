"""The backend interface: a :class:`ChatRequest` in, a :class:`Reply` out.

A backend only talks to its provider. Retries, rate limits, the cache and cost accounting live in
:class:`lmad.llm.client.LLMClient`, which wraps any backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmad.llm.messages import ChatRequest


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Reply:
    """A model's answer: its text, token usage and cost; ``cached`` when no request was made."""

    text: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    cached: bool = False
    request_hash: str = ""
    attempts: int = 1


class TransientError(Exception):
    """A fault retrying can fix: 429, 5xx, a timeout, a dropped connection, a garbled body."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(Exception):
    """A fault retrying cannot fix (401, 400, 404): the run stops with this message."""


def is_network_error(exc: BaseException) -> bool:
    """A dropped connection, a timeout or a broken transfer, from any HTTP stack."""
    if isinstance(exc, (ConnectionError, TimeoutError, EOFError)):
        return True
    module = type(exc).__module__.split(".")[0]
    return module in {"httpx", "httpx2", "httpcore", "httpcore2", "h11", "urllib3", "requests"}


class Backend:
    """Base class of providers. Subclasses set ``provider`` and implement :meth:`complete`."""

    provider = "base"
    takes_images = True

    def __init__(self, model: str) -> None:
        self.model = model

    def complete(self, request: ChatRequest, timeout: float | None = None) -> Reply:
        """Send one request; raise :class:`TransientError` or :class:`FatalError` on failure."""
        raise NotImplementedError

    def cache_extra(self, request: ChatRequest) -> object:
        """Anything besides the messages that determines the answer (None for hosted models)."""
        return None

    def close(self) -> None:
        """Release clients or models."""
