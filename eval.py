"""SemAD step 2: score test traces with the fine-tuned LM; trace- and event-level metrics.

    python eval.py                                   # smollm2 + data/models/semad/smollm2-135m
    python eval.py --limit 200 --batch_size 16       # a stratified sample of 200 traces, seed 42
    python eval.py --llm_path meta-llama/Meta-Llama-3-8B --peft_path data/models/semad/x
    python eval.py --from_scores data/results/semad/test_data/smollm2-135m_scores.csv

Token score = surprisal of the true token minus the entropy of the prediction; event score =
sigmoid of the alpha^k-weighted mean of its tokens' scores (k = position in the event); trace
score = max over the events and the end-of-trace prediction. Prints precision, recall, F1 and
accuracy at --threshold and at the best-F1 threshold (columns marked *), average precision (AP)
and ROC-AUC (the probability that a random anomalous trace or event scores above a random normal
one, ties counting half), for the LM and an n-gram baseline trained on --train_path; appends the
rows to --result_path.

Scores: every trace's and every event's score goes to
<folder of --result_path>/<data file stem>/<model name>_scores.csv (--scores_path elsewhere):
columns method, level (trace or event), trace (0-based row in the data file), event (0-based
position in the trace; empty on trace rows), label (1 = anomalous), score, then model, adapter,
data, file_traces, seed. --from_scores FILE recomputes every row from such a file in seconds,
without a model (any --threshold); only --threshold and --result_path apply then.

Sample: --limit N scores N traces drawn with --seed, stratified by label (the anomalous share of
the file, up to rounding); the row's sample column says "N of M traces, stratified by label,
seed S" (or "all M traces").

Flagged: flagged (flagged* at the best-F1 threshold) is the share of traces or events the
threshold calls anomalous. A share of at least 95 % is marked with a dagger and a footnote (and
flags_all / best_flags_all = True in the CSV): a threshold flagging (almost) everything has a
precision of (about) the anomaly rate and a recall of about 1 whatever the scores, so its P, R and
F1 say nothing about the model (the usual case for a weakly trained model at 0.9, and often at its
best-F1 threshold too); judge such a model by AP and ROC-AUC.
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
    "method", "level", "n", "P", "R", "F1", "Acc", "flagged", "best thr", "P*", "R*", "F1*",
    "Acc*", "flagged*", "AP", "ROC-AUC",
]  # fmt: skip
ROW_KEYS = [
    "method", "level", "n", "precision", "recall", "f1", "accuracy", "flagged", "best_threshold",
    "best_precision", "best_recall", "best_f1", "best_accuracy", "best_flagged", "ap", "roc_auc",
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
    flag(
        "limit",
        "score N traces drawn with --seed, stratified by label (None: all)",
        type=positive_int,
    )
    flag("seed", "seed of the --limit sample", type=int)
    flag(
        "scores_path",
        "CSV of every trace's and event's score\n"
        "(None: <folder of --result_path>/<data file stem>/<model name>_scores.csv)",
    )
    flag(
        "from_scores",
        "recompute the rows from this scores file, without a model (None: score the data)",
    )
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
    from lmad.traces.evaluate import append_results, evaluate_run, result_table, rows_from_scores

    if options.from_scores:
        rows = rows_from_scores(options.from_scores, options.threshold)
    else:
        rows = evaluate_run(options)
        print(f"scores written to {rows[0]['scores']}")
    print(result_table(rows, TABLE_COLUMNS, ROW_KEYS))
    print(f"rows appended to {append_results(options.result_path, rows)}")
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
