"""What a TAMA run will send, counted before anything is sent (``--dry_run`` and the preflight).

The requests are the ones the run builds (:class:`~lmad.series.llm_analyzer.LLMAnalyzer`), counted
by the model's tokenizer where one can be had offline (:mod:`lmad.llm.token_count`). What is not
known before the run stands in:

- a reference description not answered yet: :data:`~lmad.series.llm_analyzer.ESTIMATE_DESCRIPTION`
  (400 words; TAMA asks for 300-400);
- the first answer a self-reflection re-checks: :data:`STAND_IN_ANSWER`, five intervals with
  40-word explanations and a 60-word description (TAMA's text prompts allow at most five);
- reply lengths: the mean of the run log's answers of the same stage, else the model's
  ``expected_output_tokens``;
- repairs: one per request at most; the run log's share of repaired answers when it has answers.

A self-reflection request is its analysis request plus the first answer, the reflection prompt and
two zoomed views: it is built once, for the largest analysis, and the difference is added to every
analysis for the upper bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lmad.llm.cost import Estimate, RequestSize, estimate_run
from lmad.llm.messages import ChatRequest, assistant, user
from lmad.llm.token_count import TokenCounter, token_counter
from lmad.series.analyzers import Job
from lmad.series.answers import repair_prompt
from lmad.series.records import STAGES, record_status

if TYPE_CHECKING:
    from lmad.series.llm_analyzer import LLMAnalyzer

STAND_IN_ANSWER: dict[str, Any] = {
    "anomalies": [
        {
            "start": 10 * i,
            "end": 10 * i + 5,
            "confidence": 3,
            "type": "shapelet",
            "explanation": "word " * 40,
        }
        for i in range(5)
    ],
    "description": "word " * 60,
}
"""Stands in for the first answer of a self-reflection not asked yet (module docstring)."""
TYPICAL_ERROR = "no JSON object found in the reply"
"""The error a repair prompt is estimated with (the most common one, issue 13)."""


@dataclass
class LogStats:
    """What the run log so far says about replies: lengths per stage and the repair rate."""

    completion: dict[str, int]
    answers: int
    repair_rate: float | None

    @classmethod
    def of(cls, records: Sequence[dict]) -> LogStats:
        asked = [
            r
            for r in records
            if r.get("stage") in STAGES and record_status(r) in ("answered", "failed")
        ]
        with_flag = [r for r in asked if "repaired" in r]
        rate = sum(bool(r["repaired"]) for r in with_flag) / len(with_flag) if with_flag else None
        lengths: dict[str, list[int]] = {}
        for r in asked:
            tokens = (r.get("usage") or {}).get("completion_tokens") or 0
            if not r.get("repaired") and not r.get("cached") and tokens > 0:
                lengths.setdefault(r["stage"], []).append(int(tokens))
        completion = {stage: round(sum(v) / len(v)) for stage, v in lengths.items()}
        return cls(completion, sum(len(v) for v in lengths.values()), rate)

    def basis(self, expected: int) -> str:
        """How reply lengths were estimated, for the dry-run line."""
        if not self.completion:
            return f"{expected} tokens per reply (expected_output_tokens)"
        shown = ", ".join(f"{stage} {n}" for stage, n in sorted(self.completion.items()))
        return f"mean reply of {self.answers} answers in the run log ({shown} tokens)"


def label(job: Job) -> str:
    """``reference of series 135`` or ``analysis of series 135 window 3`` (channel if several)."""
    where = f"series {job.item.series}"
    if job.window is not None:
        where += f" window {job.window}"
    if job.item.test.windows.shape[2] > 1:
        where += f" channel {job.channel}"
    return f"{job.stage} of {where}"


def with_description(job: Job) -> Job:
    """``job`` conditioned on its reference's description, or the stand-in while unanswered."""
    from lmad.series.llm_analyzer import ESTIMATE_DESCRIPTION

    if job.reference is None or (job.reference.get("answer") or {}).get("normal_pattern"):
        return job
    stand_in = {"request_hash": "estimate", "answer": {"normal_pattern": ESTIMATE_DESCRIPTION}}
    return replace(job, reference=stand_in)


def reflection_job(job: Job) -> Job:
    """The self-reflection of an analysis job, re-checking :data:`STAND_IN_ANSWER`."""
    return replace(job, stage="reflection", first={"answer": STAND_IN_ANSWER})


def _repair_extra(counter: TokenCounter, request: ChatRequest, text: str) -> int:
    """Tokens a repair turn adds to ``request`` besides the first reply's text."""
    repair = ChatRequest(
        (*request.messages, assistant(""), user(text)), request.params, task="repair"
    )
    return counter.prompt_tokens(repair) - counter.prompt_tokens(request)


def estimate_jobs(
    analyzer: LLMAnalyzer,
    references: list[Job],
    analyses: list[Job],
    records: Sequence[dict] = (),
) -> Estimate:
    """The estimate of :meth:`LLMAnalyzer.estimate` (module docstring)."""
    from lmad.series.llm_analyzer import REFERENCE_REPAIR

    config = analyzer.client.config
    counter = token_counter(config)
    stats = LogStats.of(records)
    analyses = [with_description(job) for job in analyses]
    ref_requests = [analyzer.reference_request(job) for job in references]
    requests = [analyzer.analysis_request(job) for job in analyses]
    (ref_requests, references), hits = _unanswered(analyzer, ref_requests, references)
    (requests, analyses), more = _unanswered(analyzer, requests, analyses)
    repairs: dict[str, int] = {}
    if ref_requests:
        repairs["reference"] = _repair_extra(counter, ref_requests[0], REFERENCE_REPAIR)
    if requests:
        size = analyses[0].item.test.meta["window_size"]
        repairs["analysis"] = _repair_extra(
            counter, requests[0], repair_prompt(TYPICAL_ERROR, size)
        )
    parts = [
        estimate_run(
            reqs, config, counter, stats.completion, repairs, [label(j) for j in jobs], jobs
        )
        for reqs, jobs in ((ref_requests, references), (requests, analyses))
    ]
    estimate = merge(*parts)
    estimate.from_cache = hits + more
    estimate.repair_rate = stats.repair_rate
    estimate.completion_basis = stats.basis(config.expected_output_tokens)
    if analyses and any(job.base.get("double_check") for job in analyses):
        estimate.reflections = _reflections(analyzer, counter, parts[1], stats, analyses)
        estimate.consider(estimate.reflections.largest["reflection"])
    return estimate


def _unanswered(
    analyzer: LLMAnalyzer, requests: list[ChatRequest], jobs: list[Job]
) -> tuple[tuple[list[ChatRequest], list[Job]], int]:
    """The requests (and their jobs) the response cache cannot answer, and how many it can."""
    client = analyzer.client
    if client.cache is None:
        return (requests, jobs), 0
    keep = [
        i
        for i, request in enumerate(requests)
        if client.cache.get(client.key_for(client.sent_form(request))) is None
    ]
    return ([requests[i] for i in keep], [jobs[i] for i in keep]), len(requests) - len(keep)


def _reflections(
    analyzer: LLMAnalyzer,
    counter: TokenCounter,
    analysis: Estimate,
    stats: LogStats,
    jobs: list[Job],
) -> Estimate:
    """One self-reflection per analysed window: the upper bound (module docstring)."""
    config = analyzer.client.config
    largest = analysis.largest["analysis"]
    job = reflection_job(largest.key)
    request = analyzer.reflection_request(job)
    prompt = counter.prompt_tokens(request)
    extra = prompt - largest.prompt_tokens
    reply = min(
        stats.completion.get("reflection", config.expected_output_tokens),
        request.params.max_tokens,
    )
    n = len(jobs)
    prompts = analysis.prompt_tokens + n * extra
    bound = Estimate(
        n, prompts, n * reply, config.cost(prompts, n * reply), counted_by=analysis.counted_by
    )
    bound.consider(RequestSize("reflection", label(job), prompt, request.params.max_tokens, job))
    return bound


def merge(*parts: Estimate) -> Estimate:
    """The sum of estimates of disjoint requests (repairs summed, largest kept per task)."""
    total = Estimate(counted_by=next((p.counted_by for p in parts if p.counted_by), ""))
    repairs = Estimate()
    for part in parts:
        total.requests += part.requests
        total.prompt_tokens += part.prompt_tokens
        total.completion_tokens += part.completion_tokens
        total.cost_usd += part.cost_usd
        for size in part.largest.values():
            total.consider(size)
        if part.repairs is not None:
            repairs = merge(repairs, part.repairs) if repairs.requests else part.repairs
    total.repairs = repairs if repairs.requests else None
    return total
