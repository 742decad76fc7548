"""Retries with exponential backoff and jitter, and a client-side limiter of requests and tokens.

Backoff follows the "full jitter" scheme (Brooker, AWS Architecture Blog, 2015): attempt ``k`` waits a
uniform random time in ``[0, min(max_delay, base * 2**k)]``; a server's ``Retry-After`` is honoured
(waited at least, plus a little jitter so that workers do not return in lockstep).

A server that has never answered is different: when a client's first connections are all refused or
time out, retrying for minutes only hides a wrong address or a server that is not running, so the
client gives up ``connect_deadline`` seconds after its first attempt (see
:class:`lmad.llm.client.LLMUnreachable`). Once anything has been answered, connection faults follow
the normal policy, so a server that restarts mid-run does not end the run.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; ``connect_deadline=None`` retries a dead server as usual."""

    max_retries: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    connect_deadline: float | None = 15.0

    def delay(self, attempt: int, retry_after: float | None = None, rng=random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None and retry_after >= 0:
            return retry_after + rng.uniform(0, min(1.0, 0.1 * retry_after + 0.05))
        cap = min(self.max_delay, self.base_delay * 2**attempt)
        return rng.uniform(0, cap)


class RateLimiter:
    """Keeps requests and tokens within per-minute budgets over a sliding 60-second window.

    :meth:`acquire` blocks until one more request of ``tokens`` fits; :meth:`settle` replaces the
    estimate with the tokens the provider reported. Thread-safe. A request larger than the whole
    token budget is let through alone once the window is empty, rather than blocking forever.
    """

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        window: float = 60.0,
    ) -> None:
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self.clock = clock
        self.sleep = sleep
        self.window = window
        self._events: deque[list] = deque()
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        while self._events and now - self._events[0][0] >= self.window:
            self._events.popleft()

    def _wait_time(self, now: float, tokens: int) -> float:
        self._prune(now)
        waits = [0.0]
        if self.rpm and len(self._events) >= self.rpm:
            waits.append(self._events[0][0] + self.window - now)
        if self.tpm and self._events:
            used = sum(e[1] for e in self._events)
            if used + tokens > self.tpm:
                freed, index = used, 0
                while index < len(self._events) and freed + tokens > self.tpm:
                    freed -= self._events[index][1]
                    index += 1
                waits.append(self._events[index - 1][0] + self.window - now)
        return max(waits)

    def acquire(self, tokens: int = 0) -> list:
        """Wait until a request of ``tokens`` fits; returns a handle for :meth:`settle`."""
        if not self.rpm and not self.tpm:
            return [self.clock(), tokens]
        while True:
            with self._lock:
                now = self.clock()
                wait = self._wait_time(now, tokens)
                if wait <= 0:
                    event = [now, tokens]
                    self._events.append(event)
                    return event
            self.sleep(min(wait, self.window))

    def settle(self, handle: list, actual_tokens: int) -> None:
        with self._lock:
            handle[1] = actual_tokens
