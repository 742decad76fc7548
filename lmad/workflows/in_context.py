"""In-context classification of workflow jobs by a chat LLM (the newer paper's prompting baseline).

The model plays a system administration bot that sorts each job sentence into Normal or Abnormal
and answers with the category only. Few-shot prompts (``k > 0``) add what the model cannot know:
the per-class mean and standard deviation of the six delays on the train split, and ``k``
labelled train jobs drawn with a seed (balanced across the two classes). ``chain_of_thought``
asks the model to reason step by step and end with ``Category: ...``.

Every request goes through :class:`~lmad.llm.client.LLMClient`: cached (a rerun sends nothing),
rate-limited, retried and run ``concurrency`` at a time. A reply without a category (or a request
that still failed after retries) counts as a failure: it is predicted normal and reported (in
``failed``, and in the ``failure`` column of the row's predictions file). The model answers with a
category only, so the row has ``predictions`` but no ``scores`` (None: no ROC-AUC or AP).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmad.llm.messages import ChatRequest, GenerationParams, system, user
from lmad.workflows.data import WorkflowData, classification_scores, sample_positions

log = logging.getLogger(__name__)

DELAYS = (
    "wms_delay",
    "queue_delay",
    "runtime",
    "post_script_delay",
    "stage_in_delay",
    "stage_out_delay",
)
CATEGORIES = ("Normal", "Abnormal")
SYSTEM = (
    "You are a system administration bot that watches the jobs of a scientific workflow. Each job "
    "is described by its delays, runtime and data sizes. Sort the job into one of two "
    "categories: Normal or Abnormal."
)
ANSWER_ONLY = "Respond only with the category, Normal or Abnormal, and nothing else."
CHAIN_OF_THOUGHT = (
    "Please think about it step-by-step, then end with one line: 'Category: Normal' or "
    "'Category: Abnormal'."
)

_MARKED = re.compile(r"category\W{0,4}(abnormal|normal)\b", re.IGNORECASE)
_ANY = re.compile(r"\b(abnormal|normal)\b", re.IGNORECASE)


def parse_category(text: str) -> int | None:
    """1 for Abnormal, 0 for Normal, None when the reply names neither.

    The first category named counts (case-insensitive); when the reply has ``Category: X`` lines
    (the chain-of-thought form), the last of those counts instead.
    """
    marked = _MARKED.findall(text or "")
    if marked:
        return int(marked[-1].lower() == "abnormal")
    found = _ANY.search(text or "")
    return None if found is None else int(found.group(1).lower() == "abnormal")


@dataclass(frozen=True)
class PromptSettings:
    """What goes into each request: shots, seed, chain of thought and sampling."""

    k: int  # labelled train examples (0: zero-shot)
    seed: int
    chain_of_thought: bool
    statistics: bool = True  # with k > 0: per-class mean ± std of the delays
    temperature: float = 0.0
    max_tokens: int | None = None  # None: 16, or 1024 with chain of thought


def class_statistics(data: WorkflowData, columns: tuple[str, ...] = DELAYS) -> str:
    """Lines like ``Normal jobs: wms delay 5.0 ± 1.2 sec, ...`` from the train split ("" if none)."""
    present = [c for c in columns if c in data.train.columns]
    if not present:
        log.warning(
            "%s: no delay columns in train.csv; the prompt has no class statistics", data.name
        )
        return ""
    labels = data.binary_labels("train")
    lines = []
    for value, name in enumerate(CATEGORIES):
        rows = data.train.loc[labels == value, present]
        if rows.empty:
            continue
        parts = [
            f"{c.replace('_', ' ')} {rows[c].mean():.1f} ± {rows[c].std(ddof=0):.1f} sec"
            for c in present
        ]
        lines.append(f"{name} jobs ({len(rows)} in training): " + ", ".join(parts))
    return "\n".join(lines)


def draw_examples(data: WorkflowData, k: int, seed: int) -> list[tuple[str, int]]:
    """``k`` (text, 0/1) train examples drawn with ``seed``, alternating between the classes."""
    if k <= 0:
        return []
    rng = np.random.default_rng(seed)
    labels = data.binary_labels("train")
    pools = [list(rng.permutation(np.flatnonzero(labels == c))) for c in (0, 1)]
    pools = [p for p in pools if p]
    chosen: list[int] = []
    turn = int(rng.integers(len(pools))) if pools else 0
    while len(chosen) < k and any(pools):
        pool = pools[turn % len(pools)]
        if pool:
            chosen.append(int(pool.pop()))
        turn += 1
    order = rng.permutation(len(chosen))
    texts = data.texts("train")
    return [(texts[chosen[i]], int(labels[chosen[i]])) for i in order]


def build_system_prompt(data: WorkflowData, settings: PromptSettings) -> str:
    """The system message: role, categories, (few-shot) statistics and examples, answer format."""
    parts = [SYSTEM]
    if settings.k > 0 and settings.statistics:
        stats = class_statistics(data)
        if stats:
            parts.append(
                "Typical values in the training data (mean ± standard deviation):\n" + stats
            )
    examples = draw_examples(data, settings.k, settings.seed)
    if examples:
        shown = "\n\n".join(f"Job: {t}\nCategory: {CATEGORIES[y]}" for t, y in examples)
        parts.append("Labelled examples:\n\n" + shown)
    parts.append(CHAIN_OF_THOUGHT if settings.chain_of_thought else ANSWER_ONLY)
    return "\n\n".join(parts)


def build_request(job: str, system_prompt: str, settings: PromptSettings) -> ChatRequest:
    """One job's request; identical inputs give identical requests (and cache keys)."""
    max_tokens = settings.max_tokens or (1024 if settings.chain_of_thought else 16)
    params = GenerationParams(
        temperature=settings.temperature, top_p=1.0, max_tokens=max_tokens, json_mode=False
    )
    return ChatRequest(
        (system(system_prompt), user(f"Job: {job}\nCategory:")), params, task="classify"
    )


def build_requests(
    data: WorkflowData, settings: PromptSettings, limit: int | None
) -> tuple[np.ndarray, list[ChatRequest]]:
    """Test row positions (a seeded sample of ``limit`` rows; None: all) and their requests."""
    positions = sample_positions(len(data.test), limit, settings.seed)
    prompt = build_system_prompt(data, settings)
    texts = data.texts("test")
    return positions, [build_request(texts[i], prompt, settings) for i in positions]


def run_in_context(
    data: WorkflowData,
    client: Any,
    settings: PromptSettings,
    limit: int | None,
    refresh: bool = False,
) -> dict[str, Any]:
    """Classify the test jobs (or ``limit`` of them) with ``client``; metrics against 0/1 labels.

    Returns the usual ``model``, ``method``, ``train_time_s`` (NaN), ``eval_time_s`` (asking every
    job, cached replies included), ``accuracy``, ``f1``, ``precision``, ``recall``, plus
    ``predictions`` (0/1 per entry of ``positions``; a failure is 0), ``scores`` (None: a category
    has no score), ``positions``, ``failures`` (count), ``failed`` (``[(position, reason)]``),
    ``requests_sent`` (not from the cache), ``cost_usd`` and ``n_test``.
    """
    from tqdm.auto import tqdm

    positions, requests = build_requests(data, settings, limit)
    predicted = np.zeros(len(positions), dtype=np.int64)
    failed: list[tuple[int, str]] = []
    sent = 0
    cost = 0.0
    start = time.perf_counter()

    def ask(index: int) -> Any:
        return client.complete(requests[index], refresh=refresh)

    results = client.map(ask, range(len(requests)))
    for index, reply in tqdm(results, total=len(requests), desc="in-context", leave=False):
        position = int(positions[index])
        if isinstance(reply, Exception):
            failed.append((position, f"request failed: {reply}"))
            continue
        sent += 0 if reply.cached else 1
        cost += 0.0 if reply.cached else reply.cost_usd
        category = parse_category(reply.text)
        if category is None:
            failed.append((position, f"no category in reply {reply.text[:80]!r}"))
        else:
            predicted[index] = category
    if failed:
        log.warning(
            "%s: %d of %d jobs got no category (failed request or unreadable reply); "
            "they count as Normal",
            client.name,
            len(failed),
            len(requests),
        )
    shots = f"{settings.k}-shot" if settings.k > 0 else "zero-shot"
    cot = ", CoT" if settings.chain_of_thought else ""
    return {
        "model": client.name,
        "method": f"in-context ({shots}{cot})",
        "train_time_s": float("nan"),
        "eval_time_s": time.perf_counter() - start,
        **classification_scores(data.binary_labels("test")[positions], predicted),
        "predictions": predicted,
        "scores": None,
        "positions": positions,
        "failures": len(failed),
        "failed": sorted(failed),
        "requests_sent": sent,
        "cost_usd": cost,
        "n_test": len(positions),
    }
