"""Score TAMA runs: point, point-adjusted, AUC, affiliation, VUS, range-based and event metrics.

    python evaluation.py --dataset UCR --LLM GPT-4o
    python evaluation.py --dataset UCR --LLM GPT-4o GLM-4v-plus offline   # one table, several LLMs
    python evaluation.py --dataset UCR --LLM GPT-4o --baselines stomp,kmeans   # + detectors' rows
    python evaluation.py --dataset UCR --LLM none --baselines all              # detectors only

Reads data/runs/<subtask>/<dataset>_<LLM>_<modality>.jsonl and the processed labels; prints the
table (rows Pred, Pred_adjust, DCheck, DCheck_adjust, pooled over series) and the answers per stage,
and writes data/results/<subtask>/<dataset>_<LLM>_<modality>/{table,status,per_series}.{md,csv,tex},
metrics.json, plots/ and report.html.

--baselines adds score-based detectors (scores written by detect_baselines.py under
data/scores/<subtask>/<dataset>/<detector>/) to the same table, scored on the same series under the
same protocol: rows "<detector> (aeon)" Pred (score > mean + 3 std of the series' test scores,
TSB-AD's rule) and Pred_adjust where the protocol has it; no DCheck rows. Their metrics join each
LLM's metrics.json ("baselines") and report.html plots their scores under the series. With --LLM
none only the detectors are evaluated, on every processed test series (or --data_id_list), into
data/results/<subtask>/<dataset>_baselines/.

A run with failed, blocked or never-asked windows is still scored (those windows count as normal),
and a line above the table says so: `incomplete: 2 of 11 answers failed (...), 1 window never asked`.
Exit codes: 0 evaluated (complete or marked incomplete); 2 bad input, or a log without a single
successful analysis answer (nothing to score).
"""

from __future__ import annotations

import sys

from lmad.cli import (
    ArgumentParser,
    add_field_flag,
    parse_id_list,
    positive_float,
    positive_int,
    run_main,
    share_below_one,
    str2bool,
    unit_interval,
)
from lmad.series.eval_options import EvalOptions
from main_cli import DATASET, LLM

# DATASET and LLM are main_cli.py's (edit them there: a run and its evaluation agree); every other
# default is a field of EvalOptions (lmad/series/eval_options.py), c0 = 9 and PAT = 0 as in TAMA.


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default=DATASET, help="dataset name (default %(default)s)")
    p.add_argument(
        "--LLM",
        nargs="+",
        default=[LLM],
        help="one or more run LLM names; none: no LLM, only the detectors of --baselines\n"
        "(default %(default)s)",
    )
    add_field_flag(p, EvalOptions, "subtask", "experiment group the runs used")
    p.add_argument("--run_name", default="", help="log name used by main_cli.py --run_name")
    add_field_flag(p, EvalOptions, "data_dir", "root of processed data, runs and results")
    add_field_flag(p, EvalOptions, "modality", "modality of the run", choices=["image", "text"])
    p.add_argument(
        "--data_id_list",
        default="",
        help='series the run should cover, e.g. "[135]"; empty = every processed series',
    )
    add_field_flag(
        p, EvalOptions, "c0",
        "threshold on the summed confidences (TAMA: 9 for three-fold overlap)",
        type=positive_float,
    )  # fmt: skip
    p.add_argument(
        "--normalised_threshold",
        type=unit_interval,
        default=None,
        help="threshold on sum / (4 x coverage) in [0, 1] instead of c0",
    )
    add_field_flag(
        p, EvalOptions, "pat",
        "point adjustment: a segment counts when > PAT of it is flagged (0: classic)",
        type=share_below_one,
    )  # fmt: skip
    p.add_argument(
        "--vus_buffer",
        type=positive_int,
        default=None,
        help="VUS max buffer (lmad: window/6; tsb-ad: TSB-AD's period estimate)",
    )
    add_field_flag(
        p, EvalOptions, "protocol",
        "metric definitions and pooling (README, 'Evaluation protocols'):\n"
        "lmad: lmad's own, with average precision (AP)\n"
        "tama: what TAMA's evaluation code prints (Table 8)\n"
        "tsb-ad: the columns of TSB-AD 1.5's get_metrics",
        choices=["lmad", "tama", "tsb-ad"],
    )  # fmt: skip
    add_field_flag(
        p, EvalOptions, "tsbad_predictions",
        "tsb-ad F1 columns: best (TSB-AD's own thresholds, its default) or c0 (the\n"
        "predictions of --c0 / --normalised_threshold)",
        choices=["best", "c0"],
    )  # fmt: skip
    p.add_argument(
        "--baselines",
        default="",
        help="score-based detectors whose rows join the table: all (every detector with scores\n"
        "for this dataset and subtask) or names, e.g. stomp,kmeans; default: none.\n"
        "Scores come from detect_baselines.py",
    )
    add_field_flag(p, EvalOptions, "plots", "write plots and report (True/False)", type=str2bool)
    return p


def llms_of(names: list[str]) -> list[str]:
    """``--LLM``: run LLM names, or ``none`` (no LLM: only the detectors of ``--baselines``)."""
    from lmad.errors import ConfigError

    if "none" in names and len(names) > 1:
        raise ConfigError("--LLM none (only the detectors of --baselines) takes no LLM names")
    return [] if names == ["none"] else names


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.errors import ConfigError
    from lmad.series.baseline_eval import evaluate_baselines, parse_baselines, resolve_baselines
    from lmad.series.evaluate import EvalOptions, evaluate_llm
    from lmad.series.evaluation_report import (
        status_table,
        summary_table,
        write_baseline_outputs,
        write_outputs,
    )

    llms = llms_of(args.LLM)
    options = EvalOptions(
        dataset=args.dataset,
        llms=llms,
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
        baselines=parse_baselines(args.baselines),
    )
    if not llms and not options.baselines:
        raise ConfigError("--LLM none evaluates detectors only: add --baselines all or names")
    options.baselines = resolve_baselines(options)
    # everything is evaluated (and checked) before anything is written
    results = [evaluate_llm(options, llm) for llm in llms]
    baselines = evaluate_baselines(options, results)
    for result in results:
        folder = write_outputs(options, result, baselines)
        print(
            f"{result['llm']}: wrote {folder}/ (table, status, per_series, metrics.json, report.html)"
        )
    if not results:
        folder = write_baseline_outputs(options, baselines)
        print(
            f"detectors: wrote {folder}/ (table, per_series_baselines, metrics.json, report.html)"
        )
    print()
    print(summary_table(results, args.dataset, baselines).markdown())
    if results:
        print(status_table(results, args.dataset).markdown())
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
