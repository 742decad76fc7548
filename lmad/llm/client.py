"""One client for every backend: cache, rate limits, retries, bounded concurrency, repair, cost.

    client = open_client("GPT-4o")                  # a name from BigModel/models.yaml
    reply = client.complete(ChatRequest((user("Describe this", [ImagePart(png)]),)))
    print(client.meter.summary())

A rerun of the same request is answered from ``data/cache/llm/`` without a request. Faults a retry can
fix (429, 5xx, timeouts, dropped connections) are retried with backoff; faults it cannot (401, 400)
raise :class:`LLMFatalError`, a :class:`~lmad.errors.UserError`, and stop the run. A server that
never answered (refused, unknown host, connect timeout) stops the run within seconds with
:class:`LLMUnreachable`, naming the model and the URL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from lmad.errors import ConfigError, UserError
from lmad.llm.base import Backend, ConnectFailure, FatalError, Reply, TransientError, Usage
from lmad.llm.batch_session import BatchSession, Deferred
from lmad.llm.cache import DEFAULT_CACHE, ResponseCache
from lmad.llm.config import (
    KEYS_FILE,
    MODELS_FILE,
    ModelConfig,
    key_section,
    load_api_key,
    resolve_model,
)
from lmad.llm.cost import CostMeter, Estimate, estimate_prompt_tokens, estimate_run
from lmad.llm.messages import ChatRequest, assistant, request_hash, user
from lmad.llm.options import ClientOptions
from lmad.llm.reliability import RateLimiter, RetryPolicy

T = TypeVar("T")


class LLMFatalError(UserError):
    """The provider refused in a way retrying cannot fix; the run stops."""


class LLMUnreachable(LLMFatalError):
    """No connection was ever opened (refused, unknown host, connect timeout); nothing answered."""


class _Cancelled(Exception):
    """An item skipped, or a retry abandoned, because another one hit a fatal error."""


class RetriesExhausted(TransientError):
    """A request still failed after every retry; the caller records it as a failure."""


@dataclass
class JSONResult:
    """A parsed answer, or the failure with the raw reply kept (never silently dropped)."""

    value: Any | None
    raw: str
    error: str | None = None
    repaired: bool = False
    replies: list[Reply] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def usage(self) -> Usage:
        return Usage(
            sum(r.usage.prompt_tokens for r in self.replies if not r.cached),
            sum(r.usage.completion_tokens for r in self.replies if not r.cached),
            sum(r.usage.cached_tokens for r in self.replies if not r.cached),
        )

    @property
    def cost_usd(self) -> float:
        return sum(r.cost_usd for r in self.replies if not r.cached)

    @property
    def request_hash(self) -> str:
        return self.replies[0].request_hash if self.replies else ""


class LLMClient:
    """Wraps a :class:`~lmad.llm.base.Backend` with everything a paid API needs."""

    def __init__(
        self,
        config: ModelConfig,
        backend: Backend,
        cache: ResponseCache | None = None,
        concurrency: int = ClientOptions.concurrency,
        timeout: float = ClientOptions.timeout,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``sleep`` replaces the wait between retries (tests); by default the wait ends early when
        :meth:`map` stops. ``clock`` measures the connect deadline."""
        self.config = config
        self.backend = backend
        self.cache = cache
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter(config.requests_per_minute, config.tokens_per_minute)
        self.sleep = sleep
        self.clock = clock
        self.meter = CostMeter()
        self.batch: BatchSession | None = None  # batch mode: replies of batches, pending requests
        self._reached = False  # set once the server has accepted a connection (answered or not)
        self._first_attempt: float | None = None
        self._lock = threading.Lock()
        self._local = threading.local()  # .halt: the stop event of the map this thread works for

    @property
    def name(self) -> str:
        return self.config.name

    def key_for(self, request: ChatRequest) -> str:
        model = self.backend.answer_identity
        if self.config.base_url:
            model = f"{model}@{self.config.base_url}"
        return request_hash(self.config.provider, model, request)

    def sent_form(self, request: ChatRequest) -> ChatRequest:
        """``request`` as this model is sent it: without its answer schema unless the model is
        configured to take one (``structured: json_schema``), so the cache key matches what was
        asked."""
        if request.schema is not None and not self.config.sends_schema:
            return replace(request, schema=None)
        return request

    def complete(self, request: ChatRequest, refresh: bool = False) -> Reply:
        """One reply: from the cache when present (unless ``refresh``), else from the provider.

        In batch mode (``self.batch`` set, :mod:`lmad.llm.batch_session`) a finished batch's reply
        comes first, and a request with neither is not sent but raises ``Deferred``.
        """
        request = self.sent_form(request)
        key = self.key_for(request)
        if self.batch is not None:  # a batch's reply first: paid (once, at the batch price)
            served = self.batch.serve(key)
            if served is not None:
                if self.cache is not None:
                    self.cache.put(key, served, self.config.provider, self.config.model)
                return served  # metered when its job is logged (BatchSession.settle)
        if self.cache is not None and not refresh:
            hit = self.cache.get(key)
            if hit is not None:
                self.meter.add(hit)
                return hit
        if self.batch is not None:
            self.batch.defer(key, request)  # raises Deferred: asked in the next batch
        reply = self._send(request)
        reply.request_hash = key
        usage = reply.usage
        reply.cost_usd = self.config.cost(
            usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens
        )
        if self.cache is not None:
            self.cache.put(key, reply, self.config.provider, self.config.model)
        self.meter.add(reply)
        return reply

    def _send(self, request: ChatRequest) -> Reply:
        estimate = estimate_prompt_tokens(request, self.config) + min(
            request.params.max_tokens, self.config.expected_output_tokens
        )
        attempt = 0
        while True:
            self._check_halt()
            handle = self.limiter.acquire(estimate)
            self._check_halt()
            with self._lock:
                if self._first_attempt is None:
                    self._first_attempt = self.clock()
            try:
                reply = self.backend.complete(request, timeout=self.timeout)
            except TransientError as exc:
                self._pause(self._retry_delay(exc, attempt))
                attempt += 1
                continue
            except FatalError as exc:
                self._reached = True
                self.meter.add_failure()
                raise LLMFatalError(f"{self.name}: {exc}") from None
            self._reached = True
            self.limiter.settle(handle, reply.usage.total_tokens or estimate)
            reply.attempts = attempt + 1
            return reply

    def _retry_delay(self, exc: TransientError, attempt: int) -> float:
        """Seconds to wait before retrying after ``exc``; raises when no retry is left.

        Until the server has accepted one connection, connect failures get ``connect_deadline``
        seconds from the client's first attempt, then :class:`LLMUnreachable` stops the run.
        """
        self._check_halt()
        delay = self.retry.delay(attempt, exc.retry_after)
        if not isinstance(exc, ConnectFailure):
            self._reached = True
        elif not self._reached and self.retry.connect_deadline is not None:
            elapsed = self.clock() - (self._first_attempt or 0.0)
            left = self.retry.connect_deadline - elapsed
            if left <= 0 or attempt >= self.retry.max_retries:
                self.meter.add_failure()
                raise LLMUnreachable(self._unreachable(exc, attempt + 1, elapsed)) from None
            return min(delay, left)
        if attempt >= self.retry.max_retries:
            self.meter.add_failure()
            raise RetriesExhausted(
                f"{self.name}: still failing after {attempt + 1} attempts: {exc}"
            ) from None
        return delay

    def _unreachable(self, exc: ConnectFailure, tries: int, elapsed: float) -> str:
        """The one line a user sees when the server never answered."""
        url = self.backend.url or self.config.base_url or "its endpoint"
        if self.config.base_url:
            hint = "is the server running and is base_url right?"
        elif self.config.provider == "azure":
            hint = "is the azure endpoint in the keys file right?"
        else:
            hint = "is this machine online (or behind a proxy)?"
        return (
            f"cannot reach {self.name} at {url} ({exc.reason}; {tries} tries in {elapsed:.0f} s): "
            f"nothing was answered; {hint}"
        )

    def _pause(self, seconds: float) -> None:
        """Wait before a retry; a :meth:`map` that is stopping cuts the wait short."""
        halt: threading.Event | None = getattr(self._local, "halt", None)
        if self.sleep is not None:
            self.sleep(seconds)
        elif halt is not None:
            halt.wait(seconds)
        else:
            time.sleep(seconds)
        self._check_halt()

    def _check_halt(self) -> None:
        """Abandon this request when the :meth:`map` it belongs to is stopping."""
        halt: threading.Event | None = getattr(self._local, "halt", None)
        if halt is not None and halt.is_set():
            raise _Cancelled()

    def complete_json(
        self,
        request: ChatRequest,
        parse: Callable[[str], T],
        repair_prompt: Callable[[str], str] | None = None,
        refresh: bool = False,
    ) -> JSONResult:
        """Ask, parse with ``parse``; on a ``ValueError`` ask the same model once to repair its reply.

        A reply that still fails is returned with ``error`` set and the raw text kept.
        """
        first = self.complete(request, refresh=refresh)
        try:
            return JSONResult(parse(first.text), first.text, replies=[first])
        except ValueError as exc:
            error = str(exc)
        if repair_prompt is None:
            return JSONResult(None, first.text, error, replies=[first])
        repair = ChatRequest(
            (*request.messages, assistant(first.text), user(repair_prompt(error))),
            request.params,
            task="repair",
        )
        try:
            second = self.complete(repair, refresh=refresh)
        except Deferred:  # batch mode: the repair goes in the next batch, and the job with it
            if self.batch is not None:
                self.batch.release(first.request_hash)
            raise
        try:
            return JSONResult(parse(second.text), second.text, None, True, [first, second])
        except ValueError as exc:
            raw = f"{first.text}\n--- repair reply ---\n{second.text}"
            return JSONResult(None, raw, f"{error}; after repair: {exc}", True, [first, second])

    def map(
        self, fn: Callable[[Any], T], items: Iterable[Any]
    ) -> Iterator[tuple[Any, T | Exception]]:
        """Run ``fn`` over ``items`` with at most ``concurrency`` in flight, yielding as they finish.

        Exceptions come back as values, except :class:`LLMFatalError`, which cancels what has not
        started, makes the requests in progress give up at their next retry, and is raised.
        """
        stop = threading.Event()

        def guarded(item: Any) -> T:
            if stop.is_set():
                raise _Cancelled()
            self._local.halt = stop  # read by this client's retry loop in this thread
            try:
                return fn(item)
            except LLMFatalError:
                stop.set()  # set in the worker, before it can take the next item
                raise
            finally:
                self._local.halt = None

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(guarded, item): item for item in items}
            try:
                for future in as_completed(futures):
                    error = future.exception()
                    if isinstance(error, _Cancelled):
                        continue
                    if isinstance(error, LLMFatalError):
                        raise error
                    yield futures[future], (error if error is not None else future.result())
            finally:
                for future in futures:
                    future.cancel()

    def estimate(self, requests: list[ChatRequest]) -> Estimate:
        """Tokens and dollars of ``requests`` (images by the provider's tiling rule), unsent."""
        return estimate_run(requests, self.config)

    def close(self) -> None:
        self.backend.close()


def build_backend(config: ModelConfig, keys_path: str | Path = KEYS_FILE) -> Backend:
    """The backend ``config`` names, with its key (never stored anywhere else)."""
    if config.provider == "hf":
        from lmad.llm.hf_backend import HFBackend

        return HFBackend(config.model, structured=config.structured)
    key = load_api_key(config, keys_path)
    if config.provider == "zhipuai":
        from lmad.llm.zhipu_backend import ZhipuBackend

        return ZhipuBackend(config.model, key, config.base_url)
    from lmad.llm.openai_backend import OpenAIBackend

    if config.provider == "azure":
        section = key_section(config, keys_path)
        endpoint = config.base_url or section.get("endpoint")
        if not endpoint:
            raise ConfigError(
                f"{config.name}: no Azure endpoint; add 'endpoint:' to the azure section of "
                f"{keys_path} or base_url to models.yaml"
            )
        version = config.api_version or section.get("api_version") or "2024-10-21"
        return OpenAIBackend(
            config.model,
            key,
            azure_endpoint=endpoint,
            api_version=str(version),
            structured=config.structured,
            takes_images=config.images,
        )
    return OpenAIBackend(
        config.model,
        key,
        base_url=config.base_url,
        structured=config.structured,
        takes_images=config.images,
    )


def open_client(
    name: str,
    models_path: str | Path = MODELS_FILE,
    keys_path: str | Path = KEYS_FILE,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    no_cache: bool = False,
    concurrency: int = ClientOptions.concurrency,
    timeout: float = ClientOptions.timeout,
    retry: RetryPolicy | None = None,
) -> LLMClient:
    """An :class:`LLMClient` for ``--LLM name``; ``no_cache`` bypasses the response cache."""
    config = resolve_model(name, models_path)
    backend = build_backend(config, keys_path)
    cache = None if no_cache or cache_dir is None else ResponseCache(cache_dir)
    return LLMClient(config, backend, cache, concurrency, timeout, retry)
