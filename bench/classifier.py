"""Fine-tuning speed and memory: dynamic padding against padding every batch to max_length.

The packaged all-MiniLM-L6-v2 trains for the same number of steps on the same N synthetic job
sentences (the paper's ``wms_delay is 6.0 queue_delay is ...`` form, ~90 tokens) through
:func:`lmad.workflows.classifier.train_classifier`, once with dynamic padding (the default: each
batch padded to its longest sentence) and once with every batch padded to max_length (512, the
model maximum). Each method runs in its own child process so that neither inherits the other's
memory; the child reports:

- training samples per second: batch size / the median time of one optimiser step (robust to
  other processes competing for the CPU), and steps x batch size / the whole training call;
- peak resident memory (``ru_maxrss``: PyTorch's CPU tensors live outside Python's allocator, so
  tracemalloc does not see them), and how far it rose above the resident memory after the imports
  (model loading, activations, gradients, optimiser state);
- the tracemalloc peak of Python-level allocations, from a separate one-step run in the same child
  after the timed one (tracemalloc slows Python down about threefold, so it never runs while timing).

    python bench/classifier.py [--n 64] [--batch_size 8] [--steps 5] [--max_length 512]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FEATURES = (
    "wms_delay", "queue_delay", "runtime", "post_script_delay", "stage_in_delay",
    "stage_out_delay", "stage_in_bytes", "stage_out_bytes", "kickstart_executables_cpu_time",
)  # fmt: skip
METHODS = {"dynamic": "dynamic padding", "max_length": "pad to max_length"}


def write_sentences(folder: Path, n: int, seed: int = 0) -> None:
    """``train.csv`` with ``n`` job sentences (a quarter anomalous), small validation/test."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)

    def rows(count: int) -> pd.DataFrame:
        label = (rng.random(count) < 0.25).astype(int)
        values = {
            "wms_delay": rng.integers(1, 10, count).astype(float),
            "queue_delay": rng.integers(5, 2000, count).astype(float),
            "runtime": rng.integers(10, 900, count) * (1 + 2 * label),
            "post_script_delay": rng.integers(1, 10, count).astype(float),
            "stage_in_delay": rng.integers(1, 60, count).astype(float),
            "stage_out_delay": rng.integers(1, 10, count).astype(float),
            "stage_in_bytes": rng.integers(10**5, 10**9, count).astype(float),
            "stage_out_bytes": rng.integers(10**3, 10**6, count).astype(float),
            "kickstart_executables_cpu_time": rng.uniform(1, 900, count).round(1),
        }
        text = [" ".join(f"{f} is {float(values[f][i])}" for f in FEATURES) for i in range(count)]
        return pd.DataFrame({"text": text, "label": label, **values})

    folder.mkdir(parents=True, exist_ok=True)
    rows(n).to_csv(folder / "train.csv", index=False)
    rows(8).to_csv(folder / "validation.csv", index=False)
    rows(8).to_csv(folder / "test.csv", index=False)


def child(args: argparse.Namespace) -> None:
    """Train once with one padding method; print one JSON line of measurements."""
    import resource
    import tracemalloc

    import psutil
    from transformers import TrainerCallback

    from lmad.workflows.classifier import ClassifierArgs, load_workflow_data, train_classifier
    from train_classifier import EPOCHS, LR, SEED  # the script's recipe; --steps ends each run

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_step_begin(self, *args, **kwargs) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, *args, **kwargs) -> None:
            self.times.append(time.perf_counter() - self.start)

    timer = StepTimer()

    data = load_workflow_data(args.data, "bench", train_limit=None, seed=SEED)
    rss_before = psutil.Process().memory_info().rss
    padded = args.child == "max_length"
    settings = ClassifierArgs(
        "minilm", Path(args.data) / f"out-{args.child}", epochs=EPOCHS, lr=LR,
        batch_size=args.batch_size, max_length=args.max_length if padded else None, seed=SEED,
        lora=False, max_steps=args.steps, pad_to_max_length=padded, checkpoints=False,
        save_final_model=False, resume=False, callbacks=[timer],
    )  # fmt: skip
    result = train_classifier(data, settings)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    tracemalloc.start()
    train_classifier(data, replace(settings, max_steps=1, callbacks=[]))
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    samples = args.steps * args.batch_size
    print(
        json.dumps(
            {
                "samples_per_s": args.batch_size / statistics.median(timer.times),
                "overall_samples_per_s": samples / result["train_time_s"],
                "train_time_s": result["train_time_s"],
                "peak_rss_mb": peak / 2**20,
                "rss_growth_mb": max(0, peak - rss_before) / 2**20,
                "tracemalloc_peak_mb": traced_peak / 2**20,
                "max_length": result["max_length"],
            }
        )
    )


def run_child(method: str, data: Path, args: argparse.Namespace) -> dict:
    command = [
        sys.executable, __file__, "--child", method, "--data", str(data), "--steps",
        str(args.steps), "--batch_size", str(args.batch_size), "--max_length", str(args.max_length),
    ]  # fmt: skip
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        sys.exit(f"{method} run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=64, help="training sentences")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="optimiser steps, same for both")
    parser.add_argument("--max_length", type=int, default=512, help="padded length")
    parser.add_argument("--child", choices=list(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from transformers import AutoTokenizer

    from lmad.workflows.classifier import minilm_path

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        write_sentences(data / "bench", args.n)
        import pandas as pd

        texts = pd.read_csv(data / "bench" / "train.csv")["text"].tolist()
        lengths = [
            len(ids) for ids in AutoTokenizer.from_pretrained(minilm_path())(texts).input_ids
        ]
        print(
            f"packaged all-MiniLM-L6-v2, {args.n} job sentences ({sum(lengths) / len(lengths):.0f} "
            f"tokens on average, at most {max(lengths)}), batch {args.batch_size}, "
            f"{args.steps} steps, each method in its own process"
        )
        start = time.perf_counter()
        found = {method: run_child(method, data, args) for method in METHODS}
    width = 26
    print(
        f"{'method':<{width}} {'samples/s':>10} {'(overall)':>10} {'peak RSS MB':>12} "
        f"{'RSS rise MB':>12} {'tracemalloc MB':>15}"
    )
    for method, name in METHODS.items():
        r = found[method]
        label = f"{name} ({r['max_length']})" if method == "max_length" else name
        print(
            f"{label:<{width}} {r['samples_per_s']:>10.2f} {r['overall_samples_per_s']:>10.2f} "
            f"{r['peak_rss_mb']:>12.0f} {r['rss_growth_mb']:>12.0f} "
            f"{r['tracemalloc_peak_mb']:>15.1f}"
        )
    fast, slow = found["dynamic"], found["max_length"]
    rise = fast["rss_growth_mb"] / slow["rss_growth_mb"] if slow["rss_growth_mb"] else float("nan")
    print(
        f"ratio: dynamic padding trains {fast['samples_per_s'] / slow['samples_per_s']:.1f}x as "
        f"many samples per second (median step; "
        f"{fast['overall_samples_per_s'] / slow['overall_samples_per_s']:.1f}x overall), with "
        f"{fast['peak_rss_mb'] / slow['peak_rss_mb']:.2f}x the peak RSS ({rise:.2f}x the rise); "
        f"both runs took {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
