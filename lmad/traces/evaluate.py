"""A whole SemAD evaluation run: score a test CSV with the tuned LM and the n-gram baseline, and
append the rows to the results CSV (``eval.py``'s work)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lmad.errors import DataError
from lmad.traces.scoring import RESULT_COLUMNS, TraceScore, TraceScorer, evaluate

log = logging.getLogger(__name__)


@dataclass
class EvalOptions:
    """Every flag of eval.py.

    The fields without a default take the constants at the top of eval.py (the one place
    researchers edit them); the others are written here once and the script's flags read them.
    """

    llm_path: str
    peft_path: str | None
    """None: ``data/models/semad/<model name>/``; ``"none"``: score the base model."""
    data_path: str
    train_path: str
    """Normal traces the n-gram baseline learns from."""
    result_path: str
    threshold: float
    alpha: float
    batch_size: int
    chunk_size: int
    qlora: str
    ngram_order: int
    """0 leaves the n-gram baseline out."""
    limit: int | None = None
    """Score only the first N traces (None: all)."""

    def adapter(self) -> str | None:
        """The LoRA adapter folder to load, or None for the base model (``--peft_path none``)."""
        from lmad.traces.finetune import default_output_dir

        if self.peft_path is None:
            return str(default_output_dir(self.llm_path, "--peft_path"))
        return None if self.peft_path.lower() == "none" else self.peft_path


def evaluate_run(options: EvalOptions) -> list[dict[str, Any]]:
    """Score ``options.data_path`` with the tuned LM and (given a train file) the n-gram baseline.

    Returns one row per (method, level) with the :data:`RESULT_COLUMNS` keys. The baseline is
    skipped with a warning when ``train_path`` is missing, and left out when ``ngram_order`` is 0.
    Folder names taken from ``llm_path`` are checked before anything is read.
    """
    import time
    from pathlib import Path

    from lmad.traces import models
    from lmad.traces.log_io import read_traces
    from lmad.traces.ngram import NGramModel

    models.gguf_folder_name(options.llm_path)  # a .gguf file's stem becomes data/models/<stem>/
    peft_path = options.adapter()
    traces = read_traces(options.data_path)
    if options.limit is not None:
        traces = traces[: max(0, int(options.limit))]
    if not traces:
        raise DataError(f"{options.data_path} has no traces to score")
    trace_y = [int(t.label == "anomalous") for t in traces]
    event_y = [list(t.event_labels) for t in traces]
    base = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "data": str(options.data_path)}
    rows = []

    def add(method: str, model: str, adapter: str, scores: list[TraceScore], seconds: float):
        for level, metrics in evaluate(trace_y, event_y, scores, options.threshold).items():
            row = {**base, "model": model, "adapter": adapter, "method": method, "level": level}
            rows.append({**row, **metrics, "seconds": round(seconds, 3)})

    started = time.perf_counter()
    model, tokenizer = models.load_for_scoring(options.llm_path, peft_path, options.qlora)
    scorer = TraceScorer(model, tokenizer, options.alpha, options.batch_size, options.chunk_size)
    scores = scorer.score([t.text for t in traces], progress=True)
    add("semad", models.model_name(options.llm_path), str(peft_path or ""), scores,
        time.perf_counter() - started)  # fmt: skip
    order, train_path = options.ngram_order, options.train_path
    if order > 0 and train_path and Path(train_path).is_file():
        started = time.perf_counter()
        normal = [t.events for t in read_traces(train_path) if t.label == "normal"]
        ngram = NGramModel(order).fit(normal)
        add(f"{order}-gram", "n-gram", "", ngram.score(t.events for t in traces),
            time.perf_counter() - started)  # fmt: skip
    elif order > 0:
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
