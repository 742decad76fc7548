"""Classical detectors beside the LLM: aeon's series anomaly detectors under short lmad names.

Every detector is aeon's own class (``aeon.anomaly_detection.series``, aeon 1.6); lmad only chooses
its window from the series' period, fits it on the train split where aeon allows, and lines its
scores up with the processed test split. Scores are higher for more anomalous points.

===========  =================================  =======================================  ==========
lmad name    aeon class (module)                method (paper)                           needs
===========  =================================  =======================================  ==========
stomp        STOMP (distance_based)             matrix-profile discords: Zhu et al.,     stumpy
                                                ICDM 2016 (Matrix Profile II)
madrid       MADRID (distance_based)            discords of many lengths: Lu et al.,
                                                ICDM 2023 (Matrix Profile XXX)
kmeans       KMeansAD (distance_based)          distance of each window to its k-means
                                                centre: after Yairi et al., i-SAIRAS 2001
lof          LOF (distance_based)               local outlier factor: Breunig et al.,    pyod
                                                SIGMOD 2000
copod        COPOD (distribution_based)         empirical copulas: Li et al., ICDM 2020  pyod
dwt_mlead    DWT_MLEAD (distribution_based)     Haar wavelets + Gaussian likelihood:
                                                Thill et al., ITISE 2017
iforest      IsolationForest (outlier_det.)     Liu et al., ICDM 2008                    pyod
eif          ExtendedIsolationForest (outl.)    Hariri et al., IEEE TKDE 2021
ocsvm        OneClassSVM (outlier_detection)    Schölkopf et al., Neural Computation
                                                2001 (scikit-learn's OneClassSVM)
===========  =================================  =======================================  ==========

``pyod`` and ``stumpy`` are aeon's soft dependencies (requirements.txt pins them); where one is not
installed, its detectors are left out of ``all`` and an explicit request names the ``pip install``.
stomp pays about 25 s of numba compilation (stumpy's, not cached) once in each new process.

Window: every windowed detector gets ``window_size`` = the series' period, estimated by
:func:`lmad.series.offline_features.estimate_period` (the mean autocorrelation of the channels) on
the train split (the test split when the train split is missing or under ``PERIOD_MIN_POINTS``).
It is chosen over TSB-AD's ``find_length_rank`` (:func:`lmad.metrics.tsbad.tsbad_sliding_window`),
which finds the same 183 on UCR 135, because it says when there is no period instead of returning
125, averages the autocorrelation of all channels (one window for a multichannel series), is not
capped at lag 303, and is the estimator of lmad's offline analyzer, which these detectors are
compared with. The period is rounded and clipped to [``MIN_WINDOW``, ``MAX_WINDOW``] and to a
quarter of the test split; with no period the window is ``NO_PERIOD_WINDOW`` = 125, TSB-AD's
default window. ``dwt_mlead`` has no window (its levels are dyadic); ``madrid`` searches about
``MADRID_LENGTHS`` discord lengths from half to twice the window.

Fit: a detector that aeon lets fit (tag ``fit_is_empty`` false: kmeans, lof, copod, iforest, eif,
ocsvm) is fitted on the train split and scores the test split (semi-supervised), when the
train split holds at least ``MIN_FIT_WINDOWS`` windows; otherwise it is fitted on the test split
itself (unsupervised). stomp and dwt_mlead score the test split alone. madrid gets the train split
in front of the test split as history (its ``train_test_split``): only test points are searched;
without a train split as long as its longest length, aeon's default holds (the first fifth of the
test split is history and scores 0).

Orientation: aeon 1.6's OneClassSVM min-max scales scikit-learn's ``score_samples``, which is high
for normal windows (ROC-AUC 0.22 on UCR 135); lmad uses 1 - that score for ``ocsvm``.

Channels: a detector with aeon's ``capability:multivariate`` tag (kmeans, lof, copod, iforest,
eif, ocsvm) gets all channels at once, each window stacking every channel, and returns ONE
column for the series; the others score each channel separately, one column per channel. A test
channel that is constant scores 0 (no ranking is possible); it is listed in the parameters.

Seeds: every randomised detector gets ``random_state=SEED``, so a rerun gives the same scores.

Left out (aeon has them, they do not fit here):

- MERLIN: returns a boolean marking only the start point of one discord per length (no ranking of
  the other points) and restarts its DRAG search with guessed ranges; MADRID covers all-length
  discords with scores.
- STRAY: a boolean per point, from the point's values alone (no window): no ranking, and blind to
  shape anomalies whose values stay in range.
- LeftSTAMPi: the streaming left matrix profile, updated point by point (one stumpy update per
  point, quadratic): 5 s for UCR 135's 6301 points, about 20 min for 100k; STOMP and MADRID cover
  matrix-profile discords offline.
- ROCKAD: ROCKET features of every window and bagged kd-tree neighbours: 17-23 s on UCR 135's
  6301 points, minutes per 100k-point channel.
- CBLOF (He et al., 2003; PyOD): on a periodic series the k-means clusters of its windows are
  phases of the period, of about equal size, so PyOD cannot split them into large and small
  clusters ("Could not form valid cluster separation" on UCR 135 with its defaults) or splits
  them arbitrarily.
- PyODAdapter: a generic wrapper; the PyOD models used here have their own aeon classes.
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmad.errors import ConfigError
from lmad.metrics.tsbad import DEFAULT_PERIOD
from lmad.series.offline_features import estimate_period

SEED = 0
"""``random_state`` of every randomised detector (kmeans, iforest, eif)."""
MIN_WINDOW, MAX_WINDOW = 8, 512
"""Range the period-based window is clipped to."""
NO_PERIOD_WINDOW = DEFAULT_PERIOD
"""Window when no period is found: 125, TSB-AD's ``find_length_rank`` default."""
PERIOD_MIN_POINTS = 100
"""The period is estimated on the train split when it has at least this many points."""
MIN_FIT_WINDOWS = 50
"""A detector is fitted on the train split when it holds at least this many windows."""
MADRID_LENGTHS = 20
"""About this many discord lengths for madrid, from half to twice the window."""

AEON = "aeon.anomaly_detection.series"


@dataclass(frozen=True)
class DetectorSpec:
    """One registered detector: which aeon class, how it is set, what it needs."""

    name: str
    aeon_class: str  # "<submodule>.<Class>" under aeon.anomaly_detection.series
    source: str  # the paper it implements
    options: Callable[[int], dict[str, Any]]  # constructor arguments from the window
    windowed: bool = True  # window_size follows the period
    requires: tuple[str, ...] = ()  # optional packages (aeon soft dependencies)
    history: bool = False  # madrid: the train split is given in front of the test split
    invert: bool = False  # aeon's score is high for normal points; lmad uses 1 - score

    def load(self) -> type:
        module, name = self.aeon_class.rsplit(".", 1)
        return getattr(importlib.import_module(f"{AEON}.{module}"), name)

    @property
    def fits(self) -> bool:
        """aeon's ``fit_is_empty`` is false: the detector can be fitted on the train split."""
        return not self.load().get_class_tag("fit_is_empty")

    @property
    def multivariate(self) -> bool:
        """aeon's ``capability:multivariate``: all channels are scored together."""
        return bool(self.load().get_class_tag("capability:multivariate", raise_error=False))

    def missing(self) -> list[str]:
        """Optional packages this detector needs that are not installed."""
        return [pkg for pkg in self.requires if importlib.util.find_spec(pkg) is None]


def _window(**extra: Any) -> Callable[[int], dict[str, Any]]:
    return lambda window: {"window_size": window, **extra}


def _madrid(window: int) -> dict[str, Any]:
    low, high = max(8, window // 2), max(9, 2 * window)
    return {
        "min_length": low,
        "max_length": high,
        "step_size": max(1, (high - low) // MADRID_LENGTHS),
    }


DETECTORS: dict[str, DetectorSpec] = {
    spec.name: spec
    for spec in (
        DetectorSpec(
            "stomp",
            "distance_based.STOMP",
            "Zhu et al., ICDM 2016",
            _window(),
            requires=("stumpy",),
        ),
        DetectorSpec(
            "madrid", "distance_based.MADRID", "Lu et al., ICDM 2023", _madrid, history=True
        ),
        DetectorSpec(
            "kmeans",
            "distance_based.KMeansAD",
            "after Yairi et al., i-SAIRAS 2001",
            _window(n_clusters=20, random_state=SEED),
        ),
        DetectorSpec(
            "lof",
            "distance_based.LOF",
            "Breunig et al., SIGMOD 2000",
            _window(n_neighbors=20),
            requires=("pyod",),
        ),
        DetectorSpec(
            "copod",
            "distribution_based.COPOD",
            "Li et al., ICDM 2020",
            _window(),
            requires=("pyod",),
        ),
        DetectorSpec(
            "dwt_mlead",
            "distribution_based.DWT_MLEAD",
            "Thill et al., ITISE 2017",
            lambda window: {"start_level": 3, "quantile_epsilon": 0.01},
            windowed=False,
        ),
        DetectorSpec(
            "iforest",
            "outlier_detection.IsolationForest",
            "Liu et al., ICDM 2008",
            _window(n_estimators=100, random_state=SEED),
            requires=("pyod",),
        ),
        DetectorSpec(
            "eif",
            "outlier_detection.ExtendedIsolationForest",
            "Hariri et al., IEEE TKDE 2021",
            _window(n_estimators=100, random_state=SEED),
        ),
        DetectorSpec(
            "ocsvm",
            "outlier_detection.OneClassSVM",
            "Schölkopf et al., Neural Computation 2001",
            _window(),
            invert=True,  # aeon 1.6 min-max scales sklearn's score_samples: high = normal
        ),
    )
}


def available_detectors() -> list[str]:
    """Registered detectors whose optional packages are installed."""
    return [name for name, spec in DETECTORS.items() if not spec.missing()]


def resolve_detectors(text: str) -> tuple[list[str], list[str]]:
    """(detectors to run, detectors left out of ``all`` for a missing package) from ``--detectors``.

    ``all`` is every available detector; otherwise a comma list of registered names, each of
    whose packages must be installed. Anything else is a :class:`ConfigError`.
    """
    available = available_detectors()
    if text.strip().lower() == "all":
        return available, [name for name in DETECTORS if name not in available]
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ConfigError(f"--detectors is empty; available: {', '.join(available)} (or all)")
    unknown = [name for name in names if name not in DETECTORS]
    if unknown:
        raise ConfigError(
            f"unknown detector(s) {', '.join(map(repr, unknown))}; available: "
            f"{', '.join(available)} (or all)"
        )
    for name in names:
        if missing := DETECTORS[name].missing():
            raise ConfigError(
                f"detector {name!r} needs {', '.join(missing)}, which is not installed: "
                f"pip install {' '.join(missing)}"
            )
    return list(dict.fromkeys(names)), []


def choose_window(train: np.ndarray | None, test: np.ndarray) -> tuple[int, float | None, str]:
    """(window, estimated period or None, split it was estimated on): the module's period rule."""
    source = "train" if train is not None and len(train) >= PERIOD_MIN_POINTS else "test"
    values = train if source == "train" else test
    channels = [values[:, c] for c in range(values.shape[1]) if np.ptp(values[:, c]) > 0]
    period = estimate_period(channels)[0] if channels else None
    window = NO_PERIOD_WINDOW if period is None else round(period)
    window = min(max(window, MIN_WINDOW), MAX_WINDOW, max(2, len(test) // 4))
    return int(window), None if period is None else round(float(period), 3), source


@dataclass
class Plan:
    """How one detector scores one series; ``parameters`` is what meta.json records."""

    spec: DetectorSpec
    options: dict[str, Any]
    fit: str  # "train", "test" (fitted on the test split), "none", "train as history"
    channel_handling: str  # "one channel", "joint", "per channel"
    constant: list[int] = field(default_factory=list)  # test channels that are constant
    window: dict[str, Any] = field(default_factory=dict)

    @property
    def parameters(self) -> dict[str, Any]:
        params = {**self.window, "aeon": {**self.options}, "fit": self.fit}
        params["channel_handling"] = self.channel_handling
        if self.constant:
            params["constant_channels"] = self.constant
        if self.spec.invert:
            params["score"] = "1 - aeon score (aeon's is high for normal points)"
        return params


def plan_series(name: str, train: np.ndarray | None, test: np.ndarray) -> Plan:
    """Choose window, fit and channel handling for ``name`` on one series (nothing is run)."""
    spec = DETECTORS[name]
    train, test = _as_2d(train), _as_2d(test)
    window, period, source = choose_window(train, test)
    options = spec.options(window)
    if spec.history:
        fit = _history_fit(options, train, test)
    elif spec.fits:
        fit = (
            "train" if train is not None and len(train) - window + 1 >= MIN_FIT_WINDOWS else "test"
        )
    else:
        fit = "none"
    channels = test.shape[1]
    handling = "joint" if spec.multivariate else "per channel"
    handling = "one channel" if channels == 1 else handling
    constant = [c for c in range(channels) if np.ptp(test[:, c]) == 0]
    if handling == "joint" and len(constant) < channels:
        constant = []  # a joint detector still sees the varying channels
    info = {"window_size": window if spec.windowed else None, "period": period}
    info["period_from"] = source
    return Plan(spec, options, fit, handling, constant, info)


def _history_fit(options: dict[str, Any], train: np.ndarray | None, test: np.ndarray) -> str:
    """madrid: the train split as history when both splits hold its longest length."""
    longest = options["max_length"]
    if train is not None and len(train) >= longest and len(test) >= longest:
        options["train_test_split"] = len(train)
        return "train as history"
    options["train_test_split"] = None  # aeon's default: the first fifth is history, scored 0
    return "none"


def run_plan(
    plan: Plan, train: np.ndarray | None, test: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """(scores of shape (n_test, columns), warnings raised): one column, or one per channel."""
    train, test = _as_2d(train), _as_2d(test)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if plan.channel_handling == "per channel":
            columns = [_score(plan, train, test, [c]) for c in range(test.shape[1])]
            scores = np.column_stack(columns)
        else:
            scores = _score(plan, train, test, list(range(test.shape[1])))[:, None]
    messages = list(dict.fromkeys(str(w.message)[:200] for w in caught))[:5]
    return scores, messages


def score_series(
    name: str, train: np.ndarray | None, test: np.ndarray
) -> tuple[np.ndarray, dict[str, Any]]:
    """Scores of detector ``name`` for the test split, and the parameters used.

    Args:
        name: a registered detector (:data:`DETECTORS`).
        train: the train split (n_train, channels), or None when there is none.
        test: the test split (n_test, channels); (n,) is one channel.

    Returns:
        float64 scores of shape (n_test, channels) for a detector that scores channels separately,
        (n_test, 1) for one that scores all channels together (and for one channel); and the
        parameters (window, period, aeon arguments, fit, channel handling).
    """
    plan = plan_series(name, train, test)
    return run_plan(plan, train, test)[0], plan.parameters


def _score(plan: Plan, train: np.ndarray | None, test: np.ndarray, cols: list[int]) -> np.ndarray:
    """One aeon run on the channels ``cols``; a constant input scores 0."""
    if all(c in plan.constant for c in cols):
        return np.zeros(len(test))
    detector = plan.spec.load()(**plan.options)
    x = np.ascontiguousarray(test[:, cols], dtype=np.float64)
    if plan.fit == "train":
        detector.fit(np.ascontiguousarray(train[:, cols], dtype=np.float64), axis=0)
        scores = detector.predict(x, axis=0)
    elif plan.fit == "train as history":
        whole = np.concatenate([train[:, cols], x]).astype(np.float64)
        scores = detector.fit_predict(whole, axis=0)[len(train) :]
    else:
        scores = detector.fit_predict(x, axis=0)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape != (len(test),):
        raise ValueError(
            f"{plan.spec.name} returned {scores.shape[0]} scores for {len(test)} points"
        )
    if not np.isfinite(scores).all():
        raise ValueError(f"{plan.spec.name} returned NaN or infinite scores")
    return 1.0 - scores if plan.spec.invert else scores


def _as_2d(values: np.ndarray | None) -> np.ndarray | None:
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64)
    return values[:, None] if values.ndim == 1 else values
