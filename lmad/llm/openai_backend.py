"""OpenAI, Azure OpenAI and every OpenAI-compatible server (vLLM, Ollama, llama.cpp, DashScope,
Gemini's OpenAI endpoint) through the ``openai`` package.

Images go as ``data:image/png;base64,...`` URLs with a settable ``detail``. The client's own retries are
off: :class:`lmad.llm.client.LLMClient` retries, so that waits and counts are ours and tested.
"""

from __future__ import annotations

from typing import Any

from lmad.llm.base import Backend, FatalError, Reply, TransientError, Usage, is_network_error
from lmad.llm.config import scrub
from lmad.llm.messages import ChatRequest, ImagePart, Message, TextPart

PLACEHOLDER_KEY = "not-needed"


def openai_content(message: Message) -> str | list[dict[str, Any]]:
    """A message's content in the OpenAI chat format (plain text when it has no image)."""
    if not message.images:
        return message.text
    content: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            url = f"data:image/png;base64,{part.base64()}"
            content.append({"type": "image_url", "image_url": {"url": url, "detail": part.detail}})
    return content


def retry_after_seconds(headers: Any) -> float | None:
    """``Retry-After`` (seconds) or ``retry-after-ms`` from response headers, if present."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None


def chat_kwargs(
    model: str, messages: list[dict[str, Any]], request: ChatRequest, timeout: float | None
) -> dict[str, Any]:
    """The chat-completions arguments shared by OpenAI-style clients (ZhipuAI's too)."""
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": request.params.temperature,
        "top_p": request.params.top_p,
        "max_tokens": request.params.max_tokens,
    }
    if timeout is not None:
        kwargs["timeout"] = timeout
    return kwargs


def chat_completion_reply(response: Any) -> Reply:
    """Text and usage of a chat-completion response (OpenAI's format, which ZhipuAI shares)."""
    try:
        text = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        raise TransientError("reply without choices (garbled response body)") from None
    if text is None:
        raise TransientError("reply without message content")
    usage = getattr(response, "usage", None)
    return Reply(
        text=text,
        usage=Usage(
            int(getattr(usage, "prompt_tokens", 0) or 0),
            int(getattr(usage, "completion_tokens", 0) or 0),
        ),
    )


def classify_error(
    exc: Exception, status_error: type, transient: tuple[type, ...], where: str, secrets: list[str]
) -> Exception:
    """A provider's exception as :class:`TransientError` (retry) or :class:`FatalError` (stop).

    408, 409, 429 and 5xx, connection faults and garbled bodies are transient; other statuses
    (400, 401, 403, 404, 422) are fatal. The message never contains a key.
    """
    message = scrub(f"{type(exc).__name__}: {exc}", secrets)
    if isinstance(exc, status_error):
        status = exc.status_code
        if status in (408, 409, 429) or status >= 500:
            headers = getattr(getattr(exc, "response", None), "headers", None)
            return TransientError(message, retry_after_seconds(headers))
        return FatalError(f"{status} from {where}: {message}")
    if isinstance(exc, (*transient, ValueError)) or is_network_error(exc):
        return TransientError(message)
    return FatalError(message)


class OpenAIBackend(Backend):
    """Chat completions over the OpenAI API or any server that speaks it."""

    provider = "openai"

    def __init__(
        self,
        model: str,
        api_key: str = "",
        base_url: str | None = None,
        azure_endpoint: str | None = None,
        api_version: str | None = None,
        json_mode: bool = False,
        takes_images: bool = True,
    ) -> None:
        import openai

        super().__init__(model)
        self._secrets = [api_key]
        self.json_mode = json_mode
        self.takes_images = takes_images
        self._errors = openai
        if azure_endpoint:
            self.provider = "azure"
            self.client = openai.AzureOpenAI(
                api_key=api_key, azure_endpoint=azure_endpoint, api_version=api_version,
                max_retries=0,
            )  # fmt: skip
        else:
            self.client = openai.OpenAI(
                api_key=api_key or PLACEHOLDER_KEY, base_url=base_url, max_retries=0
            )

    def complete(self, request: ChatRequest, timeout: float | None = None) -> Reply:
        if not self.takes_images and any(m.images for m in request.messages):
            raise FatalError(f"{self.model} takes no images; use the text modality")
        messages = [{"role": m.role, "content": openai_content(m)} for m in request.messages]
        kwargs = chat_kwargs(self.model, messages, request, timeout)
        if self.json_mode and request.params.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        try:
            response = self.client.chat.completions.create(**kwargs)
        except Exception as exc:
            raise self._classify(exc) from None
        return chat_completion_reply(response)

    def _classify(self, exc: Exception) -> Exception:
        e = self._errors
        transient = (e.APIConnectionError, e.APIResponseValidationError)
        where = f"{self.provider} ({self.model})"
        return classify_error(exc, e.APIStatusError, transient, where, self._secrets)
