"""The evaluation columns of TSB-AD 1.5 (``get_metrics``) and its sliding window, from lmad's metrics.

Reference: TSB-AD 1.5 (PyPI ``TSB-AD==1.5`` = github.com/TheDatumOrg/TSB-AD commit 500e427; line
numbers below are at that commit, in ``TSB_AD/evaluation/metrics.py`` (``metrics.py``),
``TSB_AD/evaluation/basic_metrics.py`` (``basic``) and ``TSB_AD/utils/slidingWindows.py``). No code
is copied: every column is computed by lmad's own metrics with TSB-AD's names and parameters.

``get_metrics(score, labels, slidingWindow=100, pred=None, version='opt', thre=250)``
(metrics.py l.3-39) returns, from a point score and 0/1 labels:

- ``AUC-PR``: ``sklearn.metrics.average_precision_score`` (basic l.208-209; :func:`auc_pr`);
- ``AUC-ROC``: ``sklearn.metrics.roc_auc_score`` (basic l.205-206; :func:`auc_roc`);
- ``VUS-PR``, ``VUS-ROC``: ``RangeAUC_volume_opt`` with ``thre=250`` thresholds, averaged over the
  buffers 0..slidingWindow (metrics.py l.15, basic l.6-20; ``lmad.metrics.vus.vus_tsbad``);
- ``Standard-F1``: point F1 (basic l.211-220);
- ``PA-F1``: point F1 after classic point adjustment (basic l.286-307, 91-136;
  :func:`lmad.metrics.adjust.adjusted_prf` with PAT 0);
- ``Event-based-F1``: Garg et al.'s composite F, 2·R_e·P_t / (R_e + P_t + 1e-15) of event recall
  R_e and point precision P_t (basic l.330-360, eps l.27; :mod:`lmad.metrics.event`);
- ``R-based-F1``: Tatbul et al.'s range-based F1, recall with α = 0.2 (existence 0.2, overlap 0.8),
  precision with α = 0, flat positional bias, cardinality γ = 1/(number of overlapping ranges)
  (basic l.257-284, 362-410, 44-86; :func:`lmad.metrics.range_based.range_prf`);
- ``Affiliation-F``: 2·P·R / (P + R + 1e-15) of the affiliation precision and recall (basic
  l.222-255; :func:`lmad.metrics.affiliation.affiliation_prf`).

Threshold-dependent columns: with ``pred=None`` (TSB-AD's default, the "oracle threshold")
Standard-F1 is the maximum over scikit-learn's ``precision_recall_curve`` of 2PR/(P + R + 1e-5)
(basic l.213-215; the 1e-5 is kept, so a perfect score gives 2/2.00001), and the other four are the
maximum, over the 100 thresholds ``np.linspace(min(score), max(score), 100)``, of the metric of the
predictions ``score > t`` (strictly; basic l.227, 260, 289, 335). With predictions given, each is the
metric of those predictions (Standard-F1: scikit-learn's F1 with ``zero_division=0``, l.218-219).

TSB-AD 1.5 edge-case bugs that lmad does NOT reproduce (lmad keeps the correct value):

1. PA-F1: ``_adjust_predicts`` walks back with ``range(i, 0, -1)`` (basic l.122), so index 0 is
   never adjusted. Labels 111000100, predictions 001011010: lmad 0.600 (adjusted 111011010),
   TSB-AD 0.444 (011011010).
2. Event-based-F1: ``_get_events`` closes an event that runs to the end at ``n - 2`` (l.325-327), so
   the last point of the series never counts as a hit. Labels 00100001, predictions 00000001:
   lmad 2/3 (event recall 1/2, point precision 1), TSB-AD 0.
3. R-based-F1: ``range_convers_new`` (l.383-398) finds no range in an all-ones vector, so
   all-anomalous labels or all-ones predictions score 0. Labels 1111, predictions 0110: lmad
   2·0.6·1/1.6 = 0.75 (recall 0.2 + 0.8·2/4, precision 1), TSB-AD 0.
4. R-based-F1 of *boolean* predictions (``TSB_AD/main.py`` l.56 passes ``output > mean + 3·std``):
   ``np.diff`` of a bool array is a XOR, so ``range_convers_new`` (l.388-397) takes every change
   for a start, finds no end and reads the predictions as one range from the first predicted point
   to the end of the series. Labels 010, predictions [False, True, False]: lmad 1 (range 1-1),
   TSB-AD 2/3 (range 1-2: precision 1/2). lmad reads booleans as 0/1.

Choices where TSB-AD has no usable value:

- labels without anomaly: every column is NaN (recall is undefined; TSB-AD's ``get_metrics``
  raises, its parts give AUC-PR 0, AUC-ROC NaN, F columns 0 or NaN, or raise);
- all-anomalous labels: AUC-PR, AUC-ROC, VUS-PR and VUS-ROC are NaN (one class, no ranking; lmad's
  :func:`auc_pr` convention; TSB-AD's ``get_metrics`` raises, its AUC-PR alone gives 1), the F
  columns are computed;
- no predicted point: Affiliation-F is 0 (recall is 0; TSB-AD gives NaN because the precision is
  undefined, and its oracle maximum skips such NaNs anyway). The other columns give 0 there, as in
  TSB-AD.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lmad.errors import DataError
from lmad.metrics.adjust import adjusted_prf
from lmad.metrics.affiliation import affiliation_prf
from lmad.metrics.auc import auc_pr, auc_roc, labels_and_scores
from lmad.metrics.event import event_prf
from lmad.metrics.point import check_binary_pair, point_prf
from lmad.metrics.range_based import range_prf
from lmad.metrics.vus import vus_tsbad

TSBAD_COLUMNS: tuple[str, ...] = (
    "AUC-PR",
    "AUC-ROC",
    "VUS-PR",
    "VUS-ROC",
    "Standard-F1",
    "PA-F1",
    "Event-based-F1",
    "R-based-F1",
    "Affiliation-F",
)
THRESHOLD_COLUMNS: tuple[str, ...] = TSBAD_COLUMNS[4:]
DEFAULT_WINDOW = 100  # get_metrics(slidingWindow=100), metrics.py l.3
VUS_THRESHOLDS = 250  # thre=250, metrics.py l.3
ORACLE_THRESHOLDS = 100  # np.linspace(min, max, 100), basic l.227/260/289/335
STANDARD_F1_EPS = 1e-5  # basic l.214
F_EPS = 1e-15  # basic_metricor.eps, basic l.27

# find_length_rank (slidingWindows.py l.7-52)
MAX_POINTS = 20000  # l.11
MAX_LAG = 400  # acf(data, nlags=400, fft=True), l.14
FIRST_LAG = 3  # base = 3: lags 0-2 are dropped, l.13-14
LAST_INDEX = 300  # an index outside [3, 300] gives the default, l.48-49
DEFAULT_PERIOD = 125  # l.49, l.52


def tsbad_metrics(
    labels: Any,
    scores: Any,
    sliding_window: int | None = None,
    predictions: Any = None,
) -> dict[str, float | int]:
    """TSB-AD 1.5's ``get_metrics`` columns (metrics.py l.3-39), plus the window used.

    Args:
        labels: 0/1 ground truth per point.
        scores: the point anomaly score (higher = more anomalous), finite, same length.
        sliding_window: the VUS window (buffers 0..window). ``None``: 100, ``get_metrics``'
            default. TSB-AD's benchmark passes ``find_length_rank`` of the detector's input
            series (``benchmark_exp/Run_Detector_U.py`` l.62), i.e. :func:`tsbad_sliding_window`.
        predictions: 0/1 predictions for the threshold-dependent columns; ``None`` (TSB-AD's
            default) takes the best threshold per column (see the module docstring).

    Returns:
        The nine columns of :data:`TSBAD_COLUMNS` in TSB-AD's order, then ``"sliding_window"``.

    Raises:
        DataError: invalid labels, scores or predictions, or a negative window.
    """
    y, s = labels_and_scores(labels, scores)
    window = DEFAULT_WINDOW if sliding_window is None else sliding_window
    if not isinstance(window, int | np.integer) or isinstance(window, bool) or window < 0:
        raise DataError(f"sliding_window must be a non-negative integer, got {sliding_window!r}")
    window = int(window)
    volume = vus_tsbad(y, s, window, thresholds=VUS_THRESHOLDS)  # NaN for one class
    free = {
        "AUC-PR": auc_pr(y, s),
        "AUC-ROC": auc_roc(y, s),
        "VUS-PR": float(volume["vus_pr"]),
        "VUS-ROC": float(volume["vus_roc"]),
    }
    return {**free, **tsbad_threshold_metrics(y, s, predictions), "sliding_window": window}


def tsbad_threshold_metrics(labels: Any, scores: Any, predictions: Any = None) -> dict[str, float]:
    """The five threshold-dependent columns of ``get_metrics`` (metrics.py l.18-27).

    ``Standard-F1``, ``PA-F1``, ``Event-based-F1``, ``R-based-F1``, ``Affiliation-F`` of
    ``predictions``, or with ``predictions=None`` their oracle maxima (module docstring). All NaN
    when the labels hold no anomaly.
    """
    y, s = labels_and_scores(labels, scores)
    if predictions is not None:
        p = check_binary_pair(y, predictions)[1]
    if not y.any():
        return dict.fromkeys(THRESHOLD_COLUMNS, math.nan)
    if predictions is not None:
        return {"Standard-F1": float(point_prf(y, p)["f1"]), **_f_scores(y, p)}
    # The predictions s > t are nested, so their size identifies them: each distinct one is
    # scored once, and the maximum over the 100 thresholds is the maximum over these.
    scored: dict[int, dict[str, float]] = {}
    for threshold in np.linspace(s.min(), s.max(), ORACLE_THRESHOLDS):
        p = (s > threshold).astype(np.int8)
        count = int(p.sum())
        if count not in scored:
            scored[count] = _f_scores(y, p)
    best = {c: max(r[c] for r in scored.values()) for c in THRESHOLD_COLUMNS[1:]}
    return {"Standard-F1": _oracle_point_f1(y, s), **best}


def _oracle_point_f1(y: np.ndarray, s: np.ndarray) -> float:
    """max 2PR/(P + R + 1e-5) over ``precision_recall_curve`` (basic l.213-215)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, s)
    return float(np.max(2 * precision * recall / (precision + recall + STANDARD_F1_EPS)))


def _f(precision: float, recall: float) -> float:
    """TSB-AD's F: 2PR / (P + R + 1e-15) (basic l.239, 345)."""
    return 2 * precision * recall / (precision + recall + F_EPS)


def _f_scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """PA-F1, Event-based-F1, R-based-F1 and Affiliation-F of the predictions ``p``."""
    affiliation = affiliation_prf(y, p)
    return {
        "PA-F1": float(adjusted_prf(y, p, 0.0)["f1"]),
        "Event-based-F1": _f(float(point_prf(y, p)["precision"]), event_prf(y, p)["recall"]),
        "R-based-F1": range_prf(y, p, alpha=0.2, cardinality="reciprocal", bias="flat")["f1"],
        "Affiliation-F": _f(affiliation["precision"], affiliation["recall"]) if p.any() else 0.0,
    }


# ---------------------------------------------------------------------------- sliding window


def tsbad_sliding_window(series: Any) -> int:
    """TSB-AD 1.5's period estimate ``find_length_rank(data, rank=1)`` (slidingWindows.py l.7-52).

    On the first 20000 points, the autocorrelation function up to lag 400 as statsmodels'
    ``acf(data, nlags=400, fft=True)`` computes it with its defaults (``adjusted=False``: every
    autocovariance divided by n; ``missing='none'``; demeaned; FFT zero-padded to the next
    2-3-5-smooth length >= 2n + 1). Lags 0-2 are dropped; among the strict local maxima of the rest
    (``scipy.signal.argrelextrema(acf, np.greater)``: interior points above both neighbours) the
    highest one, at index i of the shortened ACF (lag i + 3), gives the window i + 3. The window is
    125 when i < 3 or i > 300 (lags 4-5 or beyond 303) and when there is no local maximum (short or
    constant series, NaN in the series). Exactly equal maxima (rare in floating point) go to the
    larger lag, as TSB-AD's reversed ``np.argsort`` does for short lists.

    Args:
        series: the detector's input series, one channel (TSB-AD's benchmark takes the first
            column: ``benchmark_exp/Run_Detector_U.py`` l.62). Shapes (n,) and (n, 1) are accepted.

    Raises:
        DataError: an empty series, or several channels (TSB-AD returns 0 for those, l.9).
    """
    x = np.asarray(series, dtype=float)
    if x.size == 0:
        raise DataError("series is empty: no period to estimate")
    if sum(size > 1 for size in x.shape) > 1:
        raise DataError(f"give one channel (shape (n,) or (n, 1)), got shape {x.shape}")
    acf = _acf(x.reshape(-1)[:MAX_POINTS], MAX_LAG)[FIRST_LAG:]
    middle = acf[1:-1]
    peaks = np.flatnonzero((middle > acf[:-2]) & (middle > acf[2:])) + 1
    if peaks.size == 0:
        return DEFAULT_PERIOD
    best = int(peaks[peaks.size - 1 - np.argmax(acf[peaks][::-1])])
    if best < FIRST_LAG or best > LAST_INDEX:
        return DEFAULT_PERIOD
    return best + FIRST_LAG


def _acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """Autocorrelation at lags 0..nlags (fewer for short series), statsmodels' ``acf`` defaults.

    NaN everywhere when the series has no variance (0/0, as statsmodels) or holds NaN.
    """
    n = x.size
    spectrum = np.fft.fft(x - x.mean(), n=_next_regular(2 * n + 1))
    acov = np.fft.ifft(spectrum * np.conjugate(spectrum))[:n].real / n
    with np.errstate(invalid="ignore", divide="ignore"):
        return acov[: nlags + 1] / acov[0]


def _next_regular(target: int) -> int:
    """The smallest number >= ``target`` whose prime factors are all 2, 3 or 5."""
    best = 1 << (target - 1).bit_length()  # the next power of 2
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            quotient = -(-target // p35)  # ceil(target / p35)
            best = min(best, p35 << (quotient - 1).bit_length())
            p35 *= 3
        p5 *= 5
    return best
