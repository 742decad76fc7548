"""Score TAMA runs: point, point-adjusted, AUC, affiliation, VUS, range-based and event metrics.

    python evaluation.py --dataset UCR --LLM GPT-4o
    python evaluation.py --dataset UCR --LLM GPT-4o GLM-4v-plus offline   # one table, several LLMs

Reads data/runs/<subtask>/<dataset>_<LLM>.jsonl and the processed labels; prints the table (rows Pred,
Pred_adjust, DCheck, DCheck_adjust, pooled over series) and writes data/results/<subtask>/
<dataset>_<LLM>/{table,per_series}.{md,csv,tex}, metrics.json, plots/ and report.html.
"""

from __future__ import annotations

import argparse
import sys

from lmad.cli import run_main, str2bool

# Defaults a user may edit here; flags override them.
DATASET = "UCR"
C0 = 9.0
PAT = 0.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", default=DATASET, help="dataset name (default %(default)s)")
    p.add_argument("--LLM", nargs="+", default=["GPT-4o"], help="one or more run LLM names")
    p.add_argument("--subtask", default="detection", help="experiment group the runs used")
    p.add_argument("--run_name", default="", help="log name used by main_cli.py --run_name")
    p.add_argument("--data_dir", default="data", help="root of processed data, runs and results")
    p.add_argument(
        "--c0",
        type=float,
        default=C0,
        help="threshold on the summed confidences (TAMA: 9 for three-fold overlap)",
    )
    p.add_argument(
        "--normalised_threshold",
        type=float,
        default=None,
        help="threshold on sum / (4 x coverage) in [0, 1] instead of c0",
    )
    p.add_argument(
        "--pat",
        type=float,
        default=PAT,
        help="point adjustment: a segment counts when > PAT of it is flagged (0: classic)",
    )
    p.add_argument("--vus_buffer", type=int, default=None, help="VUS max buffer (window/6)")
    p.add_argument(
        "--plots", type=str2bool, default=True, help="write plots and report (True/False)"
    )
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.series.evaluate import EvalOptions, evaluate_llm
    from lmad.series.evaluation_report import summary_table, write_outputs

    options = EvalOptions(
        dataset=args.dataset,
        llms=args.LLM,
        subtask=args.subtask,
        data_dir=args.data_dir,
        run_name=args.run_name,
        c0=args.c0,
        normalised_threshold=args.normalised_threshold,
        pat=args.pat,
        vus_buffer=args.vus_buffer,
        plots=args.plots,
    )
    results = []
    for llm in args.LLM:
        result = evaluate_llm(options, llm)
        folder = write_outputs(options, result)
        results.append(result)
        print(f"{llm}: wrote {folder}/ (table, per_series, metrics.json, report.html)")
    print()
    print(summary_table(results, args.dataset).markdown())
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
