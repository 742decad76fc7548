"""The paper's ablations: references 0-4, window size, tick spacing, LLM comparison.

    python ablation_eval.py --ablation references --dataset UCR --LLM GPT-4o --run
    python ablation_eval.py --ablation window --dataset UCR --LLM GPT-4o --values 300,600,900,1200 --run
    python ablation_eval.py --ablation ticks --dataset NormA --LLM GPT-4o --values 10,25,50,100,200 --run
    python ablation_eval.py --ablation llm --dataset UCR --LLM GPT-4o GLM-4v-plus offline --run

Without --run it aggregates the runs that exist; a setting whose run is incomplete gets a note line
above the table. Exit codes: 0 done; 1 with --run when a setting's run is still incomplete (run it
again to ask only what is missing); 2 bad input. Writes data/results/ablation/<ablation>_<dataset>
.{md,csv,tex} and prints the table. Answers already paid for come from data/cache/llm/.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lmad.cli import ArgumentParser, non_negative_int, positive_int, run_main, str2bool


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument(
        "--ablation",
        required=True,
        choices=["references", "window", "ticks", "llm"],
        help="what to vary: references 0-4, window size, x tick spacing, or LLMs",
    )
    p.add_argument("--dataset", default="UCR", help="dataset name (UCR)")
    p.add_argument("--LLM", nargs="+", default=["GPT-4o"], help="one or more model names")
    p.add_argument("--values", default="", help="comma-separated settings (default: the paper's)")
    p.add_argument("--run", action="store_true", help="make missing data and runs first")
    p.add_argument(
        "--modality", default="image", choices=["image", "text"], help="windows as (image)"
    )
    p.add_argument(
        "--normal_reference",
        type=non_negative_int,
        default=3,
        help="references for window/ticks (3)",
    )
    p.add_argument("--double_check", type=str2bool, default=True, help="self-reflection (True)")
    p.add_argument("--concurrency", type=positive_int, default=4, help="requests in flight (4)")
    p.add_argument("--data_dir", default="data", help="root of data, runs and results (data)")
    p.add_argument(
        "--protocol",
        default="lmad",
        choices=["lmad", "tama", "tsb-ad"],
        help="metric definitions and pooling, as in evaluation.py (lmad)",
    )
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.errors import ConfigError
    from lmad.names import check_name

    check_name(args.dataset, "--dataset")
    from lmad.series.ablation import ablation_table

    try:
        values = [int(v) for v in args.values.split(",") if v.strip()] or None
    except ValueError:
        raise ConfigError(
            f"--values must be comma-separated integers, got {args.values!r}"
        ) from None
    table = ablation_table(
        args.ablation,
        args.dataset,
        args.LLM,
        values,
        args.data_dir,
        args.run,
        args.modality,
        args.normal_reference,
        args.double_check,
        args.concurrency,
        args.protocol,
    )
    table.write(Path(args.data_dir) / "results" / "ablation", f"{args.ablation}_{args.dataset}")
    print(table.markdown())
    return 1 if args.run and table.notes else 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
