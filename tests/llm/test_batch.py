"""The Batch API's provider side (lmad/llm/batch.py) with the real openai and zhipuai clients against
the fake server, and the batch session LLMClient consults (lmad/llm/batch_session.py)."""

from __future__ import annotations

import json

import pytest

from lmad.errors import ConfigError
from lmad.llm.base import Reply, Usage
from lmad.llm.batch import (
    BatchAPI,
    BatchError,
    ItemResult,
    batch_body,
    batch_line,
    batch_url,
    check_batch_model,
    chunk_lines,
    item_result,
    parse_results,
)
from lmad.llm.batch_session import MAX_TRIES, BatchItemFailed, BatchSession, Deferred
from lmad.llm.cache import ResponseCache
from lmad.llm.client import LLMClient
from lmad.llm.config import ModelConfig, _model_from_entry, resolve_model
from lmad.llm.messages import ChatRequest, ImagePart, system, user
from lmad.llm.openai_backend import OpenAIBackend
from lmad.llm.reliability import RetryPolicy
from lmad.llm.zhipu_backend import ZhipuBackend
from tests.fake_llm_server import FakeLLMServer
from tests.llm.test_client import KEY, ZHIPU_KEY, png

SCHEMA = {
    "type": "object",
    "properties": {"anomalies": {"type": "array", "items": {"type": "string"}}},
    "required": ["anomalies"],
    "additionalProperties": False,
}
PREFIX = {"openai": "/v1/", "azure": "/openai/", "zhipuai": "/api/paas/v4/"}


@pytest.fixture
def server():
    with FakeLLMServer() as fake:
        yield fake


def make_client(server, provider: str, tmp_path=None) -> LLMClient:
    if provider == "zhipuai":
        backend = ZhipuBackend("glm-fake", ZHIPU_KEY, f"{server.url}/api/paas/v4")
    elif provider == "azure":
        backend = OpenAIBackend(
            "dep", KEY, azure_endpoint=server.url, api_version="2024-10-21",
            structured="json_schema",
        )  # fmt: skip
    else:
        backend = OpenAIBackend(
            "gpt-fake", KEY, base_url=f"{server.url}/v1", structured="json_schema"
        )
    config = ModelConfig(
        name="fake", provider=provider, model=backend.model, structured="json_schema",
        price_input=2.5, price_output=10.0,
    )  # fmt: skip
    cache = ResponseCache(tmp_path / "cache") if tmp_path else None
    retry = RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.01)
    return LLMClient(config, backend, cache, retry=retry, sleep=lambda s: None)


def request(text: str = "Find anomalies.") -> ChatRequest:
    messages = (system("You are an analyst."), user(text, [ImagePart(png())]))
    return ChatRequest(messages, task="analysis", schema=SCHEMA)


@pytest.mark.parametrize("provider", ["openai", "azure", "zhipuai"])
def test_a_batch_line_sends_what_a_live_call_sends(server, provider):
    client = make_client(server, provider)
    client.complete(request())
    live = {k: v for k, v in server.requests[-1]["body"].items() if v is not None}
    sent = client.sent_form(request())  # (zhipuai's SDK adds null fields, which mean nothing)
    assert batch_body(client.config, sent) == live
    line = json.loads(batch_line(client.key_for(sent), batch_url(client.config), live))
    assert line == {
        "custom_id": client.key_for(sent), "method": "POST",
        "url": {"openai": "/v1/chat/completions", "azure": "/chat/completions",
                "zhipuai": "/v4/chat/completions"}[provider],
        "body": live,
    }  # fmt: skip


@pytest.mark.parametrize("provider", ["openai", "azure", "zhipuai"])
def test_upload_submit_poll_and_download_through_each_sdk(server, provider):
    client = make_client(server, provider)
    api = BatchAPI(client)
    sent = client.sent_form(request())
    key = client.key_for(sent)
    data = batch_line(key, api.url, batch_body(client.config, sent)).encode()
    server.push(
        {"answer": '{"anomalies": []}', "usage": {"prompt_tokens": 7, "completion_tokens": 3}}
    )
    file_id = api.upload(data, "0.input.jsonl")
    submitted = api.submit(file_id)
    assert submitted.status == "validating" and not submitted.finished
    assert api.find(file_id).id == submitted.id
    done = api.retrieve(submitted.id)
    assert done.status == "completed" and (done.total, done.completed) == (1, 1)
    results = parse_results(api.content(done.output_file_id), "w")
    assert results[key].reply.text == '{"anomalies": []}'
    assert results[key].reply.usage == Usage(7, 3)
    paths = [path for _, path, _ in server.batch_api.calls]
    assert paths and all(p.startswith(PREFIX[provider]) for p in paths)
    assert server.count == 0  # no live request


def test_a_rejected_call_is_one_line_without_the_key(server):
    client = make_client(server, "openai")
    api = BatchAPI(client)
    with pytest.raises(BatchError, match=r"Batch API \(submit\): .*HTTP 400") as info:
        api.submit("file-that-does-not-exist")
    assert KEY not in str(info.value) and "\n" not in str(info.value)


def _line(status=None, body=None, error=None) -> dict:
    response = None if status is None else {"status_code": status, "body": body}
    return {"custom_id": "k", "response": response, "error": error}


def test_item_results_answer_retry_or_fail():
    completion = {
        "choices": [{"message": {"content": "hi"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300,
                  "prompt_tokens_details": {"cached_tokens": 200}},
    }  # fmt: skip
    ok = item_result(_line(200, completion), "w")
    assert ok.reply.text == "hi" and ok.reply.usage == Usage(1200, 300, 200)
    assert ok.reply.truncated and ok.error is None
    refused = item_result(_line(400, {"error": {"message": "bad image"}}), "w")
    assert refused == ItemResult(error="w: HTTP 400: bad image", fatal=True)
    for status in (408, 429, 500, 503):
        assert not item_result(_line(status, {}), "w").fatal
    expired = item_result(_line(error={"code": "batch_expired", "message": "late"}), "w")
    assert expired == ItemResult(error="w: batch_expired: late", fatal=False)
    assert item_result(_line(error={"code": "invalid_json", "message": "x"}), "w").fatal
    garbled = item_result(_line(200, {"choices": []}), "w")
    assert garbled.reply is None and not garbled.fatal and "garbled" in garbled.error
    text = json.dumps(_line(200, completion)) + "\nnot json\n" + json.dumps({"custom_id": 3})
    assert list(parse_results(text, "w")) == ["k"]


def test_chunks_keep_to_the_request_and_byte_limits():
    lines = [(str(i), "x" * 9 + "\n") for i in range(7)]
    assert [len(c) for c in chunk_lines(lines, max_requests=3)] == [3, 3, 1]
    assert [len(c) for c in chunk_lines(lines, max_bytes=25)] == [2, 2, 2, 1]
    assert chunk_lines([]) == []


def _config() -> ModelConfig:
    return ModelConfig("m", "openai", "gpt", price_input=2.5, price_output=10.0)


def _ok(text: str = "{}") -> ItemResult:
    return ItemResult(reply=Reply(text, Usage(1000, 100)))


def test_session_serves_a_reply_once_at_the_batch_price():
    expired = ItemResult(error="w: batch_expired: late")
    session = BatchSession(_config(), [(0, {"a": _ok(), "b": expired})])
    reply = session.serve("a")
    assert reply.cost_usd == pytest.approx((1000 * 2.5 + 100 * 10) / 1e6 / 2)
    assert not reply.cached and reply.request_hash == "a"
    assert session.serve("b") is None  # unanswered once: asked again in the next batch
    settled = session.settle()
    assert [(s.key, s.batch) for s in settled] == [("a", 0)]
    again = BatchSession(_config(), [(0, {"a": _ok()})], session.consumed)
    assert again.serve("a") is None  # used by a logged job: a refresh asks anew
    newer = BatchSession(_config(), [(0, {"a": _ok()}), (1, {"a": _ok("new")})], session.consumed)
    assert newer.serve("a").text == "new"


def test_session_gives_back_a_reply_whose_job_was_deferred():
    session = BatchSession(_config(), [(0, {"a": _ok()})])
    session.serve("a")
    session.release("a")
    assert session.settle() == []
    assert session.serve("a") is not None
    with pytest.raises(Deferred):
        session.defer("z", request())
    assert list(session.take_pending()) == ["z"] and session.take_pending() == {}


def test_session_fails_a_refused_item_and_one_unanswered_too_often():
    refused = ItemResult(error="w: HTTP 400: bad", fatal=True)
    session = BatchSession(_config(), [(0, {"a": refused})])
    with pytest.raises(BatchItemFailed, match="m: w: HTTP 400: bad"):
        session.serve("a")
    assert [(s.key, s.reply) for s in session.settle()] == [("a", None)]
    expired = ItemResult(error="w: batch_expired: late")
    tries = [(i, {"b": expired}) for i in range(MAX_TRIES)]
    assert BatchSession(_config(), tries[:-1]).serve("b") is None
    with pytest.raises(BatchItemFailed, match=f"unanswered by {MAX_TRIES} batches"):
        BatchSession(_config(), tries).serve("b")


def test_client_in_batch_mode_defers_and_repairs_in_the_next_batch(server, tmp_path):
    client = make_client(server, "openai", tmp_path)

    def parse(text: str) -> dict:
        value = json.loads(text) if text.startswith("{") else None
        if value is None:
            raise ValueError("not JSON")
        return value

    first = client.sent_form(request())
    client.batch = BatchSession(client.config)
    with pytest.raises(Deferred):
        client.complete_json(request(), parse, lambda e: "again")
    assert list(client.batch.take_pending()) == [client.key_for(first)]
    client.batch = BatchSession(client.config, [(0, {client.key_for(first): _ok("no")})])
    with pytest.raises(Deferred):  # the repair goes in the next batch
        client.complete_json(request(), parse, lambda e: "again")
    (repair_key,) = client.batch.take_pending()
    assert client.batch.settle() == []  # the first reply is given back, not paid yet
    results = [(0, {client.key_for(first): _ok("no")}), (1, {repair_key: _ok('{"a": 1}')})]
    client.batch = BatchSession(client.config, results)
    result = client.complete_json(request(), parse, lambda e: "again")
    assert result.ok and result.repaired and not any(r.cached for r in result.replies)
    assert result.cost_usd == pytest.approx(2 * (1000 * 2.5 + 100 * 10) / 1e6 / 2)
    assert len(client.batch.settle()) == 2
    assert server.count == 0  # nothing sent live
    client.batch = None
    assert client.complete(request()).cached  # the batch's replies were cached


def test_batch_discount_in_the_models_file():
    def entry(**fields) -> ModelConfig:
        return _model_from_entry("m", fields, "models.yaml")

    assert entry(provider="openai").batch_cut == 0.5
    assert entry(provider="azure").batch_cut == entry(provider="zhipuai").batch_cut == 0.5
    assert entry(provider="openai", batch_discount=0.25).batch_cut == 0.25
    assert entry(provider="openai-compatible").batch_cut is None
    assert entry(provider="openai-compatible", batch_discount=0.5).batch_cut == 0.5
    assert entry(provider="hf", batch_discount=0.5).batch_cut is None
    with pytest.raises(ConfigError, match="batch_discount: expected a number >= 0 and < 1"):
        entry(provider="openai", batch_discount=1.5)
    with pytest.raises(ConfigError, match="no Batch API"):
        check_batch_model(entry(provider="openai-compatible"))
    with pytest.raises(ConfigError, match="runs in this process"):
        check_batch_model(resolve_model("hf:some/model"))
