"""Few-shot anomaly detection with a multimodal LLM on windows drawn as images (TAMA steps 2-4).

    python main_cli.py --dataset UCR --normal_reference 3 --LLM GPT-4o
    python main_cli.py --dataset UCR --LLM offline            # no key, no GPU: a non-LLM baseline
    python main_cli.py --dataset UCR --LLM GPT-4o --dry_run   # tokens and dollars, nothing sent

Reads data/processed/<dataset>/ (run make_dataset.py first) and appends one JSONL record per series,
window, channel and stage to data/runs/<subtask>/<dataset>_<LLM>_image.jsonl as each answer arrives.
An interrupted run resumes where it stopped; answers already paid for come from data/cache/llm/.
A window is sent only after the reference of its series and channel was answered.

Exit codes: 0 every answer is there; 1 some answers failed or are blocked by a failed reference
(run the same command again to ask just those); 2 bad input (one `error:` line, nothing sent).
"""

from __future__ import annotations

import sys

from lmad.cli import (
    ArgumentParser,
    non_negative_int,
    parse_id_list,
    positive_float,
    positive_int,
    run_main,
    str2bool,
)

# Defaults a user may edit here; flags override them.
DATASET = "UCR"
LLM = "GPT-4o"
NORMAL_REFERENCE = 3
DATA_DIR = "data"
MODELS = "BigModel/models.yaml"
KEYS = "BigModel/api_keys.yaml"


def build_parser(modality: str = "image") -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default=DATASET, help="dataset name (default %(default)s)")
    p.add_argument(
        "--LLM", default=LLM, help="model name from BigModel/models.yaml, hf:<id>, offline"
    )
    p.add_argument(
        "--data_id_list", default="", help='series ids, e.g. "[135]"; empty = all processed'
    )
    p.add_argument(
        "--normal_reference",
        type=non_negative_int,
        default=NORMAL_REFERENCE,
        help="normal reference windows shown first (0 allowed; default %(default)s)",
    )
    p.add_argument(
        "--double_check",
        type=str2bool,
        default=True,
        help="self-reflection on windows with anomalies (True/False)",
    )
    p.add_argument("--subtask", default="detection", help="experiment group (runs/<subtask>/)")
    p.add_argument(
        "--run_name", default="", help="log file name instead of <dataset>_<LLM>_<modality>"
    )
    p.add_argument("--data_dir", default=DATA_DIR, help="root of processed data, runs and cache")
    p.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="analyse only the first N windows (evaluation counts the others as never asked)",
    )
    p.add_argument(
        "--dry_run", action="store_true", help="print estimated tokens and cost, send nothing"
    )
    p.add_argument(
        "--concurrency", type=positive_int, default=4, help="requests in flight at once (4)"
    )
    p.add_argument("--timeout", type=positive_float, default=120.0, help="seconds per request")
    p.add_argument("--no_cache", action="store_true", help="do not read or write data/cache/llm")
    p.add_argument("--seed", type=int, default=42, help="seed for choosing reference windows")
    p.add_argument("--temperature", type=float, default=0.1, help="sampling temperature (0.1)")
    p.add_argument("--top_p", type=float, default=0.3, help="nucleus sampling mass (0.3)")
    p.add_argument(
        "--max_tokens", type=positive_int, default=4096, help="reply length limit (4096)"
    )
    p.add_argument("--models", default=MODELS, help="models file (default %(default)s)")
    p.add_argument("--keys", default=KEYS, help="API keys file (default %(default)s)")
    p.set_defaults(modality=modality)
    return p


def main(argv=None, modality: str = "image") -> int:
    args = build_parser(modality).parse_args(argv)
    from lmad.llm.client import open_client
    from lmad.llm.messages import GenerationParams
    from lmad.series.pipeline import RunOptions, TamaRun

    client = open_client(
        args.LLM,
        args.models,
        args.keys,
        f"{args.data_dir}/cache/llm",
        args.no_cache,
        args.concurrency,
        args.timeout,
    )
    options = RunOptions(
        dataset=args.dataset,
        llm=args.LLM,
        ids=parse_id_list(args.data_id_list),
        modality=args.modality,
        normal_reference=args.normal_reference,
        double_check=args.double_check,
        subtask=args.subtask,
        data_dir=args.data_dir,
        run_name=args.run_name,
        limit=args.limit,
        seed=args.seed,
    )
    params = GenerationParams(args.temperature, args.top_p, args.max_tokens)
    run = TamaRun(options, client, params)
    if client.config.provider == "offline":
        print("note: --LLM offline is a nearest-neighbour baseline, not an LLM", file=sys.stderr)
    if args.dry_run:
        e = run.estimate()
        print(
            f"dry run for {client.name}: {e.requests} requests (plus self-reflection for windows "
            f"with anomalies), ~{e.prompt_tokens} prompt + ~{e.completion_tokens} completion "
            f"tokens, ~${e.cost_usd:.2f}; nothing was sent"
        )
        return 0
    summary = run.execute()
    print(f"run log: {summary.log_path}")
    for line in summary.lines():
        print(line)
    print(f"usage: {client.meter.summary()}")
    if summary.problems:
        shown = ", ".join(summary.problems[:10])
        more = f" and {len(summary.problems) - 10} more" if len(summary.problems) > 10 else ""
        print(f"not answered: {shown}{more}", file=sys.stderr)
    if not summary.complete:
        print(
            f"{summary.incomplete}; rerun the same command to ask only those (answers already "
            "received are kept and not paid for twice)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
