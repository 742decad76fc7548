"""Detector speed: each aeon detector of detect_baselines.py against lmad's offline analyzer.

All run in this process on the same input: the bundled UCR 135 series (InternalBleeding16, shipped
inside aeon: train split 1200 points, test split 6301 points, one labelled anomaly of 12 points),
z-scored with the train statistics as make_dataset does.

- Each detector scores the test split as detect_baselines.py does
  (:func:`lmad.series.detectors.score_series`: window = the train period, 183; fitted on the train
  split where aeon allows).
- The offline analyzer (``--LLM offline``) is timed on its nearest-neighbour detection
  (:class:`lmad.series.offline_detection.Detection`): every TAMA window of the test split (600
  points, stride 200: 30 windows) against 3 normal train windows as references, at the two scales
  the analyzer uses (subsequences of one period, and of period / 8 when that is at least 8).

Each method runs once untimed on the first 1000 test points (numba compilation: stumpy's for stomp
takes about 25 s), then ``--repeats`` times on the whole test split; the best time is kept. Prints
seconds per 10k test points, the ratio to the offline analyzer and the ROC-AUC of the scores
against the labels (a check that the detector ran as intended, not an evaluation).

    python bench/baselines.py [--repeats 1] [--detectors all]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmad.series.datasets import load_series
from lmad.series.detectors import resolve_detectors, score_series
from lmad.series.offline_detection import Detection
from lmad.series.scores import combined_score
from lmad.series.windows import ChannelScaler, cut_windows, window_starts

WINDOW, STRIDE, REFERENCES = 600, 200, 3  # UCR's TAMA windows; make demo's --normal_reference
MARGIN, MAD_K = 1.2, 5.0  # the offline analyzer's defaults
WARM_UP = 1000


def load_input(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, test, test labels) of UCR 135, z-scored with train statistics."""
    series = load_series("UCR", "135", data_dir)
    scaler = ChannelScaler.fit(series.train)
    return scaler.transform(series.train), scaler.transform(series.test), series.test_labels


def offline_detection(train: np.ndarray, test: np.ndarray) -> None:
    """The offline analyzer's detections on every test window (OfflineAnalyzer.detections)."""
    refs = [w[:, 0] for w in cut_windows(train, window_starts(len(train), WINDOW, STRIDE), WINDOW)]
    refs = refs[:REFERENCES]
    size = min(WINDOW, len(test))
    for target in cut_windows(test, window_starts(len(test), size, STRIDE), size):
        first = Detection(target[:, 0], refs, MARGIN, MAD_K)
        short = max(8, first.m // 8)
        if first.m >= 3 * short:
            Detection(target[:, 0], refs, MARGIN, MAD_K, m=short)


def best_time(run: Callable[[np.ndarray], object], test: np.ndarray, repeats: int) -> float:
    run(test[:WARM_UP])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(test)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per method (best kept)")
    parser.add_argument("--detectors", default="all", help="comma list, or all (installed ones)")
    args = parser.parse_args()
    names, not_installed = resolve_detectors(args.detectors)
    with tempfile.TemporaryDirectory() as tmp:
        train, test, labels = load_input(Path(tmp) / "data")
    per_10k = 10_000 / len(test)
    print(
        f"input: UCR 135 (bundled with aeon): train {len(train)}, test {len(test)} points; "
        f"seconds per 10k test points, best of {args.repeats}"
    )
    if not_installed:
        print(f"not installed, left out: {', '.join(not_installed)}")
    offline = best_time(lambda x: offline_detection(train, x), test, args.repeats) * per_10k
    print(f"{'method':28s} {'s / 10k points':>14s} {'x offline':>10s} {'ROC-AUC':>8s}")
    print(f"{'offline analyzer (Detection)':28s} {offline:14.3f} {1.0:10.2f} {'-':>8s}")
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seconds = best_time(lambda x, n=name: score_series(n, train, x), test, args.repeats)
            scores, params = score_series(name, train, test)
        auc = roc_auc_score(labels, combined_score(scores))
        label = f"{name} (window {params['window_size'] or '-'})"
        print(
            f"{label:28s} {seconds * per_10k:14.3f} {seconds * per_10k / offline:10.2f} {auc:8.3f}"
        )


if __name__ == "__main__":
    main()
