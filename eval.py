"""SemAD step 2: score test traces with the fine-tuned LM; trace- and event-level metrics.

    python eval.py                                   # smollm2 + data/models/semad/smollm2-135m
    python eval.py --limit 200 --batch_size 16
    python eval.py --llm_path meta-llama/Meta-Llama-3-8B --peft_path data/models/semad/x

Token score = surprisal of the true token minus the entropy of the prediction; event score =
sigmoid of the alpha^k-weighted mean of its tokens' scores (k = position in the event); trace
score = max over the events and the end-of-trace prediction. Prints precision, recall, F1 and
accuracy at --threshold and at the best-F1 threshold, and average precision, for the LM and an
n-gram baseline trained on --train_path; appends the rows to --result_path.
"""

from __future__ import annotations

import sys

from lmad.cli import ArgumentParser, add_field_flag, non_negative_int, positive_int, run_main
from lmad.traces.evaluate import EvalOptions

# Defaults a user may edit here; flags override them. SemAD used meta-llama/Meta-Llama-3-8B.
# --limit's default is lmad.traces.evaluate.EvalOptions's.
LLM_PATH = "smollm2"
PEFT_PATH = None  # None = data/models/semad/<model name>/ (where fine_tune_llama3.py saves)
DATA_PATH = "data/process/simulated/test_data.csv"
TRAIN_PATH = "data/process/simulated/training_data.csv"  # for the n-gram baseline
RESULT_PATH = "data/results/semad/result.csv"
THRESHOLD = 0.9
ALPHA = 0.6
BATCH_SIZE = 8
CHUNK_SIZE = 64
QLORA = "auto"
NGRAM_ORDER = 3
TABLE_COLUMNS = [
    "method", "level", "n", "P", "R", "F1", "Acc", "best thr", "P*", "R*", "F1*", "Acc*", "AP",
]  # fmt: skip
ROW_KEYS = [
    "method", "level", "n", "precision", "recall", "f1", "accuracy", "best_threshold",
    "best_precision", "best_recall", "best_f1", "best_accuracy", "ap",
]  # fmt: skip
"""The result row's key printed in each of TABLE_COLUMNS."""


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)

    def flag(name: str, help: str, **kwargs) -> None:
        add_field_flag(p, EvalOptions, name, help, **kwargs)

    flag(
        "llm_path",
        "base causal LM: a model folder, a .gguf file, a Hugging Face id, or smollm2",
        default=LLM_PATH,
    )
    flag(
        "peft_path",
        "LoRA adapter folder from fine_tune_llama3.py; 'none' scores the base model\n"
        "(None: data/models/semad/<model name>/)",
        default=PEFT_PATH,
    )
    flag("data_path", "SemAD CSV to score", default=DATA_PATH)
    flag("train_path", "normal traces the n-gram baseline learns from", default=TRAIN_PATH)
    flag("result_path", "CSV the rows are appended to", default=RESULT_PATH)
    flag("limit", "score only the first N traces (None: all)", type=positive_int)
    flag(
        "threshold",
        "fixed threshold on the sigmoid scores; 0.9 = weighted score above ln 9",
        type=float,
        default=THRESHOLD,
    )
    flag(
        "alpha",
        "token weight decay within an event (weight alpha^k for the k-th token)",
        type=float,
        default=ALPHA,
    )
    flag("batch_size", "traces per forward pass", type=positive_int, default=BATCH_SIZE)
    flag(
        "chunk_size",
        "token positions whose vocabulary softmax is computed at once; bounds memory",
        type=positive_int,
        default=CHUNK_SIZE,
    )
    flag(
        "qlora",
        "load the base model in 4-bit NF4: auto = only with CUDA",
        choices=["auto", "on", "off"],
        default=QLORA,
    )
    flag(
        "ngram_order",
        "order of the n-gram baseline; 0 leaves it out",
        type=non_negative_int,
        default=NGRAM_ORDER,
    )
    return p


def main(argv=None) -> int:
    options = EvalOptions(**vars(build_parser().parse_args(argv)))
    from lmad.report.tables import Table
    from lmad.traces.evaluate import append_results, evaluate_run

    rows = evaluate_run(options)
    title = (
        f"SemAD on {options.data_path} (threshold {options.threshold}; "
        "* = at the best-F1 threshold)"
    )
    table = Table(list(TABLE_COLUMNS), title=title)
    for row in rows:
        table.add(*(row[key] for key in ROW_KEYS))
    print(table.markdown())
    print(f"rows appended to {append_results(options.result_path, rows)}")
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
