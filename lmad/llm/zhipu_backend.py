"""ZhipuAI (GLM-4v-plus, GLM-4v) through the ``zhipuai`` package.

ZhipuAI wants images as bare base64 (no ``data:`` prefix) and GLM-4v takes no system turn with
images, so system text is folded into the first user message.
"""

from __future__ import annotations

from typing import Any

from lmad.llm.base import Backend, Reply
from lmad.llm.config import scrub
from lmad.llm.messages import ChatRequest, ImagePart, Message, TextPart
from lmad.llm.openai_backend import chat_completion_reply, chat_kwargs, classify_error


def zhipu_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Messages in ZhipuAI's format, system text prepended to the first user turn."""
    system_text = "\n\n".join(m.text for m in messages if m.role == "system")
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        content: list[dict[str, Any]] = []
        for part in message.parts:
            if isinstance(part, TextPart):
                content.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                content.append({"type": "image_url", "image_url": {"url": part.base64()}})
        if system_text and message.role == "user":
            content.insert(0, {"type": "text", "text": system_text})
            system_text = ""
        out.append({"role": message.role, "content": content})
    return out


class ZhipuBackend(Backend):
    provider = "zhipuai"

    def __init__(self, model: str, api_key: str, base_url: str | None = None) -> None:
        import zhipuai

        super().__init__(model)
        self._secrets = [api_key]
        self._errors = zhipuai
        self.client = zhipuai.ZhipuAI(api_key=api_key, base_url=base_url, max_retries=0)
        url = getattr(self.client, "base_url", None) or getattr(self.client, "_base_url", base_url)
        self.url = scrub(str(url or "").rstrip("/"), self._secrets) or None

    def complete(self, request: ChatRequest, timeout: float | None = None) -> Reply:
        import httpx  # zhipuai's HTTP stack

        limit = None
        if timeout is not None:  # a dead address fails in connect_timeout, not the whole timeout
            limit = httpx.Timeout(timeout, connect=min(self.connect_timeout, timeout))
        kwargs = chat_kwargs(self.model, zhipu_messages(request.messages), request, limit)
        try:
            response = self.client.chat.completions.create(**kwargs)
        except Exception as exc:
            raise self._classify(exc) from None
        return chat_completion_reply(response, self.where)

    def _classify(self, exc: Exception) -> Exception:
        z = self._errors
        transient = (z.APIResponseError,)
        return classify_error(exc, z.APIStatusError, transient, self.where, self._secrets)
