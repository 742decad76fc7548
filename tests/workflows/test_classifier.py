"""Workflow classifiers: fine-tuning (tiny BERT, packaged MiniLM, LoRA), baselines, zero-shot,
in-context against the fake OpenAI server, and train_classifier.py as a user runs it."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmad.errors import ConfigError
from lmad.workflows.baselines import run_baselines
from lmad.workflows.classifier import (
    ClassifierArgs,
    load_workflow_data,
    lora_targets,
    train_classifier,
)
from lmad.workflows.in_context import PromptSettings, parse_category, run_in_context
from lmad.workflows.zero_shot import SentenceEncoder, nli_pipeline, run_embedding, run_nli
from tests.conftest import assert_user_error
from tests.fake_llm_server import FakeLLMServer
from tests.workflows.saved_predictions import assert_saved_predictions

DELAYS = ["wms_delay", "queue_delay", "runtime", "post_script_delay", "stage_in_delay"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SEED = 42


def settings(model: str, out: Path, **changes) -> ClassifierArgs:
    """ClassifierArgs with the paper's values (3 epochs, lr 5e-5, batch 16), ``changes`` applied."""
    values = {"epochs": 3.0, "lr": 5e-5, "batch_size": 16, "max_length": None, "seed": SEED,
              "lora": False, "max_steps": -1}  # fmt: skip
    return ClassifierArgs(model, out, **(values | changes))


def load(root: Path, name: str, train_limit: int | None = None):
    return load_workflow_data(root, name, train_limit, SEED)


def job(rng: random.Random, anomalous: bool) -> dict:
    """A job whose runtime alone separates the classes (5..60 s normal, 600..999 s anomalous)."""
    values = {
        "wms_delay": rng.randint(1, 9),
        "queue_delay": rng.randint(5, 60),
        "runtime": rng.randint(600, 999) if anomalous else rng.randint(5, 60),
        "post_script_delay": rng.randint(1, 9),
        "stage_in_delay": rng.randint(5, 30),
        "stage_out_delay": rng.randint(1, 9),
    }
    text = " ".join(f"{k} is {values[k]}" for k in ("wms_delay", "queue_delay", "runtime"))
    return {"text": text, "label": int(anomalous), "run": "r0", "job": "j", **values}


def write_dataset(root: Path, name: str, sizes=(200, 40, 60), seed: int = 0) -> Path:
    rng = random.Random(seed)
    folder = root / name
    folder.mkdir(parents=True)
    for split, n in zip(("train", "validation", "test"), sizes):
        rows = [job(rng, i % 2 == 1) for i in range(n)]
        frame = pd.DataFrame(rows)
        frame.insert(4, "anomaly_type", np.where(frame["label"] == 1, "cpu_2", "None"))
        frame.to_csv(folder / f"{split}.csv", index=False)
    return root


def tiny_bert(folder: Path, texts: list[str], num_labels: int = 2, id2label=None) -> Path:
    """A 2-layer BERT (hidden 32) with a word-level tokenizer (digits split) trained on ``texts``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)]
    )
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=64,
    )  # fmt: skip
    config = BertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
        num_labels=num_labels, pad_token_id=0,
    )  # fmt: skip
    if id2label:  # transformers 5 no longer derives label2id from id2label
        config.id2label = id2label
        config.label2id = {name: i for i, name in id2label.items()}
    fast.save_pretrained(folder)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models train fastest on one thread, and far more steadily on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"), "toy")


@pytest.fixture(scope="module")
def data(data_dir):
    return load(data_dir, "toy")


@pytest.fixture(scope="module")
def bert(tmp_path_factory, data) -> Path:
    texts = [*data.texts("train"), "this job is normal.", "this job is abnormal."]
    return tiny_bert(tmp_path_factory.mktemp("bert"), texts)


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder("minilm")


# -- fine-tuning ----------------------------------------------------------------------------------
def test_tiny_bert_learns_then_resumes_from_checkpoint(data, bert, tmp_path):
    out = tmp_path / "run"
    args = settings(str(bert), out, epochs=4, lr=5e-3)
    first = train_classifier(data, args)
    steps_per_epoch = math.ceil(len(data.train) / 16)
    assert first["f1"] >= 0.9, first
    assert first["resumed_from"] is None and first["global_step"] == 4 * steps_per_epoch
    assert {"accuracy", "precision", "recall", "train_time_s"} <= set(first)
    assert len(first["predictions"]) == len(data.test) and first["is_main_process"]
    assert first["eval_time_s"] > 0 and first["train_time_s"] > 0
    scores = first["scores"]  # softmax P(anomalous), aligned with the test rows
    assert scores.shape == (len(data.test),) and np.all((scores >= 0) & (scores <= 1))
    assert first["predictions"].tolist() == (scores > 0.5).astype(int).tolist()
    assert (out / f"checkpoint-{steps_per_epoch}").is_dir()  # one checkpoint per epoch
    assert (out / "config.json").exists()  # the final model, reloadable
    # one more epoch: continues from the last checkpoint instead of starting again
    more = train_classifier(data, settings(str(bert), out, epochs=5, lr=5e-3))
    assert Path(more["resumed_from"]).name == f"checkpoint-{4 * steps_per_epoch}"
    assert more["global_step"] == 5 * steps_per_epoch
    assert more["f1"] >= 0.9


def test_lora_trains_adapters_and_finds_llama_projections(data, bert, tmp_path):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    config = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, num_labels=2,
    )  # fmt: skip
    llama = LlamaForSequenceClassification(config)
    assert lora_targets(llama) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    args = settings(str(bert), tmp_path / "lora", lora=True, max_steps=3, batch_size=8)
    result = train_classifier(data, args)
    assert result["method"] == "fine-tune (LoRA)" and result["global_step"] == 3
    assert all(0.0 <= result[k] <= 1.0 for k in ("accuracy", "f1", "precision", "recall"))
    assert (tmp_path / "lora" / "adapter_config.json").exists()


def test_packaged_minilm_on_a_small_subset(data_dir, tmp_path):
    small = load(data_dir, "toy", train_limit=64)
    assert len(small.train) == 64
    args = settings("minilm", tmp_path / "minilm", max_steps=4)
    result = train_classifier(small, args)
    assert result["model"] == "minilm" and result["max_length"] == 512
    assert all(0.0 <= result[k] <= 1.0 for k in ("accuracy", "f1", "precision", "recall"))


def test_unknown_model_is_one_config_error_and_fast(data, tmp_path):
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="not available offline"):
        train_classifier(data, settings("no-such-org/no-such-model-xyz", tmp_path / "x"))
    assert time.perf_counter() - start < 10


# -- baselines and zero-shot ----------------------------------------------------------------------
def test_feature_baselines_separate_the_classes(data):
    results = run_baselines(data, None, SEED)
    assert [r["model"] for r in results] == ["logistic regression", "gradient-boosted trees"]
    for result in results:
        assert result["f1"] >= 0.95, result
        assert "runtime" in result["features"] and "text" not in result["features"]
        scores = result["scores"]  # predict_proba of the anomalous class
        assert scores.shape == (len(data.test),) and np.all((scores >= 0) & (scores <= 1))
        assert result["predictions"].tolist() == (scores > 0.5).astype(int).tolist()
        assert result["eval_time_s"] > 0 and result["train_time_s"] > 0


def test_embedding_zero_shot_predicts_every_row(data, encoder):
    result = run_embedding(data, "minilm", None, SEED, encoder=encoder)
    n = len(data.test)
    assert result["n_test"] == n and len(result["predictions"]) == n
    assert set(result["predictions"].tolist()) <= {0, 1}
    assert result["similarity"].shape == (n, 2)
    margin = result["similarity"][:, 1] - result["similarity"][:, 0]
    assert np.allclose(result["scores"], margin)  # higher = closer to the abnormal description
    assert result["predictions"].tolist() == (margin > 0).astype(int).tolist()
    assert math.isnan(result["train_time_s"]) and result["eval_time_s"] > 0
    assert np.all(np.abs(result["similarity"]) <= 1.0 + 1e-5)
    unit = encoder.encode(["runtime is 5", "runtime is 900"])
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)


def test_nli_maps_abnormal_first_to_anomalous(data):
    calls = []

    def stub(texts, candidate_labels, hypothesis_template, batch_size):
        calls.append((candidate_labels, hypothesis_template))
        ranked = []
        for text in texts:  # "abnormal" ranked first exactly when runtime has 3 digits
            runtime = int(text.split("runtime is ")[1])
            labels = ["abnormal", "normal"] if runtime >= 100 else ["normal", "abnormal"]
            ranked.append({"sequence": text, "labels": labels, "scores": [0.6, 0.4]})
        return ranked

    result = run_nli(data, "stub", limit=20, seed=SEED, pipe=stub)
    assert calls[0] == (["normal", "abnormal"], "This job is {}.")
    assert result["n_test"] == 20 and result["f1"] == 1.0 and result["accuracy"] == 1.0
    truth = data.binary_labels("test")[result["positions"]]
    assert result["predictions"].tolist() == truth.tolist()
    # the score of the "abnormal" hypothesis, wherever the pipeline ranked it
    assert result["scores"].tolist() == np.where(truth == 1, 0.6, 0.4).tolist()


def test_nli_pipeline_with_a_tiny_nli_model(data, tmp_path):
    id2label = {0: "entailment", 1: "neutral", 2: "contradiction"}
    nli = tiny_bert(
        tmp_path / "nli", [*data.texts("train")[:50], "this job is abnormal."], 3, id2label
    )
    result = run_nli(data, str(nli), limit=12, seed=SEED, pipe=nli_pipeline(str(nli)))
    assert len(result["predictions"]) == 12 and set(result["predictions"]) <= {0, 1}


# -- in-context through the fake OpenAI server -------------------------------------------------------
HAND = [  # (runtime, label, scripted reply) -> TN TN TP TP FN FP failure(FN) TN
    (10, 0, "Normal"),
    (12, 0, "normal."),
    (900, 1, "Abnormal"),
    (950, 1, "ABNORMAL"),
    (800, 1, "Normal"),
    (15, 0, "Abnormal"),
    (700, 1, "I am not sure."),
    (20, 0, "The job looks abnormal at first, but... Category: Normal"),
]


def write_hand_dataset(root: Path) -> Path:
    rng = random.Random(1)
    folder = root / "hand"
    folder.mkdir(parents=True)
    test = pd.DataFrame([{**job(rng, bool(y)), "runtime": rt} for rt, y, _ in HAND])
    test["text"] = [f"wms_delay is 5 runtime is {rt}" for rt, _, _ in HAND]
    train = pd.DataFrame([job(rng, i % 2 == 1) for i in range(20)])
    for split, frame in (("train", train), ("validation", train[:4]), ("test", test)):
        frame.to_csv(folder / f"{split}.csv", index=False)
    return root


def scripted_answer(body: dict) -> str:
    job_text = body["messages"][-1]["content"]
    runtime = int(job_text.split("runtime is ")[1].split()[0])
    return {rt: reply for rt, _, reply in HAND}[runtime]


def fake_models_yaml(path: Path, server: FakeLLMServer) -> Path:
    path.write_text(
        f"fake:\n  provider: openai-compatible\n  model: fake-model\n"
        f"  base_url: {server.url}/v1\n  key: none\n"
    )
    return path


def test_parse_category():
    assert parse_category("Abnormal") == 1 and parse_category(" normal ") == 0
    assert parse_category("abnormal, not normal") == 1 and parse_category("NORMAL") == 0
    assert parse_category("Step 1: looks normal... Category: Abnormal") == 1
    assert parse_category("no idea") is None and parse_category("") is None


def test_in_context_exact_metrics_and_cached_rerun(tmp_path):
    from lmad.llm.client import open_client

    hand = load(write_hand_dataset(tmp_path), "hand")
    with FakeLLMServer({"answer_fn": scripted_answer}) as server:
        models = fake_models_yaml(tmp_path / "models.yaml", server)
        client = open_client("fake", models, tmp_path / "keys.yaml", tmp_path / "cache")
        prompt = PromptSettings(k=3, seed=0, chain_of_thought=False)
        result = run_in_context(hand, client, prompt, limit=None)
        assert server.count == len(HAND) and result["requests_sent"] == len(HAND)
        # TP=2 FP=1 FN=2 (one of them the unparseable reply) TN=3
        assert result["accuracy"] == pytest.approx(5 / 8)
        assert result["precision"] == pytest.approx(2 / 3)
        assert result["recall"] == pytest.approx(1 / 2)
        assert result["f1"] == pytest.approx(4 / 7)
        assert result["failures"] == 1 and result["failed"][0][0] == 6
        assert result["method"] == "in-context (3-shot)"
        assert result["scores"] is None and result["eval_time_s"] > 0  # a category, no score
        assert result["predictions"][6] == 0  # the failure still counts as Normal
        system_prompt = server.requests[0]["body"]["messages"][0]["content"]
        assert "Normal or Abnormal" in system_prompt and "±" in system_prompt
        assert system_prompt.count("Job: ") == 3 and "Category: Abnormal" in system_prompt
        again = run_in_context(hand, client, prompt, limit=None)
        assert server.count == len(HAND) and again["requests_sent"] == 0  # all from the cache
        assert again["f1"] == result["f1"] and again["failures"] == 1


# -- the script -------------------------------------------------------------------------------------
def test_script_prints_table_with_baselines_and_appends_results(
    script, data_dir, bert, tmp_path, monkeypatch
):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    results = data_dir / "results" / "classifier" / "toy.csv"
    results.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"timestamp": "earlier", "method": "old", "model": "x", "f1": 0.5}]).to_csv(
        results, index=False
    )
    with FakeLLMServer({"answer": "Abnormal"}) as server:
        models = fake_models_yaml(tmp_path / "models.yaml", server)
        run = script(
            "train_classifier.py", "--dataset", "toy", "--data_dir", str(data_dir),
            "--model", str(bert), "--epochs", "1", "--lr", "5e-3",
            "--output_dir", str(tmp_path / "out"), "--in_context_llm", "fake",
            "--llm_models", str(models), "--keys", str(tmp_path / "keys.yaml"), "--limit", "10",
        )  # fmt: skip
        assert server.count == 10
    assert run.returncode == 0, run.stderr[-3000:]
    for row in (
        "fine-tune",
        "logistic regression",
        "gradient-boosted trees",
        "zero-shot embedding",
    ):
        assert row in run.stdout, run.stdout
    header = next(line for line in run.stdout.splitlines() if line.startswith("| method"))
    assert "train time (s)" in header and "F1" in header and "recall" in header
    assert "eval time (s)" in header and "ROC-AUC" in header and header.endswith(" AP |")
    assert "in-context (3-shot)" in run.stdout
    table = pd.read_csv(results)
    assert len(table) == 1 + 5 and table["timestamp"].iloc[0] == "earlier"
    assert table["method"].tolist()[1:] == [
        "fine-tune", "baseline", "baseline", "zero-shot embedding", "in-context (3-shot)",
    ]  # fmt: skip
    assert table["timestamp"].iloc[1:].nunique() == 1 and table["dataset"].iloc[-1] == "toy"
    new = table.iloc[1:]
    assert (new["eval_time_s"] > 0).all() and new["train_time_s"].iloc[:3].gt(0).all()
    saved = assert_saved_predictions(new, load(data_dir, "toy"))
    assert sorted(Path(p).name for p in new["predictions_file"]) == sorted(
        p.name for p in (data_dir / "results" / "classifier" / "toy").iterdir()
    )  # one file per row, no temporary left
    in_context = saved[f"in-context (3-shot) / {new['model'].iloc[-1]}"]
    assert len(in_context) == 10 and in_context["prediction"].eq(1).all()  # answered Abnormal
    assert in_context["score"].isna().all() and in_context["failure"].isna().all()
    assert math.isnan(new["roc_auc"].iloc[-1]) and new["roc_auc"].iloc[:4].notna().all()


def test_script_missing_dataset_names_the_command(script, tmp_path):
    run = script("train_classifier.py", "--dataset", "nothing_here", "--data_dir", str(tmp_path))
    assert_user_error(run, "data_processing/flowbench.py", "nothing_here")


def test_script_unknown_model_fails_in_one_line_fast(script, data_dir, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    run = script(
        "train_classifier.py", "--dataset", "toy", "--data_dir", str(data_dir),
        "--model", "no-such-org/no-such-model-xyz",
    )  # fmt: skip
    assert_user_error(run, "no-such-org/no-such-model-xyz", "not available offline")
    assert time.perf_counter() - start < 30
