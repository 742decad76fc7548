"""Token estimates, image tokens by the provider's tiling rule, and a run's cost meter."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from lmad.llm.base import Reply
from lmad.llm.config import ImageTokenRule, ModelConfig
from lmad.llm.messages import ChatRequest, ImagePart, TextPart
from lmad.llm.tokens import estimate_tokens

MESSAGE_OVERHEAD_TOKENS = 4
"""Role and separator tokens that chat formats add per message (OpenAI's published count)."""


def image_tokens(width: int, height: int, rule: ImageTokenRule, detail: str = "high") -> int:
    """Input tokens of one image under ``rule`` (see :class:`~lmad.llm.config.ImageTokenRule`).

    OpenAI (GPT-4o, detail high): a 2000x400 image fits 2048x2048 and its short side is under 768,
    so it covers ceil(2000/512) * ceil(400/512) = 4 tiles: 85 + 4 * 170 = 765 tokens.
    """
    if rule.mode == "fixed" or detail == "low":
        return rule.base
    scale = min(1.0, rule.max_side / max(width, height))
    w, h = width * scale, height * scale
    scale = min(1.0, rule.short_side / min(w, h))
    w, h = w * scale, h * scale
    tiles = math.ceil(w / rule.tile_size) * math.ceil(h / rule.tile_size)
    return rule.base + rule.tile * tiles


def estimate_prompt_tokens(request: ChatRequest, config: ModelConfig) -> int:
    """Prompt tokens of ``request``: text by :func:`estimate_tokens`, images by the tiling rule."""
    total = 3
    for message in request.messages:
        total += MESSAGE_OVERHEAD_TOKENS
        for part in message.parts:
            if isinstance(part, TextPart):
                total += estimate_tokens(part.text)
            elif isinstance(part, ImagePart):
                total += image_tokens(*part.size(), config.image_tokens, part.detail)
    return total


@dataclass
class Estimate:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


def estimate_run(requests: list[ChatRequest], config: ModelConfig) -> Estimate:
    """Tokens and dollars a list of requests would cost, before anything is sent."""
    estimate = Estimate()
    for request in requests:
        prompt = estimate_prompt_tokens(request, config)
        completion = min(config.expected_output_tokens, request.params.max_tokens)
        estimate.requests += 1
        estimate.prompt_tokens += prompt
        estimate.completion_tokens += completion
        estimate.cost_usd += config.cost(prompt, completion)
    return estimate


class CostMeter:
    """Usage and cost of a run so far (thread-safe); cached replies cost nothing again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.cache_hits = 0
        self.failures = 0
        self.retries = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
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
            self.cost_usd += reply.cost_usd

    def add_failure(self) -> None:
        with self._lock:
            self.failures += 1

    def summary(self) -> str:
        """Requests, tokens and dollars; whether answers were usable is the run's count, not this."""
        return (
            f"{self.requests} requests sent ({self.cache_hits} answered from the cache, "
            f"{self.retries} retries), {self.prompt_tokens + self.completion_tokens} tokens, "
            f"${self.cost_usd:.4f}"
        )
