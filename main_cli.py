"""Few-shot anomaly detection with a multimodal LLM on windows drawn as images (TAMA steps 2-4).

    python main_cli.py --dataset UCR --normal_reference 3 --LLM GPT-4o
    python main_cli.py --dataset UCR --LLM offline            # no key, no GPU: a non-LLM analyzer
    python main_cli.py --dataset UCR --LLM GPT-4o --dry_run   # tokens and dollars, nothing sent
    python main_cli.py --dataset UCR --LLM GPT-4o --batch     # Batch API: half price, <= 24 h

Reads data/processed/<dataset>/ (run make_dataset.py first) and appends one JSONL record per series,
window, channel and stage to data/runs/<subtask>/<dataset>_<LLM>_image.jsonl as each answer arrives.
An interrupted run resumes where it stopped; answers already paid for come from data/cache/llm/.
A window is sent only after the reference of its series and channel was answered.

Exit codes: 0 every answer is there; 1 some answers failed or are blocked by a failed reference
(run the same command again to ask just those); 2 bad input (one `error:` line, nothing sent);
3 (--batch only) batches are still in flight when --batch_wait runs out: run the same command
again to poll them (nothing is submitted twice).

--batch (openai, azure, zhipuai) sends each stage's requests as a JSONL file through the provider's
Batch API: the reference batch, then the analysis batch, then self-reflection (repair turns go in
the batch after the reply they repair). Batch ids and results are kept next to the run log in
<log>.batch.json and <log>.batch/; answers go through the same checks into the same run log.
"""

from __future__ import annotations

import sys

from lmad.cli import (
    ArgumentParser,
    add_field_flag,
    non_negative_int,
    parse_id_list,
    positive_float,
    positive_int,
    run_main,
    str2bool,
)
from lmad.llm.messages import GenerationParams
from lmad.llm.options import KEYS_FILE, MODELS_FILE, ClientOptions
from lmad.series.run_options import RunOptions

# Defaults a user may edit here; flags override them. Every other default is written once, in the
# options class it belongs to: RunOptions (lmad/series/run_options.py), GenerationParams (TAMA's
# sampling, lmad/llm/messages.py) and ClientOptions (lmad/llm/options.py).
DATASET = "UCR"
LLM = "GPT-4o"


def add_generation_flags(p: ArgumentParser) -> None:
    """Sampling and sending flags, shared with ablation_eval.py so both runs ask alike."""
    add_field_flag(p, GenerationParams, "temperature", "sampling temperature", type=float)
    add_field_flag(p, GenerationParams, "top_p", "nucleus sampling mass", type=float)
    add_field_flag(p, GenerationParams, "max_tokens", "reply length limit", type=positive_int)
    add_field_flag(p, ClientOptions, "concurrency", "requests in flight at once", type=positive_int)
    add_field_flag(p, ClientOptions, "timeout", "seconds per request", type=positive_float)
    add_field_flag(p, RunOptions, "seed", "seed for choosing reference windows", type=int)
    p.add_argument("--models", default=MODELS_FILE, help="models file (default %(default)s)")
    p.add_argument("--keys", default=KEYS_FILE, help="API keys file (default %(default)s)")


def generation_params(args) -> GenerationParams:
    return GenerationParams(args.temperature, args.top_p, args.max_tokens)


def client_options(args) -> ClientOptions:
    return ClientOptions(args.concurrency, args.timeout)


def build_parser(modality: str = "image") -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default=DATASET, help="dataset name (default %(default)s)")
    p.add_argument(
        "--LLM",
        default=LLM,
        help="model name from BigModel/models.yaml, hf:<id>, or offline (lmad's non-LLM "
        "nearest-neighbour analyzer; default %(default)s)",
    )
    p.add_argument(
        "--data_id_list", default="", help='series ids, e.g. "[135]"; empty = all processed'
    )
    add_field_flag(
        p, RunOptions, "normal_reference",
        "normal reference windows shown first (0 allowed)", type=non_negative_int,
    )  # fmt: skip
    add_field_flag(
        p, RunOptions, "double_check",
        "self-reflection on windows with anomalies (True/False)", type=str2bool,
    )  # fmt: skip
    add_field_flag(p, RunOptions, "subtask", "experiment group (runs/<subtask>/)")
    p.add_argument(
        "--run_name", default="", help="log file name instead of <dataset>_<LLM>_<modality>"
    )
    add_field_flag(p, RunOptions, "data_dir", "root of processed data, runs and cache")
    p.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="analyse only the first N windows (evaluation counts the others as never asked)",
    )
    p.add_argument(
        "--dry_run", action="store_true", help="print estimated tokens and cost, send nothing"
    )
    p.add_argument("--no_cache", action="store_true", help="do not read or write data/cache/llm")
    p.add_argument(
        "--batch",
        action="store_true",
        help="send through the provider's Batch API (openai, azure, zhipuai): half price, no\n"
        "per-minute limit, answers within 24 h; stop and rerun to poll (exit code 3 meanwhile)",
    )
    p.add_argument(
        "--batch_wait",
        type=non_negative_int,
        default=None,
        help="with --batch: seconds to wait for batches before exiting with code 3\n"
        "(default: until every batch is back; 0: submit or poll once)",
    )
    p.add_argument(
        "--batch_poll",
        type=positive_float,
        default=60.0,
        help="with --batch: seconds between polls (default %(default)s)",
    )
    add_generation_flags(p)
    p.set_defaults(modality=modality)
    return p


def main(argv=None, modality: str = "image") -> int:
    args = build_parser(modality).parse_args(argv)
    from lmad.llm.cache import cache_under
    from lmad.series.analyzers import open_analyzer
    from lmad.series.pipeline import TamaRun

    if args.batch:
        from lmad.series.batch_run import check_batch_llm

        check_batch_llm(args.LLM, args.models)
    note = None
    if args.dry_run:  # counts with the model's tokenizer; never loads an hf: model's weights
        from lmad.series.fit import open_dry_analyzer

        cache = None if args.no_cache else cache_under(args.data_dir)
        analyzer, note = open_dry_analyzer(
            args.LLM, generation_params(args), args.models, args.keys, cache
        )
    else:
        analyzer = open_analyzer(
            args.LLM,
            generation_params(args),
            args.models,
            args.keys,
            cache_under(args.data_dir),
            args.no_cache,
            client_options(args),
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
    run = TamaRun(options, analyzer)
    if analyzer.label != analyzer.name:
        print(
            f"note: --LLM {analyzer.name} is not an LLM; tables call it {analyzer.label}",
            file=sys.stderr,
        )
    forecast = run.preflight()  # a request larger than the context window stops the run here
    if args.dry_run:
        print("\n".join(forecast.lines()))
        if args.batch:  # check_batch_llm above made sure the model has a batch price
            cut = analyzer.client.config.batch_cut or 0.0
            cost = forecast.estimate.cost_usd * (1 - cut)
            print(f"  with --batch: ~${cost:.2f} at the batch price ({cut:.0%} off)")
        if note:
            print(f"note: {note}", file=sys.stderr)
        return 0
    if args.batch:
        from lmad.series.batch_run import BatchRun

        outcome = BatchRun(run, analyzer.client).wait(args.batch_wait, args.batch_poll)
        summary = outcome.summary
    else:
        summary = run.execute()
    print(f"run log: {summary.log_path}")
    for line in summary.lines():
        print(line)
    print(f"usage: {analyzer.usage_summary()}")
    if args.batch:
        print("\n".join(outcome.lines()))
        if outcome.in_flight:
            print(outcome.in_flight_line(), file=sys.stderr)
            return outcome.exit_code
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
