"""evaluation.py's work: run logs and labels in, Table-8-style metrics, plots and a report out.

Rows per LLM: Pred (first answers), Pred_adjust (point-adjusted with PAT), DCheck (self-reflection
answers where there are some), DCheck_adjust. Pooled rows concatenate every series (TAMA pools
Acc/P/R/F1 over series); mean rows average the per-series values.
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
from lmad.series.runlog import read_records, run_log_path, safe_name

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
class EvalOptions:
    dataset: str
    llms: list[str]
    subtask: str = "detection"
    data_dir: str | Path = "data"
    run_name: str = ""
    c0: float = 9.0
    normalised_threshold: float | None = None
    pat: float = 0.0
    vus_buffer: int | None = None
    plots: bool = True


@dataclass
class SeriesEval:
    series: str
    labels: np.ndarray
    values: np.ndarray
    types: np.ndarray | None
    merged: dict[str, MergedSeries]
    metrics: dict[str, dict[str, float]]
    type_pairs: dict[str, tuple[list[str], list[str]]] | None = None


def load_run(options: EvalOptions, llm: str) -> tuple[Path, dict[str, list[dict]]]:
    """Records of a run log grouped by series; a missing log names the command that makes it."""
    root = processed_root(options.data_dir, options.dataset, options.subtask)
    dataset = root.name.split("-")[0] if options.subtask != "detection" else root.name
    path = run_log_path(options.data_dir, options.subtask, dataset, llm, options.run_name)
    records = read_records(path)
    if not records:
        raise DataError(
            f"no run log {path}; run first: python main_cli.py --dataset {options.dataset} "
            f"--LLM {llm}"
            + (f" --subtask {options.subtask}" if options.subtask != "detection" else "")
        )
    grouped: dict[str, list[dict]] = {}
    for record in records:
        grouped.setdefault(str(record["series"]), []).append(record)
    return path, grouped


def threshold_of(options: EvalOptions) -> float:
    return options.normalised_threshold if options.normalised_threshold is not None else options.c0


def series_metrics(labels, merged: MergedSeries, options: EvalOptions, buffer: int) -> dict:
    """Every metric of one series and variant, unadjusted and adjusted."""
    scores = merged.normalised if options.normalised_threshold is not None else merged.scores
    preds = merged.predictions(options.c0, options.normalised_threshold)
    adjusted = point_adjust(labels, preds, options.pat)
    has_anomaly = bool(labels.any())
    shared = {"failed_windows": merged.failed_windows}
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


def evaluate_series(series: str, records: list[dict], options: EvalOptions) -> SeriesEval:
    root = processed_root(options.data_dir, options.dataset, options.subtask)
    folder = root / series / "test"
    try:
        import json

        meta = json.loads((folder / "meta.json").read_text())
        labels = np.load(folder / "series_labels.npy").astype(np.int8)
        values = np.load(folder / "series.npy")
    except (OSError, ValueError):
        raise DataError(
            f"no processed test data in {folder} for the run's series {series}"
        ) from None
    for record in records:
        if (record.get("window_size"), record.get("stride")) not in (
            (None, None),
            (meta["window_size"], meta["stride"]),
        ):
            raise DataError(
                f"run log of series {series} used windows {record['window_size']}/"
                f"{record['stride']}, but {folder} has {meta['window_size']}/{meta['stride']}; "
                "evaluate with the --subtask the run used, or rerun make_dataset.py"
            )
    types = np.load(folder / "types.npy") if (folder / "types.npy").exists() else None
    buffer = options.vus_buffer or max(1, meta["window_size"] // 6)
    merged, metrics, pairs = {}, {}, {}
    for variant in VARIANTS:
        merged[variant] = merge_window_answers(
            records, meta["starts"], meta["window_size"], meta["length"], variant
        )
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
    return SeriesEval(series, labels, values, types, merged, metrics, pairs or None)


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
    out["failed_windows"] = int(sum(r.get("failed_windows", 0) for r in rows))
    return out


def results_folder(options: EvalOptions, llm: str) -> Path:
    stem = options.run_name or f"{options.dataset}_{llm}"
    return Path(options.data_dir) / "results" / safe_name(options.subtask) / safe_name(stem)


def evaluate_llm(options: EvalOptions, llm: str) -> dict[str, Any]:
    """Metrics of one LLM's run: per series, mean over series and pooled; written to metrics.json."""
    path, grouped = load_run(options, llm)
    evals = [
        evaluate_series(series, records, options) for series, records in sorted(grouped.items())
    ]
    usage = [r.get("usage", {}) for records in grouped.values() for r in records]
    result = {
        "dataset": options.dataset,
        "llm": llm,
        "run_log": str(path),
        "c0": options.c0,
        "normalised_threshold": options.normalised_threshold,
        "pat": options.pat,
        "pooled": pooled_metrics(evals, options),
        "mean": {row: mean_metrics([e.metrics[row] for e in evals]) for row in evals[0].metrics},
        "series": {e.series: e.metrics for e in evals},
        "type_confusion": confusion(evals),
        "usage": {
            "prompt_tokens": sum(u.get("prompt_tokens", 0) for u in usage),
            "completion_tokens": sum(u.get("completion_tokens", 0) for u in usage),
            "cost_usd": round(sum(u.get("cost_usd", 0.0) for u in usage), 6),
        },
    }
    folder = results_folder(options, llm)
    atomic_write_json(folder / "metrics.json", _jsonable(result))
    result["_evals"] = evals
    return result


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, (np.floating, np.integer)):
        return _jsonable(obj.item())
    return obj
