"""Classical anomaly detectors (aeon) on every processed series: the baselines beside TAMA.

    python detect_baselines.py --dataset UCR --detectors kmeans,dwt_mlead
    python detect_baselines.py --dataset UCR --data_id_list "[135]" --detectors all
    python detect_baselines.py --dataset SMD --detectors stomp,iforest --refresh

Reads data/processed/<dataset>/ (run make_dataset.py first; with --mode train too, so that the
detectors that can be fitted are fitted on the train split) and writes, per detector and series,
data/scores/<subtask>/<dataset>/<detector>/<series>.npy (one score per test point: one column per
channel, or one column when the detector scores all channels together) and an entry in meta.json
beside it (parameters, aeon version, seconds, fit, channel handling). Each window follows the
series' period (autocorrelation of the train split); see lmad/series/detectors.py.

Detectors: stomp, madrid, kmeans, lof, copod, dwt_mlead, iforest, eif, ocsvm (stomp needs the
stumpy package; lof, copod and iforest need pyod; `all` runs those installed).

A rerun skips the series already scored with the same parameters. Exit codes: 0 every series was
scored (or already was); 1 a detector failed on some series (each printed as one `failed:` line,
recorded in meta.json; rerun to try them again); 2 bad input (one `error:` line, nothing written).
"""

from __future__ import annotations

import sys

from lmad.cli import ArgumentParser, parse_id_list, run_main

# Defaults a user may edit here; flags override them.
DATASET = "UCR"
DETECTORS = "all"
DATA_DIR = "data"
SUBTASK = "detection"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default=DATASET, help="dataset name (default %(default)s)")
    p.add_argument(
        "--detectors",
        default=DETECTORS,
        help="comma list of detectors, or all (those whose packages are installed; "
        "default %(default)s)",
    )
    p.add_argument(
        "--data_id_list", default="", help='series ids, e.g. "[135]"; empty = all processed'
    )
    p.add_argument(
        "--subtask",
        default=SUBTASK,
        help="experiment group (scores/<subtask>/; default %(default)s)",
    )
    p.add_argument(
        "--data_dir",
        default=DATA_DIR,
        help="root of processed data and scores (default %(default)s)",
    )
    p.add_argument("--refresh", action="store_true", help="score again the series already scored")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.series.detect_run import BaselineOptions, run_baselines

    options = BaselineOptions(
        dataset=args.dataset,
        detectors=args.detectors,
        ids=parse_id_list(args.data_id_list),
        subtask=args.subtask,
        data_dir=args.data_dir,
        refresh=args.refresh,
        progress=not args.quiet,
    )
    summary = run_baselines(options)
    job = summary.job
    if job.not_installed:
        print(
            f"note: not run, their packages are not installed: {', '.join(job.not_installed)} "
            "(see lmad/series/detectors.py)",
            file=sys.stderr,
        )
    if job.without_train:
        print(
            f"note: {len(job.without_train)} series have no processed train split: detectors "
            "that can be fitted were fitted on their test split; run make_dataset.py --dataset "
            f"{job.dataset} --mode train to fit them on the train split",
            file=sys.stderr,
        )
    for line in summary.lines():
        print(line)
    if summary.failures:
        print(
            f"{len(summary.failures)} detector runs failed (listed above and in meta.json); "
            "rerun the same command to try them again",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
