"""evaluation.py's work: run logs and labels in, Table-8-style metrics, plots and a report out.

Rows per LLM: Pred (first answers), Pred_adjust (point-adjusted with PAT), DCheck (self-reflection
answers where there are some), DCheck_adjust. Pooled rows compute P/R/F1/accuracy over the
concatenated series (TAMA pools Acc/P/R/F1 over series) and average the other metrics over series;
mean rows average every per-series value.

Which answers count comes from :class:`~lmad.series.run_state.RunState`, the same resolution that
``main_cli.py`` reports: an analysis conditioned on a failed or replaced reference is not used, and
the expected work is every window and channel of the processed test data (``--data_id_list``
narrows it). Windows without a usable answer are scored as normal and counted per stage as failed,
blocked or never asked in ``metrics.json`` and above the table.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmad.errors import DataError
from lmad.io import atomic_write_json
from lmad.metrics.adjust import point_adjust
from lmad.metrics.affiliation import affiliation_prf
from lmad.metrics.auc import threshold_sweep_auc
from lmad.metrics.classification import segment_types, type_accuracy, type_confusion
from lmad.metrics.event import event_prf
from lmad.metrics.point import point_prf
from lmad.metrics.range_based import range_prf
from lmad.metrics.vus import vus
from lmad.series.merge import VARIANTS, MergedSeries, interval_types, merge_window_answers
from lmad.series.prepare import processed_root
from lmad.series.run_plan import EvalOptions, load_run, run_plan, variant_answers
from lmad.series.run_state import RunState
from lmad.series.runlog import run_log_path
from lmad.series.windows import MAX_CONFIDENCE, c0_reachable, max_point_coverage

log = logging.getLogger(__name__)
METRICS = (
    "precision",
    "recall",
    "f1",
    "auc_pr",
    "auc_roc",
    "aff_precision",
    "aff_recall",
    "aff_f1",
    "vus_pr",
    "vus_roc",
    "range_f1",
    "event_f1",
)


@dataclass
class SeriesEval:
    series: str
    labels: np.ndarray
    values: np.ndarray
    types: np.ndarray | None
    merged: dict[str, MergedSeries]
    metrics: dict[str, dict[str, float]]
    type_pairs: dict[str, tuple[list[str], list[str]]] | None = None


def threshold_of(options: EvalOptions) -> float:
    return options.normalised_threshold if options.normalised_threshold is not None else options.c0


def series_metrics(labels, merged: MergedSeries, options: EvalOptions, buffer: int) -> dict:
    """Every metric of one series and variant, unadjusted and adjusted."""
    scores = merged.normalised if options.normalised_threshold is not None else merged.scores
    preds = merged.predictions(options.c0, options.normalised_threshold)
    adjusted = point_adjust(labels, preds, options.pat)
    has_anomaly = bool(labels.any())
    shared = {"unanswered_windows": merged.unanswered}
    if has_anomaly:
        aff = affiliation_prf(labels, preds)
        volume = vus(labels, merged.normalised, max_buffer=buffer)
    else:
        aff = {"precision": math.nan, "recall": math.nan, "f1": math.nan}
        volume = {"vus_pr": math.nan, "vus_roc": math.nan}
    shared.update(
        aff_precision=aff["precision"],
        aff_recall=aff["recall"],
        aff_f1=aff["f1"],
        vus_pr=volume["vus_pr"],
        vus_roc=volume["vus_roc"],
    )
    out = {}
    for suffix, p, pat in (("", preds, None), ("_adjust", adjusted, options.pat)):
        point = point_prf(labels, p)
        auc = threshold_sweep_auc(labels, scores, adjust_pat=pat)
        out[suffix] = {
            "precision": point["precision"],
            "recall": point["recall"],
            "f1": point["f1"],
            "accuracy": point["accuracy"],
            "auc_pr": auc["auc_pr"],
            "auc_roc": auc["auc_roc"],
            "range_f1": range_prf(labels, p)["f1"],
            "event_f1": event_prf(labels, p)["f1"],
            **shared,
        }
    return out


def evaluate_series(series: str, state: RunState, meta: dict, options: EvalOptions) -> SeriesEval:
    folder = processed_root(options.data_dir, options.dataset, options.subtask) / series / "test"
    try:
        labels = np.load(folder / "series_labels.npy").astype(np.int8)
        values = np.load(folder / "series.npy")
    except (OSError, ValueError):
        raise DataError(
            f"no processed test data in {folder} for the run's series {series}"
        ) from None
    types = np.load(folder / "types.npy") if (folder / "types.npy").exists() else None
    buffer = options.vus_buffer or max(1, meta["window_size"] // 6)
    expected = sum(1 for s, _, _ in state.plan.windows if s == series)
    merged, metrics, pairs = {}, {}, {}
    for variant in VARIANTS:
        answers = variant_answers(state, series, variant)
        merged[variant] = merge_window_answers(
            answers, meta["starts"], meta["window_size"], meta["length"]
        )
        merged[variant].unanswered = expected - len(answers)
        for suffix, values_ in series_metrics(labels, merged[variant], options, buffer).items():
            metrics[variant + suffix] = values_
        if types is not None:
            preds = merged[variant].predictions(options.c0, options.normalised_threshold)
            true, pred = segment_types(types, interval_types(merged[variant], preds))
            pairs[variant] = (true, pred)
            accuracy = type_accuracy(true, pred) if true else math.nan
            metrics[variant]["type_accuracy"] = metrics[variant + "_adjust"]["type_accuracy"] = (
                accuracy
            )
    warn_unreachable_c0(series, merged["Pred"], meta, options)
    return SeriesEval(series, labels, values, types, merged, metrics, pairs or None)


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
        MAX_CONFIDENCE * cover, max(1, size // 3),
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


def pooled_metrics(evals: list[SeriesEval], options: EvalOptions) -> dict[str, dict[str, float]]:
    """Point metrics over all series concatenated; the other metrics averaged over series."""
    pooled = {}
    for row in evals[0].metrics:
        variant, adjust = row.split("_")[0], row.endswith("_adjust")
        labels = np.concatenate([e.labels for e in evals])
        preds = np.concatenate(
            [
                point_adjust(
                    e.labels,
                    e.merged[variant].predictions(options.c0, options.normalised_threshold),
                    options.pat,
                )
                if adjust
                else e.merged[variant].predictions(options.c0, options.normalised_threshold)
                for e in evals
            ]
        )
        point = point_prf(labels, preds)
        mean = mean_metrics([e.metrics[row] for e in evals])
        pooled[row] = {
            **mean,
            "precision": point["precision"],
            "recall": point["recall"],
            "f1": point["f1"],
            "accuracy": point["accuracy"],
        }
        f1s = [e.metrics[row]["f1"] for e in evals]
        pooled[row].update(f1_max=max(f1s), f1_min=min(f1s), f1_std=float(np.std(f1s)))
    return pooled


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys()
    out = {}
    for key in keys:
        values = [r[key] for r in rows if not (isinstance(r[key], float) and math.isnan(r[key]))]
        out[key] = float(np.mean(values)) if values else math.nan
    out["unanswered_windows"] = int(sum(r.get("unanswered_windows", 0) for r in rows))
    return out


def results_folder(options: EvalOptions, llm: str) -> Path:
    """``<data_dir>/results/<subtask>/<log stem>``: one folder per run log."""
    root = processed_root(options.data_dir, options.dataset, options.subtask)
    dataset = root.name.split("-")[0] if options.subtask != "detection" else root.name
    log = run_log_path(
        options.data_dir, options.subtask, dataset, llm, options.run_name, options.modality
    )
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
        "pooled": pooled_metrics(evals, options),
        "mean": {row: mean_metrics([e.metrics[row] for e in evals]) for row in evals[0].metrics},
        "series": {e.series: e.metrics for e in evals},
        "type_confusion": confusion(evals),
        "usage": usage_of(records),
    }
    result["_evals"] = evals
    return result


def write_metrics(options: EvalOptions, result: dict[str, Any]) -> Path:
    """``metrics.json`` of one evaluation (everything but the in-memory series)."""
    folder = results_folder(options, result["llm"])
    data = {k: v for k, v in result.items() if not k.startswith("_")}
    return atomic_write_json(folder / "metrics.json", _jsonable(data))


def usage_of(records: list[dict]) -> dict[str, float]:
    """Tokens and dollars of every request in the log (failed ones cost too)."""
    usage = [r.get("usage") or {} for r in records]
    return {
        "prompt_tokens": sum(u.get("prompt_tokens", 0) for u in usage),
        "completion_tokens": sum(u.get("completion_tokens", 0) for u in usage),
        "cost_usd": round(sum(u.get("cost_usd", 0.0) for u in usage), 6),
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, (np.floating, np.integer)):
        return _jsonable(obj.item())
    return obj
