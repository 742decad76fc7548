"""The paper's ablations: references 0-4, window size, tick spacing, LLM comparison.

    python ablation_eval.py --ablation references --dataset UCR --LLM GPT-4o --run
    python ablation_eval.py --ablation window --dataset UCR --LLM GPT-4o --values 300,600,900,1200 --run
    python ablation_eval.py --ablation ticks --dataset NormA --LLM GPT-4o --values 10,25,50,100,200 --run
    python ablation_eval.py --ablation llm --dataset UCR --LLM GPT-4o GLM-4v-plus offline --run

Without --run it aggregates the runs that exist; a setting whose run is incomplete gets a note line
above the table. Exit codes: 0 done; 1 with --run when a setting's run is still incomplete (run it
again to ask only what is missing); 2 bad input. Writes data/results/ablation/<ablation>_<dataset>
.{md,csv,tex} and prints the table. Answers already paid for come from data/cache/llm/.
Every run is asked with the same sampling and sending flags as main_cli.py (--temperature,
--top_p, --max_tokens, --seed, --concurrency, --timeout), so its answers and cache keys are
those of the equivalent main run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lmad.cli import ArgumentParser, add_field_flag, non_negative_int, run_main, str2bool
from lmad.series.eval_options import EvalOptions
from lmad.series.run_options import RunOptions
from main_cli import DATASET, LLM, add_generation_flags, client_options, generation_params


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument(
        "--ablation",
        required=True,
        choices=["references", "window", "ticks", "llm"],
        help="what to vary: references 0-4, window size, x tick spacing, or LLMs",
    )
    p.add_argument("--dataset", default=DATASET, help="dataset name (default %(default)s)")
    p.add_argument(
        "--LLM", nargs="+", default=[LLM], help="one or more model names, or offline (%(default)s)"
    )
    p.add_argument("--values", default="", help="comma-separated settings (default: the paper's)")
    p.add_argument("--run", action="store_true", help="make missing data and runs first")
    add_field_flag(p, RunOptions, "modality", "windows as", choices=["image", "text"])
    add_field_flag(
        p, RunOptions, "normal_reference", "references for window/ticks", type=non_negative_int
    )
    add_field_flag(p, RunOptions, "double_check", "self-reflection", type=str2bool)
    add_field_flag(p, RunOptions, "data_dir", "root of data, runs and results")
    add_field_flag(
        p, EvalOptions, "protocol", "metric definitions and pooling, as in evaluation.py",
        choices=["lmad", "tama", "tsb-ad"],
    )  # fmt: skip
    add_generation_flags(p)  # the same sampling and sending settings as main_cli.py
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.errors import ConfigError
    from lmad.names import check_name

    check_name(args.dataset, "--dataset")
    from lmad.series.ablation import AblationOptions, ablation_table

    try:
        values = [int(v) for v in args.values.split(",") if v.strip()] or None
    except ValueError:
        raise ConfigError(
            f"--values must be comma-separated integers, got {args.values!r}"
        ) from None
    run = RunOptions(
        dataset=args.dataset,
        llm=args.LLM[0],
        modality=args.modality,
        normal_reference=args.normal_reference,
        double_check=args.double_check,
        data_dir=args.data_dir,
        seed=args.seed,
    )
    options = AblationOptions(
        ablation=args.ablation,
        llms=args.LLM,
        run=run,
        values=values,
        make_missing=args.run,
        protocol=args.protocol,
        params=generation_params(args),
        client=client_options(args),
        models=args.models,
        keys=args.keys,
    )
    table = ablation_table(options)
    table.write(Path(args.data_dir) / "results" / "ablation", f"{args.ablation}_{args.dataset}")
    print(table.markdown())
    return 1 if args.run and table.notes else 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
