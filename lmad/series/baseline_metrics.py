"""Metrics of a score-based detector (``evaluation.py --baselines``) under each protocol.

A detector gives one score per point and no answer, so the protocols' metric functions take its
scores directly:

- threshold-free columns (AP / AUC-PR, AUC-ROC, VUS) come from the scores;
- thresholded columns (P/R/F1, point-adjusted, affiliation, range- and event-based) come from one
  rule, the one TSB-AD uses for its thresholded metrics (Liu & Paparrizos, "The Elephant in the
  Room: Towards A Reliable Time-Series Anomaly Detection Benchmark", NeurIPS 2024 Datasets and
  Benchmarks; TSB-AD 1.5's ``TSB_AD/main.py`` min-max scales a detector's output to [0, 1] and
  passes ``pred = output > mean(output) + 3 * std(output)`` to ``get_metrics``): a point is
  anomalous when its score exceeds the mean plus three standard deviations (numpy's population
  std) of that series' test scores. The rule is invariant to min-max scaling, so it flags the
  same points on the raw and on the scaled score.

Per protocol (rows ``Pred`` and, where the protocol has adjusted rows, ``Pred_adjust``; a detector
has no self-reflection, so no ``DCheck`` rows):

- ``lmad``: :func:`lmad.series.protocols.lmad_rows` with the score as both the ranked and the
  normalised score (it lies in [0, 1]); pooled as lmad pools (P/R/F1 over the concatenated series).
- ``tama``: every channel on its own, as TAMA's code scores the LLM's channels: each channel's score
  min-max scaled and thresholded by its own mean + 3 std; Acc/P/R/F1 from TP/FP/TN/FN summed over
  channels (and over series when pooled), TAMA's point adjustment with PAT for ``Pred_adjust``.
  AUC-PR and AUC-ROC: TAMA's threshold-sweep areas (trapezoid rule, :func:`threshold_sweep_auc`)
  over every distinct score value in place of TAMA's c0 grid (which is made for summed confidences
  0..12), over the channels (and series) together, as TAMA sums counts along its grid; the adjusted
  areas adjust with PAT 0 at every threshold (TAMA's quirk (c), :mod:`lmad.metrics.tama`).
- ``tsb-ad``: :func:`lmad.metrics.tsbad.tsbad_metrics` with ``predictions`` = the rule, exactly as
  TSB-AD's benchmark calls ``get_metrics``, and TSB-AD's sliding window; pooled by the mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmad.metrics.adjust import segments
from lmad.metrics.auc import threshold_sweep_auc
from lmad.metrics.point import confusion_counts, prf_from_counts
from lmad.metrics.tama import tama_point_adjust
from lmad.series.protocols import (
    PRED,
    TsbadProtocol,
    get_protocol,
    lmad_pooled,
    lmad_rows,
    mean_pooled,
)
from lmad.series.scores import combined_score

SIGMAS = 3.0
RULE = (
    "a point is predicted anomalous when its score > mean + 3 std (population std) of the "
    "series' test scores (TSB-AD's rule, Liu & Paparrizos 2024)"
)
"""The threshold rule of every detector row, as metrics.json and the table state it."""
RULE_PER_CHANNEL = RULE + "; under --protocol tama per channel, each channel scored on its own"


def sigma_predictions(scores: np.ndarray, sigmas: float = SIGMAS) -> np.ndarray:
    """0/1 predictions ``scores > mean(scores) + sigmas * std(scores)`` (TSB-AD's rule).

    A constant score flags nothing (no point exceeds its own mean).
    """
    s = np.asarray(scores, dtype=np.float64)
    return (s > s.mean() + sigmas * s.std()).astype(np.int8)


def rule_text(protocol: str) -> str:
    return RULE_PER_CHANNEL if protocol == "tama" else RULE


def detector_series_metrics(
    protocol: str,
    labels: np.ndarray,
    channel_scores: np.ndarray,
    values: np.ndarray,
    meta: dict,
    options: Any,
) -> dict[str, dict[str, float]]:
    """One series' detector rows under ``protocol`` (``channel_scores``: (points, channels))."""
    score = combined_score(channel_scores)
    if protocol == "lmad":
        return lmad_rows(labels, score, score, sigma_predictions(score), meta, options)
    if protocol == "tama":
        return tama_rows([labels], [channel_scores], options.pat)
    from lmad.metrics.tsbad import tsbad_metrics

    window = TsbadProtocol.window(values, options)
    return {PRED.name: tsbad_metrics(labels, score, window, sigma_predictions(score))}


def detector_pooled(
    protocol: str,
    labels: list[np.ndarray],
    channel_scores: list[np.ndarray],
    series_metrics: list[dict[str, dict[str, float]]],
    options: Any,
) -> dict[str, dict[str, float]]:
    """The detector's pooled rows over the evaluated series, pooled as ``protocol`` pools."""
    rows = get_protocol(protocol).rows_of(PRED.variant)
    if protocol == "lmad":
        predictions = [{PRED.variant: sigma_predictions(combined_score(c))} for c in channel_scores]
        return lmad_pooled(rows, labels, predictions, series_metrics, options.pat)
    if protocol == "tama":
        return tama_rows(labels, channel_scores, options.pat)
    return mean_pooled(tuple(row.name for row in rows), series_metrics)


def tama_rows(
    labels: list[np.ndarray], channel_scores: list[np.ndarray], pat: float
) -> dict[str, dict[str, float]]:
    """TAMA-protocol ``Pred`` and ``Pred_adjust`` rows of one or several series (module docstring).

    Each channel of ``channel_scores[i]`` (shape (points, channels)) is scored with ``labels[i]``.
    """
    pairs = [
        (y, combined_score(c[:, [k]]))
        for y, c in zip(labels, channel_scores, strict=True)
        for k in range(c.shape[1])
    ]
    out = {}
    for name, row_pat in (("Pred", None), ("Pred_adjust", pat)):
        counts = np.zeros(4, dtype=np.int64)
        for y, s in pairs:
            p = sigma_predictions(s)
            if row_pat is not None:
                p = tama_point_adjust(y, p, row_pat)
            counts += confusion_counts(y, p)  # (tp, fp, fn, tn)
        tp, fp, fn, tn = (int(c) for c in counts)
        y_all = np.concatenate([y for y, _ in pairs])
        ranked = [segment_max(y, s) if row_pat is not None else s for y, s in pairs]
        auc = threshold_sweep_auc(y_all, np.concatenate(ranked))
        out[name] = {**prf_from_counts(tp, fp, fn, tn), "auc_pr": auc["auc_pr"],
                     "auc_roc": auc["auc_roc"]}  # fmt: skip
    return out


def segment_max(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Scores with every true segment raised to its highest score.

    With PAT 0 a segment is credited at threshold c0 exactly when one of its points reaches c0, i.e.
    when its highest score does; so ``segment_max(y, s) >= c0`` is the adjusted prediction at every
    c0, and a sweep over these scores gives the adjusted curves (TAMA's quirk (c) adjusts its AUC
    with PAT 0). Series are adjusted one by one before they are concatenated.
    """
    out = np.asarray(scores, dtype=np.float64).copy()
    for start, end in segments(labels):
        out[start:end] = out[start:end].max()
    return out
