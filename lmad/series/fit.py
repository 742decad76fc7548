"""Before the first request: will the run's largest request fit the model's context window?

The largest request is the largest reference, analysis or (with ``--double_check``) estimated
self-reflection (:mod:`lmad.series.forecast`), counted as prompt tokens plus the completion limit it
asks for (``--max_tokens``): a server refuses a request whose prompt and ``max_tokens`` together
exceed its context. If it does not fit, the run stops before sending anything, with one line that
gives the numbers and what would fit:

- text windows: the prompt grows about linearly with the window size, so the tokens per point are
  measured by building the largest request again with windows cut to half their points; the
  window size that would fit is then checked by building the request at that size;
- image windows: the window size does not change an image's tokens, so the line says how many
  reference windows (``--normal_reference``) would fit;
- and, in both, the ``--max_tokens`` that would leave room, when the prompt alone fits.

A model whose context window is unknown (:mod:`lmad.llm.context`) is not checked; ``--dry_run``
says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lmad.errors import UserError
from lmad.llm.context import ContextWindow, context_window
from lmad.llm.cost import Estimate, RequestSize
from lmad.llm.messages import ChatRequest, GenerationParams
from lmad.llm.options import KEYS_FILE, MODELS_FILE
from lmad.llm.token_count import token_counter
from lmad.series.analyzers import Analyzer, Job
from lmad.series.prepare import PrepareOptions
from lmad.series.prompts import PromptBuilder
from lmad.series.render import render_zoom_views

if TYPE_CHECKING:
    from lmad.series.llm_analyzer import LLMAnalyzer
    from lmad.series.pipeline import TamaRun

MIN_WINDOW = 10
"""A window size below this is not offered as one that fits."""


@dataclass
class Forecast:
    """The estimate of what a run will send and the context window it was checked against."""

    name: str
    estimate: Estimate
    context: ContextWindow | None

    def lines(self) -> list[str]:
        """The ``--dry_run`` report: totals, how they were counted, bounds, the context check."""
        e = self.estimate
        cached = f" ({e.from_cache} more answered from the cache)" if e.from_cache else ""
        head = (
            f"dry run for {self.name}: {e.requests} requests{cached}, ~{e.prompt_tokens:,} prompt "
            f"+ ~{e.completion_tokens:,} completion tokens, ~${e.cost_usd:.2f}; nothing was sent"
        )
        if self.context is None:  # not an LLM
            return [head]
        lines = [head, f"  prompt tokens counted by {e.counted_by}; replies: {e.completion_basis}"]
        if e.repairs is not None:
            expected = e.expected_repairs
            bound = _amount(e.repairs)
            if expected is not None:
                lines.append(
                    f"  repairs: ~{_amount(expected)} at the run log's repair rate "
                    f"({e.repair_rate:.0%}); at most {bound}"
                )
            else:
                lines.append(
                    f"  repairs: at most {bound} if every reply needs one "
                    "(no answers in the run log yet to tell the rate)"
                )
        if e.reflections is not None:
            lines.append(
                f"  self-reflection: at most {_amount(e.reflections)} (only windows where "
                "anomalies are found get one)"
            )
        biggest = e.biggest
        if self.context.tokens is None:
            lines.append(f"  context window: {self.context.describe()}: not checked")
        elif biggest is not None:
            lines.append(
                f"  context window: {self.context.describe()}; the largest request "
                f"({_size(biggest)}) fits"
            )
        return lines


def _amount(e: Estimate) -> str:
    return f"{e.requests} requests, ~{e.total_tokens:,} tokens, ~${e.cost_usd:.2f}"


def _size(size: RequestSize) -> str:
    return (
        f"{size.label}: {size.prompt_tokens:,} prompt + {size.completion_limit:,} completion tokens"
    )


def preflight(run: TamaRun) -> Forecast:
    """The run's estimate, checked against the model's context window (module docstring)."""
    estimate = run.estimate()
    client = getattr(run.analyzer, "client", None)
    if client is None:  # an analyzer that sends nothing
        return Forecast(run.analyzer.name, estimate, None)
    context = context_window(client.config)
    biggest = estimate.biggest
    if context.tokens is not None and biggest is not None and biggest.total > context.tokens:
        raise UserError(_too_large(run, estimate, context.tokens, context))
    return Forecast(run.analyzer.name, estimate, context)


def _too_large(run: TamaRun, estimate: Estimate, window: int, context: ContextWindow) -> str:
    """The one line that says the largest request does not fit, and what would."""
    analyzer: LLMAnalyzer = run.analyzer  # type: ignore[assignment]
    biggest = estimate.biggest
    assert biggest is not None
    head = (
        f"the largest request ({_size(biggest)}) does not fit {analyzer.name}'s context window "
        f"of {window:,} tokens ({context.source})"
    )
    o = run.options
    limit = analyzer.params.max_tokens
    largest = list(estimate.largest.values())
    plain = [s for s in largest if s.task != "reflection"]
    hints = []
    if o.modality == "text":
        size = fitting_window_size(analyzer, largest, window, limit)
        if size is None:
            hints.append(f"no window size fits with --normal_reference {o.normal_reference}")
        else:
            hints.append(
                f"windows of at most {size} points would fit (make_dataset.py --dataset "
                f"{o.dataset} --modality text --window_size {size}, once with --mode train and "
                "once with --mode test)"
            )
        if biggest.task == "reflection" and plain:
            if max(s.total for s in plain) <= window:
                hints.append("without self-reflection (--double_check False) they fit as they are")
            else:
                alone = fitting_window_size(analyzer, plain, window, limit)
                if alone is not None and alone > (size or 0):
                    hints.append(
                        f"without self-reflection (--double_check False) windows of at most "
                        f"{alone} points would fit"
                    )
    else:
        references = fitting_references(analyzer, largest, window, limit)
        if references is not None and references < o.normal_reference:
            hints.append(f"--normal_reference {references} would fit (each image counts)")
        if biggest.task == "reflection" and plain and max(s.total for s in plain) <= window:
            hints.append("without self-reflection (--double_check False) it would fit")
    room = window - max(size.prompt_tokens for size in largest)
    if room > 0:
        hints.append(f"--max_tokens {room} would leave room for the reply")
    if not hints:
        hints.append("the prompt alone is larger than the window; use a model with a larger one")
    return f"{head}; {'; or '.join(hints)}"


def _rebuild(
    analyzer: LLMAnalyzer, job: Job, points: int | None = None, references: int | None = None
) -> ChatRequest:
    """The request of ``job`` with windows cut to ``points`` and ``references`` reference windows.

    Built from the same prompt builder as the run's (at the cut window size), as
    :class:`~lmad.series.llm_analyzer.LLMAnalyzer` builds it.
    """
    meta = job.item.test.meta
    size = points or meta["window_size"]
    image = meta["modalities"].get("image", {})
    form = meta["modalities"].get("text", {}).get("form", PrepareOptions.text_form)
    builder = PromptBuilder(job.modality, size, image.get("x_ticks"), form, analyzer.params)
    shown = job.reference_windows[:references] if references is not None else job.reference_windows
    job = replace(job, reference_windows=tuple(shown))

    def part(split, window: int, values):
        png = split.png(window, job.channel) if job.modality == "image" else None
        return builder.window_part(values[:size], png)

    refs = [part(job.item.train, w, v) for w, v in zip(shown, job.reference_values(), strict=True)]
    if job.stage == "reference":
        return builder.reference_request(refs)
    description = ((job.reference or {}).get("answer") or {}).get("normal_pattern")
    history = builder.history(refs if job.reference is not None else [], description)
    values = job.values()
    analysis = builder.analysis_request(history, part(job.item.test, job.window, values))
    if job.stage == "analysis":
        return analysis
    zooms = render_zoom_views(values) if job.modality == "image" else []
    first = (job.first or {})["answer"]
    return builder.reflection_request(analysis, first, values[:size], zooms)


def _fits(analyzer: LLMAnalyzer, sizes: list[RequestSize], window: int, limit: int, **cut) -> bool:
    counter = token_counter(analyzer.client.config)
    return all(
        counter.prompt_tokens(_rebuild(analyzer, s.key, **cut)) + limit <= window for s in sizes
    )


def fitting_window_size(
    analyzer: LLMAnalyzer, sizes: list[RequestSize], window: int, limit: int
) -> int | None:
    """The largest window size (points) at which every request in ``sizes`` fits, or None.

    Tokens per point come from each request built at its full and at half its window size.
    """
    counter = token_counter(analyzer.client.config)
    best: int | None = None
    for s in sizes:
        full = s.key.item.test.meta["window_size"]
        half = max(1, full // 2)
        small = counter.prompt_tokens(_rebuild(analyzer, s.key, points=half))
        per_point = max((s.prompt_tokens - small) / max(1, full - half), 1e-9)
        fixed = s.prompt_tokens - per_point * full
        guess = int((window - limit - fixed) / per_point)
        best = guess if best is None else min(best, guess)
    if best is None:
        return None
    best = min(best, max(s.key.item.test.meta["window_size"] for s in sizes) - 1)
    while best >= MIN_WINDOW and not _fits(analyzer, sizes, window, limit, points=best):
        best -= max(1, best // 50)  # the linear guess was a little high: step down 2 %
    return best if best >= MIN_WINDOW else None


def fitting_references(
    analyzer: LLMAnalyzer, sizes: list[RequestSize], window: int, limit: int
) -> int | None:
    """The most reference windows (fewer than now) at which every request fits, or None."""
    shown = max((len(s.key.reference_windows) for s in sizes), default=0)
    for n in range(shown - 1, -1, -1):
        kept = [s for s in sizes if n > 0 or s.task != "reference"]
        if _fits(analyzer, kept, window, limit, references=n):
            return n
    return None


def open_dry_analyzer(
    name: str,
    params: GenerationParams | None = None,
    models_path: str | Path = MODELS_FILE,
    keys_path: str | Path = KEYS_FILE,
    cache_dir: str | Path | None = None,
) -> tuple[Analyzer, str | None]:
    """The analyzer ``--LLM name`` means, for ``--dry_run``: it builds and counts requests and
    sends nothing; an ``hf:`` model's weights are not loaded. With a note when a key is missing.
    ``cache_dir``: the response cache the run would read (None: ``--no_cache``)."""
    from lmad.series.analyzers import OFFLINE

    if name == OFFLINE:
        from lmad.series.offline import OfflineAnalyzer

        return OfflineAnalyzer(), None
    from lmad.llm.dry_run import open_dry_client
    from lmad.series.llm_analyzer import LLMAnalyzer

    client, note = open_dry_client(name, models_path, keys_path, cache_dir)
    analyzer = LLMAnalyzer(client, params)
    analyzer.takes_images = client.backend.takes_images
    return analyzer, note
