"""The LLM analyzer: TAMA's three prompts (arXiv 2411.02465, Sec. 3) sent to a model.

Each job becomes a chat request (:class:`~lmad.series.prompts.PromptBuilder`): the reference turn
shows the normal windows of a (series, channel), and its answered description stays in the
conversation of every analysis of that channel; a reflection adds two zoomed views and the first
answer. The :class:`~lmad.llm.client.LLMClient` sends it (cache, retries, rate limits, one repair
turn for an unparseable reply, cost). The record keeps the raw reply, the usage and the request
hash (docs/design.md, "Run log").
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from lmad.llm.base import TransientError
from lmad.llm.client import JSONResult, LLMClient
from lmad.llm.cost import Estimate
from lmad.llm.messages import ChatRequest, GenerationParams, ImagePart, Message, TextPart
from lmad.series.analyzers import Analyzer, Job, SeriesWork
from lmad.series.answers import parse_answer, parse_reference, repair_prompt
from lmad.series.prepare import PrepareOptions
from lmad.series.processed import ProcessedSplit
from lmad.series.prompts import PromptBuilder
from lmad.series.render import render_zoom_views

REFERENCE_REPAIR = 'Answer again with only this JSON object: {"normal_pattern": "<description>"}'
CUT_REFERENCE = (
    "the reply was cut off by the generation limit (--max_tokens or --timeout), so it cannot "
    "stand as the normal pattern; raise the limit or use a model that stops by itself"
)
ESTIMATE_DESCRIPTION = "word " * 400
"""Stands in for a reference description not yet known when a run is estimated (TAMA asks for
300-400 words)."""


def truncated(result: JSONResult) -> bool:
    """Whether the reply the answer was read from stopped at the token or time limit."""
    return bool(result.replies) and result.replies[-1].truncated


class LLMAnalyzer(Analyzer):
    """Asks a model through ``client`` with TAMA's prompts and ``params`` (sampling settings)."""

    def __init__(self, client: LLMClient, params: GenerationParams | None = None) -> None:
        self.client = client
        self.params = params or GenerationParams()
        self.name = self.label = client.name
        self.takes_images = client.config.images
        self._builders: dict[tuple[str, str], PromptBuilder] = {}
        self._histories: dict[tuple, tuple[Message, ...]] = {}
        self._lock = threading.Lock()

    # -- requests ------------------------------------------------------------------------------
    def builder(self, item: SeriesWork, modality: str) -> PromptBuilder:
        """The prompt builder of a series (its window size and drawing), made once."""
        key = (item.series, modality)
        with self._lock:
            if key not in self._builders:
                meta = item.test.meta
                image = meta["modalities"].get("image", {})
                # data processed before the form was recorded was written in make_dataset's default
                form = meta["modalities"].get("text", {}).get("form", PrepareOptions.text_form)
                self._builders[key] = PromptBuilder(
                    modality, meta["window_size"], image.get("x_ticks"), form, self.params
                )
            return self._builders[key]

    def _part(
        self, split: ProcessedSplit, builder: PromptBuilder, window: int, channel: int
    ) -> ImagePart | TextPart:
        png = split.png(window, channel) if builder.modality == "image" else None
        return builder.window_part(split.windows[window, :, channel], png)

    def reference_parts(self, job: Job) -> list[ImagePart | TextPart]:
        builder = self.builder(job.item, job.modality)
        train = job.item.train
        return [self._part(train, builder, w, job.channel) for w in job.reference_windows]

    def history(self, job: Job) -> tuple[Message, ...]:
        """The conversation every window of the job's (series, channel) starts from, built once."""
        reference = job.reference
        key = (job.item.series, job.modality, job.channel, reference and reference["request_hash"])
        with self._lock:
            cached = self._histories.get(key)
        if cached is None:
            builder = self.builder(job.item, job.modality)
            parts = self.reference_parts(job) if reference else []
            description = reference["answer"]["normal_pattern"] if reference else None
            cached = builder.history(parts, description)
            with self._lock:
                self._histories[key] = cached
        return cached

    def reference_request(self, job: Job) -> ChatRequest:
        return self.builder(job.item, job.modality).reference_request(self.reference_parts(job))

    def analysis_request(self, job: Job) -> ChatRequest:
        builder = self.builder(job.item, job.modality)
        part = self._part(job.item.test, builder, job.window, job.channel)
        return builder.analysis_request(self.history(job), part)

    def reflection_request(self, job: Job) -> ChatRequest:
        builder = self.builder(job.item, job.modality)
        values = job.values()
        zooms = render_zoom_views(values) if builder.modality == "image" else []
        first = job.first["answer"]
        return builder.reflection_request(self.analysis_request(job), first, values, zooms)

    # -- the three stages ----------------------------------------------------------------------
    def reference(self, job: Job, refresh: bool) -> dict[str, Any]:
        def ask() -> dict[str, Any]:
            result = self.client.complete_json(
                self.reference_request(job), parse_reference, lambda e: REFERENCE_REPAIR, refresh
            )
            if result.ok and truncated(result):
                result.error = CUT_REFERENCE
            answer = {"normal_pattern": result.value} if result.ok else None
            return self._record(job, result, answer)

        return self._guarded(job, ask)

    def analyse(self, job: Job, refresh: bool) -> dict[str, Any]:
        return self._guarded(job, lambda: self._window(job, self.analysis_request, refresh))

    def reflect(self, job: Job, refresh: bool) -> dict[str, Any]:
        return self._guarded(job, lambda: self._window(job, self.reflection_request, refresh))

    def _window(
        self, job: Job, build: Callable[[Job], ChatRequest], refresh: bool
    ) -> dict[str, Any]:
        size = job.item.test.meta["window_size"]
        result = self.client.complete_json(
            build(job),
            lambda text: parse_answer(text, size),
            lambda error: repair_prompt(error, size),
            refresh,
        )
        record = self._record(job, result, result.value.to_dict() if result.ok else None)
        if result.ok and job.stage == "analysis":
            record["warnings"] = result.value.warnings
        return record

    @staticmethod
    def _guarded(job: Job, ask: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A request that still failed after every retry becomes a failed record, not a crash."""
        try:
            return ask()
        except TransientError as exc:
            return job.failed(str(exc))

    @staticmethod
    def _record(job: Job, result: JSONResult, answer: dict | None) -> dict[str, Any]:
        return job.record(
            status="answered" if result.ok else "failed",
            request_hash=result.request_hash,
            answer=answer if result.ok else None,
            raw=result.raw,
            usage={
                "prompt_tokens": result.usage.prompt_tokens,
                "completion_tokens": result.usage.completion_tokens,
                "cached_tokens": result.usage.cached_tokens,
                "cost_usd": round(result.cost_usd, 8),
            },
            error=result.error,
            repaired=result.repaired,
            cached=all(r.cached for r in result.replies),
            truncated=truncated(result),
        )

    # -- running -------------------------------------------------------------------------------
    def map(
        self, fn: Callable[[Job], dict], jobs: Iterable[Job]
    ) -> Iterator[tuple[Job, dict | Exception]]:
        """At most the client's ``concurrency`` requests in flight; a fatal error stops the map."""
        return self.client.map(fn, jobs)

    def estimate(
        self, references: list[Job], analyses: list[Job], records: Sequence[dict] = ()
    ) -> Estimate:
        """Tokens and dollars of the reference and analysis requests (nothing is sent), counted
        by the model's tokenizer where one can be had offline; with the upper bounds of repairs
        and, when the jobs ask for it, self-reflections. ``records``: the run log so far.
        Stand-ins for what is not known yet: :mod:`lmad.series.forecast`.
        """
        from lmad.series.forecast import estimate_jobs

        return estimate_jobs(self, references, analyses, records)

    @property
    def cost_usd(self) -> float:
        return self.client.meter.cost_usd

    def usage_summary(self) -> str:
        return self.client.meter.summary()

    def close(self) -> None:
        self.client.close()
