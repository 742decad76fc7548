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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from lmad.errors import ConfigError
from lmad.llm.batch_session import Deferred
from lmad.llm.cost import Estimate
from lmad.series.analyzers import ZERO_USAGE, Analyzer, Job, SeriesWork
from lmad.series.preflight import check_log_fits, check_window_files
from lmad.series.prepare import processed_root
from lmad.series.processed import (
    choose_references,
    load_split,
    make_dataset_hint,
    normal_windows,
    processed_series_ids,
)
from lmad.series.records import record_key, record_status
from lmad.series.run_options import RunOptions
from lmad.series.run_state import Plan, RunState, RunSummary
from lmad.series.runlog import RunLog, run_log_path

if TYPE_CHECKING:
    from lmad.series.fit import Forecast

log = logging.getLogger(__name__)


class TamaRun:
    """One run: the work list, the log, and the analyzer that answers (docs/design.md, "Analyzers")."""

    def __init__(self, options: RunOptions, analyzer: Analyzer) -> None:
        options.check()
        if options.modality == "image" and not analyzer.takes_images:
            raise ConfigError(
                f"--LLM {analyzer.name} takes no images; use main_cli_text.py (text modality)"
            )
        self.options = options
        self.analyzer = analyzer
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
                analyzer.name,
                options.run_name,
                options.modality,
            )
        )
        check_log_fits(self.log, self.work, options)
        self._check_files()
        self.hold: set[tuple] = set()
        """``(stage, *key)`` of items not to ask again in this process (a reference's key has no
        window): a batch run's items already logged as failed by one of its passes."""

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
        return SeriesWork(series, test, train)

    def _check_files(self) -> None:
        """Every image the run will send exists and is whole, before anything is sent."""
        o = self.options
        state = self.state()
        by_series: dict[str, set] = {}
        for item, window, channel in self.analysis_tasks():
            by_series.setdefault(item.series, set()).add((window, channel))
        for item in self.work:
            pairs = sorted(by_series.get(item.series, ()))
            hint = make_dataset_hint(o.dataset, "test", o.modality, o.subtask)
            check_window_files(item.test.folder, o.modality, pairs, hint)
            if item.train is not None:
                channels = sorted({c for _, c in pairs})
                chosen = [
                    (w, c)
                    for c in channels
                    for w in self.shown_windows(item, c, state.reference_of(item.series, c).record)
                ]
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

    def reference_windows(self, item: SeriesWork, channel: int) -> list[int]:
        """The train windows shown as normal references of (series, channel), drawn reproducibly."""
        if item.train is None:
            return []
        o = self.options
        return choose_references(item.train, o.normal_reference, o.seed, item.series, channel)

    def shown_windows(
        self, item: SeriesWork, channel: int, reference: dict | None
    ) -> tuple[int, ...]:
        """The reference windows an answered reference record was written from (its
        ``reference_windows``); for a reference still to ask, or an older record: the seed's."""
        shown = (reference or {}).get("reference_windows")
        return tuple(shown) if shown is not None else tuple(self.reference_windows(item, channel))

    def job(
        self,
        stage: str,
        item: SeriesWork,
        window: int | None,
        channel: int,
        reference: dict | None = None,
        first: dict | None = None,
    ) -> Job:
        """One stage's job. A window is shown the reference windows its reference record says were
        described (``reference_windows``), so a rerun with another ``--seed`` cannot pair one
        seed's pictures with another seed's description; older records without it: the seed's."""
        refs = self.shown_windows(item, channel, reference)
        base = self._base(item, window, channel, stage)
        if stage == "reference":
            base["reference_windows"] = list(refs)
        return Job(stage, item, window, channel, base, refs, reference, first)

    def _base(self, item: SeriesWork, window: int | None, channel: int, stage: str) -> dict:
        meta = item.test.meta
        return {
            "dataset": meta["dataset"], "series": item.series, "window": window,
            "channel": channel, "stage": stage, "llm": self.analyzer.name,
            "subtask": self.options.subtask, "modality": self.options.modality,
            "window_size": meta["window_size"], "stride": meta["stride"],
            "start": None if window is None else meta["starts"][window],
            "references": self.options.normal_reference,
            "double_check": self.options.double_check,
        }  # fmt: skip

    # -- execution -----------------------------------------------------------------------------
    def execute(self, show_progress: bool = True) -> RunSummary:
        """Ask everything the log does not have yet; the summary counts from the log afterwards."""
        summary = RunSummary(self.log.path)
        items = {item.series: item for item in self.work}
        a = self.analyzer
        state = self.state()
        refs = [self.job("reference", items[s], None, c) for s, c in self._todo(state, "reference")]
        self._stage("reference", refs, a.reference, summary, show_progress)
        state = self.state()
        self._log_blocked(state, items)
        analysis = [
            self.job("analysis", items[s], w, c, state.reference_of(s, c).record)
            for s, w, c in self._todo(state, "analysis")
        ]
        self._stage("analysis", analysis, a.analyse, summary, show_progress)
        state = self.state()
        reflect = [
            self.job("reflection", items[s], w, c, *self._conditions(state, s, w, c))
            for s, w, c in self._todo(state, "reflection")
        ]
        self._stage("reflection", reflect, a.reflect, summary, show_progress)
        state = self.state()
        summary.counts = state.counts()
        summary.problems = state.problems()
        summary.incomplete = state.incomplete_line()
        return summary

    def _todo(self, state: RunState, stage: str) -> list[tuple]:
        """Keys of ``stage`` to ask: missing or failed, less :attr:`hold`, and only windows whose
        reference is answered (in batch mode a reference may still be in a batch)."""
        keys = [
            k for k in state.keys_with(stage, "missing", "failed") if (stage, *k) not in self.hold
        ]
        if stage != "analysis":
            return keys
        return [k for k in keys if state.reference_of(k[0], k[2]).status == "answered"]

    @staticmethod
    def _conditions(state: RunState, series: str, window: int, channel: int) -> tuple:
        """The answered reference and analysis records a reflection is conditioned on."""
        return state.reference_of(series, channel).record, state.analyses[
            (series, window, channel)
        ].record

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

    def _stage(
        self,
        stage: str,
        jobs: list[Job],
        answer: Callable[[Job, bool], dict],
        summary: RunSummary,
        show_progress: bool,
    ) -> None:
        if not jobs:
            return
        tried = {
            record_key(r)[:3] for r in self.log.records
            if r["stage"] == stage and record_status(r) == "failed"
        }  # fmt: skip
        bar = tqdm(total=len(jobs), desc=stage, unit="req", disable=not show_progress)
        failed = 0
        with bar:  # closed on errors too, so an error line starts a line of its own
            for _, record in self.analyzer.map(lambda j: answer(j, j.key in tried), jobs):
                if isinstance(record, Deferred):  # batch mode: in the next batch, not a failure
                    bar.update(1)
                    continue
                if isinstance(record, Exception):
                    raise record
                self.log.append(record)
                if record["status"] == "answered":
                    summary.new[stage] += 1
                else:
                    failed += 1
                bar.update(1)
                bar.set_postfix(failed=failed, usd=f"{self.analyzer.cost_usd:.4f}")

    def estimate(self) -> Estimate:
        """Requests, tokens and dollars of the references and analyses still to do (not sent),
        with the upper bounds of repairs and self-reflections (:mod:`lmad.series.forecast`).

        Windows whose reference is answered are estimated with its description; the others with
        a stand-in description. The run log so far gives reply lengths and the repair rate.
        """
        state = self.state()
        items = {item.series: item for item in self.work}
        references = [
            self.job("reference", items[s], None, c)
            for s, c in state.keys_with("reference", "missing", "failed")
        ]
        pending = {"request_hash": "estimate"} if self.options.normal_reference > 0 else None
        analyses = []
        for s, w, c in state.keys_with("analysis", "missing", "failed", "blocked"):
            reference = state.reference_of(s, c)
            known = reference.record if reference.status == "answered" else None
            analyses.append(self.job("analysis", items[s], w, c, known or pending))
        return self.analyzer.estimate(references, analyses, self.log.records)

    def preflight(self) -> Forecast:
        """Before the first request: the estimate, and the check that the largest request fits
        the model's context window (:mod:`lmad.series.fit`); a request that cannot fit stops the
        run with a :class:`~lmad.errors.UserError` that says what would fit."""
        from lmad.series.fit import preflight

        return preflight(self)
