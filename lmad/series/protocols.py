"""Evaluation protocols: which metrics a table shows, how each is defined, and how series are pooled.

``evaluation.py --protocol``:

- ``lmad`` (default): lmad's own definitions (README, "Evaluation protocols"): point P/R/F1, PAT
  adjustment, average precision (AP, the step-wise area of the c0 sweep) and AUC-ROC, affiliation,
  the VUS paper's VUS (Paparrizos et al., VLDB 2022) over buffers 0..window/6, range-based and event
  F1. Pooled: P/R/F1 over the concatenated series, every other column the mean over series.
- ``tama``: what TAMA's evaluation code prints (:mod:`lmad.metrics.tama`): Acc/P/R/F1 at c0, its
  point adjustment, AUC-PR/AUC-ROC from its c0 grid; every channel scored on its own; pooled by
  summing TP/FP/TN/FN over series and channels, at c0 and along the AUC grid.
- ``tsb-ad``: the columns of TSB-AD 1.5's ``get_metrics`` (:mod:`lmad.metrics.tsbad`) from the point
  scores, with TSB-AD's sliding window (its period estimate on the series) unless ``--vus_buffer``;
  F1 columns from TSB-AD's own thresholds unless ``--tsbad_predictions c0``. Pooled: the mean over
  series, as TSB-AD's benchmark averages its per-series results.

Each protocol maps a series' merged answers (one :class:`~lmad.series.merge.MergedSeries` per
variant) to its rows, and a list of evaluated series to pooled rows. Each row (:class:`Row`) names
the variant it scores and whether it is point-adjusted. Score-based detectors (``--baselines``) are
scored by the same metric functions in :mod:`lmad.series.baseline_metrics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmad.errors import ConfigError
from lmad.metrics.adjust import point_adjust
from lmad.metrics.affiliation import affiliation_prf
from lmad.metrics.auc import threshold_sweep_auc
from lmad.metrics.event import event_prf
from lmad.metrics.point import point_prf
from lmad.metrics.range_based import range_prf
from lmad.metrics.tama import C0_GRID, tama_metrics
from lmad.series.merge import VARIANTS, MergedSeries

NAN_AFF = {"precision": math.nan, "recall": math.nan, "f1": math.nan}
POINT_KEYS = ("accuracy", "precision", "recall", "f1")


@dataclass(frozen=True)
class Row:
    """A table row: its name, the variant whose answers it scores, and whether it is adjusted."""

    name: str
    variant: str
    adjusted: bool = False


PRED, PRED_ADJUST = Row("Pred", "Pred"), Row("Pred_adjust", "Pred", True)
DCHECK, DCHECK_ADJUST = Row("DCheck", "DCheck"), Row("DCheck_adjust", "DCheck", True)


@dataclass(frozen=True)
class Protocol:
    """A protocol's name, table columns (metric key -> header), rows and pooling rule."""

    name: str
    columns: dict[str, str]
    row_specs: tuple[Row, ...]
    pooling: str
    headline: tuple[str, str, str] = ("f1", "auc_pr", "auc_roc")
    """The keys of its F1, precision-recall area and ROC area (ablation tables show these)."""

    @property
    def rows(self) -> tuple[str, ...]:
        """The row names, in table order."""
        return tuple(row.name for row in self.row_specs)

    def rows_of(self, variant: str) -> tuple[Row, ...]:
        """The rows that score ``variant`` (a detector has only ``Pred``)."""
        return tuple(row for row in self.row_specs if row.variant == variant)

    def series(self, labels, merged: dict[str, MergedSeries], values, meta: dict, options) -> dict:
        raise NotImplementedError

    def pooled(self, evals: list, options) -> dict[str, dict[str, float]]:
        raise NotImplementedError

    def parameters(self, options, evals: list) -> dict[str, Any]:
        raise NotImplementedError


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Each key averaged over ``rows`` (NaN ignored; NaN when no value is defined).

    ``unanswered_windows`` (LLM rows) is summed instead.
    """
    out = {}
    for key in rows[0]:
        values = [r[key] for r in rows if not (isinstance(r[key], float) and math.isnan(r[key]))]
        out[key] = float(np.mean(values)) if values else math.nan
    if "unanswered_windows" in rows[0]:
        out["unanswered_windows"] = int(sum(r.get("unanswered_windows", 0) for r in rows))
    return out


def lmad_buffer(meta: dict, options) -> int:
    """lmad's VUS buffer: ``--vus_buffer``, else a sixth of the window."""
    return options.vus_buffer or max(1, meta["window_size"] // 6)


def scores_of(merged: MergedSeries, options) -> np.ndarray:
    """The point scores a threshold applies to: summed confidences, or normalised ones."""
    return merged.normalised if options.normalised_threshold is not None else merged.scores


def lmad_rows(
    labels: np.ndarray,
    scores: np.ndarray,
    normalised: np.ndarray,
    predictions: np.ndarray,
    meta: dict,
    options,
    variant: str = "Pred",
) -> dict[str, dict[str, float]]:
    """lmad's rows ``variant`` and ``variant_adjust`` of one series' scores and 0/1 predictions.

    ``scores`` rank the points for AP and AUC-ROC (the c0 sweep); ``normalised`` (in [0, 1]) is what
    VUS takes; affiliation and VUS do not depend on the adjustment and are shared by both rows.
    """
    from lmad.metrics.vus import vus_paper

    shared: dict[str, float] = {}
    if labels.any():
        aff = affiliation_prf(labels, predictions)
        volume = vus_paper(labels, normalised, max_buffer=lmad_buffer(meta, options))
    else:
        aff, volume = NAN_AFF, {"vus_pr": math.nan, "vus_roc": math.nan}
    shared.update(aff_f1=aff["f1"], vus_pr=volume["vus_pr"], vus_roc=volume["vus_roc"])
    adjusted = point_adjust(labels, predictions, options.pat)
    out = {}
    for suffix, p, pat in (("", predictions, None), ("_adjust", adjusted, options.pat)):
        point = point_prf(labels, p)
        auc = threshold_sweep_auc(labels, scores, adjust_pat=pat)
        out[variant + suffix] = {
            **{k: point[k] for k in POINT_KEYS},
            "ap": auc["average_precision"],
            "auc_roc": auc["auc_roc"],
            "range_f1": range_prf(labels, p)["f1"],
            "event_f1": event_prf(labels, p)["f1"],
            **shared,
        }
    return out


def lmad_pooled(
    rows: tuple[Row, ...],
    labels: list[np.ndarray],
    predictions: list[dict[str, np.ndarray]],
    series_metrics: list[dict[str, dict[str, float]]],
    pat: float,
) -> dict[str, dict[str, float]]:
    """lmad's pooling: P/R/F1 over the concatenated series, every other column the mean.

    ``predictions[i][variant]`` are series i's 0/1 predictions of a variant; an adjusted row adjusts
    each series before concatenating. Adds the spread of the per-series F1 (max, min, std).
    """
    pooled = {}
    y = np.concatenate(labels)
    for row in rows:
        parts = [
            point_adjust(label, p[row.variant], pat) if row.adjusted else p[row.variant]
            for label, p in zip(labels, predictions, strict=True)
        ]
        point = point_prf(y, np.concatenate(parts))
        per_series = [m[row.name] for m in series_metrics]
        pooled[row.name] = {**mean_metrics(per_series), **{k: point[k] for k in POINT_KEYS}}
        f1s = [m["f1"] for m in per_series]
        pooled[row.name].update(f1_max=max(f1s), f1_min=min(f1s), f1_std=float(np.std(f1s)))
    return pooled


class LmadProtocol(Protocol):
    """lmad's definitions; see the module docstring."""

    def series(self, labels, merged, values, meta, options) -> dict:
        out = {}
        for variant in VARIANTS:
            m = merged[variant]
            preds = m.predictions(options.c0, options.normalised_threshold)
            rows = lmad_rows(labels, scores_of(m, options), m.normalised, preds, meta, options,
                             variant)  # fmt: skip
            for metrics in rows.values():
                metrics["unanswered_windows"] = m.unanswered
            out.update(rows)
        return out

    def pooled(self, evals, options) -> dict[str, dict[str, float]]:
        predictions = [
            {v: e.merged[v].predictions(options.c0, options.normalised_threshold) for v in VARIANTS}
            for e in evals
        ]
        return lmad_pooled(self.row_specs, [e.labels for e in evals], predictions,
                           [e.metrics for e in evals], options.pat)  # fmt: skip

    def parameters(self, options, evals) -> dict[str, Any]:
        return {
            "threshold": _threshold(options),
            "pat": options.pat,
            "ap": "step-wise average precision over the c0 sweep (adjusted rows adjust at each c0)",
            "vus": "VUS paper (Paparrizos et al., VLDB 2022), normalised scores, buffers 0..W",
            "vus_buffer": {e.series: lmad_buffer(e.meta, options) for e in evals},
            "range_f1": "Tatbul et al. 2018, alpha 0, cardinality one, flat bias",
            "event_f1": "found true segments / predicted segments that hit one",
        }


class TamaProtocol(Protocol):
    """TAMA's evaluation code; see :mod:`lmad.metrics.tama`."""

    def series(self, labels, merged, values, meta, options) -> dict:
        if options.normalised_threshold is not None:
            raise ConfigError(
                "--protocol tama thresholds the summed confidences with --c0, as TAMA does; "
                "leave out --normalised_threshold (or use --protocol lmad)"
            )
        out = {}
        for variant in VARIANTS:
            m = merged[variant]
            rows = tama_metrics([labels] * len(m.per_channel), list(m.per_channel), options.c0,
                                options.pat)  # fmt: skip
            for row, metrics in rows.items():
                name = variant + row.removeprefix("Pred")
                out[name] = {**metrics, "unanswered_windows": m.unanswered}
        return out

    def pooled(self, evals, options) -> dict[str, dict[str, float]]:
        pooled = {}
        for variant in VARIANTS:
            labels = [e.labels for e in evals for _ in e.merged[variant].per_channel]
            scores = [c for e in evals for c in e.merged[variant].per_channel]
            for row, metrics in tama_metrics(labels, scores, options.c0, options.pat).items():
                name = variant + row.removeprefix("Pred")
                unanswered = sum(e.merged[variant].unanswered for e in evals)
                pooled[name] = {**metrics, "unanswered_windows": unanswered}
        return pooled

    def parameters(self, options, evals) -> dict[str, Any]:
        return {
            "c0": options.c0,
            "pat": options.pat,
            "auc_grid": list(C0_GRID),
            "auc_pat": 0.0,
            "source": "github.com/ChongKaKam/TAMA Datasets/Dataset.py (commit db99a75)",
        }


class TsbadProtocol(Protocol):
    """TSB-AD 1.5's ``get_metrics``; see :mod:`lmad.metrics.tsbad`."""

    def series(self, labels, merged, values, meta, options) -> dict:
        from lmad.metrics.tsbad import tsbad_metrics

        window = self.window(values, options)
        out = {}
        for variant in VARIANTS:
            m = merged[variant]
            preds = None
            if options.tsbad_predictions == "c0":
                preds = m.predictions(options.c0, options.normalised_threshold)
            metrics = tsbad_metrics(labels, scores_of(m, options), window, preds)
            out[variant] = {**metrics, "unanswered_windows": m.unanswered}
        return out

    @staticmethod
    def window(values, options) -> int:
        from lmad.metrics.tsbad import tsbad_sliding_window

        if options.vus_buffer:
            return options.vus_buffer
        return tsbad_sliding_window(np.asarray(values, dtype=float).reshape(len(values), -1)[:, 0])

    def pooled(self, evals, options) -> dict[str, dict[str, float]]:
        return mean_pooled(self.rows, [e.metrics for e in evals])

    def parameters(self, options, evals) -> dict[str, Any]:
        return {
            "sliding_window": {e.series: int(e.metrics["Pred"]["sliding_window"]) for e in evals},
            "vus_thresholds": 250,
            "f1_thresholds": "TSB-AD's: max over 100 thresholds (precision-recall curve for "
            "Standard-F1)"
            if options.tsbad_predictions == "best"
            else f"lmad's predictions ({_threshold(options)})",
            "source": "TSB-AD 1.5 (PyPI TSB-AD==1.5) TSB_AD/evaluation/metrics.py get_metrics",
        }


def mean_pooled(
    rows: tuple[str, ...], series_metrics: list[dict[str, dict[str, float]]]
) -> dict[str, dict[str, float]]:
    """Every column of every row averaged over series (tsb-ad's pooling)."""
    return {row: mean_metrics([m[row] for m in series_metrics]) for row in rows}


def _threshold(options) -> str:
    if options.normalised_threshold is not None:
        return f"normalised score >= {options.normalised_threshold:g}"
    return f"c0 = {options.c0:g}"


LMAD_COLUMNS = {
    "precision": "P", "recall": "R", "f1": "F1", "ap": "AP", "auc_roc": "AUC-ROC",
    "aff_f1": "Aff-F1", "vus_pr": "VUS-PR", "vus_roc": "VUS-ROC", "range_f1": "Range-F1",
    "event_f1": "Event-F1",
}  # fmt: skip
TAMA_COLUMNS = {
    "accuracy": "Acc", "precision": "P", "recall": "R", "f1": "F1", "auc_pr": "AUC-PR",
    "auc_roc": "AUC-ROC",
}  # fmt: skip
TSBAD_COLUMNS = {
    name: name
    for name in ("AUC-PR", "AUC-ROC", "VUS-PR", "VUS-ROC", "Standard-F1", "PA-F1",
                 "Event-based-F1", "R-based-F1", "Affiliation-F")
}  # fmt: skip
ALL_ROWS = (PRED, PRED_ADJUST, DCHECK, DCHECK_ADJUST)
PROTOCOLS: dict[str, Protocol] = {
    "lmad": LmadProtocol(
        "lmad", LMAD_COLUMNS, ALL_ROWS,
        "P/R/F1 over the concatenated series; other columns: mean over series",
        ("f1", "ap", "auc_roc"),
    ),
    "tama": TamaProtocol(
        "tama", TAMA_COLUMNS, ALL_ROWS,
        "as TAMA pools: TP/FP/TN/FN summed over series and channels (also along the AUC grid)",
    ),
    "tsb-ad": TsbadProtocol(
        "tsb-ad", TSBAD_COLUMNS, (PRED, DCHECK),
        "mean over series (as TSB-AD averages its per-series results)",
        ("Standard-F1", "AUC-PR", "AUC-ROC"),
    ),
}  # fmt: skip


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown --protocol {name!r}; use one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
