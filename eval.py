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

from lmad.cli import ArgumentParser, non_negative_int, positive_int, run_main

# Defaults a user may edit here; flags override them. SemAD used meta-llama/Meta-Llama-3-8B.
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


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument(
        "--llm_path",
        default=LLM_PATH,
        help="base causal LM: a model folder, a .gguf file, a Hugging Face id, or smollm2\n"
        "(default %(default)s)",
    )
    p.add_argument(
        "--peft_path",
        default=PEFT_PATH,
        help="LoRA adapter folder from fine_tune_llama3.py; 'none' scores the base model\n"
        "(default data/models/semad/<model name>/)",
    )
    p.add_argument("--data_path", default=DATA_PATH, help="SemAD CSV to score (%(default)s)")
    p.add_argument(
        "--train_path",
        default=TRAIN_PATH,
        help="normal traces the n-gram baseline learns from (%(default)s)",
    )
    p.add_argument(
        "--result_path", default=RESULT_PATH, help="CSV the rows are appended to (%(default)s)"
    )
    p.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="score only the first N traces (default all)",
    )
    p.add_argument(
        "--threshold", type=float, default=THRESHOLD, help="fixed threshold on the sigmoid "
        "scores; 0.9 = weighted score above ln 9 (%(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--alpha", type=float, default=ALPHA, help="token weight decay within an event "
        "(weight alpha^k for the k-th token) (%(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--batch_size",
        type=positive_int,
        default=BATCH_SIZE,
        help="traces per forward pass (%(default)s)",
    )
    p.add_argument(
        "--chunk_size", type=positive_int, default=CHUNK_SIZE, help="token positions whose "
        "vocabulary softmax is computed at once; bounds memory (%(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--qlora",
        default=QLORA,
        choices=["auto", "on", "off"],
        help="load the base model in 4-bit NF4: auto = only with CUDA (%(default)s)",
    )
    p.add_argument(
        "--ngram_order", type=non_negative_int, default=NGRAM_ORDER, help="order of the n-gram "
        "baseline; 0 leaves it out (%(default)s)",
    )  # fmt: skip
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.report.tables import Table
    from lmad.traces.evaluate import append_results, evaluate_run
    from lmad.traces.finetune import default_output_dir
    from lmad.traces.models import gguf_folder_name

    gguf_folder_name(args.llm_path)  # a .gguf file's stem becomes data/models/<stem>/: checked
    peft = args.peft_path
    if peft is None:
        peft = str(default_output_dir(args.llm_path, "--peft_path"))
    elif peft.lower() == "none":
        peft = None
    rows = evaluate_run(
        args.llm_path,
        peft,
        args.data_path,
        train_path=args.train_path,
        limit=args.limit,
        threshold=args.threshold,
        alpha=args.alpha,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        qlora=args.qlora,
        ngram_order=args.ngram_order,
    )
    table = Table(
        [
            "method",
            "level",
            "n",
            "P",
            "R",
            "F1",
            "Acc",
            "best thr",
            "P*",
            "R*",
            "F1*",
            "Acc*",
            "AP",
        ],
        title=f"SemAD on {args.data_path} (threshold {args.threshold}; * = at the best-F1 threshold)",
    )
    for r in rows:
        table.add(
            r["method"], r["level"], r["n"], r["precision"], r["recall"], r["f1"], r["accuracy"],
            r["best_threshold"], r["best_precision"], r["best_recall"], r["best_f1"],
            r["best_accuracy"], r["ap"],
        )  # fmt: skip
    print(table.markdown())
    print(f"rows appended to {append_results(args.result_path, rows)}")
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
