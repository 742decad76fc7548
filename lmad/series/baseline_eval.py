"""Classical detectors in evaluation.py's table: ``--baselines all`` or ``--baselines stomp,kmeans``.

Each detector's point scores (``detect_baselines.py`` writes them, :mod:`lmad.series.scores` reads
them) are scored on the series the LLM evaluation covers (the processed test series, narrowed by
``--data_id_list``; with ``--LLM none`` there is no LLM and every processed test series counts),
under the same protocol and by the same metric functions (:mod:`lmad.series.baseline_metrics`:
threshold-free columns from the scores, thresholded ones from ``score > mean + 3 std``, TSB-AD's
rule). Rows: ``Pred`` and, where the protocol has them, ``Pred_adjust``; no ``DCheck`` rows.

A series the detector has no scores for is scored as an all-zero score (nothing flagged, the
threshold-free columns of a constant score), the analogue of an LLM window without an answer being
scored as normal; it is named in ``missing``, counted in ``series_scored``, and a note line above
the table says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmad.errors import ConfigError, DataError
from lmad.names import check_name
from lmad.series.baseline_metrics import (
    SIGMAS,
    detector_pooled,
    detector_series_metrics,
    rule_text,
    sigma_predictions,
)
from lmad.series.defaults import subtask_flag
from lmad.series.evaluate import load_test_split
from lmad.series.prepare import processed_root
from lmad.series.protocols import get_protocol, mean_metrics
from lmad.series.run_plan import EvalOptions, dataset_name, processed_metas, series_meta
from lmad.series.scores import (
    SeriesScores,
    combined_score,
    detector_folder,
    read_detector_scores,
    scored_detectors,
)

log = logging.getLogger(__name__)

ALL = "all"
MISSING_RULE = (
    "a series without scores is scored as an all-zero score: nothing flagged, the threshold-free "
    "columns of a constant score (as an LLM window without an answer is scored as normal)"
)
THRESHOLD_FREE = "AP / AUC-PR, AUC-ROC and VUS from the scores themselves"


@dataclass
class DetectorSeries:
    """One detector's scores on one evaluated series (zeros where it has none) and its rows."""

    series: str
    labels: np.ndarray
    values: np.ndarray
    channel_scores: np.ndarray
    """(points, channels) as the detector wrote them; zeros for a series without scores."""
    scored: bool
    meta: dict
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def score(self) -> np.ndarray:
        """The one score per point (channels min-max scaled, maximum over channels)."""
        return combined_score(self.channel_scores)

    @property
    def threshold(self) -> float:
        """mean + 3 std of :attr:`score`, the rule's threshold."""
        return float(self.score.mean() + SIGMAS * self.score.std())

    @property
    def predictions(self) -> np.ndarray:
        return sigma_predictions(self.score)


def parse_baselines(text: str) -> list[str]:
    """``--baselines``: ``""`` -> none, ``"all"`` -> ``["all"]``, ``"stomp, kmeans"`` -> names."""
    names = [part.strip() for part in str(text).split(",") if part.strip()]
    if ALL in names and len(names) > 1:
        raise ConfigError(f"--baselines {text!r}: give either 'all' or detector names, not both")
    return list(dict.fromkeys(names))


def score_command(options: EvalOptions, detector: str | None = None) -> str:
    """The command that writes the scores evaluation reads."""
    command = f"python detect_baselines.py --dataset {options.dataset}"
    command += f" --detectors {detector}" if detector else ""
    return command + subtask_flag(options.subtask)


def resolve_baselines(options: EvalOptions) -> list[str]:
    """The detectors ``--baselines`` names, each checked to have scores for this dataset."""
    dataset = dataset_name(options)
    available = scored_detectors(options.data_dir, options.subtask, dataset)
    root = Path(options.data_dir) / "scores" / options.subtask / dataset
    if options.baselines == [ALL]:
        if not available:
            raise DataError(
                f"--baselines all: no detector has scores for {dataset} in {root}; run first: "
                f"{score_command(options)}"
            )
        return available
    for name in options.baselines:
        check_name(name, "--baselines")
        if name not in available:
            have = (
                f"detectors with scores: {', '.join(available)}"
                if available
                else "no detector has scores for this dataset yet"
            )
            raise DataError(
                f"--baselines {name}: no scores of detector {name!r} in "
                f"{detector_folder(options.data_dir, options.subtask, dataset, name)} ({have}); "
                f"run first: {score_command(options, name)}"
            )
    return list(options.baselines)


def evaluated_splits(
    options: EvalOptions, llm_results: list[dict[str, Any]]
) -> dict[str, tuple[np.ndarray, np.ndarray, dict]]:
    """Series -> (labels, values, processed meta) of the series the detectors are scored on.

    The union of the series the LLM evaluations covered; without an LLM, ``--data_id_list`` or
    every processed test series (of any modality: a detector needs neither images nor text).
    """
    if llm_results:
        evals = [e for result in llm_results for e in result["_evals"]]
        return {
            e.series: (e.labels, e.values, e.meta) for e in sorted(evals, key=lambda e: e.series)
        }
    root = processed_root(options.data_dir, options.dataset, options.subtask)
    if options.ids:
        metas = {series: series_meta(root, series) for series in options.ids}
    else:
        metas = processed_metas(root, None)
    if not metas:
        raise DataError(
            f"no processed test series in {root}; run first: python make_dataset.py --dataset "
            f"{options.dataset} --mode test"
        )
    return {series: (*load_test_split(options, series)[:2], meta) for series, meta in metas.items()}


def evaluate_baselines(
    options: EvalOptions, llm_results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One result per detector of ``options.baselines`` (resolved names), nothing written."""
    if not options.baselines:
        return []
    splits = evaluated_splits(options, llm_results)
    return [evaluate_detector(options, name, splits) for name in options.baselines]


def evaluate_detector(
    options: EvalOptions, name: str, splits: dict[str, tuple[np.ndarray, np.ndarray, dict]]
) -> dict[str, Any]:
    """A detector's metrics per series, mean and pooled under the protocol, with its parameters."""
    meta, scores = read_detector_scores(options.data_dir, options.subtask,
                                        dataset_name(options), name)  # fmt: skip
    evals = [
        detector_series(options, name, series, split, scores.get(series))
        for series, split in splits.items()
    ]
    for e in evals:
        e.metrics = detector_series_metrics(options.protocol, e.labels, e.channel_scores,
                                            e.values, e.meta, options)  # fmt: skip
    protocol = get_protocol(options.protocol)
    rows = [row.name for row in protocol.rows_of("Pred")]
    missing = [e.series for e in evals if not e.scored]
    pooled = detector_pooled(
        protocol.name, [e.labels for e in evals], [e.channel_scores for e in evals],
        [e.metrics for e in evals], options,
    )  # fmt: skip
    result = {
        "detector": name,
        "label": detector_label(name, meta),
        "protocol": protocol.name,
        "rule": rule_text(protocol.name),
        "threshold_free": THRESHOLD_FREE,
        "pooling": protocol.pooling,
        "parameters": detector_parameters(meta, [e.series for e in evals if e.scored]),
        "series_evaluated": len(evals),
        "series_scored": len(evals) - len(missing),
        "missing": missing,
        "missing_rule": MISSING_RULE,
        "note": missing_note(options, name, detector_label(name, meta), missing, len(evals)),
        "pooled": pooled,
        "mean": {row: mean_metrics([e.metrics[row] for e in evals]) for row in rows},
        "series": {e.series: e.metrics for e in evals},
        "thresholds": {e.series: e.threshold for e in evals},
        "_evals": evals,
    }
    if result["note"]:
        log.warning("%s", result["note"])
    return result


def detector_series(
    options: EvalOptions,
    name: str,
    series: str,
    split: tuple[np.ndarray, np.ndarray, dict],
    scores: SeriesScores | None,
) -> DetectorSeries:
    """The detector's scores checked against the processed split, or zeros when it has none."""
    labels, values, meta = split
    if scores is None:
        channels = len(meta.get("channels") or [0])
        return DetectorSeries(
            series, labels, values, np.zeros((len(labels), channels)), False, meta
        )
    array = np.asarray(scores.channel_scores, dtype=np.float64)
    array = array[:, None] if array.ndim == 1 else array
    where = detector_folder(options.data_dir, options.subtask, dataset_name(options), name)
    problem = None
    if array.ndim != 2 or array.shape[0] != len(labels) or array.shape[1] == 0:
        problem = f"has shape {array.shape}, the processed test split {len(labels)} points"
    elif not np.isfinite(array).all():
        problem = "holds NaN or infinite scores"
    if problem:
        raise DataError(
            f"{where / (series + '.npy')} {problem}; score it again: {score_command(options, name)}"
        )
    return DetectorSeries(series, labels, values, array, True, meta)


def detector_label(name: str, meta: dict[str, Any]) -> str:
    """The table's name of a detector: ``stomp (aeon)`` when aeon produced its scores."""
    return f"{name} (aeon)" if meta.get("aeon_version") else f"{name} (detector)"


def detector_parameters(meta: dict[str, Any], series: list[str]) -> dict[str, Any]:
    """What produced the scores (``meta.json``: library version, ...) and, per evaluated series,
    its entry (parameters such as window sizes, seconds, how channels were handled)."""
    out = {k: v for k, v in meta.items() if k != "series"}
    out["series"] = {s: meta["series"][s] for s in series if s in meta["series"]}
    return out


def missing_note(
    options: EvalOptions, name: str, label: str, missing: list[str], total: int
) -> str | None:
    """The line above the table for a detector without scores for some evaluated series."""
    if not missing:
        return None
    return (
        f"{label}: no scores for {len(missing)} of {total} series (e.g. {missing[0]}): scored as "
        f"all-zero, nothing flagged; score them: {score_command(options, name)}"
    )
