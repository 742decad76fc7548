"""train_classifier.py's log-anomaly rows: DeepLog, LogAnomaly and LogBERT on job-key sequences.

The published setting of these detectors (Du et al. 2017; Meng et al. 2019; Guo et al. 2021): train
on *normal* sequences only, choose the detection parameters on validation, report on test. Here:

1. the splits become log-key sequences (:mod:`lmad.workflows.log_keys`: job type + feature
   buckets chosen on the normal train jobs, runs in DAG order, the classifiers' split by run), once
   per candidate bucket quantile (``key_quantiles``);
2. each model is fitted on the train split's normal runs, once per candidate quantile and window
   (DeepLog, LogAnomaly: ``windows``; LogBERT sees the whole run and has one candidate);
3. on validation, the quantile, the window and the top-g rule's ``g`` (1..``max_g``) with the best
   job-level F1 are chosen (ties: the smaller quantile, window, then g);
4. the test split is scored with them: a job is anomalous when its true key is not among the g
   most likely keys at its position; its score (ROC-AUC, AP) is the key's surprisal ``-log p``.

``train_time_s`` is the time of every fit the row needed (all candidates); ``eval_time_s`` scores
validation and test. A fitted model is saved under
``<data_dir>/models/log_anomaly/<dataset>/<model>-w<window>-<settings hash>/`` and reused by a rerun
with the same data and settings (its recorded fit time is reported again), so an interrupted
comparison resumes without training twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmad.errors import DataError
from lmad.io import atomic_write_json
from lmad.workflows.classifier import WorkflowData, classification_scores
from lmad.workflows.log_keys import JobScores, JobSequences, KeyedSplits, keyed_splits

METHOD = "log anomaly (normal runs only)"
CHOICE_COLUMNS = (
    "key_quantile", "window", "top_g", "validation_f1", "vocabulary", "train_runs", "fits",
)  # fmt: skip
"""Columns a log-anomaly row adds to the results CSV: what was chosen on validation, and from what."""


@dataclass(frozen=True)
class SequenceSettings:
    """How the log-anomaly rows are trained and tuned (train_classifier.py's flags)."""

    key_quantiles: tuple[float, ...]
    """Candidate bucket quantiles: a feature is low/high below q / above 1 - q among the normal
    train jobs of its type; chosen on validation."""
    windows: tuple[int, ...]
    """Candidate history lengths of DeepLog and LogAnomaly, chosen on validation."""
    max_g: int
    """The top-g rule's g is chosen on validation among 1..max_g."""
    epochs: int | None
    """Training epochs; None: each model's own default."""
    seed: int


@dataclass
class Choice:
    """The quantile, window and g chosen on validation, and the validation F1 they reached."""

    quantile: float
    window: int | None
    top_g: int
    validation_f1: float


Candidate = tuple[float, int | None]
"""(key quantile, window) of one fitted model."""


def settings_hash(settings: SequenceSettings, splits: KeyedSplits, name: str, window: int | None):
    """What decides a fitted model: its settings, the vocabulary and the normal train runs."""
    normal = splits.train.normal()
    what = {"model": name, "window": window, "epochs": settings.epochs, "seed": settings.seed}
    what |= {"quantile": splits.scheme.quantile, "vocabulary": splits.vocabulary.texts}
    what |= {"runs": normal.runs, "keys": [k.tolist() for k in normal.keys]}
    blob = json.dumps(what, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def job_f1(sequences: JobSequences, flagged: Sequence[np.ndarray]) -> float:
    """Binary job-level F1 of per-run predictions."""
    if not len(sequences):
        return 0.0
    truth = sequences.job_labels()
    return classification_scores(truth, np.concatenate(flagged))["f1"]


def choose(candidates: dict[Candidate, JobScores], validation: JobSequences, max_g: int) -> Choice:
    """The (quantile, window, g) with the best validation job F1; ties: the smaller ones."""
    best: Choice | None = None
    for quantile, window in sorted(candidates, key=lambda c: (c[0], -1 if c[1] is None else c[1])):
        for g in range(1, max_g + 1):
            f1 = job_f1(validation, candidates[(quantile, window)].flagged(g))
            if best is None or f1 > best.validation_f1 + 1e-12:
                best = Choice(quantile, window, g, f1)
    if best is None:
        raise ValueError("no candidate model to choose from")
    return best


def fitted(
    name: str,
    window: int | None,
    splits: KeyedSplits,
    settings: SequenceSettings,
    folder: Path,
    build: Callable[[int | None], Any],
    load: Callable[[Path], Any],
) -> tuple[Any, float]:
    """(model, fit seconds): loaded from ``folder`` when saved by an earlier run, else fitted."""
    tag = "all" if window is None else f"w{window}"
    path = folder / f"{name}-{tag}-{settings_hash(settings, splits, name, window)}"
    meta, weights = path / "fit.json", path / "model.pt"
    if meta.exists() and weights.exists():
        return load(weights), float(json.loads(meta.read_text())["fit_seconds"])
    model = build(window)
    start = time.perf_counter()
    model.fit(splits.train.normal())
    seconds = time.perf_counter() - start
    path.mkdir(parents=True, exist_ok=True)
    model.save(weights)
    atomic_write_json(meta, {"fit_seconds": seconds, "model": name, "window": window})
    return model, seconds


def log_anomaly_row(
    name: str,
    data: WorkflowData,
    keyed: dict[float, KeyedSplits],
    settings: SequenceSettings,
    folder: Path,
) -> dict[str, Any]:
    """Fit every candidate, choose on validation, score the test split: one table row."""
    from lmad.workflows.log_models import model_factory

    train_seconds, models = 0.0, {}
    for quantile, splits in keyed.items():
        build, load, windows = model_factory(name, splits, settings)
        for window in windows:
            model, seconds = fitted(name, window, splits, settings, folder, build, load)
            models[(quantile, window)] = model
            train_seconds += seconds
    start = time.perf_counter()
    on_validation = {c: m.score(keyed[c[0]].validation) for c, m in models.items()}
    choice = choose(on_validation, next(iter(keyed.values())).validation, settings.max_g)
    splits = keyed[choice.quantile]
    on_test = models[(choice.quantile, choice.window)].score(splits.test)
    eval_seconds = time.perf_counter() - start
    predictions = splits.test.to_rows(on_test.flagged(choice.top_g), len(data.test))
    scores = splits.test.to_rows(on_test.surprisal, len(data.test))
    truth = (data.labels("test") != 0).astype(np.int64)
    return {
        "method": METHOD,
        "model": name,
        "train_time_s": train_seconds,
        "eval_time_s": eval_seconds,
        **classification_scores(truth, predictions.astype(np.int64)),
        "n_test": len(data.test),
        "predictions": predictions.astype(np.int64),
        "scores": scores,
        "key_quantile": choice.quantile,
        "window": choice.window,
        "top_g": choice.top_g,
        "validation_f1": choice.validation_f1,
        "vocabulary": len(splits.vocabulary),
        "train_runs": len(splits.train.normal()),
        "fits": len(models),
        "epochs": settings.epochs,
        "seed": settings.seed,
    }


def run_log_anomaly_rows(
    data: WorkflowData,
    names: Sequence[str],
    settings: SequenceSettings,
    model_dir: Path,
    record: Callable[..., None],
) -> None:
    """One row per name in ``names`` (see the module docstring), recorded as soon as it is done."""
    if not data.feature_columns:
        raise DataError(
            f"{data.name}: no numeric feature columns, so no log keys; process the data with "
            "data_processing/flowbench.py (its default features)"
        )
    keyed = {
        q: keyed_splits(data.train, data.validation, data.test, data.feature_columns, q)
        for q in settings.key_quantiles
    }
    for name in names:
        row = log_anomaly_row(name, data, keyed, settings, model_dir)
        record(row, **{column: row.pop(column) for column in CHOICE_COLUMNS})
