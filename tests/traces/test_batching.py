"""Length-grouped batches for SemAD fine-tuning: every trace once per epoch (one process, a
two-process split, and two processes under torchrun), less padding than random batches, a seeded
random order of batches, the --batching flag, packed rows whose traces never see each other, the
same per-token loss, the exact batches again after a resume, and a warning when a resume changes
the order of traces."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

import fine_tune_llama3  # noqa: E402
from lmad.traces import batching, models  # noqa: E402
from lmad.traces import finetune as ft  # noqa: E402
from lmad.traces.batching import GroupedSampler, grouped_order, padding_share  # noqa: E402
from lmad.traces.log_io import write_traces  # noqa: E402
from lmad.traces.simulator import MODELS, simulate  # noqa: E402
from tests.traces.test_finetune import PROCESSES, config, one_thread  # noqa: E402, F401
from tests.traces.test_scoring import bpe_tokenizer, tiny_llama  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny random Llama + BPE tokenizer folder and 400 normal training traces (a CSV)."""
    root = tmp_path_factory.mktemp("batching")
    train = simulate([m for m in MODELS if m.name in PROCESSES], 400, seed=1)
    tok = bpe_tokenizer([t.text for t in train], vocab_size=400)
    tiny_llama(len(tok)).save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    write_traces(root / "training_data.csv", train, with_raw_cause=False)
    tok = models.load_tokenizer(str(root / "base"))  # right padding, pad = eos
    return {"root": root, "base": str(root / "base"), "train": train, "tok": tok}


def skewed_lengths(n: int = 1000, seed: int = 0) -> list[int]:
    """Trace lengths like SemAD's: most short, a long tail (median ~30, a few per cent over 100)."""
    rng = np.random.default_rng(seed)
    return [int(x) for x in np.clip(rng.lognormal(3.4, 0.6, n), 5, 300)]


def batches_of(order: list[int], batch_size: int) -> list[list[int]]:
    """What the Trainer's DataLoader makes of a sampler's order: full batches, the rest dropped."""
    sampler = torch.utils.data.BatchSampler(order, batch_size, drop_last=True)
    return [list(b) for b in sampler]


def shard(sampler, batch_size: int, world: int, rank: int) -> list[list[int]]:
    """The batches process ``rank`` of ``world`` trains on (accelerate's split, as the Trainer's)."""
    from accelerate.data_loader import BatchSamplerShard

    inner = torch.utils.data.BatchSampler(sampler, batch_size, drop_last=True)
    return [list(b) for b in BatchSamplerShard(inner, num_processes=world, process_index=rank)]


@pytest.mark.parametrize("n", [1000, 997])
@pytest.mark.parametrize("batch_size", [1, 3, 8, 16])
def test_every_trace_once_per_epoch(n, batch_size):
    lengths = skewed_lengths(n)
    order = grouped_order(lengths, batch_size, seed=(7, 0))
    assert sorted(order) == list(range(n))  # a permutation: nothing lost, nothing twice
    seen = [i for b in batches_of(order, batch_size) for i in b]
    assert len(seen) == len(set(seen)) == n - n % batch_size
    # the dropped traces are a random set, not the longest or shortest ones
    dropped = order[len(seen) :]
    assert len(dropped) == n % batch_size
    other = grouped_order(lengths, batch_size, seed=(7, 1))
    assert n % batch_size == 0 or other[len(seen) :] != dropped


@pytest.mark.parametrize("batch_size", [1, 4, 8])
@pytest.mark.parametrize("n", [1000, 1013])
def test_two_processes_split_an_epoch_without_overlap(batch_size, n):
    lengths = skewed_lengths(n)
    sampler = GroupedSampler(lengths, batch_size, seed=3, world=2)
    ranks = [shard(sampler, batch_size, 2, rank) for rank in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == n // (2 * batch_size)  # ft.steps_per_epoch
    seen = [i for rank in ranks for b in rank for i in b]
    assert len(seen) == len(set(seen)) == n - n % (2 * batch_size)
    # the batches the two processes train at the same time are of similar length too
    if batch_size > 1:
        longest = np.array([[max(lengths[i] for i in b) for b in rank] for rank in ranks])
        gap = np.abs(longest[0] - longest[1]) / longest.max(axis=0)
        assert np.median(gap) < 0.1, np.median(gap)


def test_grouped_batches_pad_less_than_random_ones():
    lengths = skewed_lengths(2000)
    rng = np.random.default_rng(0)
    random = padding_share(lengths, rng.permutation(2000).tolist(), 8)
    grouped = padding_share(lengths, grouped_order(lengths, 8, seed=(0, 0)), 8)
    assert random > 0.3 and grouped < 0.1, (random, grouped)
    assert padding_share([5, 5, 9, 9], [0, 1, 2, 3], 2) == 0.0
    assert padding_share([5, 9], [0, 1], 2) == pytest.approx(4 / 18)


def test_batches_come_in_a_random_order_that_the_seed_fixes():
    lengths = skewed_lengths(2000)
    sampler = GroupedSampler(lengths, 8, seed=11)
    first = list(sampler)
    torch.manual_seed(123)  # the global random state plays no part
    np.random.seed(5)
    assert list(GroupedSampler(lengths, 8, seed=11)) == first == list(sampler)
    assert list(GroupedSampler(lengths, 8, seed=12)) != first
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(second) == sorted(first)
    # a new epoch makes new batches, not the old ones in a new order
    as_sets = {frozenset(b) for b in batches_of(first, 8)}
    assert sum(frozenset(b) in as_sets for b in batches_of(second, 8)) < 25
    # batch lengths do not run from long to short (or back): the order of batches is random
    longest = [max(lengths[i] for i in b) for b in batches_of(first, 8)]
    rank_corr = np.corrcoef(np.argsort(np.argsort(longest)), np.arange(len(longest)))[0, 1]
    assert abs(rank_corr) < 0.15, rank_corr
    runs = np.sign(np.diff(longest))
    assert (runs > 0).sum() > 0.3 * len(runs) and (runs < 0).sum() > 0.3 * len(runs)
    # the longest trace's batch comes first, so running out of memory shows at once
    assert max(lengths) in [lengths[i] for i in first[:8]]


def test_batching_flag_chooses_the_sampler_and_the_collator(setup, tmp_path):
    assert fine_tune_llama3.build_parser().parse_args([]).batching == "packed"
    parsed = fine_tune_llama3.build_parser().parse_args(["--batching", "random"])
    assert parsed.batching == "random"
    tok = setup["tok"]
    rows = [ft.encode_for_training(tok, t.text, 512) for t in setup["train"]]
    dataset = ft.EncodedTraces(rows)
    samplers, shares = {}, {}
    for how in ("grouped", "random", "packed"):
        cfg = config(setup, tmp_path, batching=how)
        args = ft.training_arguments(cfg, tmp_path / "ckpt", 50, 1)
        trainer = ft.build_trainer(cfg, tiny_llama(len(tok)), tok, dataset, args, 50)
        samplers[how] = trainer._get_train_sampler()
        batches = list(trainer.get_train_dataloader())
        assert len(batches) == 50
        if how == "packed":  # one row per step: 8 traces, positions restarting at each
            assert all("attention_mask" not in b and len(b["input_ids"]) == 1 for b in batches)
            starts = [int((b["position_ids"][0] == 0).sum()) for b in batches]
            assert starts == [8] * 50
            shares[how] = 0.0
            continue
        masks = [b["attention_mask"] for b in batches]
        assert all(len(m) == 8 for m in masks)
        shares[how] = 1 - sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)
    assert isinstance(samplers["grouped"], GroupedSampler)
    assert samplers["grouped"].lengths == dataset.lengths and samplers["grouped"].seed == 42
    assert not isinstance(samplers["random"], GroupedSampler)
    assert not isinstance(samplers["packed"], GroupedSampler)
    assert shares["grouped"] < 0.6 * shares["random"], shares
    with pytest.raises(ft.ConfigError, match="--batching"):
        ft.check_config(config(setup, tmp_path, batching="sorted"))


def test_a_packed_row_gives_every_trace_its_unpacked_logits_and_loss(setup):
    """Traces packed into one row never attend to each other: each trace's logits equal those it
    gets alone in a padded batch, and the packed loss equals the padded batch's."""
    tok = setup["tok"]
    rows = [ft.encode_for_training(tok, t.text, 512) for t in setup["train"][:6]]
    model = tiny_llama(len(tok), seed=4).eval()
    features = [{"input_ids": r} for r in rows]
    packed = batching.PackedCollator()(features)
    padded = batching.TraceCollator(tok.pad_token_id)(features)
    starts = np.cumsum([0] + [len(r) for r in rows])[:-1]
    assert packed["position_ids"][0, starts].tolist() == [0] * 6
    assert packed["labels"][0, starts].tolist() == [-100] * 6  # no trace predicts the next one
    assert int((packed["labels"] != -100).sum()) == int((padded["labels"][:, 1:] != -100).sum())
    with torch.no_grad():
        one, many = model(**packed), model(**{k: v for k, v in padded.items()}, use_cache=False)
    assert float(one.loss) == pytest.approx(float(many.loss), rel=1e-5)
    for row, (start, trace) in enumerate(zip(starts, rows)):
        alone = one.logits[0, start : start + len(trace)]
        torch.testing.assert_close(alone, many.logits[row, : len(trace)], atol=1e-5, rtol=1e-5)
    # without restarting positions, the traces would see each other: the test can fail
    joined = {"input_ids": packed["input_ids"], "labels": packed["labels"]}
    with torch.no_grad():
        leaked = model(**joined, use_cache=False).logits[0, starts[1] : starts[1] + len(rows[1])]
    assert not torch.allclose(leaked, many.logits[1, : len(rows[1])], atol=1e-3)


def test_loss_is_the_mean_over_real_tokens_whatever_the_batching(setup):
    """On the same traces, a fixed model's loss per real token is the same for grouped and random
    batches: padding (label -100) never counts and never changes a real token's prediction."""
    tok = setup["tok"]
    rows = [ft.encode_for_training(tok, t.text, 512) for t in setup["train"][:96]]
    lengths = [len(r) for r in rows]
    model = tiny_llama(len(tok), seed=3)
    collate = ft.TraceCollator(tok.pad_token_id)

    def epoch_loss(order: list[int]) -> tuple[float, int]:
        total, tokens = 0.0, 0
        for batch in batches_of(order, 8):
            inputs = collate([{"input_ids": rows[i]} for i in batch])
            n = int((inputs["labels"][:, 1:] != -100).sum())  # predicted tokens
            with torch.no_grad():
                total += float(model(**inputs).loss) * n
            tokens += n
        return total / tokens, tokens

    grouped = grouped_order(lengths, 8, seed=(1, 0))
    rng = np.random.default_rng(1)
    random = rng.permutation(len(rows)).tolist()
    assert padding_share(lengths, grouped, 8) < padding_share(lengths, random, 8)
    (loss_g, n_g), (loss_r, n_r) = epoch_loss(grouped), epoch_loss(random)
    assert n_g == n_r == sum(lengths) - len(rows)
    assert loss_g == pytest.approx(loss_r, rel=1e-5)
    # one trace's loss does not depend on the traces padded beside it
    alone = collate([{"input_ids": rows[0]}])
    longest = int(np.argmax(lengths))
    beside = collate([{"input_ids": rows[0]}, {"input_ids": rows[longest]}])
    with torch.no_grad():
        logits = model(**beside).logits[0, : lengths[0] - 1]
        want = torch.nn.functional.cross_entropy(logits, alone["input_ids"][0, 1:])
        assert float(model(**alone).loss) == pytest.approx(float(want), rel=1e-5)


class PositionBlind(torch.nn.Module):
    """A causal LM that drops the position ids: packed traces would see each other."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, position_ids=None, **kwargs):
        return self.inner(input_ids=input_ids, **kwargs)


def test_packing_is_refused_for_a_model_that_lets_packed_traces_see_each_other(setup):
    tok = setup["tok"]
    rows = [ft.encode_for_training(tok, t.text, 512) for t in setup["train"][:8]]
    model = tiny_llama(len(tok), seed=5).train()
    batching.check_packing(model, rows, tok.pad_token_id)  # a Llama keeps them apart
    assert model.training  # the mode is restored
    with pytest.raises(ft.ConfigError, match=r"does not keep packed traces apart.*--batching"):
        batching.check_packing(PositionBlind(model), rows, tok.pad_token_id)


def test_resuming_with_another_order_of_traces_warns(setup, tmp_path, caplog):
    grouped = config(setup, tmp_path, batching="grouped")
    ckpt = str(tmp_path / "checkpoints" / "checkpoint-7")
    with caplog.at_level("WARNING", logger="lmad.traces.batching"):
        batching.note_batching(grouped, tmp_path, ckpt, main=False)  # older checkpoints: random
        assert "trained with random batches, this run uses grouped ones" in caplog.text
        assert not (tmp_path / "semad_batching.json").exists()  # only the main process writes
        caplog.clear()
        batching.note_batching(
            grouped, tmp_path, None, main=True
        )  # a fresh run records its batching
        batching.note_batching(grouped, tmp_path, ckpt, main=True)
        assert caplog.text == ""
        batching.note_batching(replace(grouped, batching="packed"), tmp_path, ckpt, main=True)
        assert "trained with grouped batches, this run uses packed ones" in caplog.text
        caplog.clear()  # packed and random draw the same order: no warning between them
        batching.note_batching(replace(grouped, batching="random"), tmp_path, ckpt, main=True)
        assert caplog.text == ""
        (tmp_path / "semad_batching.json").write_text('{"group_by_length": true}')  # older file
        batching.note_batching(replace(grouped, batching="random"), tmp_path, ckpt, main=True)
        assert "trained with grouped batches, this run uses random ones" in caplog.text


def test_trainer_loss_is_the_mean_over_real_tokens_with_grouped_batches(setup, tmp_path):
    """A fixed model (lr ~0, no dropout) trained one epoch: with grouped batches the Trainer's mean
    step loss is the mean over all real tokens of the epoch, as a token-weighted loss should be
    whatever the batching; random batches' per-batch means come close to it."""
    tok = setup["tok"]
    rows = [ft.encode_for_training(tok, t.text, 512) for t in setup["train"]]
    model = models.load_causal_lm(setup["base"]).eval()
    collate = ft.TraceCollator(tok.pad_token_id)
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), 50):
            batch = collate([{"input_ids": r} for r in rows[start : start + 50]])
            n = int((batch["labels"][:, 1:] != -100).sum())
            total, tokens = total + float(model(**batch).loss) * n, tokens + n
    fixed = {"learning_rate": 1e-12, "lora_dropout": 0.0, "max_steps": 50}
    losses = {}
    for how in ("grouped", "random", "packed"):
        cfg = config(setup, tmp_path / how, batching=how, **fixed)
        losses[how] = ft.finetune(cfg).train_loss
    assert losses["grouped"] == pytest.approx(total / tokens, rel=2e-6)
    assert losses["random"] == pytest.approx(total / tokens, rel=0.01)
    # packed rows hold the random batches' traces: the same loss, step by step
    assert losses["packed"] == pytest.approx(losses["random"], rel=1e-5)
    # traces of 3, 5, 5 tokens predict 2, 4, 4; 4 traces x 2 accumulated x 3 processes a step
    args = SimpleNamespace(train_batch_size=4, gradient_accumulation_steps=2, world_size=3)
    args.average_tokens_across_devices = True
    assert batching.tokens_per_step([3, 5, 5], args) == pytest.approx(10 / 3 * 24)
    args.average_tokens_across_devices = False
    assert batching.tokens_per_step([3, 5, 5], args) == pytest.approx(10 / 3 * 8)


class Recorder(batching.TraceCollator):
    """The collator, noting the traces (as token tuples) of every batch it makes."""

    batches: ClassVar[list[list[tuple[int, ...]]]] = []

    def __call__(self, features):
        Recorder.batches.append([tuple(f["input_ids"]) for f in features])
        return super().__call__(features)


def test_trainer_trains_each_trace_once_and_resumes_on_the_same_batches(
    setup, tmp_path, monkeypatch
):
    monkeypatch.setattr(ft, "TraceCollator", Recorder)

    def train(cfg: ft.FinetuneConfig, steps: int) -> list[list[tuple[int, ...]]]:
        """The batches of ``steps`` optimizer steps (accelerate collates one more, ahead)."""
        Recorder.batches = []
        result = ft.finetune(cfg)
        assert result.global_step - steps in (0, 25)  # 25: resumed from checkpoint-25
        assert steps <= len(Recorder.batches) <= steps + 1
        return Recorder.batches[:steps]

    cfg = config(setup, tmp_path / "whole", max_steps=60, batching="grouped")
    whole = train(cfg, 60)
    tok = setup["tok"]
    rows = [tuple(ft.encode_for_training(tok, t.text, 512)) for t in setup["train"]]
    epoch = [row for batch in whole[:50] for row in batch]
    assert sorted(epoch) == sorted(rows)  # 400 traces, 50 batches of 8: each trace once
    lengths = [len(r) for r in rows]
    trained = [[len(r) for r in b] for b in whole[:50]]
    share = 1 - sum(map(sum, trained)) / sum(8 * max(b) for b in trained)
    random = padding_share(lengths, np.random.default_rng(0).permutation(400).tolist(), 8)
    assert share < 0.6 * random, (share, random)
    assert whole[50:] != whole[:10]  # epoch 2 has new batches
    # stop at step 25, resume to 60: steps 26..60 train on the same batches as the whole run
    parts = replace(cfg, output_dir=str(tmp_path / "parts"))
    assert train(replace(parts, max_steps=25), 25) == whole[:25]
    assert train(parts, 35) == whole[25:]


RUNNER = """
import atexit, json, os, sys
import torch
torch.set_num_threads(1)
from lmad.traces import batching, finetune as ft
seen = []
class Encoded(batching.EncodedTraces):
    def __getitem__(self, index):
        return {"input_ids": self.rows[index], "index": int(index)}
class Collator(batching.TraceCollator):
    def __call__(self, features):
        seen.append([f["index"] for f in features])
        return super().__call__([{"input_ids": f["input_ids"]} for f in features])
ft.EncodedTraces, ft.TraceCollator = Encoded, Collator
out = sys.argv[1] + os.environ["RANK"] + ".json"
atexit.register(lambda: open(out, "w").write(json.dumps(seen)))
import fine_tune_llama3
fine_tune_llama3.main(sys.argv[2:])
"""


@pytest.mark.slow
def test_two_processes_train_each_trace_once_and_resume_on_the_same_batches(setup, tmp_path):
    """torchrun, 2 CPU processes (gloo): 400 traces, 3 per process and step: 66 steps an epoch."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    flags = ["--llm_path", setup["base"], "--data_path", str(setup["root"] / "training_data.csv")]
    flags += ["--batch_size", "3", "--epochs", "2", "--qlora", "off", "--batching", "grouped"]

    def train(name: str, out: str, *more: str) -> list[list[list[int]]]:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += ["--nproc_per_node", "2", str(runner), str(tmp_path / name)]
        cmd += [*flags, "--output_dir", str(tmp_path / out), *more]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return [json.loads((tmp_path / f"{name}{rank}.json").read_text()) for rank in (0, 1)]

    whole = train("whole", "a", "--resume", "False")
    assert [len(r) for r in whole] == [132, 132]
    for epoch in (0, 1):
        steps = [r[66 * epoch : 66 * (epoch + 1)] for r in whole]
        seen = [i for rank in steps for batch in rank for i in batch]
        assert len(seen) == len(set(seen)) == 396  # 400 - 400 % 6, none twice
    assert whole[0][66:] != whole[0][:66]
    train("part", "b", "--resume", "False", "--max_steps", "80")
    resumed = train("rest", "b")
    assert [r[:52] for r in resumed] == [r[80:] for r in whole]
