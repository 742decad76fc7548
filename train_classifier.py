"""Fine-tune sequence classifiers on workflow job sentences and compare them with baselines.

    python train_classifier.py --dataset eht_imaging --model minilm
    python train_classifier.py --dataset eht_imaging --models bert-base-uncased,distilbert-base-uncased
    python train_classifier.py --dataset eht_imaging --model mistralai/Mistral-7B-v0.1 --lora
    python train_classifier.py --dataset eht_imaging --model minilm --in_context_llm GPT-4o --limit 200
    accelerate launch train_classifier.py --dataset eht_imaging --model bert-base-uncased

Reads data/<dataset>/{train,validation,test}.csv (made by data_processing/flowbench.py or
data_processing/synthetic_workflow.py). Prints the paper's table (model, train time, accuracy, F1,
precision, recall) with the baselines as extra rows and appends every row, with a timestamp, to
data/results/classifier/<dataset>.csv. Checkpoints go to data/models/classifier/<dataset>/<model>;
a rerun resumes from the last one.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from lmad.cli import (
    ArgumentParser,
    non_negative_int,
    positive_float,
    positive_int,
    run_main,
    steps_or_all,
    str2bool,
)

# Defaults a user may edit here; flags override them.
DATASET = "synthetic_workflow"
MODEL = "minilm"
EPOCHS = 3.0
LR = 5e-5
BATCH_SIZE = 16
SEED = 42
K_SHOT = 3
DATA_DIR = "data"
LLM_MODELS = "BigModel/models.yaml"
KEYS = "BigModel/api_keys.yaml"
RESULT_COLUMNS = [
    "timestamp", "dataset", "method", "model", "train_time_s", "accuracy", "f1", "precision",
    "recall", "n_test", "epochs", "lr", "batch_size", "max_length", "seed", "max_steps",
    "train_rows", "failures",
]  # fmt: skip


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--dataset", default=DATASET, help="data set under --data_dir (%(default)s)")
    p.add_argument("--data_dir", default=DATA_DIR, help="root of data, models and results")
    p.add_argument("--model", default=MODEL, help="HF id, local path, or minilm (%(default)s)")
    p.add_argument("--models", default=None, help="several models, comma-separated: a,b,c")
    p.add_argument("--epochs", type=positive_float, default=EPOCHS)
    p.add_argument(
        "--lr", type=positive_float, default=LR, help="learning rate (AdamW, linear decay)"
    )
    p.add_argument("--batch_size", type=positive_int, default=BATCH_SIZE, help="per device")
    p.add_argument(
        "--max_length", type=positive_int, default=None, help="tokens (default: model max, 512)"
    )
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--output_dir", default=None, help="default <data_dir>/models/classifier/...")
    p.add_argument("--lora", action="store_true", help="LoRA r=8 alpha=32 (decoder models)")
    p.add_argument(
        "--max_steps",
        type=steps_or_all,
        default=-1,
        help="stop after N steps (quick runs); -1: all epochs",
    )
    p.add_argument(
        "--train_limit", type=positive_int, default=None, help="use N (seeded) train rows"
    )
    p.add_argument(
        "--baselines",
        type=str2bool,
        default=True,
        help="logistic regression, gradient-boosted trees, MiniLM embedding zero-shot (True)",
    )
    p.add_argument("--nli_model", default=None, help="zero-shot NLI model, e.g. bart-large-mnli")
    p.add_argument("--in_context_llm", default=None, help="--LLM name for in-context prompting")
    p.add_argument(
        "--k_shot", type=non_negative_int, default=K_SHOT, help="labelled examples (0: zero-shot)"
    )
    p.add_argument("--cot", action="store_true", help="in-context: ask to think step by step")
    p.add_argument(
        "--limit", type=positive_int, default=None, help="NLI/in-context: N seeded test rows"
    )
    p.add_argument("--llm_models", default=LLM_MODELS, help="models file (%(default)s)")
    p.add_argument("--keys", default=KEYS, help="API keys file (%(default)s)")
    p.add_argument("--concurrency", type=positive_int, default=4, help="LLM requests in flight")
    p.add_argument("--no_cache", action="store_true", help="do not use data/cache/llm")
    return p


def append_results(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` to the results CSV (written to a temporary name, then renamed)."""
    import pandas as pd

    from lmad.io import atomic_write_text

    new = pd.DataFrame(rows)
    columns = [c for c in RESULT_COLUMNS if c in new.columns]
    new = new[columns + [c for c in new.columns if c not in columns]]
    if path.exists() and path.stat().st_size:
        new = pd.concat([pd.read_csv(path), new], ignore_index=True)
    atomic_write_text(path, new.to_csv(index=False))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.names import check_name

    # --dataset is a folder in data/, results/classifier/ and models/classifier/
    check_name(args.dataset, "--dataset")
    from lmad.report.tables import Table
    from lmad.workflows.classifier import (
        ClassifierArgs,
        check_model,
        is_main_process,
        load_workflow_data,
        model_label,
        train_classifier,
    )

    data = load_workflow_data(args.data_dir, args.dataset, args.train_limit, args.seed)
    models = [m.strip() for m in (args.models or args.model).split(",") if m.strip()]
    for name in models + ([args.nli_model] if args.nli_model else []):
        check_model(name)  # one line and exit 2 before any training
    client = None
    if args.in_context_llm:
        from lmad.llm.client import open_client

        client = open_client(
            args.in_context_llm,
            args.llm_models,
            args.keys,
            f"{args.data_dir}/cache/llm",
            args.no_cache,
            args.concurrency,
        )
    results_path = Path(args.data_dir) / "results" / "classifier" / f"{args.dataset}.csv"
    table = Table(
        ["method", "model", "train time (s)", "accuracy", "F1", "precision", "recall"],
        title=f"{args.dataset}: {len(data.test)} test jobs",
    )
    stamp = datetime.now().isoformat(timespec="seconds")

    def record(result: dict, **extra: object) -> None:
        table.add(
            result["method"], result["model"], float(result["train_time_s"]),
            result["accuracy"], result["f1"], result["precision"], result["recall"],
        )  # fmt: skip
        row = {"timestamp": stamp, "dataset": args.dataset, "seed": args.seed}
        row.update({k: result[k] for k in RESULT_COLUMNS if k in result})
        row.update(extra)
        append_results(results_path, [row])

    for name in models:
        out = args.output_dir or f"{args.data_dir}/models/classifier/{args.dataset}"
        if args.output_dir is None or len(models) > 1:
            out = f"{out}/{model_label(name)}"
        settings = ClassifierArgs(
            model=name, output_dir=out, epochs=args.epochs, lr=args.lr,
            batch_size=args.batch_size, max_length=args.max_length, seed=args.seed,
            lora=args.lora, max_steps=args.max_steps,
        )  # fmt: skip
        result = train_classifier(data, settings)
        if result["is_main_process"]:
            record(
                result, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                max_length=result["max_length"], max_steps=args.max_steps,
                train_rows=len(data.train),
            )  # fmt: skip
    if not is_main_process():
        return 0
    if args.baselines:
        from lmad.workflows.baselines import run_baselines
        from lmad.workflows.zero_shot import run_embedding

        if data.feature_columns:
            for result in run_baselines(data, seed=args.seed):
                record(result, train_rows=len(data.train))
        else:
            print(
                "note: no numeric feature columns; skipping the feature baselines", file=sys.stderr
            )
        record(run_embedding(data, "minilm"))
    if args.nli_model:
        from lmad.workflows.zero_shot import run_nli

        record(run_nli(data, args.nli_model, args.limit, args.seed))
    if client is not None:
        from lmad.workflows.in_context import PromptSettings, run_in_context

        prompt = PromptSettings(k=args.k_shot, seed=args.seed, chain_of_thought=args.cot)
        result = run_in_context(data, client, prompt, args.limit)
        record(result, failures=result["failures"], train_rows=len(data.train))
        print(f"in-context: {client.meter.summary()}", file=sys.stderr)
        for position, reason in result["failed"][:5]:
            print(f"in-context failure, test row {position}: {reason}", file=sys.stderr)
    print(table.markdown())
    print(f"results appended to {results_path}")
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
