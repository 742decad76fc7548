"""OpenAI, Azure OpenAI and every OpenAI-compatible server (vLLM, Ollama, llama.cpp, DashScope,
Gemini's OpenAI endpoint) through the ``openai`` package.

Images go as ``data:image/png;base64,...`` URLs with a settable ``detail``. The client's own retries are
off: :class:`lmad.llm.client.LLMClient` retries, so that waits and counts are ours and tested.
"""

from __future__ import annotations

from typing import Any

from lmad.llm.base import (
    Backend,
    ConnectFailure,
    FatalError,
    Reply,
    TransientError,
    Usage,
    connect_failure_reason,
    is_network_error,
)
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
    model: str, messages: list[dict[str, Any]], request: ChatRequest, timeout: Any
) -> dict[str, Any]:
    """The chat-completions arguments shared by OpenAI-style clients (ZhipuAI's too).

    ``timeout`` is seconds or the client's ``Timeout`` (with a shorter connect timeout).
    """
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


BOUND_KEYWORDS = frozenset({
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "format", "minItems", "maxItems",
})  # fmt: skip
"""Schema bounds left out of what is sent: the subset every schema-enforcing API accepts has
types, enums, required fields and closed objects, but not numeric or length bounds (OpenAI's strict
mode rejected them when structured outputs came out); the answer parser checks them instead."""


def portable_schema(schema: Any) -> Any:
    """``schema`` without :data:`BOUND_KEYWORDS` (property names are kept, whatever they are)."""
    if isinstance(schema, list):
        return [portable_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kept: dict[str, Any] = {}
    for key, value in schema.items():
        if key in BOUND_KEYWORDS:
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            kept[key] = {name: portable_schema(sub) for name, sub in value.items()}
        else:
            kept[key] = portable_schema(value)
    return kept


def response_format(request: ChatRequest, structured: str) -> dict[str, Any] | None:
    """OpenAI's ``response_format`` for ``request`` under the model's ``structured`` setting.

    ``json_schema`` sends the request's answer schema (strict: every field required, no others;
    OpenAI's structured outputs, which vLLM, llama.cpp's server and Ollama accept too);
    ``json_object`` only asks for some JSON object; ``none`` (or a request that wants no JSON)
    sends nothing.
    """
    if structured == "none" or not request.params.json_mode:
        return None
    if structured == "json_schema" and request.schema is not None:
        schema = {
            "name": f"{request.task}_answer",
            "schema": portable_schema(request.schema),
            "strict": True,
        }
        return {"type": "json_schema", "json_schema": schema}
    return {"type": "json_object"}


def request_body(model: str, request: ChatRequest, structured: str = "none") -> dict[str, Any]:
    """The JSON body of a chat-completions request (what a live call and a batch line send)."""
    messages = [{"role": m.role, "content": openai_content(m)} for m in request.messages]
    body = chat_kwargs(model, messages, request, None)
    form = response_format(request, structured)
    if form is not None:
        body["response_format"] = form
    return body


def chat_completion_reply(response: Any, where: str) -> Reply:
    """Text and usage of a chat-completion response (OpenAI's format, which ZhipuAI shares).

    ``where`` (model and URL) starts the message of a garbled reply.
    """
    try:
        text = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        raise TransientError(f"{where}: reply without choices (garbled response body)") from None
    if text is None:
        raise TransientError(f"{where}: reply without message content")
    usage = getattr(response, "usage", None)
    details = getattr(usage, "prompt_tokens_details", None)
    return Reply(
        text=text,
        usage=Usage(
            int(getattr(usage, "prompt_tokens", 0) or 0),
            int(getattr(usage, "completion_tokens", 0) or 0),
            int(getattr(details, "cached_tokens", 0) or 0),
        ),
        truncated=getattr(response.choices[0], "finish_reason", None) == "length",
    )


def classify_error(
    exc: Exception, status_error: type, transient: tuple[type, ...], where: str, secrets: list[str]
) -> Exception:
    """A provider's exception as :class:`TransientError` (retry) or :class:`FatalError` (stop).

    408, 409, 429 and 5xx, connection faults and garbled bodies are transient; a connection that
    could not be opened is a :class:`ConnectFailure`; other statuses (400, 401, 403, 404, 422) are
    fatal. The message starts with ``where`` (model and URL) and never contains a key.
    """
    if isinstance(exc, status_error):
        status = exc.status_code
        message = scrub(f"{where}: HTTP {status}, {type(exc).__name__}: {exc}", secrets)
        if status in (408, 409, 429) or status >= 500:
            headers = getattr(getattr(exc, "response", None), "headers", None)
            return TransientError(message, retry_after_seconds(headers))
        return FatalError(message)
    message = scrub(f"{where}: {type(exc).__name__}: {exc}", secrets)
    reason = connect_failure_reason(exc)
    if reason is not None:
        return ConnectFailure(scrub(f"{message} ({reason})", secrets), scrub(reason, secrets))
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
        structured: str = "none",
        takes_images: bool = True,
    ) -> None:
        import openai

        super().__init__(model)
        self._secrets = [api_key]
        self.structured = structured
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
        self.url = scrub(str(self.client.base_url).rstrip("/"), self._secrets)

    def complete(self, request: ChatRequest, timeout: float | None = None) -> Reply:
        if not self.takes_images and any(m.images for m in request.messages):
            raise FatalError(f"{self.where} takes no images; use the text modality")
        kwargs = request_body(self.model, request, self.structured)
        if timeout is not None:  # a dead address fails in connect_timeout, not the whole timeout
            kwargs["timeout"] = self._errors.Timeout(
                timeout, connect=min(self.connect_timeout, timeout)
            )
        try:
            response = self.client.chat.completions.create(**kwargs)
        except Exception as exc:
            raise self._classify(exc) from None
        return chat_completion_reply(response, self.where)

    def _classify(self, exc: Exception) -> Exception:
        e = self._errors
        transient = (e.APIConnectionError, e.APIResponseValidationError)
        return classify_error(exc, e.APIStatusError, transient, self.where, self._secrets)
