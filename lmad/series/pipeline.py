"""TAMA end to end for one dataset and one LLM: reference learning, analysis, self-reflection.

For every series and channel, ``normal_reference`` anomaly-free train windows are shown and the model
describes the normal pattern; that description stays in the conversation of every test window, which
the model analyses; windows where it found anomalies get a self-reflection turn with two zoomed views.

Every answer is appended to the run log as it arrives, and :class:`~lmad.series.run_state.RunState`
decides what is still to ask. A window is only sent once its reference has been answered: while the
reference of its (series, channel) has failed, the window is logged as blocked and asked by the next
run. Each analysis record names the reference it was conditioned on, each reflection the analysis it
re-checks, so a replaced reference makes its windows stale and they are asked again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lmad.errors import ConfigError
from lmad.llm.base import TransientError
from lmad.llm.client import JSONResult, LLMClient
from lmad.llm.cost import Estimate
from lmad.llm.messages import GenerationParams
from lmad.series.answers import parse_answer, parse_reference, repair_prompt
from lmad.series.datasets import check_series_id
from lmad.series.preflight import check_log_fits, check_window_files
from lmad.series.prepare import processed_root
from lmad.series.processed import (
    ProcessedSplit,
    choose_references,
    load_split,
    make_dataset_hint,
    normal_windows,
    processed_series_ids,
)
from lmad.series.prompts import PromptBuilder
from lmad.series.records import record_key, record_status
from lmad.series.render import render_zoom_views
from lmad.series.run_state import Plan, RunState, RunSummary
from lmad.series.runlog import RunLog, run_log_path

log = logging.getLogger(__name__)
REFERENCE_REPAIR = 'Answer again with only this JSON object: {"normal_pattern": "<description>"}'
ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}


@dataclass
class RunOptions:
    dataset: str
    llm: str
    ids: list[str] | None = None
    modality: str = "image"
    normal_reference: int = 3
    double_check: bool = True
    subtask: str = "detection"
    data_dir: str | Path = "data"
    run_name: str = ""
    limit: int | None = None
    seed: int = 42

    def check(self) -> None:
        """Refuse values that would silently do something else than asked."""
        if self.normal_reference < 0:
            raise ConfigError(f"--normal_reference must be 0 or more, not {self.normal_reference}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(
                f"--limit must be at least 1 (leave it out for all), not {self.limit}"
            )
        if self.modality not in ("image", "text"):
            raise ConfigError(f"unknown modality {self.modality!r}; use image or text")
        for series in self.ids or []:  # --subtask and --run_name: processed_root, run_log_path
            check_series_id(series)


@dataclass
class SeriesWork:
    series: str
    test: ProcessedSplit
    train: ProcessedSplit | None
    builder: PromptBuilder


class TamaRun:
    """One run: the work list, the log, and the client that answers."""

    def __init__(
        self, options: RunOptions, client: LLMClient, params: GenerationParams | None = None
    ) -> None:
        options.check()
        if options.modality == "image" and not client.config.images:
            raise ConfigError(
                f"--LLM {client.name} takes no images; use main_cli_text.py (text modality)"
            )
        self.options = options
        self.client = client
        self.params = params or GenerationParams()
        self._histories: dict[tuple, tuple] = {}
        self._lock = threading.Lock()
        root = processed_root(options.data_dir, options.dataset, options.subtask)
        ids = options.ids or processed_series_ids(
            root, options.dataset, options.modality, options.subtask
        )
        self.work = [self._load(root, series) for series in ids]
        first = self.work[0].test.meta
        self.log = RunLog(
            run_log_path(
                options.data_dir,
                options.subtask,
                first["dataset"],
                client.name,
                options.run_name,
                options.modality,
            )
        )
        check_log_fits(self.log, self.work, options)
        self._check_files()

    def _load(self, root: Path, series: str) -> SeriesWork:
        o = self.options
        test = load_split(root, o.dataset, series, "test", o.modality, o.subtask)
        train = None
        if o.normal_reference > 0:
            train = load_split(root, o.dataset, series, "train", o.modality, o.subtask)
            available = len(normal_windows(train))
            if 0 < available < o.normal_reference:
                log.warning(
                    "series %s: --normal_reference %d but the train split has only %d "
                    "anomaly-free window(s); showing %d",
                    series, o.normal_reference, available, available,
                )  # fmt: skip
        meta = test.meta
        image = meta["modalities"].get("image", {})
        form = meta["modalities"].get("text", {}).get("form", "tama")
        builder = PromptBuilder(
            o.modality, meta["window_size"], image.get("x_ticks"), form, self.params
        )
        return SeriesWork(series, test, train, builder)

    def _check_files(self) -> None:
        """Every image the run will send exists and is whole, before anything is sent."""
        o = self.options
        by_series: dict[str, set] = {}
        for item, window, channel in self.analysis_tasks():
            by_series.setdefault(item.series, set()).add((window, channel))
        for item in self.work:
            pairs = sorted(by_series.get(item.series, ()))
            hint = make_dataset_hint(o.dataset, "test", o.modality, o.subtask)
            check_window_files(item.test.folder, o.modality, pairs, hint)
            if item.train is not None:
                channels = sorted({c for _, c in pairs})
                chosen = [(w, c) for c in channels for w in self._reference_windows(item, c)]
                hint = make_dataset_hint(o.dataset, "train", o.modality, o.subtask)
                check_window_files(item.train.folder, o.modality, chosen, hint)

    # -- the work ------------------------------------------------------------------------------
    def analysis_tasks(self) -> list[tuple[SeriesWork, int, int]]:
        tasks = [
            (item, window, channel)
            for item in self.work
            for window in range(item.test.windows.shape[0])
            for channel in range(item.test.windows.shape[2])
        ]
        return tasks[: self.options.limit] if self.options.limit else tasks

    def plan(self) -> Plan:
        windows = tuple((item.series, w, c) for item, w, c in self.analysis_tasks())
        references = ()
        if self.options.normal_reference > 0:
            references = tuple(dict.fromkeys((s, c) for s, _, c in windows))
        return Plan(references, windows, self.options.double_check)

    def state(self) -> RunState:
        return RunState.resolve(self.log.records, self.plan())

    # -- building requests ---------------------------------------------------------------------
    def _part(self, split: ProcessedSplit, builder: PromptBuilder, window: int, channel: int):
        values = split.windows[window, :, channel]
        png = split.png(window, channel) if builder.modality == "image" else None
        return builder.window_part(values, png)

    def _reference_windows(self, item: SeriesWork, channel: int) -> list[int]:
        if item.train is None:
            return []
        o = self.options
        return choose_references(item.train, o.normal_reference, o.seed, item.series, channel)

    def reference_parts(self, item: SeriesWork, channel: int) -> list:
        return [
            self._part(item.train, item.builder, w, channel)
            for w in self._reference_windows(item, channel)
        ]

    def history(self, item: SeriesWork, channel: int, reference: dict | None) -> tuple:
        """The conversation every window of (series, channel) starts from, built once.

        ``reference`` is the answered reference record (None when the run shows no references).
        """
        key = (item.series, channel, reference and reference.get("request_hash"))
        with self._lock:
            if key not in self._histories:
                parts = self.reference_parts(item, channel) if reference else []
                description = reference["answer"]["normal_pattern"] if reference else None
                self._histories[key] = item.builder.history(parts, description)
            return self._histories[key]

    def analysis_request(self, item: SeriesWork, window: int, channel: int, reference):
        part = self._part(item.test, item.builder, window, channel)
        return item.builder.analysis_request(self.history(item, channel, reference), part)

    # -- records -------------------------------------------------------------------------------
    def _base(self, item: SeriesWork, window: int | None, channel: int, stage: str) -> dict:
        meta = item.test.meta
        return {
            "dataset": meta["dataset"], "series": item.series, "window": window,
            "channel": channel, "stage": stage, "llm": self.client.name,
            "subtask": self.options.subtask, "modality": self.options.modality,
            "window_size": meta["window_size"], "stride": meta["stride"],
            "start": None if window is None else meta["starts"][window],
            "references": self.options.normal_reference,
            "double_check": self.options.double_check,
        }  # fmt: skip

    def _record(self, base: dict, result: JSONResult, answer: dict | None) -> dict:
        return {
            **base,
            "status": "answered" if result.ok else "failed",
            "request_hash": result.request_hash,
            "answer": answer if result.ok else None,
            "raw": result.raw,
            "usage": {
                "prompt_tokens": result.usage.prompt_tokens,
                "completion_tokens": result.usage.completion_tokens,
                "cost_usd": round(result.cost_usd, 8),
            },
            "error": result.error,
            "repaired": result.repaired,
            "cached": all(r.cached for r in result.replies),
        }

    # -- the three stages ----------------------------------------------------------------------
    def run_reference(self, job: tuple, refresh: bool) -> dict:
        item, channel = job
        request = item.builder.reference_request(self.reference_parts(item, channel))
        result = self.client.complete_json(
            request, parse_reference, lambda e: REFERENCE_REPAIR, refresh
        )
        answer = {"normal_pattern": result.value} if result.ok else None
        return self._record(self._base(item, None, channel, "reference"), result, answer)

    def run_analysis(self, job: tuple, refresh: bool) -> dict:
        item, window, channel, reference = job
        size = item.test.meta["window_size"]
        result = self.client.complete_json(
            self.analysis_request(item, window, channel, reference),
            lambda text: parse_answer(text, size),
            lambda error: repair_prompt(error, size),
            refresh,
        )
        answer = result.value.to_dict() if result.ok else None
        record = self._record(self._base(item, window, channel, "analysis"), result, answer)
        record.update(links("analysis", job))
        if result.ok:
            record["warnings"] = result.value.warnings
        return record

    def run_reflection(self, job: tuple, refresh: bool) -> dict:
        item, window, channel, reference, first = job
        size = item.test.meta["window_size"]
        values = item.test.windows[window, :, channel]
        zooms = render_zoom_views(values) if item.builder.modality == "image" else []
        request = item.builder.reflection_request(
            self.analysis_request(item, window, channel, reference), first["answer"], values, zooms
        )
        result = self.client.complete_json(
            request,
            lambda text: parse_answer(text, size),
            lambda e: repair_prompt(e, size),
            refresh,
        )
        answer = result.value.to_dict() if result.ok else None
        record = self._record(self._base(item, window, channel, "reflection"), result, answer)
        record.update(links("reflection", job))
        return record

    # -- execution -----------------------------------------------------------------------------
    def execute(self, show_progress: bool = True) -> RunSummary:
        """Ask everything the log does not have yet; the summary counts from the log afterwards."""
        summary = RunSummary(self.log.path)
        items = {item.series: item for item in self.work}
        state = self.state()
        refs = [(items[s], c) for s, c in state.keys_with("reference", "missing", "failed")]
        self._stage("reference", refs, lambda j: (j[0].series, None, j[1]), self.run_reference,
                    summary, show_progress)  # fmt: skip
        state = self.state()
        self._log_blocked(state, items)
        analysis = [
            (items[s], w, c, state.reference_of(s, c).record)
            for s, w, c in state.keys_with("analysis", "missing", "failed")
        ]
        self._stage("analysis", analysis, lambda j: (j[0].series, j[1], j[2]), self.run_analysis,
                    summary, show_progress)  # fmt: skip
        state = self.state()
        reflect = [
            (items[s], w, c, state.reference_of(s, c).record, state.analyses[(s, w, c)].record)
            for s, w, c in state.keys_with("reflection", "missing", "failed")
        ]
        self._stage("reflection", reflect, lambda j: (j[0].series, j[1], j[2]),
                    self.run_reflection, summary, show_progress)  # fmt: skip
        state = self.state()
        summary.counts = state.counts()
        summary.problems = state.problems()
        summary.incomplete = state.incomplete_line()
        return summary

    def _log_blocked(self, state: RunState, items: dict[str, SeriesWork]) -> None:
        """A blocked record for each window whose reference failed (once per failed reference)."""
        latest = {record_key(r): r for r in self.log.records}
        for series, window, channel in state.keys_with("analysis", "blocked"):
            reference = state.reference_of(series, channel).record or {}
            previous = latest.get((series, window, channel, "analysis"), {})
            if previous.get("status") == "blocked" and previous.get(
                "reference_hash"
            ) == reference.get("request_hash"):
                continue
            base = self._base(items[series], window, channel, "analysis")
            self.log.append({
                **base, "status": "blocked", "request_hash": None,
                "reference_hash": reference.get("request_hash"), "answer": None, "raw": None,
                "usage": dict(ZERO_USAGE),
                "error": f"not asked: the reference of series {series} channel {channel} failed",
            })  # fmt: skip

    def _stage(self, stage, jobs, key, run, summary: RunSummary, show_progress: bool) -> None:
        if not jobs:
            return
        tried = {
            record_key(r)[:3] for r in self.log.records
            if r["stage"] == stage and record_status(r) == "failed"
        }  # fmt: skip
        bar = tqdm(total=len(jobs), desc=stage, unit="req", disable=not show_progress)
        failed = 0

        def work(job: Any) -> dict:
            try:
                return run(job, key(job) in tried)
            except TransientError as exc:
                _, window, channel = key(job)
                base = self._base(job[0], window, channel, stage)
                return {**base, "status": "failed", "request_hash": None, "answer": None,
                        "raw": None, "usage": dict(ZERO_USAGE), "error": str(exc),
                        **links(stage, job)}  # fmt: skip

        with bar:  # closed on errors too, so an error line starts a line of its own
            for _, record in self.client.map(work, jobs):
                if isinstance(record, Exception):
                    raise record
                self.log.append(record)
                if record["status"] == "answered":
                    summary.new[stage] += 1
                else:
                    failed += 1
                bar.update(1)
                bar.set_postfix(failed=failed, usd=f"{self.client.meter.cost_usd:.4f}")

    def estimate(self) -> Estimate:
        """Tokens and dollars of the reference and analysis requests still to do (not sent).

        The reference description is not known before the run; a 400-word placeholder stands in.
        Reflection requests, sent only for windows with anomalies, are not included.
        """
        state, requests = self.state(), []
        items = {item.series: item for item in self.work}
        for series, channel in state.keys_with("reference", "missing", "failed"):
            item = items[series]
            requests.append(item.builder.reference_request(self.reference_parts(item, channel)))
        placeholder = {"request_hash": "estimate", "answer": {"normal_pattern": "word " * 400}}
        for series, window, channel in state.keys_with("analysis", "missing", "failed", "blocked"):
            reference = placeholder if self.options.normal_reference > 0 else None
            requests.append(self.analysis_request(items[series], window, channel, reference))
        return self.client.estimate(requests)


def links(stage: str, job: tuple) -> dict[str, str | None]:
    """The records an analysis or reflection job was conditioned on, by request hash."""
    if stage == "reference":
        return {}
    reference = job[3]
    out = {"reference_hash": reference.get("request_hash") if reference else None}
    if stage == "reflection":
        out["analysis_hash"] = job[4].get("request_hash")
    return out
