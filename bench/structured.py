"""Valid answers from a small local model, with and without schema constraints (issue 13).

SmolLM2-135M-Instruct (the packaged GGUF, ``--LLM hf:smollm2``) answers TAMA's reference and analysis
prompts for the first N text windows of UCR series 135 (300 points, stride 100, prepared in a
temporary folder; one normal reference window, so that a request and its reply fit SmolLM2's
8,192-token context), in one process with the same weights, prompts and sampling:

- ``none:1``: ``structured: none``, the model writes freely; the parser and one repair turn cope as
  they can;
- ``json_schema:1``: every token is masked by the answer's JSON schema (llguidance), bounded to
  the reply limit;
- ``none:0``: unconstrained again, without a reference (an unconstrained reference that never
  stops blocks every window, so this row shows the analysis step alone).

For each it prints the windows with a valid answer on the first reply and after the repair turn,
the seconds per window (analysis stage), and the dry-run estimate of prompt tokens made before the
run against the prompt tokens the backend reported (the tokenizer's count of the chat template).
Self-reflection is off, so every request is a reference or an analysis.

    python bench/structured.py [--windows 10] [--window_size 300] [--max_tokens 1024]
                               [--timeout 300] [--variants none:1,json_schema:1,none:0]
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
        default="none:1,json_schema:1,none:0",
        help="runs as structured:references, in order (default %(default)s)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        prepare(data_dir, args.window_size)
        rows = [run_variant(data_dir, s, args) for s in args.variants.split(",")]
    print(f"\nSmolLM2-135M via hf:, UCR 135 text windows of {args.window_size} points")
    print("structured    refs  reference  valid (1st reply)  valid (after repair)  cut  s/window")
    for row in rows:
        n = args.windows
        print(
            f"{row['structured']:<13} {row['references']:<5} {row['reference']:<10} "
            f"{row['first_reply']:>3}/{n:<14} "
            f"{row['after_repair']:>3}/{n:<17} {row['truncated']:>3}  "
            f"{row['seconds_per_window']:8.1f}"
        )
    for row in rows:
        ratio = row["estimated_prompt"] / max(1, row["reported_prompt"])
        print(
            f"{row['structured']}, {row['references']} reference(s): dry-run estimate "
            f"{row['estimated_prompt']} prompt tokens in "
            f"{row['estimated_requests']} requests; reported {row['reported_prompt']} in "
            f"{row['requests']} requests (repairs included): ratio {ratio:.3f}"
        )


if __name__ == "__main__":
    main()
