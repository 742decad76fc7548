"""Batch mode of a TAMA run (``main_cli.py --batch``): the requests go through the provider's Batch
API (:mod:`lmad.llm.batch`: half price, no per-minute limit, answers within 24 hours).

Each pass polls the run's batches, downloads those that finished, and runs the pipeline as a live
run does, with a :class:`~lmad.llm.batch_session.BatchSession` set on the client: a batch's reply
answers its request, goes through the same validation and is appended to the same run log (priced
at the batch price and cached like a live reply); a request with no answer yet is deferred, and the
deferred requests not already in a batch are written as a JSONL file, uploaded and submitted as the
next batch. The stages keep their order: a window is asked once its reference came back, a
reflection once its analysis did, and a repair turn in the batch after the reply it repairs.

State is kept next to the run log ``<log>.jsonl``: ``<log>.batch.json`` lists every batch (its id,
input file, the request keys in it, status, and which results a logged job has used), and
``<log>.batch/`` holds the input file of a batch in flight and the output and error files of
finished ones. A batch is recorded before and after it is submitted, so a command stopped at any
point and run again polls the batches it finds instead of submitting their requests again.

Requests of an expired or cancelled batch that were not answered, and items that failed with a
status a retry can fix, go in the next batch (at most :data:`~lmad.llm.batch_session.MAX_TRIES`
times); an item refused with a 4xx becomes a failed record, as a live one does. A batch the provider
rejects as a whole (``failed``, e.g. over its enqueued-token limit) stops the run with its reason.

Exit codes of ``main_cli.py --batch``: 0 every answer is there; 1 some answers failed (rerun to ask
them again); :data:`IN_FLIGHT` (3) batches are still in flight when ``--batch_wait`` ran out; 2 bad
input; 130 interrupted (the batches keep running; rerun to poll them).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmad.errors import ConfigError, DataError
from lmad.io import atomic_write_json, atomic_write_text
from lmad.llm.batch import (
    BatchAPI,
    BatchError,
    ItemResult,
    batch_body,
    batch_line,
    batch_url,
    check_batch_model,
    chunk_lines,
    parse_results,
)
from lmad.llm.batch_session import BatchSession
from lmad.llm.client import LLMClient
from lmad.llm.config import resolve_model
from lmad.series.analyzers import OFFLINE
from lmad.series.pipeline import TamaRun
from lmad.series.records import record_key
from lmad.series.run_state import RunSummary

log = logging.getLogger(__name__)
IN_FLIGHT = 3
"""Exit code of ``main_cli.py --batch`` while batches are still in flight: run it again to poll."""


def check_batch_llm(name: str, models_path: str | Path) -> None:
    """A one-line :class:`ConfigError` unless ``--LLM name`` can go through a Batch API."""
    if name == OFFLINE:
        raise ConfigError(
            "--batch sends requests through a provider's Batch API; --LLM offline sends none"
        )
    check_batch_model(resolve_model(name, models_path))


def item_of(record: dict[str, Any]) -> tuple:
    """``(stage, *key)`` of a record, as :attr:`TamaRun.hold` holds it (a reference has no
    window)."""
    series, window, channel, stage = record_key(record)
    return (stage, series, channel) if stage == "reference" else (stage, series, window, channel)


def state_paths(log_path: Path) -> tuple[Path, Path]:
    """The batch state file and folder of the run log ``log_path``."""
    return log_path.with_suffix(".batch.json"), log_path.with_suffix(".batch")


class BatchState:
    """``<log>.batch.json``: the run's batches, oldest first (each a JSON object)."""

    def __init__(self, path: Path, client: LLMClient) -> None:
        self.path = path
        self.batches: list[dict[str, Any]] = []
        owner = {"llm": client.name, "provider": client.config.provider}
        if path.exists():
            try:
                data = json.loads(path.read_text())
                self.batches = list(data["batches"])
                found = {k: data[k] for k in owner}
            except (OSError, ValueError, KeyError, TypeError):
                raise DataError(
                    f"{path}: not a batch state file; move it away to start the batches over "
                    "(batches it lists are then not polled)"
                ) from None
            if found != owner:
                raise ConfigError(
                    f"{path} lists batches of --LLM {found['llm']} ({found['provider']}), not "
                    f"{client.name}; use another --run_name"
                )
        self.owner = owner

    def save(self) -> None:
        atomic_write_json(self.path, {**self.owner, "batches": self.batches})

    def unfinished(self) -> list[dict[str, Any]]:
        return [b for b in self.batches if not b["finished"]]


@dataclass
class BatchOutcome:
    """What a batch-mode command did, for its summary and exit code."""

    summary: RunSummary
    state_path: Path
    cut: float
    answered: int = 0
    cost_usd: float = 0.0
    submitted: list[dict[str, Any]] = field(default_factory=list)
    in_flight: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.in_flight:
            return IN_FLIGHT
        return 0 if self.summary.complete else 1

    def lines(self) -> list[str]:
        sent = sum(b["requests"] for b in self.submitted)
        return [
            f"batch: {_plural(self.answered, 'request')} answered by batch, ${self.cost_usd:.4f} "
            f"at the batch price ({self.cut:.0%} off); {_plural(sent, 'request')} submitted in "
            f"{_plural(len(self.submitted), 'batch', 'batches')}; state: {self.state_path}"
        ]

    def in_flight_line(self) -> str | None:
        """The message when batches are still in flight, or None."""
        if not self.in_flight:
            return None
        shown = "; ".join(describe(b) for b in self.in_flight)
        return (
            f"still in flight: {shown}; rerun the same command to poll (nothing is submitted twice)"
        )


def _plural(n: int, noun: str, nouns: str | None = None) -> str:
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def describe(batch: dict[str, Any]) -> str:
    """``batch_abc (5 requests: 2 repair, 3 reflection): in_progress, 2 done``."""
    tasks = ", ".join(f"{n} {task}" for task, n in sorted(batch["tasks"].items()))
    done = (batch.get("counts") or {}).get("completed")
    shown = f", {done} done" if done is not None else ""
    name = batch["id"] or batch["input_file_id"]
    return f"{name} ({_plural(batch['requests'], 'request')}: {tasks}): {batch['status']}{shown}"


class BatchRun:
    """Drives a :class:`TamaRun` through the Batch API of its analyzer's client."""

    def __init__(
        self,
        run: TamaRun,
        client: LLMClient,
        api: BatchAPI | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run = run
        self.client = client
        self.api = api or BatchAPI(client)
        self.sleep = sleep
        self.clock = clock
        path, self.folder = state_paths(run.log.path)
        self.state = BatchState(path, client)
        self.cut = client.config.batch_cut or 0.0
        self._start = len(run.log.records)
        self._parsed: dict[int, dict[str, ItemResult]] = {}
        self.outcome = BatchOutcome(RunSummary(run.log.path), path, self.cut)

    # -- one pass ------------------------------------------------------------------------------
    def step(self) -> None:
        """Poll, collect what came back, run the pipeline on it, submit what is still to ask."""
        self._recover()
        self._poll()
        session = BatchSession(self.client.config, self._results(), self._consumed())
        self.client.batch = session
        try:
            summary = self.run.execute(show_progress=False)
        finally:
            self.client.batch = None
        for settled in session.settle():
            self.state.batches[settled.batch].setdefault("used", []).append(settled.key)
            if settled.reply is None:
                self.client.meter.add_failure()
                continue
            self.client.meter.add(settled.reply)
            self.outcome.answered += 1
            self.outcome.cost_usd += settled.reply.cost_usd
        self.state.save()
        self.outcome.summary.new.update(summary.new)
        summary.new = self.outcome.summary.new
        self.outcome.summary = summary
        new_records = self.run.log.records[self._start :]
        self.run.hold |= {item_of(r) for r in new_records if r.get("status") == "failed"}
        flying = {key for b in self.state.unfinished() for key in b["keys"]}
        pending = {k: r for k, r in session.take_pending().items() if k not in flying}
        if pending:
            self._submit(pending)

    def wait(self, limit: float | None, poll: float) -> BatchOutcome:
        """Passes until nothing is in flight, or ``limit`` seconds (None: no limit) would pass
        before the next poll, ``poll`` seconds apart."""
        start = self.clock()
        while True:
            self.step()
            if not self.state.unfinished():
                break
            if limit is not None and self.clock() - start + poll > limit:
                break
            self.sleep(poll)
        self.outcome.in_flight = self.state.unfinished()
        return self.outcome

    # -- the provider --------------------------------------------------------------------------
    def _recover(self) -> None:
        """A batch recorded without its id (stopped while submitting): find it, else submit it."""
        for batch in self.state.unfinished():
            if batch["id"] is not None:
                continue
            info = self.api.find(batch["input_file_id"]) or self.api.submit(batch["input_file_id"])
            batch.update(id=info.id, status=info.status)
            self.state.save()

    def _poll(self) -> None:
        for batch in self.state.unfinished():
            info = self.api.retrieve(batch["id"])
            counts = {"total": info.total, "completed": info.completed, "failed": info.failed}
            if (info.status, counts) != (batch["status"], batch.get("counts")):
                batch.update(status=info.status, counts=counts)
                log.info("batch %s", describe(batch))
            if not info.finished:
                continue
            for kind, file_id in (("output", info.output_file_id), ("errors", info.error_file_id)):
                if file_id:
                    name = f"{batch['id']}.{kind}.jsonl"
                    atomic_write_text(self.folder / name, self.api.content(file_id))
                    batch[kind] = name
            batch["finished"] = True
            (self.folder / batch["input"]).unlink(missing_ok=True)
            self.state.save()
            if info.status == "failed":
                raise BatchError(
                    f"batch {info.id} was rejected by {self.client.config.provider}: "
                    f"{info.errors or 'no reason given'}; none of its {batch['requests']} requests "
                    "was answered; the next run submits them again"
                )

    def _submit(self, pending: dict[str, Any]) -> None:
        """Write, upload and submit ``pending`` (key -> request) as one or more batches."""
        config, url = self.client.config, batch_url(self.client.config)
        lines = [(k, batch_line(k, url, batch_body(config, r))) for k, r in pending.items()]
        for chunk in chunk_lines(lines):
            keys = [key for key, _ in chunk]
            name = f"{len(self.state.batches)}.input.jsonl"
            data = "".join(line for _, line in chunk)
            atomic_write_text(self.folder / name, data)
            file_id = self.api.upload(data.encode("utf-8"), name)
            batch = {
                "id": None, "input_file_id": file_id, "input": name, "requests": len(keys),
                "tasks": dict(Counter(pending[k].task for k in keys)), "keys": keys,
                "status": "submitting", "finished": False, "used": [],
                "submitted": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }  # fmt: skip
            self.state.batches.append(batch)
            self.state.save()  # recorded before it exists: a rerun finds it, never submits twice
            info = self.api.submit(file_id)
            batch.update(id=info.id, status=info.status)
            self.state.save()
            self.outcome.submitted.append(batch)
            log.info("submitted batch %s", describe(batch))

    # -- what came back ------------------------------------------------------------------------
    def _results(self) -> list[tuple[int, dict[str, ItemResult]]]:
        """Results of every finished batch, by key; a key a batch left out is unanswered."""
        out = []
        for index, batch in enumerate(self.state.batches):
            if not batch["finished"]:
                continue
            if index not in self._parsed:
                where = f"{self.client.name}: batch {batch['id']}"
                results: dict[str, ItemResult] = {}
                for kind in ("output", "errors"):
                    if batch.get(kind):
                        text = (self.folder / batch[kind]).read_text(encoding="utf-8")
                        results.update(parse_results(text, where))
                missing = ItemResult(error=f"{where} ({batch['status']}) did not answer it")
                self._parsed[index] = {k: results.get(k, missing) for k in batch["keys"]}
            out.append((index, self._parsed[index]))
        return out

    def _consumed(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for index, batch in enumerate(self.state.batches):
            for key in batch.get("used", ()):
                out[key] = index
        return out
