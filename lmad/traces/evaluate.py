"""A whole SemAD evaluation run: score a test CSV with the tuned LM and the n-gram baseline, and
append the rows to the results CSV (``eval.py``'s work)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lmad.errors import DataError
from lmad.traces.scoring import (
    ALPHA,
    BATCH_SIZE,
    CHUNK_SIZE,
    RESULT_COLUMNS,
    THRESHOLD,
    TraceScore,
    TraceScorer,
    evaluate,
)

log = logging.getLogger(__name__)


def evaluate_run(
    llm_path: str,
    peft_path: str | None,
    data_path: str,
    train_path: str | None = None,
    limit: int | None = None,
    threshold: float = THRESHOLD,
    alpha: float = ALPHA,
    batch_size: int = BATCH_SIZE,
    chunk_size: int = CHUNK_SIZE,
    qlora: str = "auto",
    ngram_order: int = 3,
) -> list[dict[str, Any]]:
    """Score a test CSV with the tuned LM and (given ``train_path``) the n-gram baseline.

    Returns one row per (method, level) with the :data:`RESULT_COLUMNS` keys. The baseline is
    skipped with a warning when ``train_path`` is missing or ``ngram_order`` is 0.
    """
    import time
    from pathlib import Path

    from lmad.traces import models
    from lmad.traces.log_io import read_traces
    from lmad.traces.ngram import NGramModel

    traces = read_traces(data_path)
    if limit is not None:
        traces = traces[: max(0, int(limit))]
    if not traces:
        raise DataError(f"{data_path} has no traces to score")
    trace_y = [int(t.label == "anomalous") for t in traces]
    event_y = [list(t.event_labels) for t in traces]
    base = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "data": str(data_path)}
    rows = []

    def add(method: str, model: str, adapter: str, scores: list[TraceScore], seconds: float):
        for level, metrics in evaluate(trace_y, event_y, scores, threshold).items():
            row = {**base, "model": model, "adapter": adapter, "method": method, "level": level}
            rows.append({**row, **metrics, "seconds": round(seconds, 3)})

    started = time.perf_counter()
    model, tokenizer = models.load_for_scoring(llm_path, peft_path, qlora)
    scorer = TraceScorer(model, tokenizer, alpha, batch_size, chunk_size)
    scores = scorer.score([t.text for t in traces], progress=True)
    add("semad", models.model_name(llm_path), str(peft_path or ""), scores,
        time.perf_counter() - started)  # fmt: skip
    if ngram_order > 0 and train_path and Path(train_path).is_file():
        started = time.perf_counter()
        normal = [t.events for t in read_traces(train_path) if t.label == "normal"]
        ngram = NGramModel(order=ngram_order).fit(normal)
        add(f"{ngram_order}-gram", "n-gram", "", ngram.score(t.events for t in traces),
            time.perf_counter() - started)  # fmt: skip
    elif ngram_order > 0:
        log.warning("no training file %s: the n-gram baseline row is left out", train_path)
    return rows


def append_results(path: Any, rows: Sequence[dict[str, Any]]) -> Any:
    """Append ``rows`` to a results CSV, written atomically (an older file's columns are kept)."""
    from pathlib import Path

    import pandas as pd

    from lmad.io import atomic_write_text

    new = pd.DataFrame(list(rows), columns=list(RESULT_COLUMNS))
    if Path(path).is_file():
        new = pd.concat([pd.read_csv(path), new], ignore_index=True)
    return atomic_write_text(path, new.to_csv(index=False))
