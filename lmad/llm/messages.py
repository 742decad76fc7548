"""Chat messages whose content mixes text and PNG images, and the request a backend receives."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
TASKS = ("reference", "analysis", "reflection", "repair", "classify", "chat")


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    png: bytes = field(repr=False)
    detail: str = "high"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.png).hexdigest()

    def base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")

    def size(self) -> tuple[int, int]:
        """(width, height) read from the PNG header."""
        if self.png[:8] != b"\x89PNG\r\n\x1a\n":
            raise ValueError("image part is not a PNG")
        return int.from_bytes(self.png[16:20], "big"), int.from_bytes(self.png[20:24], "big")


Part = TextPart | ImagePart


@dataclass(frozen=True)
class Message:
    role: Role
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def images(self) -> list[ImagePart]:
        return [p for p in self.parts if isinstance(p, ImagePart)]


def system(text: str) -> Message:
    return Message("system", (TextPart(text),))


def user(text: str, images: list[ImagePart] | tuple[ImagePart, ...] = ()) -> Message:
    """A user turn: the text, then the images in order."""
    return Message("user", (TextPart(text), *images))


def assistant(text: str) -> Message:
    return Message("assistant", (TextPart(text),))


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters; TAMA's defaults (temperature 0.1, top_p 0.3, 4096 tokens, JSON)."""

    temperature: float = 0.1
    top_p: float = 0.3
    max_tokens: int = 4096
    json_mode: bool = True


@dataclass(frozen=True)
class ChatRequest:
    """What a backend is asked: messages, parameters, the task, and the JSON schema of its answer.

    ``schema`` (a JSON schema, or None) is what a model with structured output is held to: sent as
    ``response_format: json_schema`` to a server, or enforced token by token for ``hf:`` models.
    The client drops it for models configured with ``structured: none`` or ``json_object``.
    """

    messages: tuple[Message, ...]
    params: GenerationParams = GenerationParams()
    task: str = "chat"
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    def fingerprint(self) -> dict[str, Any]:
        """A JSON-able description of everything sent: images by content hash; the schema when one
        is sent (a request without one keeps the key it had before schemas existed)."""
        described: dict[str, Any] = {
            "messages": [
                {
                    "role": m.role,
                    "parts": [
                        {"text": p.text}
                        if isinstance(p, TextPart)
                        else {"image_sha256": p.sha256, "detail": p.detail}
                        for p in m.parts
                    ],
                }
                for m in self.messages
            ],
            "params": {
                "temperature": self.params.temperature,
                "top_p": self.params.top_p,
                "max_tokens": self.params.max_tokens,
                "json_mode": self.params.json_mode,
            },
        }
        if self.schema is not None:
            described["schema"] = self.schema
        return described


def request_hash(provider: str, model: str, request: ChatRequest) -> str:
    """Cache key: sha256 of provider, model (with whatever else decides its answers, such as a local
    model's dtype), messages (images by content hash) and parameters."""
    payload = {"provider": provider, "model": model, "request": request.fingerprint()}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()
