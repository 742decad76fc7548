"""SemAD scoring memory: one (batch, sequence, vocabulary) softmax against lmad's chunked scoring.

The original eval.py asks the model for all logits and takes one softmax over the whole
(batch, sequence, vocabulary) tensor, then logs of it. lmad asks the model's decoder for hidden
states only and applies the output head, log-softmax and entropy to --chunk_size positions at a
time (lmad.traces.scoring.TraceScorer). Both score the same batch of simulated traces; each method
runs in its own child process, which reports its resident memory after loading the model, its
peak resident memory during the first scoring run (the kernel's VmHWM, reset after loading; the
process's ru_maxrss where that is not possible) and its median time over --repeats more runs.
The script asserts that both give the same token scores (to 1e-5) and prints the ratios.

The default model is a small random Llama with Llama-3's vocabulary of 128,256 tokens (the
vocabulary is what the softmax scales with); --llm_path scores with a real model instead (e.g. the
converted data/models/smollm2-135m).

    python bench/scoring_memory.py [--batch_size 8] [--chunk_size 64] [--vocab 128256]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VOCAB = 128256  # Llama-3, the model SemAD fine-tunes
REPEATS = 3


def traces(n: int) -> list[str]:
    """``n`` simulated normal traces (the longest of 4n, so the batch is not trivially short)."""
    from lmad.traces.simulator import MODELS, simulate

    texts = [t.text for t in simulate(MODELS, 4 * n, seed=0)]
    return sorted(texts, key=len, reverse=True)[:n]


def build_model(folder: Path, vocab: int, texts: list[str]) -> None:
    """A random 2-layer Llama with ``vocab`` outputs and a byte-level BPE tokenizer of the texts."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<s>", "</s>", "<unk>"], initial_alphabet=alphabet
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=0, eos_token_id=1, tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    fast.save_pretrained(folder)


def rss_mb() -> float:
    """Current resident memory of this process in MB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """Peak resident memory since the last :func:`reset_peak` (else since the start), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(method: str, folder: str, texts_file: str, chunk: int, repeats: int, out: str) -> None:
    """Score the batch with one method; print a JSON line of memory and time; save the scores."""
    import torch

    from eval import ALPHA  # eval.py's scoring settings
    from lmad.traces import models
    from lmad.traces.scoring import TraceScorer, encode_for_scoring, full_softmax_scores

    torch.set_num_threads(1)
    texts = json.loads(Path(texts_file).read_text())
    tokenizer = models.load_tokenizer(folder, need_offsets=True)
    model = models.load_causal_lm(folder).eval()
    scorer = TraceScorer(model, tokenizer, ALPHA, batch_size=len(texts), chunk_size=chunk)
    encoded = [encode_for_scoring(tokenizer, t) for t in texts]
    ids, targets, mask = scorer._tensors([e[0] for e in encoded])

    def run_full() -> np.ndarray:
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits
            scores = full_softmax_scores(logits, targets)
        rows = [scores[r, : int(mask[r].sum())].double().numpy() for r in range(len(texts))]
        return np.concatenate([row[m] for row, e in zip(rows, encoded) for m in e[1]])

    def run_chunked() -> np.ndarray:
        return np.concatenate([tok for s in scorer.score(texts) for tok in s.tokens])

    run = run_full if method == "full" else run_chunked
    reset = reset_peak()  # the first run is measured (for lmad it includes its one-off check)
    before = rss_mb()
    scores = run()
    peak = peak_mb()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    np.save(out, scores)
    result = {"before_mb": before, "peak_mb": peak, "seconds": statistics.median(times)}
    result["peak_since"] = "model loaded" if reset else "process start"
    print(json.dumps(result | {"hidden_states": scorer.uses_hidden_states}))


def run_child(method: str, folder: Path, texts_file: Path, args, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", method, "--folder", str(folder)]
    cmd += ["--texts", str(texts_file), "--chunk_size", str(args.chunk_size)]
    cmd += ["--repeats", str(args.repeats), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        sys.exit(f"error: the {method} child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from eval import BATCH_SIZE, CHUNK_SIZE  # eval.py's scoring settings

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch_size", type=int, default=BATCH_SIZE, help="traces in the batch")
    p.add_argument("--chunk_size", type=int, default=CHUNK_SIZE, help="positions per chunk")
    p.add_argument("--vocab", type=int, default=VOCAB, help="vocabulary of the random model")
    p.add_argument("--llm_path", default=None, help="score with this model instead")
    p.add_argument("--repeats", type=int, default=REPEATS, help="timed runs per method")
    p.add_argument("--child", choices=["full", "chunked"], help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    p.add_argument("--texts", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.folder, args.texts, args.chunk_size, args.repeats, args.out)
        return

    texts = traces(args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.llm_path:
            from lmad.traces.models import resolve_llm_path

            folder = Path(resolve_llm_path(args.llm_path))
        else:
            folder = tmp_path / "model"
            build_model(folder, args.vocab, texts)
        texts_file = tmp_path / "texts.json"
        texts_file.write_text(json.dumps(texts))
        results = {}
        for method in ("full", "chunked"):
            results[method] = run_child(
                method, folder, texts_file, args, tmp_path / f"{method}.npy"
            )
        full, chunked = (np.load(tmp_path / f"{m}.npy") for m in ("full", "chunked"))

    from transformers import AutoConfig

    vocab = AutoConfig.from_pretrained(folder).vocab_size if args.llm_path else args.vocab
    diff = float(np.abs(full - chunked).max())
    print(f"batch of {len(texts)} traces, {full.size} scored tokens, vocabulary {vocab}, "
          f"chunk {args.chunk_size} positions; median of {args.repeats} runs, 1 thread")  # fmt: skip
    print(f"{'method':<26} {'peak RSS MB':>11} {'scoring MB':>10} {'time s':>8}")
    for method, label in (("full", "full softmax (original)"), ("chunked", "lmad chunked")):
        r = results[method]
        extra = r["peak_mb"] - r["before_mb"]
        print(f"{label:<26} {r['peak_mb']:>11.1f} {extra:>10.1f} {r['seconds']:>8.3f}")
    full_r, ours = results["full"], results["chunked"]
    extra_ratio = (full_r["peak_mb"] - full_r["before_mb"]) / max(
        ours["peak_mb"] - ours["before_mb"], 1.0
    )
    print(
        f"ratios full/lmad: peak RSS {full_r['peak_mb'] / ours['peak_mb']:.2f}x, "
        f"scoring memory {extra_ratio:.1f}x, time {full_r['seconds'] / ours['seconds']:.2f}x"
    )
    print(f"max |score difference| {diff:.2e} (hidden-state path: {ours['hidden_states']}); "
          f"peak RSS measured since {ours['peak_since']}")  # fmt: skip
    assert np.allclose(full, chunked, rtol=1e-5, atol=1e-5), f"scores differ by {diff}"


if __name__ == "__main__":
    main()
