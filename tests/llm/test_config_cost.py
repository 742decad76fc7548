"""models.yaml, keys, image-token rules, the cost meter, retry delays and the rate limiter."""

from __future__ import annotations

import random

import pytest

from lmad.errors import ConfigError
from lmad.llm.base import Reply, Usage
from lmad.llm.config import (
    ImageTokenRule,
    ModelConfig,
    load_api_key,
    load_models,
    resolve_model,
    scrub,
)
from lmad.llm.cost import CostMeter, estimate_prompt_tokens, estimate_run, image_tokens
from lmad.llm.messages import ChatRequest, ImagePart, user
from lmad.llm.reliability import RateLimiter, RetryPolicy
from tests.conftest import ROOT
from tests.llm.test_client import png

MODELS = ROOT / "BigModel" / "models.yaml"


def test_bundled_models_yaml():
    models = load_models(MODELS)
    assert {"GPT-4o", "GPT-4o-mini", "GLM-4v-plus", "vllm-local"} <= set(models)
    assert "offline" not in models  # lmad's own analyzer, not a model an LLM client can reach
    gpt = models["GPT-4o"]
    assert (gpt.provider, gpt.structured, gpt.images) == ("openai", "json_schema", True)
    assert gpt.cost(1_000_000, 1_000_000) == pytest.approx(12.5)
    assert models["GLM-4v-plus"].provider == "zhipuai"
    assert models["vllm-local"].key == "none"


def test_resolve_model_names():
    assert resolve_model("hf:/models/llava", MODELS).model == "/models/llava"
    with pytest.raises(ConfigError, match="--LLM offline is lmad's nearest-neighbour time-series"):
        resolve_model("offline", MODELS)
    with pytest.raises(ConfigError, match=r"unknown --LLM 'gpt-4o' \(did you mean 'GPT-4o'\?\)"):
        resolve_model("gpt-4o", MODELS)


def test_keys_from_file_env_override_and_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ZHIPUAI_API_KEY", raising=False)
    keys = tmp_path / "api_keys.yaml"
    keys.write_text("openai:\n  api_key: 'from-file'\nchatglm:\n  api_key: 'Your API Keys'\n")
    gpt = ModelConfig("GPT-4o", "openai", "gpt-4o")
    assert load_api_key(gpt, keys) == "from-file"
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    assert load_api_key(gpt, keys) == "from-env"
    glm = ModelConfig("GLM-4v-plus", "zhipuai", "glm-4v-plus")
    with pytest.raises(ConfigError) as info:
        load_api_key(glm, keys)  # the example's placeholder does not count as a key
    assert "ZHIPUAI_API_KEY" in str(info.value) and str(keys) in str(info.value)
    assert load_api_key(ModelConfig("local", "openai-compatible", "m", key="none"), keys) == ""


def test_bad_models_yaml(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("X:\n  provider: anthropic\n")
    with pytest.raises(ConfigError, match=r"provider: expected one of .* \(got 'anthropic'\)"):
        load_models(path)
    with pytest.raises(ConfigError, match="not found"):
        load_models(tmp_path / "nope.yaml")


def test_openai_image_token_rule():
    rule = ImageTokenRule()  # GPT-4o: 85 + 170 per 512 px tile
    assert image_tokens(2000, 400, rule) == 85 + 4 * 170  # 4 x 1 tiles
    assert image_tokens(1024, 1024, rule) == 85 + 4 * 170  # scaled to 768 x 768
    assert image_tokens(4096, 8192, rule) == 85 + 6 * 170  # 1024x2048 -> 768x1536: 2 x 3
    assert image_tokens(2000, 400, rule, detail="low") == 85
    assert image_tokens(2000, 400, ImageTokenRule(base=2833, tile=5667)) == 2833 + 4 * 5667
    assert image_tokens(2000, 400, ImageTokenRule(mode="fixed", base=1600)) == 1600


def test_estimate_run_counts_text_images_and_cost():
    config = ModelConfig("GPT-4o", "openai", "gpt-4o", price_input=2.5, price_output=10.0)
    request = ChatRequest((user("1 2 3,4 5", [ImagePart(png(size=(2000, 400)))]),))
    prompt = estimate_prompt_tokens(request, config)
    # reply priming, message overhead (OpenAI's 3 and 3), o200k pieces "1"," ","2"," ","3",",",
    # "4"," ","5", one image
    assert prompt == 3 + 3 + 9 + 765
    estimate = estimate_run([request, request], config)
    assert estimate.requests == 2 and estimate.prompt_tokens == 2 * prompt
    assert estimate.completion_tokens == 2 * 600
    assert estimate.cost_usd == pytest.approx((2 * prompt * 2.5 + 1200 * 10) / 1e6)


def test_cost_meter_counts_cached_replies_as_free():
    meter = CostMeter()
    meter.add(Reply("a", Usage(100, 10), cost_usd=0.5, attempts=3))
    meter.add(Reply("a", Usage(100, 10), cost_usd=0.5, cached=True))
    assert (meter.requests, meter.cache_hits, meter.retries) == (1, 1, 2)
    assert meter.cost_usd == 0.5 and meter.prompt_tokens == 100
    assert meter.summary() == (
        "1 requests sent (1 answered from the cache, 2 retries), 110 tokens, $0.5000"
    )


def test_retry_delays():
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    rng = random.Random(0)
    for attempt, cap in [(0, 1.0), (1, 2.0), (3, 8.0), (6, 10.0)]:
        delays = [policy.delay(attempt, rng=rng) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= cap
        assert max(delays) > 0.8 * cap  # full jitter spreads over the whole range
    assert 7.0 <= policy.delay(0, retry_after=7.0, rng=rng) <= 8.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_limiter_requests_per_minute():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=2, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now = 10.0
    limiter.acquire()
    limiter.acquire()  # must wait until the first request leaves the window
    assert clock.now == pytest.approx(60.0)


def test_rate_limiter_tokens_per_minute_uses_settled_counts():
    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=1000, clock=clock, sleep=clock.sleep)
    first = limiter.acquire(600)
    limiter.settle(first, 300)  # the provider counted fewer tokens than estimated
    clock.now = 5.0
    limiter.acquire(600)  # 300 + 600 fits: no wait
    assert clock.now == 5.0
    limiter.acquire(200)  # 900 + 200 > 1000; without the first (300) it fits: wait till t=60
    assert clock.now == pytest.approx(60.0)
    limiter.acquire(5000)  # larger than the budget: goes alone once the window is empty
    assert clock.now == pytest.approx(120.0)  # the request of t=60 leaves at t=120


def test_scrub_removes_keys_and_their_ends():
    key = "sk-" + "abcdefgh" * 4
    text = f"Incorrect API key provided: {key[:8]}****{key[-8:]} and {key}"
    cleaned = scrub(text, [key])
    assert key not in cleaned and key[:8] not in cleaned and key[-8:] not in cleaned
