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

from lmad.cli import ArgumentParser, add_field_flag, run_main
from lmad.io import DATA_DIR  # root of data/, shared by every script
from lmad.workflows.options import FlowbenchOptions

# Defaults a user may edit here; flags override them. --multiclass is off unless given
# (lmad.workflows.options.FlowbenchOptions).
RAW = "data/raw/flowbench/eht_imaging.zip"
DAG = None  # None: adjacency_list_dags/<name>.json beside the raw data
NAME = None  # None: the raw file's name (eht_imaging)
FEATURES = "default"  # default | all | comma-separated numeric columns
TEMPLATE = "paper"  # paper | newer
SEED = 42
SPLIT = "0.8,0.1,0.1"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)

    def flag(name: str, help: str, **kwargs) -> None:
        add_field_flag(p, FlowbenchOptions, name, help, **kwargs)

    flag("raw", "zip, folder or CSV of run files", default=RAW)
    flag("dag", "DAG json {job: [children]}; None: found beside --raw", default=DAG)
    flag("name", "dataset name; None: the raw file's name", default=NAME)
    flag(
        "features",
        "default (six delays, two byte counts, cpu time), all (36 numeric columns)\n"
        "or a comma-separated list of columns",
        default=FEATURES,
    )
    flag("multiclass", "labels None, cpu_K, hdd_K (+ label_id)", action="store_true")
    flag("template", "sentence form", default=TEMPLATE, choices=["paper", "newer"])
    flag("seed", "seed of the split by run", type=int, default=SEED)
    flag("split", "train,validation,test fractions of the runs", default=SPLIT)
    flag("data_dir", "output root", default=DATA_DIR)
    return p


def main(argv=None) -> int:
    options = FlowbenchOptions(**vars(build_parser().parse_args(argv)))
    from lmad.workflows.flowbench import process_flowbench, summary_table

    print(summary_table(process_flowbench(**options.process_arguments())))
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
