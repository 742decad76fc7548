"""What :class:`~lmad.llm.client.LLMClient` consults in batch mode: the replies batches brought back,
and the requests still to send.

With a session set (``client.batch``), :meth:`LLMClient.complete` first asks :meth:`serve` for the
request's key: a reply from a finished batch comes back as a paid reply, priced at the batch price
(``ModelConfig.batch_cut`` off), and is cached like a live one. A request neither served nor in the
response cache is not sent: :meth:`defer` notes it as pending and raises :class:`Deferred`, and the
run sends the pending requests as its next batch. A repair turn is therefore asked in the batch
after the reply it repairs.

A served reply is *consumed* once the job that used it is logged: :meth:`settle` marks it, and the
run records that in its batch state, so a later refresh of the same request (a failed item asked
again) is not served the same reply. A job deferred halfway (its repair turn still to come) gives
its first reply back with :meth:`release`, to be served and paid in the record of the pass that
finishes the job.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace

from lmad.llm.base import Reply, TransientError
from lmad.llm.batch import ItemResult
from lmad.llm.config import ModelConfig
from lmad.llm.messages import ChatRequest

MAX_TRIES = 3
"""Batches a request may come back unanswered from (expired, 429, 5xx) before it is a failure."""


class Deferred(Exception):
    """A request left for the next batch: its job is not logged now (it is not a failure)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"request {key[:12]} goes in the next batch")
        self.key = key


class BatchItemFailed(TransientError):
    """A batch could not answer a request (HTTP 400, or unanswered by :data:`MAX_TRIES` batches):
    its job becomes a failed record, as a live request that still fails after its retries."""


@dataclass(frozen=True)
class Stored:
    """One batch's result for one request; ``batch`` is the batch's place in the run's order."""

    batch: int
    result: ItemResult


@dataclass(frozen=True)
class Settled:
    """A result a logged job used: ``reply`` None for a failure."""

    key: str
    batch: int
    reply: Reply | None


class BatchSession:
    """The replies of a run's finished batches, and the requests it has still to send."""

    def __init__(
        self,
        config: ModelConfig,
        results: Iterable[tuple[int, dict[str, ItemResult]]] = (),
        consumed: dict[str, int] | None = None,
    ) -> None:
        """``results``: (batch order, results by key) of every finished batch, oldest first;
        ``consumed``: the latest batch whose result for a key a logged job has used."""
        self.config = config
        self.factor = 1.0 - (config.batch_cut or 0.0)
        self.results: dict[str, list[Stored]] = {}
        for batch, items in results:
            for key, result in items.items():
                self.results.setdefault(key, []).append(Stored(batch, result))
        self.consumed = dict(consumed or {})
        self.pending: dict[str, ChatRequest] = {}
        self._served: dict[str, list] = {}  # key -> [jobs using it, batch, reply or None]
        self._lock = threading.Lock()

    def serve(self, key: str) -> Reply | None:
        """A batch's reply to ``key`` not yet used by a logged job (the latest), or None.

        Raises :class:`BatchItemFailed` when its latest result cannot be fixed by asking again, or
        when :data:`MAX_TRIES` batches came back without an answer.
        """
        with self._lock:
            done = self.consumed.get(key, -1)
            fresh = [s for s in self.results.get(key, ()) if s.batch > done]
            answered = [s for s in fresh if s.result.reply is not None]
            if answered:
                stored = answered[-1]
                reply = self._priced(key, stored.result.reply)
                self._serve(key, stored.batch, reply)
                return reply
            if not fresh or not (fresh[-1].result.fatal or len(fresh) >= MAX_TRIES):
                return None
            last = fresh[-1]
            self._serve(key, last.batch, None)
        tries = "" if last.result.fatal else f"unanswered by {len(fresh)} batches, last: "
        raise BatchItemFailed(f"{self.config.name}: {tries}{last.result.error}")

    def _serve(self, key: str, batch: int, reply: Reply | None) -> None:
        entry = self._served.setdefault(key, [0, batch, reply])
        entry[0] += 1

    def _priced(self, key: str, reply: Reply) -> Reply:
        usage = reply.usage
        cost = self.config.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
        return replace(
            reply, cost_usd=cost * self.factor, cached=False, request_hash=key, attempts=1
        )

    def defer(self, key: str, request: ChatRequest) -> None:
        """Note ``request`` for the next batch and raise :class:`Deferred`."""
        with self._lock:
            self.pending.setdefault(key, request)
        raise Deferred(key)

    def release(self, key: str) -> None:
        """A job that used ``key``'s reply was deferred after all: it is served again next time."""
        with self._lock:
            entry = self._served.get(key)
            if entry is not None:
                entry[0] -= 1

    def settle(self) -> list[Settled]:
        """The results logged jobs used since the last call, now marked consumed."""
        with self._lock:
            out = []
            for key, (jobs, batch, reply) in self._served.items():
                if jobs > 0:
                    self.consumed[key] = max(batch, self.consumed.get(key, -1))
                    out.append(Settled(key, batch, reply))
            self._served.clear()
            return out

    def take_pending(self) -> dict[str, ChatRequest]:
        """The requests deferred since the last call (and forget them)."""
        with self._lock:
            pending, self.pending = self.pending, {}
            return pending
