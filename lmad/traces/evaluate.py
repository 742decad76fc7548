"""A whole SemAD evaluation run: score a test CSV (or a seeded stratified sample of it) with the
tuned LM and the n-gram baseline, write the per-trace and per-event scores
(:mod:`lmad.traces.score_file`), and append the rows to the results CSV (``eval.py``'s work);
or recompute the rows from a scores file (``eval.py --from_scores``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lmad.errors import DataError
from lmad.traces.ranking import FLAGS_ALL_SHARE
from lmad.traces.scoring import RESULT_COLUMNS, TraceScore, TraceScorer

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
    """Score a sample of N traces stratified by label, drawn with ``seed`` (None: all)."""
    seed: int = 42
    """Seed of the ``limit`` sample (:func:`lmad.traces.sampling.stratified_sample`)."""
    scores_path: str | None = None
    """None: ``<result_path's folder>/<data file stem>/<model name>_scores.csv``."""
    from_scores: str | None = None
    """A scores file to recompute the rows from, instead of scoring (no model is loaded)."""

    def adapter(self) -> str | None:
        """The LoRA adapter folder to load, or None for the base model (``--peft_path none``)."""
        from lmad.traces.finetune import default_output_dir

        if self.peft_path is None:
            return str(default_output_dir(self.llm_path, "--peft_path"))
        return None if self.peft_path.lower() == "none" else self.peft_path

    def scores_file(self) -> Any:
        """Where the scores go: ``scores_path``, or the default path (names checked)."""
        from pathlib import Path

        from lmad.traces import models
        from lmad.traces.score_file import scores_path

        if self.scores_path is not None:
            return Path(self.scores_path)
        return scores_path(self.result_path, self.data_path, models.model_name(self.llm_path))


def evaluate_run(options: EvalOptions) -> list[dict[str, Any]]:
    """Score ``options.data_path`` with the tuned LM and (given a train file) the n-gram baseline.

    Scores ``options.limit`` traces drawn by :func:`~lmad.traces.sampling.stratified_sample`
    (every trace when None), writes their scores to :meth:`EvalOptions.scores_file` and returns
    one row per (method, level) with the :data:`RESULT_COLUMNS` keys, computed from the scores
    exactly as :func:`rows_from_scores` recomputes them. The baseline is skipped with a warning
    when ``train_path`` is missing, and left out when ``ngram_order`` is 0. Folder and file names
    taken from ``llm_path`` and ``data_path`` are checked before anything is read.
    """
    import time
    from pathlib import Path

    import pandas as pd

    from lmad.traces import models
    from lmad.traces.log_io import read_traces
    from lmad.traces.ngram import NGramModel
    from lmad.traces.sampling import stratified_sample
    from lmad.traces.score_file import metric_rows, score_frame, write_scores

    models.gguf_folder_name(options.llm_path)  # a .gguf file's stem becomes data/models/<stem>/
    peft_path = options.adapter()
    path = options.scores_file()
    traces = read_traces(options.data_path)
    if not traces:
        raise DataError(f"{options.data_path} has no traces to score")
    labels = [int(t.label == "anomalous") for t in traces]
    sample = stratified_sample(labels, options.limit, options.seed, str(options.data_path))
    traces = [traces[i] for i in sample.indices]
    trace_y = [labels[i] for i in sample.indices]
    event_y = [list(t.event_labels) for t in traces]
    frames, seconds = [], {}

    def add(method: str, model: str, adapter: str, scores: list[TraceScore], started: float):
        frames.append(score_frame(method, model, adapter, sample, str(options.data_path),
                                  trace_y, event_y, scores))  # fmt: skip
        seconds[method] = round(time.perf_counter() - started, 3)

    started = time.perf_counter()
    model, tokenizer = models.load_for_scoring(options.llm_path, peft_path, options.qlora)
    scorer = TraceScorer(model, tokenizer, options.alpha, options.batch_size, options.chunk_size)
    scores = scorer.score([t.text for t in traces], progress=True)
    add("semad", models.model_name(options.llm_path), str(peft_path or ""), scores, started)
    order, train_path = options.ngram_order, options.train_path
    if order > 0 and train_path and Path(train_path).is_file():
        started = time.perf_counter()
        normal = [t.events for t in read_traces(train_path) if t.label == "normal"]
        ngram = NGramModel(order).fit(normal)
        add(f"{order}-gram", "n-gram", "", ngram.score(t.events for t in traces), started)
    elif order > 0:
        log.warning("no training file %s: the n-gram baseline row is left out", train_path)
    write_scores(path, frames)
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    rows = metric_rows(pd.concat(frames, ignore_index=True), options.threshold)
    return [{**r, "time": now, "scores": str(path), "seconds": seconds[r["method"]]} for r in rows]


def rows_from_scores(path: Any, threshold: float) -> list[dict[str, Any]]:
    """The result rows of the run that wrote the scores file ``path``, recomputed at
    ``threshold`` without a model: equal to that run's rows in every column but ``time`` and
    ``seconds`` (here the seconds spent reading and computing).

    Raises:
        DataError: see :func:`lmad.traces.score_file.read_scores`.
    """
    import time

    from lmad.traces.score_file import metric_rows, read_scores

    started = time.perf_counter()
    rows = metric_rows(read_scores(path), threshold)
    now, seconds = time.strftime("%Y-%m-%d %H:%M:%S"), round(time.perf_counter() - started, 3)
    return [{**row, "time": now, "scores": str(path), "seconds": seconds} for row in rows]


def result_table(rows: Sequence[dict[str, Any]], columns: Sequence[str],
                 keys: Sequence[str]) -> str:  # fmt: skip
    """The rows as a markdown table of ``columns`` (the rows' ``keys``), then a footnote.

    A ``flagged``/``best_flagged`` share of at least 95 % (``flags_all``) is printed with a
    dagger, and the footnote says that precision at that threshold is about the anomaly rate
    (given per level), so the row's P, R and F1 are uninformative.
    """
    from lmad.report.tables import Table

    first = rows[0]
    title = (
        f"SemAD on {first['data']} ({first['sample']}; threshold {first['threshold']}; "
        "* = at the best-F1 threshold)"
    )
    table, marked = Table(list(columns), title=title), {}
    for row in rows:
        cells = []
        for key in keys:
            value = row[key]
            if key in ("flagged", "best_flagged") and isinstance(value, float):
                mark = row[key.replace("flagged", "flags_all")]
                value = "-" if value != value else f"{value:.1%}" + (" †" if mark else "")
                if mark:
                    marked[row["level"]] = row["positives"] / row["n"]
            cells.append(value)
        table.add(*cells)
    text = table.markdown()
    if marked:
        rates = ", ".join(f"{level} {rate:.3f}" for level, rate in marked.items())
        text += (
            f"\n† this threshold flags at least {FLAGS_ALL_SHARE:.0%} of the items: its precision "
            f"is about the anomaly rate ({rates}) whatever the scores, so P, R and F1 there say "
            "nothing about the model; judge it by AP and ROC-AUC.\n"
        )
    return text


def append_results(path: Any, rows: Sequence[dict[str, Any]]) -> Any:
    """Append ``rows`` to a results CSV, written atomically (an older file's columns are kept).

    The older rows are read back digit for digit (``float_precision="round_trip"``), so a value
    appended earlier is written again unchanged.
    """
    from pathlib import Path

    import pandas as pd

    from lmad.io import atomic_write_text

    new = pd.DataFrame(list(rows), columns=list(RESULT_COLUMNS))
    if Path(path).is_file():
        old = pd.read_csv(path, float_precision="round_trip")
        columns = [*RESULT_COLUMNS, *(c for c in old.columns if c not in RESULT_COLUMNS)]
        new = pd.concat([old, new], ignore_index=True).reindex(columns=columns)
    return atomic_write_text(path, new.to_csv(index=False))
