"""Valid answers from a small local model, with and without schema constraints (issue 13).

SmolLM2-135M-Instruct (the packaged GGUF, ``--LLM hf:smollm2``) answers TAMA's reference and analysis
prompts for the first N text windows of UCR series 135 (300 points, stride 100, prepared in a
temporary folder; one normal reference window, so that a request and its reply fit SmolLM2's
8,192-token context), in one process with the same weights, prompts and sampling:

- ``json_schema:1``: every token is masked by the answer's JSON schema (llguidance), bounded to
  the reply limit;
- ``none:1``: ``structured: none``, the model writes freely; the parser and one repair turn cope as
  they can (``none:0`` runs it without a reference: an unconstrained reference that never stops
  blocks every window).

For each it prints the windows with a valid answer on the first reply and after the repair turn,
the seconds per window (analysis stage), and the dry-run estimate of prompt tokens made before the
run against the prompt tokens the backend reported (the tokenizer's count of the chat template).
Self-reflection is off, so every request is a reference or an analysis.

    python bench/structured.py [--windows 10] [--window_size 300] [--max_tokens 1024]
                               [--timeout 300] [--variants json_schema:1,none:1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmad.llm.client import LLMClient
from lmad.llm.config import resolve_model
from lmad.llm.hf_backend import HFBackend
from lmad.llm.messages import GenerationParams
from lmad.series.fit import open_dry_analyzer
from lmad.series.llm_analyzer import LLMAnalyzer
from lmad.series.pipeline import TamaRun
from lmad.series.prepare import PrepareOptions, prepare_dataset
from lmad.series.run_options import RunOptions

MODEL = "smollm2"


def prepare(data_dir: Path, window_size: int) -> None:
    for mode in ("train", "test"):
        options = PrepareOptions(
            dataset="UCR", ids=["135"], mode=mode, modality="text", window_size=window_size,
            data_dir=data_dir,
        )  # fmt: skip
        prepare_dataset(options)


def run_variant(data_dir: Path, variant: str, args: argparse.Namespace) -> dict:
    """One run (``structured:references``) of the references and the first ``args.windows``
    analyses; its figures."""
    structured, references = variant.split(":")
    config = resolve_model(f"hf:{MODEL}")
    config = replace(config, structured=structured)
    backend = HFBackend(MODEL, structured=structured)
    # one request at a time: the weights serve one generation at a time anyway, and each
    # window's seconds are then its own, not time spent queueing behind another
    client = LLMClient(config, backend, cache=None, concurrency=1, timeout=args.timeout)
    params = GenerationParams(max_tokens=args.max_tokens)
    analyzer = LLMAnalyzer(client, params)
    seconds: list[float] = []
    answer = analyzer.analyse

    def timed(job, refresh):
        start = time.perf_counter()
        try:
            return answer(job, refresh)
        finally:
            seconds.append(time.perf_counter() - start)

    analyzer.analyse = timed
    options = RunOptions(
        dataset="UCR", llm=config.name, ids=["135"], modality="text", double_check=False,
        normal_reference=int(references),
        data_dir=str(data_dir), run_name=f"structured_{structured}_{references}",
        limit=args.windows,
    )  # fmt: skip
    dry, _ = open_dry_analyzer(config.name, params, cache_dir=None)  # what --dry_run counts
    estimate = TamaRun(options, dry).estimate()
    run = TamaRun(options, analyzer)
    run.execute(show_progress=True)
    records = run.log.records
    analyses = [r for r in records if r["stage"] == "analysis"]
    answered = [r for r in analyses if r["status"] == "answered"]
    described = [r for r in records if r["stage"] == "reference"]
    return {
        "structured": structured,
        "references": int(references),
        "reference": described[-1]["status"] if described else "none",
        "first_reply": sum(1 for r in answered if not r.get("repaired")),
        "after_repair": len(answered),
        "windows": len(analyses),
        "truncated": sum(1 for r in analyses if r.get("truncated")),
        "seconds_per_window": sum(seconds) / max(1, len(seconds)),
        "estimated_prompt": estimate.prompt_tokens,
        "reported_prompt": sum(r["usage"]["prompt_tokens"] for r in records),
        "requests": sum(1 + bool(r.get("repaired")) for r in records if r.get("request_hash")),
        "estimated_requests": estimate.requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=10, help="analysis windows (default 10)")
    parser.add_argument("--window_size", type=int, default=300, help="points per window (300)")
    parser.add_argument("--max_tokens", type=int, default=1024, help="reply limit (1024)")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds of generation per reply (300)"
    )
    parser.add_argument(
        "--variants",
        default="json_schema:1,none:1",
        help="runs as structured:references, in order (default %(default)s)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        prepare(data_dir, args.window_size)
        for variant in args.variants.split(","):  # each row printed as soon as it is measured
            report(run_variant(data_dir, variant, args), args)


def report(row: dict, args: argparse.Namespace) -> None:
    """One variant's figures: valid answers, cut-off replies, time, estimate against usage."""
    n = args.windows
    ratio = row["estimated_prompt"] / max(1, row["reported_prompt"])
    print(
        f"\nSmolLM2-135M via hf:, UCR 135 text windows of {args.window_size} points, "
        f"structured: {row['structured']}, {row['references']} reference(s), "
        f"max_tokens {args.max_tokens}\n"
        f"  reference {row['reference']}; valid answers: {row['first_reply']}/{n} on the first "
        f"reply, {row['after_repair']}/{n} after the repair turn; {row['truncated']} analyses "
        f"cut off by the limit; {row['seconds_per_window']:.1f} s per window\n"
        f"  dry-run estimate {row['estimated_prompt']} prompt tokens in "
        f"{row['estimated_requests']} requests; reported {row['reported_prompt']} in "
        f"{row['requests']} requests (repairs included): ratio {ratio:.3f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
