"""Write process-trace datasets in the SemAD CSV format (trace,label,cause,evelabel).

    python data_processing/process_logs.py                      # simulate, no network needed
    python data_processing/process_logs.py --n_train 5000 --seed 7
    python data_processing/process_logs.py --xes log.xes.gz --inject --name mylog
    python data_processing/process_logs.py --csv ../shared/data/semad/test_data.csv --name semad

Default: twelve hand-written business processes are played out; training_data.csv holds normal
traces of the first eight, test_data.csv mostly traces of the four unseen ones and eval_data.csv
traces of the seen ones, both with --anomaly_ratio anomalous traces (Insert, SkipSequence, Rework,
Early, Late, Exclusive). --xes imports an event log: its normal traces go to training; with
--inject (or when the log has labelled anomalies) --holdout of them go to test and to eval, with
anomalies injected. --csv re-validates SemAD CSV files and copies them.
Everything is written to <data_dir>/process/<name>/.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmad.cli import ArgumentParser, add_field_flag, positive_int, run_main
from lmad.errors import ConfigError
from lmad.io import DATA_DIR  # root of data/, shared by every script
from lmad.names import check_name
from lmad.traces.datasets import ProcessLogsOptions

# Defaults a user may edit here; flags override them. The defaults of --xes, --csv, --name,
# --inject and --lifecycle (all off) are lmad.traces.datasets.ProcessLogsOptions's.
NAME = "simulated"  # the folder name when --name is not given and no file names one
N_TRAIN, N_TEST, N_EVAL = 2000, 600, 600
ANOMALY_RATIO = 0.5
SEED = 42
N_UNSEEN = 4  # the last N_UNSEEN built-in processes never appear in training
HOLDOUT = 0.2  # share of an imported log's normal traces held out for test, and again for eval


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)

    def flag(name: str, help: str, parser=p, **kwargs) -> None:
        add_field_flag(parser, ProcessLogsOptions, name, help, **kwargs)

    source = p.add_mutually_exclusive_group()
    flag("xes", "import this XES event log (.xes or .xes.gz)", parser=source)
    flag("csv", "re-validate and copy these SemAD CSV files", parser=source, nargs="+")
    flag("name", f"dataset folder name; None: the file's name, or {NAME}")
    flag("data_dir", "data root", default=DATA_DIR)
    flag("n_train", "simulated training traces", type=positive_int, default=N_TRAIN)
    flag("n_test", "simulated test traces", type=positive_int, default=N_TEST)
    flag("n_eval", "simulated eval traces", type=positive_int, default=N_EVAL)
    flag("n_unseen", "processes kept out of training", type=positive_int, default=N_UNSEEN)
    flag("anomaly_ratio", "anomalous share of test/eval", type=float, default=ANOMALY_RATIO)
    flag("seed", "random seed", type=int, default=SEED)
    flag("inject", "with --xes: inject anomalies", action="store_true")
    flag("holdout", "with --xes: test/eval share", type=float, default=HOLDOUT)
    flag("lifecycle", "with --xes: keep only this lifecycle:transition")
    return p


def dataset_name(args) -> str:
    """--name, or the name taken from --csv (its folder) or --xes (its file), or NAME; checked.

    It becomes <data_dir>/process/<name>/, so it must be one safe folder name (no separators, no
    "..", no leading dot, not a folder lmad manages); refused before anything is read or written.
    """
    if args.name is not None:
        return check_name(args.name, "--name")
    if args.csv:
        derived, source = (
            Path(args.csv[0]).resolve().parent.name,
            f"--csv {args.csv[0]} (its folder)",
        )
    elif args.xes:
        derived, source = Path(args.xes).name.split(".")[0], f"--xes {args.xes}"
    else:
        return check_name(NAME, "NAME")
    try:
        return check_name(derived, f"the dataset name taken from {source}")
    except ConfigError as exc:
        raise ConfigError(f"{exc}; or choose a name with --name") from None


def main(argv=None) -> int:
    options = ProcessLogsOptions(**vars(build_parser().parse_args(argv)))
    name = dataset_name(options)
    if not 0 <= options.anomaly_ratio <= 1 or not 0 < options.holdout < 0.5:
        raise ConfigError("--anomaly_ratio must be in [0, 1] and --holdout in (0, 0.5)")
    from lmad.traces.datasets import build_splits
    from lmad.traces.inject import describe
    from lmad.traces.log_io import write_traces

    splits = build_splits(options)
    folder = Path(options.data_dir) / "process" / name
    for stem, traces in splits.items():
        # test and eval files carry raw_cause; copied CSV files keep their own columns
        has_raw = any(t.raw_cause is not None for t in traces)
        with_raw = has_raw if options.csv else stem != "training_data"
        path = write_traces(folder / f"{stem}.csv", traces, with_raw_cause=with_raw)
        info = describe(traces)
        kinds = ", ".join(f"{kind} {count}" for kind, count in info["kinds"].items()) or "none"
        print(
            f"wrote {path}: {info['rows']} rows, {info['anomalous']} anomalous "
            f"({info['share']:.1%}); causes: {kinds}"
        )
    if set(splits) == {"training_data"}:
        print("no test or eval data: the log has no anomalies; add --inject to make some")
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
