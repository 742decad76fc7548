"""SemAD fine-tuning: the reconstruction objective, LoRA/QLoRA training and resume on a tiny model,
model resolution (SmolLM2 GGUF), and the fine_tune_llama3.py / eval.py scripts."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from lmad.errors import ConfigError, DataError  # noqa: E402
from lmad.traces import finetune as ft  # noqa: E402
from lmad.traces import models  # noqa: E402
from lmad.traces.inject import inject_anomalies  # noqa: E402
from lmad.traces.log_io import Trace, write_traces  # noqa: E402
from lmad.traces.scoring import TraceScorer  # noqa: E402
from lmad.traces.simulator import MODELS, simulate  # noqa: E402
from tests.conftest import ROOT, assert_user_error  # noqa: E402
from tests.traces.test_scoring import bpe_tokenizer, tiny_llama  # noqa: E402

PROCESSES = ("order_to_cash", "hiring", "claim_handling")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train fastest on one thread, and do not fight other processes for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny random Llama + BPE tokenizer folder, normal training traces, a labelled test set."""
    root = tmp_path_factory.mktemp("semad")
    chosen = [m for m in MODELS if m.name in PROCESSES]
    train = simulate(chosen, 400, seed=1)
    test = inject_anomalies(simulate(chosen, 80, seed=2), 0.5, np.random.default_rng(3), chosen)
    tok = bpe_tokenizer([t.text for t in train], vocab_size=400)
    base = root / "base"
    tiny_llama(len(tok)).save_pretrained(base)
    tok.save_pretrained(base)
    write_traces(root / "training_data.csv", train, with_raw_cause=False)
    write_traces(root / "test_data.csv", test, with_raw_cause=True)
    tok = models.load_tokenizer(str(base))  # right padding, pad = eos
    return {"root": root, "base": str(base), "train": train, "test": test, "tok": tok}


def config(setup, out: Path, **changes) -> ft.FinetuneConfig:
    values = {
        "llm_path": setup["base"],
        "data_path": str(setup["root"] / "training_data.csv"),
        "output_dir": str(out),
        "epochs": 10,
        "batch_size": 8,
        "learning_rate": 5e-3,
        "gamma": 0.8,
        "max_length": 512,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.1,
        "target_modules": ["all-linear"],
        "qlora": "off",
        "max_steps": -1,
        "seed": 42,
        "logging_steps": 1,
    }
    return ft.FinetuneConfig(**(values | changes))


def test_objective_is_semad_shift_left_with_eos_and_padding_ignored(setup):
    tok = setup["tok"]
    texts = [setup["train"][0].text, setup["train"][1].text]
    rows = [ft.encode_for_training(tok, t, 512) for t in texts]
    assert rows[0][0] == tok.bos_token_id and rows[0][-1] == tok.eos_token_id
    assert rows[0][1:-1] == tok(texts[0], add_special_tokens=False)["input_ids"]
    batch = ft.TraceCollator(tok.pad_token_id)([{"input_ids": r} for r in rows])
    short = int(np.argmin([len(r) for r in rows]))
    n = len(rows[short])
    assert (batch["labels"][short, n:] == -100).all() and batch["labels"][short, n - 1] == 1
    model = tiny_llama(len(tok), seed=5)
    with torch.no_grad():
        hf_loss = model(**batch).loss
        logits = model(batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    # SemAD: targets = inputs shifted left with EOS appended, loss over non-pad positions
    losses = []
    for row, ids in enumerate(rows):
        inputs, targets = ids[:-1], ids[1:]
        logp = torch.log_softmax(logits[row, : len(inputs)], dim=-1)
        losses.append(-logp[torch.arange(len(inputs)), torch.tensor(targets)])
    assert float(hf_loss) == pytest.approx(float(torch.cat(losses).mean()), rel=1e-5)
    assert ft.encode_for_training(tok, texts[0], max_length=5)[-1] == tok.eos_token_id
    assert len(ft.encode_for_training(tok, texts[0], max_length=5)) == 5


def test_learning_rate_decays_by_gamma_per_epoch():
    factor = ft.epoch_decay(steps_per_epoch=50, gamma=0.8)
    assert [factor(s) for s in (0, 49, 50, 99, 100, 260)] == pytest.approx(
        [1, 1, 0.8, 0.8, 0.64, 0.8**5]
    )


def test_training_makes_anomalies_score_higher_and_resumes(setup, tmp_path):
    out = tmp_path / "adapter"
    first = ft.finetune(config(setup, out, max_steps=100))
    assert first.steps_per_epoch == 50 and first.global_step == 100
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "checkpoint-100",
        "checkpoint-50",
    ]
    second = ft.finetune(config(setup, out, max_steps=250))
    assert second.resumed_from and second.resumed_from.endswith("checkpoint-100")
    assert second.global_step == 250
    # the rate used by optimizer step s (1-based) is lr * 0.8 ** (completed epochs)
    lrs = {e["step"]: e["learning_rate"] for e in second.log_history if "learning_rate" in e}
    for step in (101, 150, 151, 200, 201, 250):
        assert lrs[step] == pytest.approx(5e-3 * 0.8 ** ((step - 1) // 50)), step
    assert (out / "adapter_config.json").is_file() and (out / "tokenizer.json").is_file()

    model, tok = models.load_for_scoring(setup["base"], str(out), qlora="off")
    test = setup["test"]
    scorer = TraceScorer(model, tok, 0.6, batch_size=16, chunk_size=64)
    scores = scorer.score([t.text for t in test])
    anomalous = [s.trace for s, t in zip(scores, test) if t.is_anomalous]
    normal = [s.trace for s, t in zip(scores, test) if not t.is_anomalous]
    assert len(anomalous) == 40 and len(normal) == 40
    assert np.mean(anomalous) > np.mean(normal) + 0.05, (np.mean(anomalous), np.mean(normal))
    events = np.concatenate([s.events for s in scores])
    labels = np.concatenate([t.event_labels for t in test])
    assert events[labels == 1].mean() > events[labels == 0].mean()
    # starting over removes the earlier run's checkpoints
    third = ft.finetune(config(setup, out, max_steps=1, resume=False))
    assert third.resumed_from is None and third.global_step == 1
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-1"]


def test_model_without_q_proj_v_proj_is_a_config_error(tmp_path, setup):
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(
        GPT2Config(vocab_size=len(setup["tok"]), n_embd=32, n_layer=1, n_head=2)
    ).save_pretrained(folder)
    setup["tok"].save_pretrained(folder)
    cfg = config(setup, tmp_path / "out", llm_path=str(folder), target_modules=["q_proj", "v_proj"])
    with pytest.raises(ConfigError, match=r"q_proj, v_proj.*c_attn"):
        ft.finetune(cfg)
    cfg = config(setup, tmp_path / "out", llm_path=str(folder), target_modules=["c_attn"])
    assert ft.finetune(replace(cfg, max_steps=1)).global_step == 1


def test_qlora_4bit_on_cpu(setup, tmp_path):
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"bitsandbytes unavailable: {exc}")
    out = tmp_path / "qlora"
    cfg = config(setup, out, qlora="on", max_steps=3, target_modules=["q_proj", "v_proj"])
    result = ft.finetune(cfg)
    assert result.four_bit and result.global_step == 3
    model, tok = models.load_for_scoring(setup["base"], str(out), qlora="on")
    assert type(model.get_base_model().model.layers[0].mlp.up_proj).__name__ == "Linear4bit"
    scores = TraceScorer(model, tok, 0.6, 8, 64).score([t.text for t in setup["test"][:4]])
    assert all(np.isfinite(s.trace) for s in scores)


def test_resolve_llm_path_errors_are_one_line(tmp_path, monkeypatch):
    for bad in ("/no/such/model", "./missing-folder", "x.gguf"):
        with pytest.raises(ConfigError, match="does not exist"):
            models.resolve_llm_path(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"config\.json"):
        models.resolve_llm_path(str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="not in the Hugging Face cache"):
        models.resolve_llm_path("nobody-has/this-model-xyz")
    assert models.model_name("meta-llama/Meta-Llama-3-8B") == "meta-llama--Meta-Llama-3-8B"
    assert models.model_name("smollm2") == "smollm2-135m"


@pytest.mark.slow
def test_smollm2_gguf_is_converted_once_and_reloads():
    """Loads ~100 MB: the GGUF file is dequantised by transformers and saved under data/models."""
    gguf = pytest.importorskip("gguf")
    models_dir = ROOT / "data" / "models"
    path = Path(models.resolve_llm_path("smollm2", models_dir))
    assert path == models_dir / "smollm2-135m"
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert models.resolve_llm_path("smollm2", models_dir) == str(path)  # reused, not converted
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
    tok = models.load_tokenizer(str(path), need_offsets=True)
    model = models.load_causal_lm(str(path)).eval()
    assert not getattr(model, "is_quantized", False)
    # Q4_1 dequantisation equals gguf's own on an unpermuted tensor (v_proj of layer 0)
    reader = gguf.GGUFReader(str(models.smollm2_gguf()))
    tensor = next(t for t in reader.tensors if t.name == "blk.0.attn_v.weight")
    assert tensor.tensor_type.name == "Q4_1"
    want = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    got = model.model.layers[0].self_attn.v_proj.weight.detach().numpy()
    np.testing.assert_array_equal(got, want.reshape(got.shape))
    scores = TraceScorer(model, tok, 0.6, 8, 64).score(["receive order , check stock , ship goods"])
    assert len(scores[0].events) == 3 and np.isfinite(scores[0].trace)


# --- scripts -----------------------------------------------------------------------------------------


def test_scripts_train_and_evaluate(script, setup, tmp_path):
    out, results = tmp_path / "adapter", tmp_path / "result.csv"
    root = setup["root"]
    done = script(
        "fine_tune_llama3.py", "--llm_path", setup["base"], "--data_path",
        str(root / "training_data.csv"), "--output_dir", str(out), "--max_steps", "4",
        "--batch_size", "4", "--qlora", "off",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "4 steps" in done.stdout and (out / "adapter_model.safetensors").is_file()
    args = ["--llm_path", setup["base"], "--peft_path", str(out), "--train_path"]
    args += [str(root / "training_data.csv"), "--data_path", str(root / "test_data.csv")]
    done = script("eval.py", *args, "--limit", "20", "--result_path", str(results))
    assert done.returncode == 0, done.stderr
    assert "| semad " in done.stdout and "| 3-gram " in done.stdout
    rows = list(csv.DictReader(results.open()))
    assert [(r["method"], r["level"]) for r in rows] == [
        ("semad", "trace"), ("semad", "event"), ("3-gram", "trace"), ("3-gram", "event"),
    ]  # fmt: skip
    assert rows[0]["n"] == "20"
    done = script("eval.py", *args, "--limit", "8", "--result_path", str(results))
    assert done.returncode == 0 and len(list(csv.DictReader(results.open()))) == 8


def test_scripts_bad_input_exit_2_with_one_line(script, setup, tmp_path):
    root = setup["root"]
    bad = {
        "no_trace.csv": "activity,label\na,normal\n",
        "bad_evelabel.csv": 'trace,label,cause,evelabel\n"a , b",anomalous,x,[0 1 0]\n',
        "empty.csv": 'trace,label,cause,evelabel\n"",normal,,[]\n',
    }
    needles = {"no_trace.csv": "trace", "bad_evelabel.csv": "evelabel", "empty.csv": "empty"}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        done = script("eval.py", "--llm_path", setup["base"], "--peft_path", "none",
                      "--data_path", str(tmp_path / name))  # fmt: skip
        assert_user_error(done, needles[name])
    done = script("eval.py", "--llm_path", "/no/such/model", "--data_path",
                  str(root / "test_data.csv"))  # fmt: skip
    assert_user_error(done, "does not exist")
    done = script("eval.py", "--llm_path", setup["base"], "--peft_path", str(tmp_path),
                  "--data_path", str(root / "test_data.csv"))  # fmt: skip
    assert_user_error(done, "adapter")
    gpt2 = tmp_path / "gpt2"
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(vocab_size=400, n_embd=32, n_layer=1, n_head=2)).save_pretrained(
        gpt2
    )
    setup["tok"].save_pretrained(gpt2)
    done = script("fine_tune_llama3.py", "--llm_path", str(gpt2), "--data_path",
                  str(root / "training_data.csv"), "--output_dir", str(tmp_path / "o"))  # fmt: skip
    assert_user_error(done, "q_proj", "c_attn", "--target_modules")
    done = script("fine_tune_llama3.py", "--data_path", str(tmp_path / "missing.csv"))
    assert_user_error(done, "not found")


def test_training_data_keeps_only_normal_traces(tmp_path):
    traces = [Trace(["a", "b"]), Trace(["a", "x"], "anomalous", "c", [0, 1])]
    write_traces(tmp_path / "t.csv", traces, with_raw_cause=False)
    assert ft.training_texts(tmp_path / "t.csv") == ["a , b"]


def test_prune_checkpoints_removes_only_trainer_checkpoints(tmp_path):
    folder = tmp_path / "checkpoints"
    for name in ("checkpoint-50", "checkpoint-100", "checkpoint-best"):
        (folder / name).mkdir(parents=True)
        (folder / name / "trainer_state.json").write_text("{}")
    (folder / "runs").mkdir()
    (folder / "checkpoint-7.txt").write_text("notes")
    removed = ft.prune_checkpoints(folder)
    assert [p.name for p in removed] == ["checkpoint-100", "checkpoint-50"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint-7.txt",
        "checkpoint-best",
        "runs",
    ]
    assert ft.prune_checkpoints(folder) == []
    assert ft.prune_checkpoints(tmp_path / "missing") == []


def test_resume_point_resumes_the_last_or_starts_over(setup, tmp_path):
    folder = tmp_path / "checkpoints"
    for step in (50, 100):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
    resume = config(setup, tmp_path)
    assert ft.resume_point(resume, folder, main_process=True) == str(folder / "checkpoint-100")
    again = replace(resume, resume=False)
    assert ft.resume_point(again, folder, main_process=False) is None
    assert len(list(folder.iterdir())) == 2  # only the main process deletes
    assert ft.resume_point(again, folder, main_process=True) is None
    assert list(folder.iterdir()) == []
    assert ft.resume_point(resume, tmp_path / "none", main_process=True) is None


def test_steps_per_epoch_drops_the_partial_batch():
    assert ft.steps_per_epoch(400, 8, 1) == 50
    assert ft.steps_per_epoch(407, 8, 2) == 25
    with pytest.raises(DataError, match="no full batch of 8 per device on 2 device"):
        ft.steps_per_epoch(15, 8, 2)
