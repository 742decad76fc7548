"""Score TAMA runs: point, point-adjusted, AUC, affiliation, VUS, range-based and event metrics.

    python evaluation.py --dataset UCR --LLM GPT-4o
    python evaluation.py --dataset UCR --LLM GPT-4o GLM-4v-plus offline   # one table, several LLMs

Reads data/runs/<subtask>/<dataset>_<LLM>_<modality>.jsonl and the processed labels; prints the
table (rows Pred, Pred_adjust, DCheck, DCheck_adjust, pooled over series) and the answers per stage,
and writes data/results/<subtask>/<dataset>_<LLM>_<modality>/{table,status,per_series}.{md,csv,tex},
metrics.json, plots/ and report.html.

A run with failed, blocked or never-asked windows is still scored (those windows count as normal),
and a line above the table says so: `incomplete: 2 of 11 answers failed (...), 1 window never asked`.
Exit codes: 0 evaluated (complete or marked incomplete); 2 bad input, or a log without a single
successful analysis answer (nothing to score).
"""

from __future__ import annotations

import sys

from lmad.cli import (
    ArgumentParser,
    parse_id_list,
    positive_float,
    positive_int,
    run_main,
    share_below_one,
    str2bool,
    unit_interval,
)

# Defaults a user may edit here; flags override them.
DATASET = "UCR"
C0 = 9.0
PAT = 0.0


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default=DATASET, help="dataset name (default %(default)s)")
    p.add_argument("--LLM", nargs="+", default=["GPT-4o"], help="one or more run LLM names")
    p.add_argument("--subtask", default="detection", help="experiment group the runs used")
    p.add_argument("--run_name", default="", help="log name used by main_cli.py --run_name")
    p.add_argument("--data_dir", default="data", help="root of processed data, runs and results")
    p.add_argument(
        "--modality", default="image", choices=["image", "text"], help="modality of the run"
    )
    p.add_argument(
        "--data_id_list",
        default="",
        help='series the run should cover, e.g. "[135]"; empty = every processed series',
    )
    p.add_argument(
        "--c0",
        type=positive_float,
        default=C0,
        help="threshold on the summed confidences (TAMA: 9 for three-fold overlap)",
    )
    p.add_argument(
        "--normalised_threshold",
        type=unit_interval,
        default=None,
        help="threshold on sum / (4 x coverage) in [0, 1] instead of c0",
    )
    p.add_argument(
        "--pat",
        type=share_below_one,
        default=PAT,
        help="point adjustment: a segment counts when > PAT of it is flagged (0: classic)",
    )
    p.add_argument(
        "--vus_buffer",
        type=positive_int,
        default=None,
        help="VUS max buffer (lmad: window/6; tsb-ad: TSB-AD's period estimate)",
    )
    p.add_argument(
        "--protocol",
        default="lmad",
        choices=["lmad", "tama", "tsb-ad"],
        help="metric definitions and pooling (README, 'Evaluation protocols'):\n"
        "lmad (default): lmad's own, with average precision (AP)\n"
        "tama: what TAMA's evaluation code prints (Table 8)\n"
        "tsb-ad: the columns of TSB-AD 1.5's get_metrics",
    )
    p.add_argument(
        "--tsbad_predictions",
        default="best",
        choices=["best", "c0"],
        help="tsb-ad F1 columns: best (TSB-AD's own thresholds, its default) or c0 (the\n"
        "predictions of --c0 / --normalised_threshold)",
    )
    p.add_argument(
        "--plots", type=str2bool, default=True, help="write plots and report (True/False)"
    )
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.series.evaluate import EvalOptions, evaluate_llm
    from lmad.series.evaluation_report import status_table, summary_table, write_outputs

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
        modality=args.modality,
        ids=parse_id_list(args.data_id_list),
        protocol=args.protocol,
        tsbad_predictions=args.tsbad_predictions,
    )
    results = [evaluate_llm(options, llm) for llm in args.LLM]  # all checked before writing
    for result in results:
        folder = write_outputs(options, result)
        print(
            f"{result['llm']}: wrote {folder}/ (table, status, per_series, metrics.json, report.html)"
        )
    print()
    print(summary_table(results, args.dataset).markdown())
    print(status_table(results, args.dataset).markdown())
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
