"""evaluation.py's work: run logs and labels in, Table-8-style metrics, plots and a report out.

Rows per LLM: Pred (first answers), Pred_adjust (point-adjusted with PAT), DCheck (self-reflection
answers where there are some), DCheck_adjust (the tsb-ad protocol has Pred and DCheck only). Which
metrics, and how the pooled rows pool, is the protocol's (:mod:`lmad.series.protocols`: lmad pools
P/R/F1 over the concatenated series and averages the rest, tama sums counts over series and
channels, tsb-ad averages over series); mean rows average every per-series value.

Which answers count comes from :class:`~lmad.series.run_state.RunState`, the same resolution that
``main_cli.py`` reports: an analysis conditioned on a failed or replaced reference is not used, and
the expected work is every window and channel of the processed test data (``--data_id_list``
narrows it). Windows without a usable answer are scored as normal and counted per stage as failed,
blocked or never asked in ``metrics.json`` and above the table.

Score-based detectors (``--baselines``) are evaluated on the same series by
:mod:`lmad.series.baseline_eval`; their section joins ``metrics.json`` (:func:`write_metrics`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmad.errors import DataError
from lmad.io import atomic_write_json
from lmad.metrics.classification import segment_types, type_accuracy, type_confusion
from lmad.series.merge import VARIANTS, MergedSeries, interval_types, merge_window_answers
from lmad.series.prepare import processed_root
from lmad.series.protocols import get_protocol, mean_metrics
from lmad.series.run_plan import EvalOptions, dataset_name, load_run, run_plan, variant_answers
from lmad.series.run_state import RunState
from lmad.series.runlog import run_log_path
from lmad.series.windows import MAX_CONFIDENCE, c0_reachable, max_point_coverage, tama_stride

log = logging.getLogger(__name__)


@dataclass
class SeriesEval:
    series: str
    labels: np.ndarray
    values: np.ndarray
    types: np.ndarray | None
    merged: dict[str, MergedSeries]
    metrics: dict[str, dict[str, float]]
    type_pairs: dict[str, tuple[list[str], list[str]]] | None = None
    meta: dict | None = None


def threshold_of(options: EvalOptions) -> float:
    return options.normalised_threshold if options.normalised_threshold is not None else options.c0


def load_test_split(
    options: EvalOptions, series: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(labels, values, anomaly types or None) of one processed test split."""
    folder = processed_root(options.data_dir, options.dataset, options.subtask) / series / "test"
    try:
        labels = np.load(folder / "series_labels.npy").astype(np.int8)
        values = np.load(folder / "series.npy")
    except (OSError, ValueError):
        raise DataError(f"no processed test data in {folder} for the series {series}") from None
    types = np.load(folder / "types.npy") if (folder / "types.npy").exists() else None
    return labels, values, types


def evaluate_series(series: str, state: RunState, meta: dict, options: EvalOptions) -> SeriesEval:
    labels, values, types = load_test_split(options, series)
    expected = sum(1 for s, _, _ in state.plan.windows if s == series)
    channels = len(meta.get("channels") or [0])
    merged, pairs = {}, {}
    for variant in VARIANTS:
        answers = variant_answers(state, series, variant, fallback=options.protocol != "tama")
        merged[variant] = merge_window_answers(
            answers, meta["starts"], meta["window_size"], meta["length"], channels
        )
        merged[variant].unanswered = expected - len(answers)
    protocol = get_protocol(options.protocol)
    metrics = protocol.series(labels, merged, values, meta, options)
    if types is not None:
        for variant in VARIANTS:
            preds = merged[variant].predictions(options.c0, options.normalised_threshold)
            true, pred = segment_types(types, interval_types(merged[variant], preds))
            pairs[variant] = (true, pred)
            accuracy = type_accuracy(true, pred) if true else math.nan
            for row in protocol.rows_of(variant):
                metrics[row.name]["type_accuracy"] = accuracy
    warn_unreachable_c0(series, merged["Pred"], meta, options)
    return SeriesEval(series, labels, values, types, merged, metrics, pairs or None, meta)


def warn_unreachable_c0(
    series: str, merged: MergedSeries, meta: dict, options: EvalOptions
) -> None:
    """Say so when no point can reach c0: confidences are at most 4 per covering window.

    Coverage is counted as make_dataset counts it (:func:`~lmad.series.windows.max_point_coverage`:
    the regular windows; a trailing window that overlaps more does not lift the rest of the series).
    """
    if options.normalised_threshold is not None:
        return
    size, stride = meta["window_size"], meta["stride"]
    cover = max_point_coverage(meta["length"], size, stride)
    if c0_reachable(cover, options.c0):
        return
    log.warning(
        "series %s: at most %d windows cover a point (window %d, stride %d), so the summed "
        "confidence reaches at most %d < c0 = %g and no point can be flagged; evaluate with "
        "--normalised_threshold 0.5 (or --c0 %d), or make the windows again with --stride %d",
        series, cover, size, stride, MAX_CONFIDENCE * cover, options.c0,
        MAX_CONFIDENCE * cover, tama_stride(size),
    )  # fmt: skip


def confusion(evals: list[SeriesEval]) -> dict[str, dict[str, Any]]:
    """Type confusion matrices and accuracy over every annotated segment of every series."""
    out = {}
    for variant in VARIANTS:
        true = [t for e in evals if e.type_pairs for t in e.type_pairs[variant][0]]
        pred = [p for e in evals if e.type_pairs for p in e.type_pairs[variant][1]]
        if true:
            matrix, names = type_confusion(true, pred)
            out[variant] = {
                "labels": names,
                "matrix": matrix.tolist(),
                "accuracy": type_accuracy(true, pred),
                "segments": len(true),
            }
    return out


def results_folder(options: EvalOptions, llm: str) -> Path:
    """``<data_dir>/results/<subtask>/<log stem>``: one folder per run log."""
    log = run_log_path(
        options.data_dir, options.subtask, dataset_name(options), llm, options.run_name,
        options.modality,
    )  # fmt: skip
    return Path(options.data_dir) / "results" / options.subtask / log.stem


def evaluate_llm(options: EvalOptions, llm: str) -> dict[str, Any]:
    """Metrics of one LLM's run: per series, mean over series and pooled (nothing written).

    A log without a single answered analysis is refused: its table would only show the rate of
    anomalies. An incomplete run is evaluated and marked (``complete``, ``incomplete``, ``counts``).
    """
    path, records = load_run(options, llm)
    plan, metas = run_plan(options, path, records)
    state = RunState.resolve(records, plan)
    counts = state.counts()
    if counts["analysis"].answered == 0:
        c = counts["analysis"]
        raise DataError(
            f"no successful analysis answer in {path} ({c.failed} failed, {c.blocked} blocked by "
            f"a failed reference, {c.missing} never asked): there is nothing to score; see the "
            "'error' field of its records and run main_cli.py again"
        )
    protocol = get_protocol(options.protocol)
    series_ids = sorted({s for s, _, _ in plan.windows})
    incomplete = state.incomplete_line()
    not_run = sorted(set(series_ids) - {str(r["series"]) for r in records})
    if incomplete and not_run:
        incomplete += (
            f" ({len(not_run)} of {len(series_ids)} series not run at all, e.g. {not_run[0]}: "
            "they are scored as normal; evaluate the series you ran with --data_id_list)"
        )
    if incomplete:
        log.warning("%s: %s", llm, incomplete)
    evals = [evaluate_series(series, state, metas[series], options) for series in series_ids]
    result = {
        "dataset": options.dataset,
        "llm": llm,
        "run_log": str(path),
        "modality": options.modality,
        "c0": options.c0,
        "normalised_threshold": options.normalised_threshold,
        "pat": options.pat,
        "complete": incomplete is None,
        "incomplete": incomplete,
        "counts": {stage: c.as_dict() for stage, c in counts.items()},
        "not_answered": state.problems()[:1000],
        "protocol": options.protocol,
        "tsbad_predictions": options.tsbad_predictions,
        "parameters": protocol.parameters(options, evals),
        "pooling": protocol.pooling,
        "pooled": protocol.pooled(evals, options),
        "mean": {row: mean_metrics([e.metrics[row] for e in evals]) for row in protocol.rows},
        "series": {e.series: e.metrics for e in evals},
        "type_confusion": confusion(evals),
        "usage": usage_of(records),
    }
    result["_evals"] = evals
    return result


def write_metrics(
    options: EvalOptions, result: dict[str, Any], baselines: Sequence[dict[str, Any]] = ()
) -> Path:
    """``metrics.json`` of one evaluation (everything but the in-memory series).

    ``baselines``: the detectors evaluated on the same series, one ``baselines`` entry each.
    """
    folder = results_folder(options, result["llm"])
    data = public(result)
    if baselines:
        data["baselines"] = {b["detector"]: public(b) for b in baselines}
    return atomic_write_json(folder / "metrics.json", jsonable(data))


def public(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its in-memory parts (keys starting with ``_``)."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


def usage_of(records: list[dict]) -> dict[str, float]:
    """Tokens and dollars of every request in the log (failed ones cost too)."""
    usage = [r.get("usage") or {} for r in records]
    return {
        "prompt_tokens": sum(u.get("prompt_tokens", 0) for u in usage),
        "completion_tokens": sum(u.get("completion_tokens", 0) for u in usage),
        "cost_usd": round(sum(u.get("cost_usd", 0.0) for u in usage), 6),
    }


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN as None and numpy scalars as Python numbers (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, (np.floating, np.integer)):
        return jsonable(obj.item())
    return obj
