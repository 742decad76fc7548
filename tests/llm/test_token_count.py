"""Token counters, the context window a server reports, cached prompt tokens and their price, and
the fake server's usage (counted like llama.cpp serving SmolLM2)."""

from __future__ import annotations

import pytest

from lmad.errors import ConfigError
from lmad.llm.base import Reply, Usage
from lmad.llm.config import ModelConfig, load_models
from lmad.llm.context import context_window, forget_context_windows
from lmad.llm.cost import CostMeter
from lmad.llm.messages import ChatRequest, GenerationParams, assistant, system, user
from lmad.llm.token_count import HeuristicCounter, ServerCounter, token_counter
from tests.conftest import ROOT
from tests.fake_llm_server import FakeLLMServer

pytest.importorskip("transformers")

CHAT = ChatRequest(
    (
        system("You are an expert in time-series anomaly detection. You answer in JSON."),
        user("Describe the normal pattern of 1 2 3,4 5 6,- 7 8 9 in JSON."),
        assistant("a rising line"),
        user("Window 1:\n1 2 3,4 5 6,7 8 9,1 0 0 0"),
    ),
    GenerationParams(max_tokens=64),
)


def local(server: FakeLLMServer, **extra) -> ModelConfig:
    return ModelConfig(
        "local", "openai-compatible", "fake", f"{server.url}/v1", key="none", **extra
    )


def body(request: ChatRequest) -> dict:
    return {
        "model": "fake",
        "messages": [{"role": m.role, "content": m.text} for m in request.messages],
    }


def test_server_counter_counts_what_the_server_reports():
    with FakeLLMServer() as server:
        counter = token_counter(local(server))
        assert isinstance(counter, ServerCounter) and counter.exact
        reported = server.llamacpp.usage(body(CHAT), "")["prompt_tokens"]
        assert counter.prompt_tokens(CHAT) == reported
        paths = {r["path"] for r in server.llamacpp.requests}
        assert paths == {"/tokenize", "/apply-template"} and server.count == 0


def test_a_server_without_tokenize_gets_the_calibrated_heuristic():
    with FakeLLMServer(kind="plain") as server:
        counter = token_counter(local(server))
        reported = server.llamacpp.usage(body(CHAT), "")["prompt_tokens"]
    assert isinstance(counter, HeuristicCounter) and counter.style == "digits"
    assert "the server's /tokenize did not answer: HTTP 404" in counter.source
    assert abs(counter.prompt_tokens(CHAT) - reported) <= 0.05 * reported
    openai = token_counter(ModelConfig("GPT-4o", "openai", "gpt-4o"))
    assert isinstance(openai, HeuristicCounter) and openai.style == "gpt4"


@pytest.mark.parametrize(
    ("kind", "expected", "source"),
    [
        ("llamacpp", 4096, "the server's /props n_ctx"),  # the slot, not n_ctx_train
        ("vllm", 4096, "the server's /models max_model_len"),
        ("plain", None, "no context_window in models.yaml and the server reports none"),
    ],
)
def test_context_window_from_the_server(kind, expected, source):
    with FakeLLMServer(kind=kind, context_window=4096) as server:
        server.llamacpp.n_ctx_train = 8192
        found = context_window(local(server))
        assert (found.tokens, found.source) == (expected, source)
        configured = context_window(local(server, context_window=1000))
        assert (configured.tokens, configured.source) == (1000, "models.yaml context_window")
        priced = context_window(local(server, price_input=1.0))
        assert priced.tokens is None  # a hosted API is not asked
        config = local(server)
    forget_context_windows()  # found once per process: ask the stopped server again
    stopped = context_window(config)
    assert stopped.tokens is None and "/models" in stopped.source


def test_llamacpp_without_props_falls_back_to_n_ctx_train(monkeypatch):
    with FakeLLMServer(context_window=4096) as server:
        server.llamacpp.n_ctx_train = 8192
        monkeypatch.setattr(server.llamacpp, "kind", "llamacpp-old")
        server.llamacpp._models = lambda: {"data": [{"id": "fake", "meta": {"n_ctx_train": 8192}}]}
        found = context_window(local(server))
    assert (found.tokens, found.source) == (8192, "the server's /models meta.n_ctx_train")


def test_models_yaml_context_windows_and_cached_prices():
    models = load_models(ROOT / "BigModel" / "models.yaml")
    assert models["GPT-4o"].context_window == 128000 == models["GPT-4o-mini"].context_window
    assert models["GPT-4o"].price_cached_input == 1.25  # half of 2.50
    assert models["GPT-4o-mini"].price_cached_input == 0.075  # half of 0.15
    assert models["llamacpp-local"].context_window is None  # asked of the server


def test_cached_input_is_validated(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(
        "m:\n  provider: openai\n  price_per_million: {input: 1, output: 2, cached_input: '0.5'}\n"
    )
    with pytest.raises(ConfigError, match=r"price_per_million\.cached_input: expected a number"):
        load_models(path)
    path.write_text("m:\n  provider: openai\n  context_window: 0\n")
    with pytest.raises(ConfigError, match="context_window: expected a whole number > 0"):
        load_models(path)


def test_cached_tokens_cost_the_cached_price_and_show_in_the_summary():
    config = ModelConfig(
        "GPT-4o", "openai", "gpt-4o", price_input=2.5, price_output=10.0, price_cached_input=1.25
    )
    assert config.cost(2000, 100, 1024) == pytest.approx((976 * 2.5 + 1024 * 1.25 + 1000) / 1e6)
    assert ModelConfig("x", "openai", "x", price_input=2.0).cost(100, 0, 50) == pytest.approx(
        200 / 1e6
    )  # no cached price: the input price
    meter = CostMeter()
    meter.add(Reply("a", Usage(2000, 100, 1024), cost_usd=0.5))
    meter.add(Reply("a", Usage(2000, 100, 1024), cost_usd=0.5, cached=True))  # lmad's cache
    assert meter.cached_tokens == 1024
    assert meter.summary() == (
        "1 requests sent (1 answered from the cache, 0 retries), 2100 tokens "
        "(1024 prompt tokens from the provider's prompt cache), $0.5000"
    )


def test_fake_server_usage_is_a_real_count_and_explicit_usage_wins():
    from lmad.llm.client import LLMClient
    from lmad.llm.openai_backend import OpenAIBackend

    with FakeLLMServer() as server:
        config = local(server)
        client = LLMClient(config, OpenAIBackend("fake", base_url=config.base_url))
        long_history = (system("s " * 1500), user("first"))
        first = client.complete(ChatRequest(long_history))
        assert (
            first.usage.prompt_tokens
            == server.llamacpp.usage(body(ChatRequest(long_history)), "")["prompt_tokens"]
        )
        assert first.usage.completion_tokens == len(server.llamacpp.ids(first.text))
        assert first.usage.cached_tokens == 0
        again = client.complete(ChatRequest((*long_history, assistant("ok"), user("more"))))
        assert again.usage.cached_tokens >= 1024 and again.usage.cached_tokens % 128 == 0
        assert again.usage.cached_tokens <= first.usage.prompt_tokens
        server.push({"answer": "x", "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
        assert client.complete(ChatRequest((user("explicit"),))).usage == Usage(7, 3)
