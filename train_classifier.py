"""Fine-tune sequence classifiers on workflow job sentences and compare them with baselines.

    python train_classifier.py --dataset eht_imaging --model minilm
    python train_classifier.py --dataset eht_imaging --models bert-base-uncased,distilbert-base-uncased
    python train_classifier.py --dataset eht_imaging --models none   # the baseline rows only
    python train_classifier.py --dataset eht_imaging --model mistralai/Mistral-7B-v0.1 --lora
    python train_classifier.py --dataset eht_imaging --model minilm --in_context_llm GPT-4o --limit 200
    accelerate launch train_classifier.py --dataset eht_imaging --model bert-base-uncased

Reads data/<dataset>/{train,validation,test}.csv (made by data_processing/flowbench.py or
data_processing/synthetic_workflow.py). Prints the paper's table (method, model, train time, eval
time, accuracy, F1, precision, recall, ROC-AUC, AP) with the baselines as extra rows and appends
every row, with a timestamp, to data/results/classifier/<dataset>.csv. Train time is the fitting
alone; eval time is the validation passes and the test prediction. ROC-AUC and AP rank the test
jobs by each row's anomaly score, anomalous (any anomaly class) against normal; '-' for a row
without scores (in-context prompting) or a test split with one class. Each row's test predictions
and scores go to data/results/classifier/<dataset>/<model>_<method>_predictions.csv (replaced by a
rerun). Checkpoints go to data/models/classifier/<dataset>/<model>; a rerun resumes from the last
one.
"""

from __future__ import annotations

import sys

from lmad.cli import (
    ArgumentParser,
    add_field_flag,
    non_negative_int,
    positive_float,
    positive_int,
    run_main,
    steps_or_all,
    str2bool,
)
from lmad.io import DATA_DIR  # root of data/, shared by every script
from lmad.llm.config import KEYS_FILE, MODELS_FILE
from lmad.workflows.comparison import LOG_ANOMALY_MODELS, NO_MODELS, ComparisonOptions

# Defaults a user may edit here; flags override them. The other flags' defaults are the fields
# of lmad.workflows.comparison.ComparisonOptions.
DATASET = "synthetic_workflow"
MODEL = "minilm"
EPOCHS = 3.0
LR = 5e-5
BATCH_SIZE = 16
SEED = 42
K_SHOT = 3
LLM_MODELS = MODELS_FILE  # BigModel/models.yaml
KEYS = KEYS_FILE  # BigModel/api_keys.yaml


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)

    def flag(name: str, help: str, **kwargs) -> None:
        add_field_flag(p, ComparisonOptions, name, help, **kwargs)

    flag("dataset", "data set under --data_dir", default=DATASET)
    flag("data_dir", "root of data, models and results", default=DATA_DIR)
    flag("model", "HF id, local path, or minilm", default=MODEL)
    flag(
        "models",
        f"several models, comma-separated: a,b,c; {NO_MODELS}: no fine-tuning (the baseline rows "
        f"only); {', '.join(LOG_ANOMALY_MODELS)}: log-anomaly rows, not fine-tuned",
    )
    flag("epochs", "passes over the train split", type=positive_float, default=EPOCHS)
    flag("lr", "learning rate (AdamW, linear decay)", type=positive_float, default=LR)
    flag("batch_size", "per device", type=positive_int, default=BATCH_SIZE)
    flag("max_length", "tokens (None: model max, 512)", type=positive_int)
    flag("seed", "random seed", type=int, default=SEED)
    flag("output_dir", "None: <data_dir>/models/classifier/<dataset>/<model>")
    flag("lora", "LoRA r=8 alpha=32 (decoder models)", action="store_true")
    flag("max_steps", "stop after N steps (quick runs); -1: all epochs", type=steps_or_all)
    flag("train_limit", "use N (seeded) train rows", type=positive_int)
    flag(
        "baselines",
        "logistic regression, gradient-boosted trees, MiniLM embedding zero-shot",
        type=str2bool,
    )
    flag("nli_model", "zero-shot NLI model, e.g. bart-large-mnli")
    flag("in_context_llm", "--LLM name for in-context prompting")
    flag("k_shot", "labelled examples (0: zero-shot)", type=non_negative_int, default=K_SHOT)
    flag("cot", "in-context: ask to think step by step", action="store_true")
    flag("limit", "NLI/in-context: N seeded test rows", type=positive_int)
    flag("llm_models", "models file", default=LLM_MODELS)
    flag("keys", "API keys file", default=KEYS)
    flag("concurrency", "LLM requests in flight", type=positive_int)
    flag("no_cache", "do not use data/cache/llm", action="store_true")
    flag(
        "key_quantiles",
        "log-anomaly rows (deeplog, loganomaly, logbert): candidate q, chosen on validation; a\n"
        "job's feature is low/high in its log key below q / above 1 - q among normal train jobs",
    )
    flag("windows", "deeplog/loganomaly: candidate history lengths, chosen on validation")
    flag("max_g", "log-anomaly rows: g of the top-g rule chosen on validation in 1..max_g",
         type=positive_int)  # fmt: skip
    flag("sequence_epochs", "log-anomaly rows: epochs (None: each model's default)",
         type=positive_int)  # fmt: skip
    return p


def note(line: str) -> None:
    """A line for the user besides the table (skipped rows, LLM cost, failures): to stderr."""
    print(line, file=sys.stderr)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.workflows.comparison import run_comparison

    report = run_comparison(ComparisonOptions(**vars(args)), note)
    if report is None:  # a non-main process of torchrun / accelerate launch
        return 0
    print(report.table.markdown())
    print(f"results appended to {report.results_path}")
    print(f"test predictions and scores in {report.predictions_dir}")
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
