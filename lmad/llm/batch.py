"""The provider side of batch mode: OpenAI's Batch API, and Azure OpenAI's and ZhipuAI's, which
share its shape. A run's requests go as one JSONL file, answered within 24 hours at a discount.

The formats (OpenAI: https://platform.openai.com/docs/guides/batch and
https://platform.openai.com/docs/api-reference/batch):

- the input file, uploaded with ``POST /v1/files`` (``purpose="batch"``), has one line per request,
  ``{"custom_id": ..., "method": "POST", "url": "/v1/chat/completions", "body": {...}}``, whose
  ``body`` is what a live chat-completions call sends; at most 50,000 lines and 200 MB a file;
- ``POST /v1/batches {input_file_id, endpoint, completion_window: "24h"}`` submits it;
  ``GET /v1/batches/{id}`` polls it: ``validating``, ``in_progress``, ``finalizing``, then
  ``completed``, ``expired`` (the 24 hours ran out), ``cancelled`` or ``failed`` (the file was
  rejected, with ``errors``);
- the output file (``output_file_id``, read with ``GET /v1/files/{id}/content``) has a line for each
  request that got a 2xx reply, ``{"id", "custom_id", "response": {"status_code": 200,
  "request_id", "body": <chat completion>}, "error": null}``; the error file (``error_file_id``)
  has the others: a non-2xx ``response``, or ``"response": null, "error": {"code":
  "batch_expired", "message": ...}`` for a request an expired batch never ran.

Azure OpenAI takes the same files with ``"url": "/chat/completions"`` and the deployment as model
(https://learn.microsoft.com/azure/ai-services/openai/how-to/batch); ZhipuAI at ``/api/paas/v4``
with ``"url": "/v4/chat/completions"`` and its own message format
(https://open.bigmodel.cn/dev/howuse/batchapi). Requests are named by their ``custom_id``, which
is the request's cache key (:meth:`LLMClient.key_for`, 64 hex digits).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeVar

from lmad.errors import ConfigError, UserError
from lmad.llm.base import FatalError, Reply, TransientError
from lmad.llm.config import ModelConfig
from lmad.llm.messages import ChatRequest
from lmad.llm.openai_backend import chat_completion_reply, chat_kwargs, request_body

if TYPE_CHECKING:
    from lmad.llm.client import LLMClient

T = TypeVar("T")

COMPLETION_WINDOW = "24h"
"""The only completion window OpenAI, Azure and ZhipuAI offer."""
MAX_REQUESTS = 50_000
"""Lines per batch file (OpenAI's and ZhipuAI's limit)."""
MAX_BYTES = 95_000_000
"""Bytes per batch file: under OpenAI's 200 MB and ZhipuAI's 100 MB; more makes several batches."""
URLS = {"azure": "/chat/completions", "zhipuai": "/v4/chat/completions"}
"""The ``url`` of a line and the batch's ``endpoint``, where it is not OpenAI's."""
OPENAI_URL = "/v1/chat/completions"
FINISHED = ("completed", "expired", "cancelled", "failed")
"""Batch statuses after which nothing more is answered."""
RETRY_CODES = ("batch_expired", "batch_cancelled", "rate_limit_exceeded", "server_error", "timeout")
"""Item error codes that asking again in the next batch can fix."""


class BatchError(UserError):
    """A Batch API call the provider refused, or a batch it rejected; the run stops."""


def check_batch_model(config: ModelConfig) -> None:
    """A :class:`~lmad.errors.ConfigError` unless ``config``'s provider has a Batch API."""
    if config.batch_cut is not None:
        return
    if config.provider == "hf":
        raise ConfigError(
            f"--batch: {config.name} runs in this process, there is no Batch API to send it to; "
            "run without --batch"
        )
    raise ConfigError(
        f"--batch: {config.name} is served by provider {config.provider}, which has no Batch API "
        "lmad can use (openai, azure and zhipuai have one); run without --batch, or set "
        "batch_discount in the models file if this server implements OpenAI's Batch API"
    )


def batch_url(config: ModelConfig) -> str:
    """The ``url`` of each line of ``config``'s batches, also the batch's ``endpoint``."""
    return URLS.get(config.provider, OPENAI_URL)


def batch_body(config: ModelConfig, request: ChatRequest) -> dict[str, Any]:
    """The body of one line: exactly what a live call of ``config``'s backend sends."""
    if config.provider == "zhipuai":
        from lmad.llm.zhipu_backend import zhipu_messages

        return chat_kwargs(config.model, zhipu_messages(request.messages), request, None)
    return request_body(config.model, request, config.structured)


def batch_line(custom_id: str, url: str, body: dict[str, Any]) -> str:
    """One line of an input file (with its newline)."""
    line = {"custom_id": custom_id, "method": "POST", "url": url, "body": body}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"


def chunk_lines(
    lines: Iterable[tuple[str, str]], max_requests: int = MAX_REQUESTS, max_bytes: int = MAX_BYTES
) -> list[list[tuple[str, str]]]:
    """``(custom_id, line)`` pairs cut into files of at most ``max_requests`` lines and
    ``max_bytes`` bytes."""
    chunks: list[list[tuple[str, str]]] = []
    size = 0
    for key, line in lines:
        length = len(line.encode("utf-8"))
        if not chunks or len(chunks[-1]) >= max_requests or size + length > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append((key, line))
        size += length
    return chunks


@dataclass(frozen=True)
class ItemResult:
    """What a batch says about one request: its ``reply``, or why there is none (``error``);
    ``fatal`` when asking again cannot fix it (a 4xx reply other than 408, 409 and 429)."""

    reply: Reply | None = None
    error: str | None = None
    fatal: bool = False


def _namespace(value: Any) -> Any:
    """JSON as attributes, the form :func:`chat_completion_reply` reads a response in."""
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _namespace(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_namespace(v) for v in value]
    return value


def item_result(line: dict[str, Any], where: str) -> ItemResult:
    """One line of an output or error file as an :class:`ItemResult`."""
    error = line.get("error")
    response = line.get("response")
    if error:
        code = str(error.get("code") or "error")
        message = f"{where}: {code}: {error.get('message') or 'no message'}"
        return ItemResult(error=message, fatal=code not in RETRY_CODES)
    if not isinstance(response, dict):
        return ItemResult(error=f"{where}: a line with neither response nor error")
    status = int(response.get("status_code") or 0)
    body = response.get("body")
    if 200 <= status < 300:
        try:
            return ItemResult(reply=chat_completion_reply(_namespace(body), where))
        except TransientError as exc:
            return ItemResult(error=str(exc))
    detail = body.get("error") if isinstance(body, dict) else None
    text = detail.get("message") if isinstance(detail, dict) else None
    message = f"{where}: HTTP {status}: {text or 'no message'}"
    return ItemResult(error=message, fatal=not (status in (408, 409, 429) or status >= 500))


def parse_results(text: str, where: str) -> dict[str, ItemResult]:
    """The results of an output or error file by ``custom_id`` (unreadable lines are skipped:
    their requests count as unanswered and go in the next batch)."""
    out: dict[str, ItemResult] = {}
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and isinstance(line.get("custom_id"), str):
            out[line["custom_id"]] = item_result(line, where)
    return out


@dataclass(frozen=True)
class BatchInfo:
    """A batch as the provider reports it."""

    id: str
    status: str
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: str = ""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @classmethod
    def of(cls, batch: Any) -> BatchInfo:
        """From the ``Batch`` object of the openai or zhipuai package."""
        counts = getattr(batch, "request_counts", None)
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        text = "; ".join(
            f"{getattr(e, 'code', None) or 'error'}: {getattr(e, 'message', '')}" for e in errors
        )
        return cls(
            id=str(batch.id),
            status=str(batch.status),
            input_file_id=getattr(batch, "input_file_id", None),
            output_file_id=getattr(batch, "output_file_id", None),
            error_file_id=getattr(batch, "error_file_id", None),
            total=int(getattr(counts, "total", 0) or 0),
            completed=int(getattr(counts, "completed", 0) or 0),
            failed=int(getattr(counts, "failed", 0) or 0),
            errors=text,
        )


class BatchAPI:
    """Files and batches of ``client``'s provider, through its backend's own SDK client (so the
    key, endpoint and API version are the live calls'). Faults a retry can fix are retried with the
    client's policy; others raise :class:`BatchError` (never with a key in it)."""

    def __init__(self, client: LLMClient, sleep: Callable[[float], None] = time.sleep) -> None:
        check_batch_model(client.config)
        self.config = client.config
        self.backend = client.backend
        self.retry = client.retry
        self.sleep = client.sleep or sleep
        self.url = batch_url(client.config)
        self.sdk = getattr(client.backend, "client", None)
        if self.sdk is None:
            raise ConfigError(f"--batch: the backend of {client.name} has no Batch API client")

    @property
    def where(self) -> str:
        return self.backend.where

    def upload(self, data: bytes, name: str) -> str:
        """Upload an input file; returns its file id."""
        upload = (name, data, "application/jsonl")
        file = self._call("upload", lambda: self.sdk.files.create(file=upload, purpose="batch"))
        return str(file.id)

    def submit(self, input_file_id: str) -> BatchInfo:
        """Start a batch of an uploaded input file."""
        return BatchInfo.of(
            self._call(
                "submit",
                lambda: self.sdk.batches.create(
                    input_file_id=input_file_id,
                    endpoint=self.url,
                    completion_window=COMPLETION_WINDOW,
                ),
            )
        )

    def retrieve(self, batch_id: str) -> BatchInfo:
        return BatchInfo.of(self._call("poll", lambda: self.sdk.batches.retrieve(batch_id)))

    def find(self, input_file_id: str) -> BatchInfo | None:
        """The batch of ``input_file_id`` among the latest 100, if one was made (a run stopped
        between submitting and recording it)."""
        page = self._call("list", lambda: self.sdk.batches.list(limit=100))
        for batch in getattr(page, "data", None) or []:
            if getattr(batch, "input_file_id", None) == input_file_id:
                return BatchInfo.of(batch)
        return None

    def content(self, file_id: str) -> str:
        """The text of an output or error file."""
        data = self._call("download", lambda: self.sdk.files.content(file_id).read())
        return data.decode("utf-8", errors="replace")

    def _call(self, what: str, call: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return call()
            except Exception as exc:
                error = self.backend._classify(exc)  # type: ignore[attr-defined]
            if isinstance(error, FatalError) or attempt >= self.retry.max_retries:
                raise BatchError(f"Batch API ({what}): {error}") from None
            self.sleep(self.retry.delay(attempt, getattr(error, "retry_after", None)))
            attempt += 1
