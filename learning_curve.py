"""SemAD's learning curve: how many fine-tuning steps a model needs to beat the n-gram baseline.

Trains one LoRA adapter (fine_tune_llama3.py's code and settings: QLoRA when CUDA is present,
plain LoRA on a CPU) to each budget of --budgets in turn, resuming from the previous budget's
checkpoint, and after each scores the same seeded sample of --test_path, stratified by label,
with the tuned model and the n-gram baseline (eval.py's code). Writes, under --output_dir:

  curve.csv             one row per budget: steps, epochs, training loss and time, and the trace-
                        and event-level AP and ROC-AUC of SemAD and the baseline
  curve.png             AP per budget, with each level's anomaly rate (AP's chance level), and
                        SemAD's AP gain over the baseline with its 95 % bootstrap interval
  scores/steps_<n>.csv  every trace's and event's score (eval.py --from_scores reads them)
  adapter/              the adapter, its checkpoints and semad_training.json

A rerun skips the budgets already in curve.csv: stop it at any point, or add larger budgets later.
Budget 0 scores the untuned model. A budget in epochs: 1ep,2ep,5ep,10ep (SemAD's full schedule).
"""

from __future__ import annotations

import sys
from pathlib import Path

import eval as eval_script
import fine_tune_llama3
from lmad.cli import (
    ArgumentParser,
    add_field_flag,
    field_default,
    non_negative_int,
    positive_float,
    positive_int,
    run_main,
)
from lmad.traces.finetune import BATCHING, FinetuneConfig
from lmad.traces.learning_curve import CurveOptions

# Defaults a user may edit here; flags override them. The remaining fine-tuning settings (LoRA
# rank, gamma, max length) are fine_tune_llama3.py's constants, the scoring settings eval.py's.
LLM_PATH = "smollm2"
TRAIN_PATH = "data/process/simulated/training_data.csv"
TEST_PATH = "data/process/simulated/test_data.csv"
BUDGETS = "0,50,100,200,400,800"
SAMPLE = 400


def budget_list(text: str) -> list[str]:
    """argparse type of ``--budgets``: comma-separated budgets (checked by the curve)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def sample_size(text: str) -> int | None:
    """argparse type of ``--sample``: a number of traces >= 1, or ``all``."""
    return None if text.strip().lower() == "all" else positive_int(text)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)

    def flag(name: str, help: str, **kwargs) -> None:
        add_field_flag(p, CurveOptions, name, help, **kwargs)

    flag("llm_path", "base causal LM (as fine_tune_llama3.py's --llm_path)", default=LLM_PATH)
    flag("train_path", "SemAD CSV to train on (its normal traces)", default=TRAIN_PATH)
    flag("test_path", "SemAD CSV the sample is drawn from", default=TEST_PATH)
    flag(
        "budgets",
        "increasing training budgets: steps (400) or epochs (2ep); 0 = untuned",
        type=budget_list,
        default=budget_list(BUDGETS),
    )
    flag(
        "sample",
        "test traces scored at every budget, stratified by label, or all",
        type=sample_size,
        default=SAMPLE,
    )
    flag(
        "output_dir",
        "where everything goes\n(None: data/results/semad/learning_curve/<model name>/)",
    )
    flag(
        "seed",
        "seed of the training order and of the sample",
        type=int,
        default=fine_tune_llama3.SEED,
    )
    flag(
        "batch_size",
        "traces per optimizer step",
        type=positive_int,
        default=fine_tune_llama3.BATCH_SIZE,
    )
    flag(
        "learning_rate",
        "Adam's learning rate (SemAD's), decayed by fine_tune_llama3.py's GAMMA per epoch",
        type=positive_float,
        default=fine_tune_llama3.LEARNING_RATE,
    )
    flag(
        "qlora",
        "4-bit NF4 base model: auto = only with CUDA",
        choices=["auto", "on", "off"],
        default=fine_tune_llama3.QLORA,
    )
    flag(
        "batching",
        "how a step's traces are laid out (see fine_tune_llama3.py --help)",
        choices=list(BATCHING),
        default=field_default(FinetuneConfig, "batching"),
    )
    flag(
        "ngram_order",
        "order of the n-gram baseline; 0 leaves it out",
        type=non_negative_int,
        default=eval_script.NGRAM_ORDER,
    )
    flag(
        "bootstrap",
        "resamples of the paired bootstrap interval of SemAD's AP gain over the baseline",
        type=positive_int,
    )
    return p


def main(argv=None) -> int:
    options = CurveOptions(**vars(build_parser().parse_args(argv)))
    from lmad.traces.evaluate import EvalOptions
    from lmad.traces.learning_curve import run_curve, verdict
    from lmad.traces.learning_curve_plot import plot_curve

    train_flags = ["--llm_path", options.llm_path, "--data_path", options.train_path]
    train_base = FinetuneConfig(**vars(fine_tune_llama3.build_parser().parse_args(train_flags)))
    eval_base = EvalOptions(**vars(eval_script.build_parser().parse_args([])))
    rows = run_curve(options, train_base, eval_base)
    folder = options.folder()
    title = (
        f"SemAD learning curve: {options.llm_path}, lr {options.learning_rate:g}, batch "
        f"{options.batch_size}, {options.batching}\n{rows[0]['sample']} of "
        f"{Path(options.test_path).name}"
    )
    plot = plot_curve(rows, folder / "curve.png", title)
    columns = ["steps", "epochs", "train_loss", "semad_trace_ap", "ngram_trace_ap",
               "trace_anomaly_rate", "trace_ap_gain_low", "semad_event_ap", "ngram_event_ap",
               "event_anomaly_rate", "event_ap_gain_low", "train_seconds"]  # fmt: skip
    print(" ".join(f"{c:>15s}" for c in columns))
    for row in rows:
        print(" ".join(f"{row[c]:>15.4g}" for c in columns))
    print(
        "(an anomaly rate is the AP of scores that know nothing: chance; *_ap_gain_low is the\n"
        " lower end of the 95 % paired bootstrap interval of SemAD's AP minus the baseline's)"
    )
    for line in verdict(rows, f"{options.ngram_order}-gram"):
        print(line)
    print(f"curve written to {folder / 'curve.csv'} and {plot}")
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
