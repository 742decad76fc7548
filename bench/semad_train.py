"""SemAD fine-tuning throughput: SemAD's padded random batches against packed rows and length-
grouped batches (lmad.traces.batching, fine_tune_llama3.py --batching).

On SemAD's real training file, one process trains copies of the same LoRA model (SmolLM2-135M by
default, LoRA on q_proj/v_proj with fine_tune_llama3.py's settings, the same initial adapter
weights) on the file's normal traces but a held-out sample of 64: "random" on batches drawn at
random, each padded to its longest trace (SemAD's); "packed" on the same random batches, each
packed into one row without padding (lmad's default: position ids restart at every trace, so the
traces never attend to each other); "grouped" on length-grouped batches from lmad's GroupedSampler.
Each uses fine_tune_llama3.py's encoding and collators, Adam and gradient clipping at 1.0, and its
Trainer's loss: the mean over the step's real tokens, and for grouped batches the sum over them
divided by the data's mean number per step (lmad.traces.batching.tokens_per_step). Their steps
alternate, one of each in turn, so that load from other processes falls on all alike. For each it
prints the real (non-padding) tokens per second and the share of padded tokens over steps 2 to
--steps (the first is a warm-up, and grouped batching puts its longest batch first), the training
loss per real token over all steps (with its standard error over steps) and the loss per real
token of the held-out traces after training; then, against random batches, the ratio of tokens per
second (goal: >= 1.8x) and the loss difference in standard errors (goal: the same loss within
noise), and how far packed and random step losses differ on the same traces. --control adds a
random run in another order (how far two random runs' held-out losses differ by chance),
--batch_mean a grouped run with each batch's own mean loss. --learning_rate defaults to 10x SemAD's
so that the loss moves within a few dozen steps.

    python bench/semad_train.py [--steps 60] [--batch_size 8] [--data PATH] [--llm_path smollm2]
    python bench/semad_train.py --tiny        # a small random Llama on SmolLM2's tokenizer: quick
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmad.traces.batching import (
    MEGABATCH,
    GroupedSampler,
    PackedCollator,
    TraceCollator,
    padding_share,
    tokens_per_step,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "semad" / "training_data.csv"
HELD_OUT = 64  # traces scored after training, the same for both runs
MAX_GRAD_NORM = 1.0  # the Trainer's default
STEP = {"gradient_accumulation_steps": 1, "world_size": 1, "average_tokens_across_devices": True}


def tiny_model(folder: Path, tokenizer_path: str) -> str:
    """A random 2-layer Llama with the tokenizer at ``tokenizer_path`` (a quick stand-in model)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmad.traces import models

    tok = models.load_tokenizer(tokenizer_path)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def held_out_loss(model, rows: list[list[int]], collate, batch_size: int) -> float:
    """Loss per real token of ``rows`` (model in eval mode, no dropout)."""
    import torch

    from lmad.traces.batching import grouped_order

    model.eval()
    order = grouped_order([len(r) for r in rows], batch_size, seed=0)
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = collate([{"input_ids": rows[i]} for i in order[start : start + batch_size]])
            n = int((batch["labels"][:, 1:] != -100).sum())
            total += float(model(**batch).loss) * n
            tokens += n
    model.train()
    return total / tokens


class Run:
    """One model, its optimizer and its batches; :meth:`step` trains on the next batch."""

    def __init__(self, model, order, rows, collate, batch_size: int, lr: float, per_step=None):
        import torch

        self.model, self.rows, self.collate = model.train(), rows, collate
        self.per_step = per_step  # the grouped Trainer's loss divisor; None: per-batch mean
        self.batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=lr)
        self.seconds, self.real, self.padded, self.sums, self.predicted = [], [], [], [], []

    def step(self) -> None:
        import torch

        index = len(self.sums)
        start = time.perf_counter()
        batch = self.collate([{"input_ids": self.rows[i]} for i in self.batches[index]])
        predicted = int((batch["labels"][:, 1:] != -100).sum())
        if self.per_step is None:
            loss = self.model(**batch).loss
        else:
            loss = self.model(**batch, num_items_in_batch=self.per_step).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM)
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.seconds.append(time.perf_counter() - start)
        self.sums.append(float(loss.detach()) * (self.per_step or predicted))
        self.predicted.append(predicted)
        mask = batch.get("attention_mask", torch.ones_like(batch["input_ids"]))  # packed: none
        self.real.append(int(mask.sum()))
        self.padded.append(mask.numel())

    def summary(self) -> dict:
        seconds, real = sum(self.seconds[1:]), sum(self.real[1:])  # step 1: warm-up
        sums, counts = np.array(self.sums), np.array(self.predicted, dtype=float)
        mean = sums.sum() / counts.sum()  # over every real token of the steps
        spread = np.sqrt(((sums - mean * counts) ** 2).sum() / (len(sums) * (len(sums) - 1)))
        return {
            "seconds": seconds,
            "tokens_per_s": real / seconds,
            "padding": 1 - real / sum(self.padded[1:]),
            "loss": float(mean),
            "loss_se": float(spread / counts.mean()),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(DATA), help="SemAD training CSV")
    parser.add_argument("--llm_path", default="smollm2", help="base model (fine_tune_llama3.py's)")
    parser.add_argument("--tiny", action="store_true", help="a small random Llama instead")
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per run")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--learning_rate", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch_mean",
        action="store_true",
        help="also train a third copy on the grouped batches with each batch's mean loss",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="also train a copy on random batches in another order (the loss's noise floor)",
    )
    parser.add_argument("--megabatch", type=int, default=MEGABATCH, help="steps sorted together")
    args = parser.parse_args()
    logging.getLogger("transformers").setLevel(logging.ERROR)

    import torch

    import fine_tune_llama3
    from lmad.traces import finetune, models

    texts = finetune.training_texts(args.data)
    rng = np.random.default_rng(args.seed)
    picked = rng.permutation(len(texts))
    bs = args.batch_size
    if args.steps < 2 or args.steps * bs + HELD_OUT > len(texts):
        raise SystemExit(f"--steps must be at least 2 and fit {len(texts)} traces")
    with tempfile.TemporaryDirectory() as tmp:
        path = models.resolve_llm_path(args.llm_path)
        if args.tiny:
            path = tiny_model(Path(tmp) / "tiny", path)
        flags = ["--llm_path", path, "--data_path", args.data, "--qlora", "off"]
        config = finetune.FinetuneConfig(**vars(fine_tune_llama3.build_parser().parse_args(flags)))
        tokenizer = models.load_tokenizer(path)
        encode = [finetune.encode_for_training(tokenizer, t, config.max_length) for t in texts]
        held = [encode[i] for i in picked[:HELD_OUT]]
        rows = [encode[i] for i in sorted(picked[HELD_OUT:])]
        lengths = [len(r) for r in rows]

        def permutation(seed: int) -> list[int]:
            return torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()

        grouped = list(GroupedSampler(lengths, bs, seed=args.seed, megabatch=args.megabatch))
        padded, packed = TraceCollator(tokenizer.pad_token_id), PackedCollator()
        per_token = tokens_per_step(lengths, SimpleNamespace(**STEP, train_batch_size=bs))
        # name: (order, collator, loss divisor: None = the step's own count of predicted tokens)
        variants = {"random": (permutation(args.seed), padded, None)}
        if args.control:
            variants["random-other-order"] = (permutation(args.seed + 1), padded, None)
        variants["packed"] = (variants["random"][0], packed, None)
        variants["grouped"] = (grouped, padded, per_token)
        if args.batch_mean:
            variants["grouped-batch-mean"] = (grouped, padded, None)
        whole = {"random": padding_share(lengths, variants["random"][0], bs)}
        whole["grouped"] = padding_share(lengths, grouped, bs)
        torch.manual_seed(args.seed)
        runs, initial = {}, None
        for name, (order, collate, per_step) in variants.items():
            model, _ = finetune.lora_model(config, path, four_bit=False)
            adapter = {n: p for n, p in model.named_parameters() if p.requires_grad}
            if initial is None:
                initial = {n: p.detach().clone() for n, p in adapter.items()}
                before = held_out_loss(model, held, padded, bs)
            with torch.no_grad():
                for n, p in adapter.items():
                    p.copy_(initial[n])
            runs[name] = Run(model, order, rows, collate, bs, args.learning_rate, per_step)
        for step in range(args.steps):
            names = list(runs) if step % 2 == 0 else list(reversed(runs))
            for name in names:
                runs[name].step()
        results = {name: run.summary() for name, run in runs.items()}
        for name, run in runs.items():
            results[name]["held_out"] = held_out_loss(run.model, held, padded, bs)

    model_name = "tiny random Llama" if args.tiny else args.llm_path
    print(
        f"{model_name}: {args.steps} steps of {bs} of {len(rows)} traces of "
        f"{Path(args.data).name} (+ {HELD_OUT} held out), lr {args.learning_rate:g}, "
        f"{torch.get_num_threads()} threads; tokens/s and padding over steps 2-{args.steps}"
    )
    print(f"padding share over a whole epoch: random {whole['random']:.1%}, grouped ", end="")
    print(f"{whole['grouped']:.1%}")
    print(f"held-out loss per token before training: {before:.4f}")
    for name, r in results.items():
        print(
            f"{name:18s} {r['tokens_per_s']:7.1f} real tokens/s  {r['seconds']:6.1f} s  "
            f"padding {r['padding']:5.1%}  train loss {r['loss']:.4f} +- {r['loss_se']:.4f}  "
            f"held-out {r['held_out']:.4f}"
        )
    random = results["random"]
    for name in ("packed", "grouped"):
        other = results[name]
        ratio = other["tokens_per_s"] / random["tokens_per_s"]
        noise = math.hypot(random["loss_se"], other["loss_se"])
        gap = other["loss"] - random["loss"]
        print(
            f"{name} / random: {ratio:.2f}x real tokens per second (goal >= 1.8x); train loss "
            f"{gap:+.4f} = {gap / noise:+.1f} standard errors (goal within 2); held-out "
            f"{other['held_out'] - random['held_out']:+.4f}"
        )
    steps = [np.array(r.sums) / np.array(r.predicted) for r in (runs["random"], runs["packed"])]
    print(
        "packed and random train on the same traces at every step: their step losses differ by "
        f"{np.abs(steps[0] - steps[1]).mean():.4f} on average (LoRA dropout draws differ), "
        f"against a spread of {steps[0].std():.4f} between steps"
    )


if __name__ == "__main__":
    main()
