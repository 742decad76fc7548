"""SemAD reconstruction fine-tuning: LoRA / QLoRA on normal traces with next-token prediction.

The objective (SemAD, code guanwei49/SemAD; docs/design.md, "Traces"): the raw trace text, no prompt
template, is tokenised as ``[start] t_1 … t_n EOS`` (``start`` = the tokenizer's BOS, or its EOS
when it has none; pad = EOS when the tokenizer has no pad token); ``labels`` are the same ids with
padding set to -100. Hugging Face's causal-LM loss shifts labels by one, so position ``i`` learns
to predict token ``i + 1`` and the last real position learns EOS: SemAD's "targets = inputs shifted
left with EOS appended, loss over non-pad positions".

Training follows SemAD: LoRA r=8, alpha=16, dropout 0.1 on ``q_proj`` and ``v_proj``; QLoRA (4-bit
NF4, double quantisation, bfloat16 compute, ``prepare_model_for_kbit_training``) by default when
CUDA is present and plain LoRA otherwise (``qlora="on"`` also quantises on a CPU); Adam, lr 5e-5,
decayed by 0.8 after every epoch (the Trainer steps schedulers per optimizer step, so the per-epoch
``ExponentialLR`` is a ``LambdaLR`` of ``gamma ** (step // steps_per_epoch)``); 10 epochs of batch
8 with the last partial batch dropped; at most 512 tokens. By default a step's traces, drawn at
random as in SemAD, are packed into one row without padding (``batching="packed"``,
lmad.traces.batching: the traces never attend to each other, and the loss is the one over the
same traces padded); ``grouped`` pads batches of similar length, ``random`` pads each random batch
to its longest trace (about half of it padding on SemAD's training file). A checkpoint is written
after every epoch (and at ``max_steps``) under
``<output_dir>/checkpoints/``; a rerun resumes from the last one.
The adapter and tokenizer are saved in ``output_dir``. The Hugging Face Trainer makes the same code
run under ``torchrun`` or ``accelerate launch`` on several GPUs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lmad.errors import ConfigError, DataError
from lmad.io import atomic_write_json
from lmad.traces import models
from lmad.traces.batching import (
    BATCHING,
    EncodedTraces,
    PackedCollator,
    TraceCollator,
    check_packing,
    note_batching,
    trace_trainer_class,
)

log = logging.getLogger(__name__)

OUTPUT_ROOT = Path("data") / "models" / "semad"
CHECKPOINT = re.compile(r"checkpoint-\d+")
"""The name of a Trainer checkpoint folder (what ``get_last_checkpoint`` resumes from)."""


@dataclass
class FinetuneConfig:
    """Every setting of a SemAD fine-tuning run.

    The fields without a default take the constants at the top of fine_tune_llama3.py (SemAD's
    values; the one place researchers edit them); the others are written here once, and the
    script's flags read them.
    """

    llm_path: str
    data_path: str
    output_dir: str | None
    """None: ``data/models/semad/<model name>/``."""
    epochs: int
    batch_size: int
    learning_rate: float
    gamma: float
    max_length: int
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    target_modules: list[str]
    """Module names LoRA adapts (``["all-linear"]``: every linear layer but the head)."""
    qlora: str
    max_steps: int
    seed: int
    resume: bool = True
    """Continue from the last checkpoint; False starts over and removes the old checkpoints."""
    batching: str = "packed"
    """How a step's traces are laid out (lmad.traces.batching): ``packed`` (drawn at random, one
    row without padding, SemAD's loss), ``grouped`` (similar lengths, padded) or ``random``
    (drawn at random, padded to the longest: SemAD's)."""
    logging_steps: int = 10
    models_dir: str = str(models.MODELS_DIR)


@dataclass
class FinetuneResult:
    """Where the adapter went, how far training got and its loss log."""

    output_dir: Path
    global_step: int
    steps_per_epoch: int
    train_loss: float
    resumed_from: str | None
    four_bit: bool
    log_history: list[dict[str, Any]] = field(default_factory=list)


def default_output_dir(llm_path: str, flag: str = "--output_dir") -> Path:
    """``data/models/semad/<model name>/``; a model name unsafe as a folder is a ConfigError.

    ``flag`` is the option the message suggests instead (``--output_dir``, ``--peft_path``).
    """
    return OUTPUT_ROOT / models.adapter_folder_name(llm_path, flag)


def check_config(config: FinetuneConfig) -> Path:
    """Refuse bad settings before anything is loaded; returns the output folder.

    Numbers that must be positive, ``max_length`` of at least 3 (BOS, one token, EOS) and the
    folder names taken from ``llm_path`` (see :func:`models.gguf_folder_name`).
    """
    if config.epochs < 1 or config.batch_size < 1 or config.learning_rate <= 0:
        raise ConfigError("epochs and batch size must be at least 1 and the learning rate > 0")
    if config.gamma <= 0 or config.lora_r < 1 or config.lora_alpha < 1:
        raise ConfigError("--gamma must be > 0, --lora_r and --lora_alpha at least 1")
    if config.max_length < 3:
        raise ConfigError(f"--max_length must be at least 3 tokens, got {config.max_length}")
    if config.batching not in BATCHING:
        raise ConfigError(
            f"--batching must be one of {', '.join(BATCHING)}, got {config.batching!r}"
        )
    models.gguf_folder_name(config.llm_path)
    return Path(config.output_dir or default_output_dir(config.llm_path))


def start_token_id(tokenizer: Any) -> int:
    """The token put before every trace: BOS, or EOS when the tokenizer has no BOS."""
    bos = tokenizer.bos_token_id
    return int(bos if bos is not None else tokenizer.eos_token_id)


def encode_for_training(tokenizer: Any, text: str, max_length: int) -> list[int]:
    """``[start] t_1 … t_n EOS``, the content cut so that the whole fits in ``max_length``."""
    if not text.strip():
        raise DataError("a trace is empty; every trace needs at least one activity")
    if max_length < 3:
        raise ConfigError(f"--max_length must be at least 3 tokens, got {max_length}")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][: max_length - 2]
    return [start_token_id(tokenizer), *ids, int(tokenizer.eos_token_id)]


def linear_module_names(model: Any) -> list[str]:
    """Sorted last-name parts of the model's linear layers (what LoRA can target), no lm_head."""
    import torch

    names = set()
    for name, module in model.named_modules():
        kind = type(module).__name__
        if isinstance(module, torch.nn.Linear) or kind in {"Conv1D", "Linear4bit", "Linear8bitLt"}:
            leaf = name.rsplit(".", 1)[-1]
            if leaf and leaf != "lm_head":
                names.add(leaf)
    return sorted(names)


def check_target_modules(model: Any, targets: list[str]) -> list[str] | str:
    """The LoRA target modules, checked against the model (``all-linear`` passes as is).

    Raises:
        ConfigError: no target, or a target that names no module of the model; the message lists
            the linear layers it has (e.g. GPT-2's ``c_attn``), so the user can pass
            ``--target_modules``.
    """
    chosen = list(targets)
    if not chosen:
        raise ConfigError("--target_modules is empty; name the modules LoRA adapts, or all-linear")
    if chosen == ["all-linear"]:
        return "all-linear"
    names = {name for name, _ in model.named_modules()}
    missing = [t for t in chosen if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        have = ", ".join(linear_module_names(model)) or "none"
        raise ConfigError(
            f"the model has no {', '.join(missing)} module; its linear layers are: {have}; "
            "choose LoRA targets with --target_modules"
        )
    return chosen


def epoch_decay(steps_per_epoch: int, gamma: float):
    """The LR factor of optimizer step ``step``: ``gamma ** (step // steps_per_epoch)``."""
    steps = max(1, int(steps_per_epoch))

    def factor(step: int) -> float:
        return float(gamma) ** (int(step) // steps)

    return factor


def training_texts(data_path: str | os.PathLike) -> list[str]:
    """The texts of the normal traces in a SemAD CSV (anomalous rows are left out)."""
    from lmad.traces.log_io import read_traces

    traces = read_traces(data_path)
    texts = [t.text for t in traces if t.label == "normal"]
    if len(texts) < len(traces):
        log.info("training on the %d normal traces of %d", len(texts), len(traces))
    if not texts:
        raise DataError(f"{data_path} has no normal traces to learn from")
    return texts


def _trainable(model: Any) -> list[Any]:
    return [p for p in model.parameters() if p.requires_grad]


def world_size() -> int:
    """Processes training together: ``WORLD_SIZE`` under torchrun / accelerate launch, else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def steps_per_epoch(n_traces: int, batch_size: int, world: int) -> int:
    """Optimizer steps of one epoch: full batches of ``batch_size`` per device, the rest dropped.

    Raises:
        DataError: the traces make no full batch.
    """
    steps = n_traces // (batch_size * world)
    if steps < 1:
        raise DataError(
            f"{n_traces} normal traces make no full batch of {batch_size} per device "
            f"on {world} device(s); lower --batch_size or add traces"
        )
    return steps


def lora_model(config: FinetuneConfig, path: str, four_bit: bool) -> tuple[Any, list[str] | str]:
    """The causal LM at ``path`` with LoRA adapters on its checked target modules, and those."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model = models.load_causal_lm(path, four_bit=four_bit)
    targets = check_target_modules(model, config.target_modules)
    if four_bit:
        model = prepare_model_for_kbit_training(
            model, gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    lora = LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=targets, bias="none", task_type="CAUSAL_LM",
    )  # fmt: skip
    try:
        return get_peft_model(model, lora), targets
    except ValueError as exc:  # peft's NoMatchingPeftModuleError is a ValueError
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(f"LoRA cannot target {targets}: {reason}") from exc


def training_arguments(config: FinetuneConfig, checkpoints: Path, steps: int, world: int) -> Any:
    """The Trainer's settings: a checkpoint every ``steps`` (one epoch) under ``checkpoints``."""
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=config.batch_size,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps and config.max_steps > 0 else -1,
        learning_rate=config.learning_rate,
        save_strategy="steps",
        save_steps=steps,
        logging_steps=max(1, config.logging_steps),
        seed=config.seed,
        dataloader_drop_last=True,
        remove_unused_columns=False,
        report_to="none",
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        ddp_find_unused_parameters=False if world > 1 else None,
    )


def build_trainer(
    config: FinetuneConfig,
    model: Any,
    tokenizer: Any,
    dataset: EncodedTraces,
    args: Any,
    steps: int,
) -> Any:
    """A Trainer with Adam and the learning rate decayed by ``gamma`` every ``steps`` (an epoch),
    laying out batches as ``config.batching`` says."""
    import torch

    optimizer = torch.optim.Adam(_trainable(model), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, epoch_decay(steps, config.gamma))
    packed = config.batching == "packed"
    return trace_trainer_class()(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=PackedCollator() if packed else TraceCollator(tokenizer.pad_token_id),
        optimizers=(optimizer, scheduler),
        lengths=dataset.lengths if config.batching == "grouped" else None,
    )


def prune_checkpoints(folder: Path) -> list[Path]:
    """Delete the Trainer's ``checkpoint-<step>`` folders in ``folder``; returns what was deleted.

    Everything else in ``folder`` stays; a missing folder holds nothing to delete.
    """
    if not folder.is_dir():
        return []
    old = sorted(p for p in folder.iterdir() if p.is_dir() and CHECKPOINT.fullmatch(p.name))
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return old


def resume_point(config: FinetuneConfig, checkpoints: Path, main_process: bool) -> str | None:
    """The last checkpoint in ``checkpoints`` when ``config.resume``, else None.

    Starting over (``resume`` False) removes an earlier run's checkpoints first, on the main
    process only, so that a later run cannot resume from them.
    """
    from transformers.trainer_utils import get_last_checkpoint

    if config.resume:
        last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
        if last:
            log.info("resuming from %s", last)
        return last
    if main_process:
        removed = prune_checkpoints(checkpoints)
        if removed:
            log.info("resume off: removed %d old checkpoint(s) in %s", len(removed), checkpoints)
    return None


def write_summary(
    config: FinetuneConfig, base_model: str, targets: list[str] | str, result: FinetuneResult
) -> Path:
    """``<output_dir>/semad_training.json``: the run's settings and outcome."""
    summary = {
        "base_model": base_model,
        "config": asdict(config),
        "target_modules": targets,
        "four_bit": result.four_bit,
        "global_step": result.global_step,
        "steps_per_epoch": result.steps_per_epoch,
        "train_loss": result.train_loss,
        "resumed_from": result.resumed_from,
    }
    path = result.output_dir / "semad_training.json"
    atomic_write_json(path, json.loads(json.dumps(summary)))
    return path


def finetune(config: FinetuneConfig, texts: list[str] | None = None) -> FinetuneResult:
    """Fine-tune ``config.llm_path`` on normal traces and save the adapter (see module docstring).

    Args:
        config: the run's settings.
        texts: trace texts to train on; None: the normal traces of ``config.data_path``.
    """
    output_dir = check_config(config)
    from transformers import set_seed

    texts = list(texts) if texts is not None else training_texts(config.data_path)
    world = world_size()
    steps = steps_per_epoch(len(texts), config.batch_size, world)
    checkpoints = output_dir / "checkpoints"
    path = models.resolve_llm_path(config.llm_path, config.models_dir)
    tokenizer = models.load_tokenizer(path)
    four_bit = models.use_4bit(config.qlora)
    set_seed(config.seed)
    model, targets = lora_model(config, path, four_bit)
    dataset = EncodedTraces([encode_for_training(tokenizer, t, config.max_length) for t in texts])
    if config.batching == "packed":
        check_packing(model, dataset.rows, tokenizer.pad_token_id)
    args = training_arguments(config, checkpoints, steps, world)
    trainer = build_trainer(config, model, tokenizer, dataset, args, steps)
    last = resume_point(config, checkpoints, trainer.is_world_process_zero())
    note_batching(config, output_dir, last, trainer.is_world_process_zero())
    output = trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(output_dir))
    result = FinetuneResult(
        output_dir=output_dir,
        global_step=int(trainer.state.global_step),
        steps_per_epoch=steps,
        train_loss=float(output.training_loss),
        resumed_from=last,
        four_bit=four_bit,
        log_history=list(trainer.state.log_history),
    )
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(output_dir))
        write_summary(config, path, targets, result)
    return result
