"""Schema-constrained answers: a random tiny model writes valid answers only when constrained.

The model is a two-layer Llama with random weights over a byte-level vocabulary (every byte one
token, as in GPT-2's tokenizer without merges), so left to itself it writes noise; held to the
answer schema by :mod:`lmad.llm.constrained`, every reply must be a valid answer.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("llguidance")

from lmad.anomaly_types import ANOMALY_TYPES
from lmad.llm.client import LLMClient
from lmad.llm.config import ModelConfig
from lmad.llm.hf_backend import HFBackend, clear_model_cache
from lmad.llm.messages import ChatRequest, GenerationParams, system, user
from lmad.llm.openai_backend import OpenAIBackend, portable_schema
from lmad.series.answer_schema import answer_schema, reference_schema
from lmad.series.answers import parse_answer
from tests.fake_llm_server import FakeLLMServer

WINDOW = 30
TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def _byte_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"</s>": 0, "<pad>": 1}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab, [], unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>")
    fast.chat_template = TEMPLATE
    return fast


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random byte-level causal LM saved to disk, and its tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _byte_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
        eos_token_id=0, pad_token_id=1, bos_token_id=0,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("byte-lm")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    yield folder
    clear_model_cache()


def check_answer(text: str, min_items: int = 0) -> dict:
    """``text`` is an answer the schema allows, key by key, and parse_answer takes it as it is."""
    data = json.loads(text)
    assert list(data) == ["anomalies", "description"]
    assert min_items <= len(data["anomalies"])
    for item in data["anomalies"]:
        assert list(item) == ["start", "end", "confidence", "type", "explanation"]
        assert 0 <= item["start"] <= WINDOW - 1 and 1 <= item["end"] <= WINDOW
        assert item["confidence"] in (1, 2, 3, 4) and item["type"] in ANOMALY_TYPES
        assert isinstance(item["explanation"], str)
    assert isinstance(data["description"], str)
    parse_answer(data, WINDOW, on_out_of_window="reject")
    return data


def _request(schema, temperature=0.0, max_tokens=2000) -> ChatRequest:
    params = GenerationParams(temperature=temperature, top_p=0.3, max_tokens=max_tokens)
    return ChatRequest((system("find anomalies"), user("1 2 3 50 5")), params, "analysis", schema)


@pytest.mark.parametrize("temperature", [0.0, 0.7])
@pytest.mark.parametrize("max_tokens", [200, 400])
def test_random_model_writes_valid_answers_within_the_token_limit(tiny, temperature, max_tokens):
    """Each byte is a token here, so a reply that fits the limit is the tightest case."""
    schema = answer_schema(WINDOW)
    schema["properties"]["anomalies"]["minItems"] = 1  # make it write an anomaly, not just []
    backend = HFBackend(str(tiny))
    reply = backend.complete(_request(schema, temperature, max_tokens))
    data = check_answer(reply.text, min_items=1)
    assert not reply.truncated and reply.usage.completion_tokens <= max_tokens
    assert reply.usage.completion_tokens == len(reply.text.encode()) + 1  # bytes and the end token
    assert len(json.dumps(data, separators=(", ", ": "))) == len(reply.text)  # compact form


def test_unconstrained_model_writes_noise_and_is_marked_truncated(tiny):
    backend = HFBackend(str(tiny), structured="none")
    reply = backend.complete(_request(answer_schema(WINDOW), max_tokens=40))
    with pytest.raises(ValueError):
        json.loads(reply.text)
    assert reply.truncated and reply.usage.completion_tokens == 40


def test_reference_schema_and_json_object_mode(tiny):
    reply = HFBackend(str(tiny)).complete(_request(reference_schema(), max_tokens=120))
    data = json.loads(reply.text)
    assert list(data) == ["normal_pattern"] and 1 <= len(data["normal_pattern"]) <= 120
    assert not reply.truncated
    # json_object holds the reply to some JSON object; unbounded, a random model never closes it
    any_object = HFBackend(str(tiny), structured="json_object")
    reply = any_object.complete(_request(None, max_tokens=30))
    assert reply.text.startswith('{"') and reply.truncated


def test_a_request_without_schema_or_json_is_not_constrained(tiny):
    backend = HFBackend(str(tiny))
    reply = backend.complete(_request(None, max_tokens=30))
    with pytest.raises(ValueError):
        json.loads(reply.text)


def test_portable_schema_drops_bounds_but_not_property_names():
    schema = {
        "type": "object",
        "properties": {"minimum": {"type": "integer", "minimum": 0, "maximum": 9}},
        "required": ["minimum"],
    }
    assert portable_schema(schema) == {
        "type": "object",
        "properties": {"minimum": {"type": "integer"}},
        "required": ["minimum"],
    }
    sent = portable_schema(answer_schema(WINDOW))
    start = sent["properties"]["anomalies"]["items"]["properties"]["start"]
    assert start == {"type": "integer"}


@pytest.mark.parametrize(
    "structured, expected",
    [("json_schema", "json_schema"), ("json_object", "json_object"), ("none", None)],
)
def test_response_format_sent_to_the_server(structured, expected):
    schema = answer_schema(WINDOW)
    with FakeLLMServer() as server:
        backend = OpenAIBackend("m", base_url=f"{server.url}/v1", structured=structured)
        config = ModelConfig(name="m", provider="openai-compatible", model="m",
                             base_url=f"{server.url}/v1", structured=structured)  # fmt: skip
        client = LLMClient(config, backend)
        client.complete(_request(schema))
        body = server.requests[0]["body"]
    form = body.get("response_format")
    assert (form or {}).get("type") == expected
    if expected == "json_schema":
        sent = form["json_schema"]
        assert sent["strict"] is True and sent["name"] == "analysis_answer"
        assert sent["schema"] == portable_schema(schema)


def test_schema_is_part_of_the_cache_key_only_when_sent():
    request = _request(answer_schema(WINDOW))
    bare = _request(None)

    def key(structured: str) -> str:
        config = ModelConfig(name="m", provider="openai", model="m", structured=structured)
        client = LLMClient(config, OpenAIBackend("m", "sk-test", structured=structured))
        return client.key_for(client.sent_form(request))

    bare_config = ModelConfig(name="m", provider="openai", model="m")
    bare_key = LLMClient(bare_config, OpenAIBackend("m", "sk-test")).key_for(bare)
    assert key("none") == key("json_object") == bare_key  # keys from before schemas existed
    assert key("json_schema") != bare_key
