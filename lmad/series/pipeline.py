"""TAMA end to end for one dataset and one LLM: reference learning, analysis, self-reflection.

For every series and channel, ``normal_reference`` anomaly-free train windows are shown and the model
describes the normal pattern; that description stays in the conversation of every test window, which
the model analyses; windows where it found anomalies get a self-reflection turn with two zoomed views.
Every answer is appended to the run log as it arrives; a rerun skips what is done.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lmad.errors import ConfigError
from lmad.llm.base import TransientError
from lmad.llm.client import JSONResult, LLMClient
from lmad.llm.cost import Estimate
from lmad.llm.messages import GenerationParams
from lmad.series.answers import parse_answer, parse_reference, repair_prompt
from lmad.series.prepare import processed_root
from lmad.series.processed import (
    ProcessedSplit,
    choose_references,
    load_split,
    processed_series_ids,
)
from lmad.series.prompts import PromptBuilder
from lmad.series.render import render_zoom_views
from lmad.series.runlog import RunLog, record_key, run_log_path

log = logging.getLogger(__name__)
REFERENCE_REPAIR = 'Answer again with only this JSON object: {"normal_pattern": "<description>"}'


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


@dataclass
class RunSummary:
    log_path: Path
    done: int = 0
    skipped: int = 0
    failed: int = 0
    estimate: Estimate | None = None
    failures: list[str] = field(default_factory=list)


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
        if options.modality == "image" and not client.config.images:
            raise ConfigError(
                f"--LLM {client.name} takes no images; use main_cli_text.py (text modality)"
            )
        self.options = options
        self.client = client
        self.params = params or GenerationParams()
        self._histories: dict[tuple[str, int], tuple] = {}
        self._lock = threading.Lock()
        root = processed_root(options.data_dir, options.dataset, options.subtask)
        ids = options.ids or processed_series_ids(
            root, options.dataset, options.modality, options.subtask
        )
        self.work = [self._load(root, series) for series in ids]
        first = self.work[0].test.meta
        self.log = RunLog(
            run_log_path(
                options.data_dir, options.subtask, first["dataset"], client.name, options.run_name
            )
        )
        for item in self.work:
            meta = item.test.meta
            self.log.check_matches(meta["window_size"], meta["stride"], str(item.test.folder))

    def _load(self, root: Path, series: str) -> SeriesWork:
        o = self.options
        test = load_split(root, o.dataset, series, "test", o.modality, o.subtask)
        train = None
        if o.normal_reference > 0:
            train = load_split(root, o.dataset, series, "train", o.modality, o.subtask)
        meta = test.meta
        image = meta["modalities"].get("image", {})
        form = meta["modalities"].get("text", {}).get("form", "tama")
        builder = PromptBuilder(
            o.modality, meta["window_size"], image.get("x_ticks"), form, self.params
        )
        return SeriesWork(series, test, train, builder)

    # -- building requests ---------------------------------------------------------------------
    def _part(self, split: ProcessedSplit, builder: PromptBuilder, window: int, channel: int):
        values = split.windows[window, :, channel]
        png = split.png(window, channel) if builder.modality == "image" else None
        return builder.window_part(values, png)

    def reference_parts(self, item: SeriesWork, channel: int) -> list:
        if item.train is None:
            return []
        chosen = choose_references(
            item.train, self.options.normal_reference, self.options.seed, item.series, channel
        )
        return [self._part(item.train, item.builder, w, channel) for w in chosen]

    def analysis_tasks(self) -> list[tuple[SeriesWork, int, int]]:
        tasks = [
            (item, window, channel)
            for item in self.work
            for window in range(item.test.windows.shape[0])
            for channel in range(item.test.windows.shape[2])
        ]
        return tasks[: self.options.limit] if self.options.limit else tasks

    def _base(self, item: SeriesWork, window: int | None, channel: int, stage: str) -> dict:
        meta = item.test.meta
        return {
            "dataset": meta["dataset"], "series": item.series, "window": window,
            "channel": channel, "stage": stage, "llm": self.client.name,
            "subtask": self.options.subtask, "modality": self.options.modality,
            "window_size": meta["window_size"], "stride": meta["stride"],
            "start": None if window is None else meta["starts"][window],
            "references": self.options.normal_reference,
        }  # fmt: skip

    def _record(self, base: dict, result: JSONResult, answer: dict | None) -> dict:
        return {
            **base,
            "request_hash": result.request_hash,
            "answer": answer,
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
    def run_reference(self, job: tuple[SeriesWork, int], refresh: bool) -> dict:
        item, channel = job
        request = item.builder.reference_request(self.reference_parts(item, channel))
        result = self.client.complete_json(
            request, parse_reference, lambda e: REFERENCE_REPAIR, refresh
        )
        answer = {"normal_pattern": result.value} if result.ok else None
        return self._record(self._base(item, None, channel, "reference"), result, answer)

    def history(self, item: SeriesWork, channel: int) -> tuple:
        """The conversation every window of (series, channel) starts from, built once.

        Built after the reference stage has run, so its answer is in the log.
        """
        key = (item.series, channel)
        with self._lock:
            if key not in self._histories:
                self._histories[key] = self._build_history(item, channel)
            return self._histories[key]

    def _build_history(self, item: SeriesWork, channel: int) -> tuple:
        parts = self.reference_parts(item, channel)
        if not parts:
            return item.builder.history([], None)
        done = self.log.done().get((item.series, None, channel, "reference"))
        description = done["answer"]["normal_pattern"] if done else None
        if description is None:
            failed = [
                r
                for r in self.log.records
                if record_key(r) == (item.series, None, channel, "reference")
            ]
            description = failed[-1]["raw"] if failed else ""
        return item.builder.history(parts, description)

    def analysis_request(self, item: SeriesWork, window: int, channel: int):
        part = self._part(item.test, item.builder, window, channel)
        return item.builder.analysis_request(self.history(item, channel), part)

    def run_analysis(self, job: tuple[SeriesWork, int, int], refresh: bool) -> dict:
        item, window, channel = job
        size = item.test.meta["window_size"]
        result = self.client.complete_json(
            self.analysis_request(item, window, channel),
            lambda text: parse_answer(text, size),
            lambda error: repair_prompt(error, size),
            refresh,
        )
        record = self._record(self._base(item, window, channel, "analysis"), result, None)
        if result.ok:
            record["answer"] = result.value.to_dict()
            record["warnings"] = result.value.warnings
        return record

    def run_reflection(self, job: tuple[SeriesWork, int, int, dict], refresh: bool) -> dict:
        item, window, channel, first = job
        size = item.test.meta["window_size"]
        values = item.test.windows[window, :, channel]
        zooms = render_zoom_views(values) if item.builder.modality == "image" else []
        request = item.builder.reflection_request(
            self.analysis_request(item, window, channel), first, values, zooms
        )
        result = self.client.complete_json(
            request,
            lambda text: parse_answer(text, size),
            lambda e: repair_prompt(e, size),
            refresh,
        )
        record = self._record(self._base(item, window, channel, "reflection"), result, None)
        if result.ok:
            record["answer"] = result.value.to_dict()
        return record

    # -- execution -----------------------------------------------------------------------------
    def execute(self, show_progress: bool = True) -> RunSummary:
        summary = RunSummary(self.log.path)
        channels = sorted({(item.series, c) for item, _, c in self.analysis_tasks()})
        by_series = {item.series: item for item in self.work}
        refs = [(by_series[s], c) for s, c in channels if self.options.normal_reference > 0]
        self._stage("reference", refs, lambda j: (j[0].series, None, j[1], "reference"),
                    self.run_reference, summary, show_progress)  # fmt: skip
        analysis = self.analysis_tasks()
        self._stage("analysis", analysis, lambda j: (j[0].series, j[1], j[2], "analysis"),
                    self.run_analysis, summary, show_progress)  # fmt: skip
        if self.options.double_check:
            done = self.log.done()
            reflect = []
            for item, window, channel in analysis:
                first = done.get((item.series, window, channel, "analysis"))
                if first and first["answer"]["anomalies"]:
                    reflect.append((item, window, channel, first["answer"]))
            self._stage("reflection", reflect, lambda j: (j[0].series, j[1], j[2], "reflection"),
                        self.run_reflection, summary, show_progress)  # fmt: skip
        return summary

    def _stage(self, stage, jobs, key, run, summary: RunSummary, show_progress: bool) -> None:
        done = self.log.done()
        tried = {record_key(r) for r in self.log.records}
        todo = [j for j in jobs if key(j) not in done]
        summary.skipped += len(jobs) - len(todo)
        if not todo:
            return
        bar = tqdm(total=len(todo), desc=stage, unit="req", disable=not show_progress)

        def work(job: Any) -> dict:
            try:
                return run(job, key(job) in tried)
            except TransientError as exc:
                base = self._base(job[0], key(job)[1], key(job)[2], stage)
                return {**base, "request_hash": None, "answer": None, "raw": None,
                        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0},
                        "error": str(exc)}  # fmt: skip

        for _, record in self.client.map(work, todo):
            if isinstance(record, Exception):
                raise record
            self.log.append(record)
            if record["error"] is None:
                summary.done += 1
            else:
                summary.failed += 1
                summary.failures.append(
                    f"{record['series']}/{record['window']}/{record['channel']}"
                )
            bar.update(1)
            bar.set_postfix(failed=summary.failed, usd=f"{self.client.meter.cost_usd:.4f}")
        bar.close()

    def estimate(self) -> Estimate:
        """Tokens and dollars of the reference and analysis requests still to do (not sent).

        The reference description is not known before the run; a 400-word placeholder stands in.
        Reflection requests, sent only for windows with anomalies, are not included.
        """
        done, seen, requests = self.log.done(), set(), []
        for item, window, channel in self.analysis_tasks():
            parts = self.reference_parts(item, channel)
            if parts and (item.series, channel) not in seen:
                seen.add((item.series, channel))
                if (item.series, None, channel, "reference") not in done:
                    requests.append(item.builder.reference_request(parts))
            if (item.series, window, channel, "analysis") in done:
                continue
            part = self._part(item.test, item.builder, window, channel)
            history = item.builder.history(parts, "word " * 400)
            requests.append(item.builder.analysis_request(history, part))
        return self.client.estimate(requests)
