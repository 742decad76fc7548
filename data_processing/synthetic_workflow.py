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

from lmad.cli import ArgumentParser, add_field_flag, positive_int, run_main, str2bool
from lmad.io import DATA_DIR  # root of data/, shared by every script
from lmad.workflows.options import SyntheticOptions

# Defaults a user may edit here; flags override them. --multiclass is off unless given
# (lmad.workflows.options.SyntheticOptions).
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


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)

    def flag(name: str, help: str, **kwargs) -> None:
        add_field_flag(p, SyntheticOptions, name, help, **kwargs)

    flag("runs", "number of workflow runs", type=positive_int, default=RUNS)
    flag("seed", "generator seed", type=int, default=SEED)
    flag("normal_share", "share of normal runs", type=float, default=NORMAL_SHARE)
    flag("affected_share", "compute jobs hit per anomaly", type=float, default=AFFECTED_SHARE)
    flag(
        "raw_dir",
        "where the run CSVs go; None: <data_dir>/raw/synthetic_workflow",
        default=RAW_DIR,
    )
    flag("process", "also write the split CSVs", type=str2bool, default=PROCESS)
    flag("name", "processed dataset name", default=NAME)
    flag("features", "default | all | comma-separated columns", default=FEATURES)
    flag("multiclass", "labels None, cpu_K, hdd_K (+ label_id)", action="store_true")
    flag("template", "sentence form", default=TEMPLATE, choices=["paper", "newer"])
    flag("split_seed", "seed of the split by run", type=int, default=SPLIT_SEED)
    flag("split", "train,validation,test fractions of the runs", default=SPLIT)
    flag("data_dir", "output root of the processed CSVs", default=DATA_DIR)
    return p


def main(argv=None) -> int:
    options = SyntheticOptions(**vars(build_parser().parse_args(argv)))
    from lmad.names import check_name
    from lmad.workflows import synthetic
    from lmad.workflows.flowbench import parse_split, process_flowbench, summary_table
    from lmad.workflows.sentences import resolve_features

    # everything that can be refused is refused before the first run file is written
    check_name(options.name, "--name")
    parse_split(options.split)
    resolve_features(options.features)
    raw_dir = options.raw_dir or Path(options.data_dir) / "raw" / synthetic.NAME
    raw = synthetic.write_synthetic(
        raw_dir, options.runs, options.seed, options.normal_share, options.affected_share
    )
    print(
        f"{raw.folder}: {len(raw.runs)} runs, {raw.jobs} jobs, {raw.anomalous} anomalous; "
        f"DAG {raw.dag}"
    )
    if options.process:
        summary = process_flowbench(raw.folder, dag=raw.dag, **options.process_arguments())
        print(summary_table(summary))
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
