"""Generate synthetic workflow runs in Flow-Bench's format, then process them like real data.

    python data_processing/synthetic_workflow.py
    python data_processing/synthetic_workflow.py --runs 500 --seed 1 --template newer

Writes data/raw/synthetic_workflow/<run>.csv (44 columns, one row per job of a 12-job DAG) and
synthetic_workflow.json (the DAG); then, unless --process False, data/synthetic_workflow/
{all,train,validation,test}.csv as data_processing/flowbench.py does. data/ is --data_dir; the run
CSVs go elsewhere only when --raw_dir names a folder. CPU anomalies stretch runtime and cpu time,
HDD anomalies stretch stage-in/out delays; only affected jobs carry the label.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmad.cli import ArgumentParser, positive_int, run_main, str2bool

# Defaults a user may edit here; flags override them.
RUNS = 200
SEED = 0
NORMAL_SHARE = 0.4  # share of runs without anomalies
AFFECTED_SHARE = 0.5  # in an anomalous run, the chance that a compute job is hit
RAW_DIR = None  # None: <data_dir>/raw/synthetic_workflow
NAME = "synthetic_workflow"
PROCESS = True
FEATURES = "default"
TEMPLATE = "paper"
SPLIT_SEED = 42
SPLIT = "0.8,0.1,0.1"
DATA_DIR = "data"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument(
        "--runs", type=positive_int, default=RUNS, help="number of workflow runs (%(default)s)"
    )
    p.add_argument("--seed", type=int, default=SEED, help="generator seed (%(default)s)")
    p.add_argument("--normal_share", type=float, default=NORMAL_SHARE, help="share of normal runs")
    p.add_argument(
        "--affected_share", type=float, default=AFFECTED_SHARE, help="compute jobs hit per anomaly"
    )
    p.add_argument(
        "--raw_dir",
        default=RAW_DIR,
        help="where the run CSVs go (<data_dir>/raw/synthetic_workflow)",
    )
    p.add_argument("--process", type=str2bool, default=PROCESS, help="also write the split CSVs")
    p.add_argument("--name", default=NAME, help="processed dataset name (%(default)s)")
    p.add_argument("--features", default=FEATURES, help="default | all | comma-separated columns")
    p.add_argument(
        "--multiclass", action="store_true", help="labels None, cpu_K, hdd_K (+ label_id)"
    )
    p.add_argument("--template", default=TEMPLATE, choices=["paper", "newer"], help="sentence form")
    p.add_argument("--split_seed", type=int, default=SPLIT_SEED, help="seed of the split by run")
    p.add_argument("--split", default=SPLIT, help="train,validation,test fractions of the runs")
    p.add_argument("--data_dir", default=DATA_DIR, help="output root of the processed CSVs")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.names import check_name
    from lmad.workflows.flowbench import parse_split, process_flowbench, summary_table
    from lmad.workflows.sentences import resolve_features
    from lmad.workflows.synthetic import write_synthetic

    # everything that can be refused is refused before the first run file is written
    check_name(args.name, "--name")
    parse_split(args.split)
    resolve_features(args.features)
    raw_dir = args.raw_dir or Path(args.data_dir) / "raw" / "synthetic_workflow"
    raw = write_synthetic(
        raw_dir,
        n_runs=args.runs,
        seed=args.seed,
        normal_share=args.normal_share,
        affected_share=args.affected_share,
    )
    print(
        f"{raw.folder}: {len(raw.runs)} runs, {raw.jobs} jobs, {raw.anomalous} anomalous; "
        f"DAG {raw.dag}"
    )
    if args.process:
        summary = process_flowbench(
            raw.folder,
            dag=raw.dag,
            name=args.name,
            features=args.features,
            multiclass=args.multiclass,
            template=args.template,
            seed=args.split_seed,
            split=args.split,
            data_dir=args.data_dir,
        )
        print(summary_table(summary))
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
