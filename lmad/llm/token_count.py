"""Prompt tokens of chat requests, counted the way the model's server will count them.

:func:`token_counter` picks, for a model:

- ``hf:`` models: :class:`HFTokenizerCounter`, the model's own tokenizer and chat template
  (``apply_chat_template(..., add_generation_prompt=True)``), exactly what
  :mod:`lmad.llm.hf_backend` reports as ``prompt_tokens``. Only the tokenizer (or processor) and the
  config are read, never the weights.
- an OpenAI-compatible server of one's own that answers llama.cpp's ``POST /tokenize``
  (``{"content": text}`` -> ``{"tokens": [...]}``): :class:`ServerCounter`, with the server's chat
  template from ``POST /apply-template`` (``{"messages": [...]}`` -> ``{"prompt": "..."}``).
- otherwise :class:`HeuristicCounter`: :func:`lmad.llm.tokens.estimate_tokens` in the model
  family's style (``gpt4`` for OpenAI, Azure and ZhipuAI; ``digits`` for other servers, whose open
  models split digits one by one) plus the chat format's tokens per message.

A templated counter counts a conversation as the template's tokens for its sequence of roles plus
the tokens of each message's text, both cached: the reference turn that every window of a series
repeats is tokenized once. For templates that wrap each message in special tokens (ChatML: SmolLM2,
Qwen; Llama 3) the sum is exact; ``tests/llm/test_token_count.py`` compares it with the whole
rendered conversation.
"""

from __future__ import annotations

import io
import math
import threading
from typing import Any

from lmad.llm.config import ImageTokenRule, ModelConfig
from lmad.llm.context import ServerUnavailable, http_json, self_hosted, server_root
from lmad.llm.messages import ChatRequest, ImagePart, Message, TextPart
from lmad.llm.tokens import Style, estimate_tokens

CHAT_OVERHEAD: dict[str, tuple[int, int]] = {"gpt4": (3, 3), "digits": (5, 4)}
"""Tokens a chat format adds (per message, per request). ``gpt4``: OpenAI's count for gpt-4o
(openai-cookbook, "How to count tokens with tiktoken": 3 per message, 3 priming the reply).
``digits``: ChatML (``<|im_start|>role\\n ... <|im_end|>\\n`` = 5, the reply's
``<|im_start|>assistant\\n`` = 3, plus 1); measured on SmolLM2 for TAMA's requests: 14 for 2
messages, 25 for 4, 36 for 6."""
PLACEHOLDER = "x"
_CACHE_LIMIT = 4096


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


def token_style(config: ModelConfig) -> Style:
    """``gpt4`` for OpenAI's, Azure's and ZhipuAI's models (GLM-4's tokenizer groups digits like
    cl100k), ``digits`` for other servers (Llama, Mistral, Qwen, Gemma and SmolLM2 split them)."""
    return "gpt4" if config.provider in ("openai", "azure", "zhipuai") else "digits"


class TokenCounter:
    """Prompt tokens of a request; ``source`` says how they are counted (for the dry-run line)."""

    source = "an estimate"
    exact = False

    def __init__(self, image_rule: ImageTokenRule) -> None:
        self.image_rule = image_rule

    def prompt_tokens(self, request: ChatRequest) -> int:
        raise NotImplementedError

    def text_tokens(self, text: str) -> int:
        raise NotImplementedError

    def image(self, part: ImagePart) -> int:
        """Tokens of one image, by the model's rule (``image_tokens`` in models.yaml)."""
        return image_tokens(*part.size(), self.image_rule, part.detail)


class HeuristicCounter(TokenCounter):
    """Pre-tokeniser pieces (:mod:`lmad.llm.tokens`) plus :data:`CHAT_OVERHEAD`."""

    def __init__(self, style: Style, image_rule: ImageTokenRule, why: str = "") -> None:
        super().__init__(image_rule)
        self.style = style
        family = {
            "gpt4": "GPT-4o's pre-tokeniser pattern",
            "digits": "digits one by one, calibrated on SmolLM2's tokenizer",
        }[style]
        self.source = f"an estimate ({family}{'; ' + why if why else ''})"

    def text_tokens(self, text: str) -> int:
        return estimate_tokens(text, self.style)

    def prompt_tokens(self, request: ChatRequest) -> int:
        per_message, per_request = CHAT_OVERHEAD[self.style]
        total = per_request
        for message in request.messages:
            total += per_message
            if not message.images:  # sent as one string, parts joined by newlines
                total += self.text_tokens(message.text)
                continue
            for part in message.parts:
                if isinstance(part, TextPart):
                    total += self.text_tokens(part.text)
                else:
                    total += self.image(part)
        return total


class TemplateCounter(TokenCounter):
    """A real tokenizer and chat template: overhead per role sequence + tokens per message text."""

    exact = True

    def __init__(self, image_rule: ImageTokenRule) -> None:
        super().__init__(image_rule)
        self._texts: dict[str, int] = {}
        self._shapes: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()

    # what a subclass provides
    def _count_text(self, text: str) -> int:
        raise NotImplementedError

    def _count_templated(self, roles: tuple[str, ...]) -> int:
        """Tokens of a conversation with these roles, every message :data:`PLACEHOLDER`."""
        raise NotImplementedError

    def text_tokens(self, text: str) -> int:
        with self._lock:
            cached = self._texts.get(text)
        if cached is None:
            cached = self._count_text(text)
            with self._lock:
                if len(self._texts) >= _CACHE_LIMIT:
                    self._texts.clear()
                self._texts[text] = cached
        return cached

    def overhead(self, roles: tuple[str, ...]) -> int:
        """Tokens the template adds to a conversation with these roles."""
        with self._lock:
            cached = self._shapes.get(roles)
        if cached is None:
            cached = self._count_templated(roles) - len(roles) * self.text_tokens(PLACEHOLDER)
            with self._lock:
                self._shapes[roles] = cached
        return cached

    def message_tokens(self, message: Message) -> int:
        if not message.images:
            return self.text_tokens(message.text)
        return sum(
            self.text_tokens(p.text) if isinstance(p, TextPart) else self.image(p)
            for p in message.parts
        )

    def prompt_tokens(self, request: ChatRequest) -> int:
        roles = tuple(m.role for m in request.messages)
        return self.overhead(roles) + sum(self.message_tokens(m) for m in request.messages)


class HFTokenizerCounter(TemplateCounter):
    """The tokenizer and chat template of an ``hf:`` model (its config and tokenizer files only)."""

    def __init__(self, name: str, image_rule: ImageTokenRule) -> None:
        from transformers import AutoConfig, AutoProcessor, AutoTokenizer

        from lmad.llm.hf_backend import is_vision_config
        from lmad.llm.local_models import hf_model_source

        super().__init__(image_rule)
        path, kwargs = hf_model_source(name)
        try:
            self.vision = is_vision_config(AutoConfig.from_pretrained(path, **kwargs))
            if self.vision:
                self.processor: Any = AutoProcessor.from_pretrained(path, **kwargs)
                self.tokenizer: Any = getattr(self.processor, "tokenizer", self.processor)
            else:
                self.processor = None
                self.tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            from lmad.errors import ConfigError

            reason = " ".join(str(exc).split())[:300]
            raise ConfigError(f"hf: cannot read the tokenizer of {name!r}: {reason}") from exc
        self.templated = bool(getattr(self.processor or self.tokenizer, "chat_template", None))
        self.source = f"the model's tokenizer{' and chat template' if self.templated else ''}"
        self._images: dict[tuple[int, int, str], int] = {}

    def _content(self, text: str) -> Any:
        return [{"type": "text", "text": text}] if self.vision else text

    def _encode(self, conversation: list[dict[str, Any]]) -> int:
        """Tokens of a conversation as :mod:`lmad.llm.hf_backend` sends it."""
        from lmad.llm.hf_backend import apply_chat_template_to

        owner = self.processor or self.tokenizer
        if self.templated:
            encoded = apply_chat_template_to(
                owner.apply_chat_template,
                conversation,
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
            )
            ids = encoded["input_ids"]
            return len(ids[0]) if ids and isinstance(ids[0], list) else len(ids)
        prompt = "".join(f"{m['role']}: {_plain(m['content'])}\n" for m in conversation)
        return len(self.tokenizer(prompt + "assistant:")["input_ids"])

    def _count_text(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _count_templated(self, roles: tuple[str, ...]) -> int:
        return self._encode([{"role": r, "content": self._content(PLACEHOLDER)} for r in roles])

    def image(self, part: ImagePart) -> int:
        """Tokens of one image as the processor expands it; the tiling rule if it cannot say."""
        if not (self.vision and self.templated):
            return super().image(part)
        key = (*part.size(), part.detail)
        if key not in self._images:
            try:
                from PIL import Image

                with Image.open(io.BytesIO(part.png)) as img:
                    picture = img.convert("RGB")
                text = {"type": "text", "text": PLACEHOLDER}
                with_image = [
                    {"role": "user", "content": [text, {"type": "image", "image": picture}]}
                ]
                plain = [{"role": "user", "content": [text]}]
                self._images[key] = self._encode(with_image) - self._encode(plain)
            except Exception:  # a processor that cannot do it alone: the configured rule
                self._images[key] = super().image(part)
        return self._images[key]


def _plain(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content)


class ServerCounter(TemplateCounter):
    """llama.cpp's ``/tokenize`` and ``/apply-template`` at the server's root."""

    def __init__(self, base_url: str, image_rule: ImageTokenRule) -> None:
        super().__init__(image_rule)
        self.root = server_root(base_url)
        self.source = f"the server's /tokenize ({self.root})"
        self._count_text("probe")  # raises ServerUnavailable when the server has no /tokenize
        self._template = True

    def _tokenize(self, text: str, special: bool) -> int:
        reply = http_json(
            f"{self.root}/tokenize",
            {"content": text, "add_special": special, "parse_special": True},
        )
        tokens = reply.get("tokens") if isinstance(reply, dict) else None
        if not isinstance(tokens, list):
            raise ServerUnavailable("/tokenize answered without tokens")
        return len(tokens)

    def _count_text(self, text: str) -> int:
        return self._tokenize(text, special=False)

    def _count_templated(self, roles: tuple[str, ...]) -> int:
        messages = [{"role": r, "content": PLACEHOLDER} for r in roles]
        if self._template:
            try:
                reply = http_json(f"{self.root}/apply-template", {"messages": messages})
                prompt = reply.get("prompt") if isinstance(reply, dict) else None
                if isinstance(prompt, str):
                    return self._tokenize(prompt, special=True)
            except ServerUnavailable:
                pass
            self._template = False  # an older server: ChatML's overhead stands in
            self.source += ", ChatML's tokens per message"
        per_message, per_request = CHAT_OVERHEAD["digits"]
        return per_request + len(roles) * (per_message + self.text_tokens(PLACEHOLDER))


_COUNTERS: dict[tuple, TokenCounter] = {}
_LOCK = threading.Lock()


def token_counter(config: ModelConfig) -> TokenCounter:
    """The best counter for ``config``'s model that works offline (module docstring), made once.

    Raises :class:`~lmad.errors.ConfigError` for an ``hf:`` model whose tokenizer cannot be read
    (the run itself could not load it either).
    """
    key = (config.provider, config.model, config.base_url, config.image_tokens)
    with _LOCK:
        if key in _COUNTERS:
            return _COUNTERS[key]
    counter: TokenCounter
    if config.provider == "hf":
        counter = HFTokenizerCounter(config.model, config.image_tokens)
    elif self_hosted(config):
        assert config.base_url is not None
        try:
            counter = ServerCounter(config.base_url, config.image_tokens)
        except ServerUnavailable as exc:
            why = f"the server's /tokenize did not answer: {exc}"
            counter = HeuristicCounter(token_style(config), config.image_tokens, why)
    else:
        counter = HeuristicCounter(token_style(config), config.image_tokens)
    with _LOCK:
        _COUNTERS[key] = counter
    return counter


def forget_counters() -> None:
    """Make counters afresh next time (tests restart servers)."""
    with _LOCK:
        _COUNTERS.clear()
