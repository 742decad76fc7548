"""Turn Flow-Bench workflow runs into sentence CSVs for classifiers.

    python data_processing/flowbench.py --raw ../shared/data/flowbench/eht_imaging.zip
    python data_processing/flowbench.py --raw runs/ --dag montage.json --name montage --multiclass

Reads a zip or folder of run CSVs (one per run, one row per job), orders jobs by the DAG
(adjacency_list_dags/<name>.json, found beside the raw data when --dag is not given), shifts
timestamps to each run's start, fills missing values with 0, writes each job as a sentence and splits
80/10/10 by run (the original code split by row, so jobs of one run were on both sides). Writes
data/<name>/{all,train,validation,test}.csv (text,label, then run,job,anomaly_type and the numeric
features) and meta.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmad.cli import ArgumentParser, run_main

# Defaults a user may edit here; flags override them.
RAW = "data/raw/flowbench/eht_imaging.zip"
DAG = None  # None: adjacency_list_dags/<name>.json beside the raw data
NAME = None  # None: the raw file's name (eht_imaging)
FEATURES = "default"  # default | all | comma-separated numeric columns
TEMPLATE = "paper"  # paper | newer
SEED = 42
SPLIT = "0.8,0.1,0.1"
DATA_DIR = "data"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--raw", default=RAW, help="zip, folder or CSV of run files (%(default)s)")
    p.add_argument(
        "--dag", default=DAG, help="DAG json {job: [children]}; default: found beside --raw"
    )
    p.add_argument("--name", default=NAME, help="dataset name; default: the raw file's name")
    p.add_argument(
        "--features",
        default=FEATURES,
        help="default (six delays, two byte counts, cpu time), all (36 numeric columns)\n"
        "or a comma-separated list of columns",
    )
    p.add_argument(
        "--multiclass", action="store_true", help="labels None, cpu_K, hdd_K (+ label_id)"
    )
    p.add_argument("--template", default=TEMPLATE, choices=["paper", "newer"], help="sentence form")
    p.add_argument("--seed", type=int, default=SEED, help="seed of the split by run")
    p.add_argument("--split", default=SPLIT, help="train,validation,test fractions of the runs")
    p.add_argument("--data_dir", default=DATA_DIR, help="output root (%(default)s)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.workflows.flowbench import process_flowbench, summary_table

    summary = process_flowbench(
        args.raw,
        dag=args.dag,
        name=args.name,
        features=args.features,
        multiclass=args.multiclass,
        template=args.template,
        seed=args.seed,
        split=args.split,
        data_dir=args.data_dir,
    )
    print(summary_table(summary))
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
