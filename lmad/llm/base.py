"""The backend interface: a :class:`ChatRequest` in, a :class:`Reply` out.

A backend only talks to its provider. Retries, rate limits, the cache and cost accounting live in
:class:`lmad.llm.client.LLMClient`, which wraps any backend.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field

from lmad.llm.messages import ChatRequest

CONNECT_TIMEOUT = 10.0  # seconds to open a connection; a reply may take the full request timeout
_HTTP_STACKS = {"httpx", "httpx2", "httpcore", "httpcore2", "h11", "urllib3", "requests"}
_NO_HOST = ("name or service not known", "nodename nor servname", "name resolution", "getaddrinfo",
            "no address associated")  # fmt: skip


@dataclass
class Usage:
    """Tokens of one reply as the provider reported them; ``cached_tokens`` is the part of
    ``prompt_tokens`` the provider served from its prompt cache (OpenAI's
    ``usage.prompt_tokens_details.cached_tokens``), billed at its cached-input price."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Reply:
    """A model's answer: its text, token usage and cost; ``cached`` when no request was made.

    ``truncated``: generation stopped at the token limit (``max_tokens``, OpenAI's
    ``finish_reason: length``) or the time limit, so the text may be cut off mid-answer.
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    cached: bool = False
    request_hash: str = ""
    attempts: int = 1
    truncated: bool = False


class TransientError(Exception):
    """A fault retrying can fix: 429, 5xx, a timeout, a dropped connection, a garbled body."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConnectFailure(TransientError):
    """No connection could be opened (refused, unknown host, connect timeout): nothing was sent.

    ``reason`` says which, in a few words (``connection refused``, ``connect timeout``).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class FatalError(Exception):
    """A fault retrying cannot fix (401, 400, 404): the run stops with this message."""


def is_network_error(exc: BaseException) -> bool:
    """A dropped connection, a timeout or a broken transfer, from any HTTP stack."""
    if isinstance(exc, (ConnectionError, TimeoutError, EOFError)):
        return True
    return type(exc).__module__.split(".")[0] in _HTTP_STACKS


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, innermost last."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def connect_failure_reason(exc: BaseException) -> str | None:
    """Why no connection could be opened, if that is what ``exc`` (or its cause) says; else None.

    A connection that was opened and then broke, or a reply that timed out, is not a connect failure.
    """
    for cause in _causes(exc):
        name = type(cause).__name__
        http = type(cause).__module__.split(".")[0] in _HTTP_STACKS
        if http and name == "ConnectTimeout":
            return "connect timeout"
        if (http and name == "ConnectError") or isinstance(
            cause, (ConnectionRefusedError, socket.gaierror)
        ):
            text = str(cause).strip()
            low = text.lower()
            if "refused" in low:
                return "connection refused"
            if any(words in low for words in _NO_HOST):
                return "host name not found"
            return re.sub(r"^\[Errno -?\d+\]\s*", "", text) or name
    return None


class Backend:
    """Base class of providers. Subclasses set ``provider`` and implement :meth:`complete`."""

    provider = "base"
    takes_images = True
    url: str | None = None  # the endpoint requests go to, for messages (never holds a key)
    connect_timeout = CONNECT_TIMEOUT

    def __init__(self, model: str) -> None:
        self.model = model

    @property
    def where(self) -> str:
        """The model and where it is served, e.g. ``vlm at http://127.0.0.1:8000/v1``."""
        return f"{self.model} at {self.url}" if self.url else self.model

    def complete(self, request: ChatRequest, timeout: float | None = None) -> Reply:
        """Send one request; raise :class:`TransientError` or :class:`FatalError` on failure."""
        raise NotImplementedError

    @property
    def answer_identity(self) -> str:
        """The model as far as it decides the answers: its id, plus what a local backend adds
        (its dtype); part of every cache key."""
        return self.model

    def close(self) -> None:
        """Release clients or models."""
