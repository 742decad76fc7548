"""Estimates of a run's tokens and dollars before it is sent, and the cost meter of a run.

Prompt tokens are counted by a :class:`~lmad.llm.token_count.TokenCounter` (the model's tokenizer
where one can be had offline, else a calibrated estimate); completion tokens are a budget: the
mean of the answers already in the run log when there are some, else the model's
``expected_output_tokens`` (600), at most ``max_tokens``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lmad.llm.base import Reply
from lmad.llm.config import ModelConfig
from lmad.llm.messages import ChatRequest
from lmad.llm.token_count import (
    CHAT_OVERHEAD,
    HeuristicCounter,
    TokenCounter,
    image_tokens,
    token_style,
)

__all__ = [
    "CHAT_OVERHEAD",
    "CostMeter",
    "Estimate",
    "RequestSize",
    "estimate_prompt_tokens",
    "estimate_run",
    "image_tokens",
]


def estimate_prompt_tokens(request: ChatRequest, config: ModelConfig) -> int:
    """Prompt tokens of ``request`` by the heuristic of the model's family (no server, no files):
    what the rate limiter reserves before a request is sent."""
    return HeuristicCounter(token_style(config), config.image_tokens).prompt_tokens(request)


def expected_completion(request: ChatRequest, config: ModelConfig) -> int:
    """The completion budget of a request: ``expected_output_tokens``, at most ``max_tokens``."""
    return min(config.expected_output_tokens, request.params.max_tokens)


@dataclass
class RequestSize:
    """One request's prompt tokens and the completion limit it asks for (``max_tokens``).

    ``label`` names it for messages (``reference of series 135``); ``key`` is what the caller
    needs to build it again (opaque here).
    """

    task: str
    label: str
    prompt_tokens: int
    completion_limit: int
    key: Any = field(default=None, repr=False, compare=False)

    @property
    def total(self) -> int:
        """What must fit the context window: the prompt and the longest reply it allows."""
        return self.prompt_tokens + self.completion_limit


@dataclass
class Estimate:
    """Requests, tokens and dollars of what is still to send (nothing is sent to make it).

    ``repairs``: one repair turn for every request (the upper bound), with ``repair_rate`` the
    share of requests the run log shows were repaired (None: no answers yet). ``reflections``:
    one self-reflection for every analysed window (the upper bound; only windows with anomalies
    get one). ``largest``: the largest request of each task, prompt plus completion limit.
    """

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    repairs: Estimate | None = None
    repair_rate: float | None = None
    reflections: Estimate | None = None
    largest: dict[str, RequestSize] = field(default_factory=dict)
    counted_by: str = ""
    completion_basis: str = ""
    from_cache: int = 0
    """Requests the response cache (``data/cache/llm``) answers: not sent, not counted above."""

    def add(self, prompt: int, completion: int, config: ModelConfig) -> None:
        self.requests += 1
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.cost_usd += config.cost(prompt, completion)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def consider(self, size: RequestSize) -> None:
        """Keep ``size`` if it is the largest request of its task so far."""
        best = self.largest.get(size.task)
        if best is None or size.total > best.total:
            self.largest[size.task] = size

    @property
    def biggest(self) -> RequestSize | None:
        """The largest request of all."""
        return max(self.largest.values(), key=lambda s: s.total, default=None)

    @property
    def expected_repairs(self) -> Estimate | None:
        """Repairs at the observed rate (None when no rate is known)."""
        if self.repairs is None or self.repair_rate is None:
            return None
        r = self.repair_rate
        return Estimate(
            round(self.repairs.requests * r),
            round(self.repairs.prompt_tokens * r),
            round(self.repairs.completion_tokens * r),
            self.repairs.cost_usd * r,
        )


def estimate_run(
    requests: Sequence[ChatRequest],
    config: ModelConfig,
    counter: TokenCounter | None = None,
    completion: dict[str, int] | None = None,
    repair_tokens: dict[str, int] | None = None,
    labels: Sequence[str] | None = None,
    keys: Sequence[Any] | None = None,
) -> Estimate:
    """Tokens and dollars ``requests`` would cost, before anything is sent.

    ``counter``: how prompt tokens are counted (default: the model family's heuristic).
    ``completion``: the expected reply length per task (default: :func:`expected_completion`).
    ``repair_tokens``: per task, the tokens a repair turn adds to the conversation besides the
    first reply (the repair prompt and its chat overhead); tasks without one are not repaired.
    ``labels`` and ``keys`` name each request in :attr:`Estimate.largest`.
    """
    counter = counter or HeuristicCounter(token_style(config), config.image_tokens)
    estimate = Estimate(counted_by=counter.source)
    repairs = Estimate()
    for i, request in enumerate(requests):
        prompt = counter.prompt_tokens(request)
        reply = (completion or {}).get(request.task, expected_completion(request, config))
        reply = min(reply, request.params.max_tokens)
        estimate.add(prompt, reply, config)
        label = labels[i] if labels is not None else f"{request.task} request {i + 1}"
        key = keys[i] if keys is not None else None
        estimate.consider(RequestSize(request.task, label, prompt, request.params.max_tokens, key))
        extra = (repair_tokens or {}).get(request.task)
        if extra is not None:
            repairs.add(prompt + reply + extra, reply, config)
    estimate.repairs = repairs if repairs.requests else None
    return estimate


class CostMeter:
    """Usage and cost of a run so far (thread-safe); cached replies cost nothing again.

    ``cached_tokens`` counts the prompt tokens the provider served from its prompt cache (part of
    ``prompt_tokens``; OpenAI bills them at the cached-input price).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.cache_hits = 0
        self.failures = 0
        self.retries = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cached_tokens = 0
        self.cost_usd = 0.0

    def add(self, reply: Reply) -> None:
        with self._lock:
            if reply.cached:
                self.cache_hits += 1
                return
            self.requests += 1
            self.retries += max(0, reply.attempts - 1)
            self.prompt_tokens += reply.usage.prompt_tokens
            self.completion_tokens += reply.usage.completion_tokens
            self.cached_tokens += reply.usage.cached_tokens
            self.cost_usd += reply.cost_usd

    def add_failure(self) -> None:
        with self._lock:
            self.failures += 1

    def summary(self) -> str:
        """Requests, tokens and dollars; whether answers were usable is the run's count, not this."""
        cached = (
            f" ({self.cached_tokens} prompt tokens from the provider's prompt cache)"
            if self.cached_tokens
            else ""
        )
        return (
            f"{self.requests} requests sent ({self.cache_hits} answered from the cache, "
            f"{self.retries} retries), {self.prompt_tokens + self.completion_tokens} tokens"
            f"{cached}, ${self.cost_usd:.4f}"
        )
