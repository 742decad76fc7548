"""The real openai and zhipuai clients against the fake server, through every fault."""

from __future__ import annotations

import base64
import io
import logging
import socket
import threading
import time
from http.server import ThreadingHTTPServer

import pytest
from PIL import Image

from lmad.errors import UserError
from lmad.llm.base import ConnectFailure, FatalError, TransientError, Usage
from lmad.llm.cache import ResponseCache
from lmad.llm.client import LLMClient, LLMFatalError, LLMUnreachable, RetriesExhausted
from lmad.llm.config import ModelConfig
from lmad.llm.messages import ChatRequest, GenerationParams, ImagePart, system, user
from lmad.llm.openai_backend import OpenAIBackend
from lmad.llm.reliability import RetryPolicy
from lmad.llm.zhipu_backend import ZhipuBackend
from tests.fake_llm_server import FakeLLMServer, _make_handler

KEY = "sk-" + "fakekey0123456789" * 2  # built at run time: no key-like literal in the tree
ZHIPU_KEY = "f" * 32 + "." + "s" * 16


def png(color: str = "white", size: tuple[int, int] = (64, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def server():
    with FakeLLMServer() as fake:
        yield fake


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(server, tmp_path, cache=True, provider="openai", **kw) -> LLMClient:
    config = ModelConfig(
        name="fake-gpt", provider=provider, model="gpt-fake", base_url=f"{server.url}/v1",
        structured="json_object", price_input=2.5, price_output=10.0,
    )  # fmt: skip
    if provider == "zhipuai":
        backend = ZhipuBackend("glm-fake", ZHIPU_KEY, f"{server.url}/api/paas/v4")
    else:
        backend = OpenAIBackend(
            "gpt-fake", KEY, base_url=f"{server.url}/v1", structured="json_object"
        )
    retry = kw.pop("retry", RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.05))
    return LLMClient(
        config, backend, ResponseCache(tmp_path / "cache") if cache else None, retry=retry,
        sleep=kw.pop("sleep", Sleeps()), **kw,
    )  # fmt: skip


def request(text: str = "Find anomalies. Answer in JSON.", image: bytes | None = None):
    images = [ImagePart(image)] if image else []
    return ChatRequest((system("You are an analyst."), user(text, images)), task="analysis")


def test_answer_usage_cost_and_payload(server, tmp_path):
    server.push(
        {"answer": '{"anomalies": []}', "usage": {"prompt_tokens": 1200, "completion_tokens": 300}}
    )
    client = make_client(server, tmp_path)
    reply = client.complete(request(image=png()))
    assert reply.text == '{"anomalies": []}'
    assert reply.usage == Usage(1200, 300)
    assert reply.cost_usd == pytest.approx(1200 * 2.5 / 1e6 + 300 * 10 / 1e6)
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    body = sent["body"]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.1, 0.3, 4096)
    assert body["response_format"] == {"type": "json_object"}
    image = body["messages"][1]["content"][1]["image_url"]
    assert image["detail"] == "high"
    assert image["url"] == "data:image/png;base64," + base64.b64encode(png()).decode()
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    assert headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": "0.25"},
        {"status": 500},
        {"status": 503},
        {"malformed": True},
        {"truncated": True},
        {"drop": True},
    ],
    ids=["429", "500", "503", "malformed", "truncated", "dropped"],
)
def test_transient_faults_are_retried(server, tmp_path, fault):
    server.push(fault, fault, {"answer": "fine"})
    sleeps = Sleeps()
    client = make_client(server, tmp_path, sleep=sleeps)
    reply = client.complete(request())
    assert reply.text == "fine" and reply.attempts == 3
    assert server.count == 3 and len(sleeps) == 2
    if "retry_after" in fault:
        assert all(0.25 <= s <= 0.35 for s in sleeps)  # Retry-After honoured
    assert client.meter.retries == 2 and client.meter.requests == 1


def test_timeout_is_retried(server, tmp_path):
    server.push({"latency": 1.5, "answer": "slow"}, {"answer": "fast"})
    client = make_client(server, tmp_path, timeout=0.3)
    assert client.complete(request()).text == "fast"
    assert server.count == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_unfixable_errors_stop_at_once_without_the_key(server, tmp_path, status, caplog):
    server.push({"status": status})
    client = make_client(server, tmp_path)
    with caplog.at_level(logging.DEBUG), pytest.raises(LLMFatalError) as info:
        client.complete(request())
    assert server.count == 1
    assert str(status) in str(info.value) and KEY not in str(info.value)
    assert KEY not in caplog.text


def test_retries_exhausted_is_a_recorded_failure(server, tmp_path):
    server.push(*[{"status": 502}] * 4)
    client = make_client(server, tmp_path)
    with pytest.raises(RetriesExhausted, match="after 4 attempts"):
        client.complete(request())
    assert server.count == 4 and client.meter.failures == 1


def test_cache_hit_makes_no_request_and_keeps_no_key(server, tmp_path):
    client = make_client(server, tmp_path)
    first = client.complete(request(image=png("white")))
    again = make_client(server, tmp_path).complete(request(image=png("white")))
    assert server.count == 1 and again.cached and again.text == first.text
    assert again.request_hash == first.request_hash
    make_client(server, tmp_path).complete(request(image=png("black")))  # other image bytes
    assert server.count == 2
    make_client(server, tmp_path, cache=False).complete(request(image=png("white")))  # --no_cache
    assert server.count == 3
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 2
    for path in files:
        text = path.read_text()
        assert KEY not in text and KEY[:8] not in text


def test_other_parameters_are_another_cache_entry(server, tmp_path):
    client = make_client(server, tmp_path)
    client.complete(request())
    hot = ChatRequest(request().messages, GenerationParams(temperature=0.7), task="analysis")
    client.complete(hot)
    assert server.count == 2


def test_repair_by_the_same_model(server, tmp_path):
    server.push({"answer": "I think the anomaly is at 40"}, {"answer": '{"value": 40}'})
    client = make_client(server, tmp_path)

    def parse(text: str) -> int:
        import json

        return json.loads(text)["value"]

    result = client.complete_json(request(), parse, lambda error: f"Fix this: {error}")
    assert result.ok and result.value == 40 and result.repaired
    repair = server.requests[1]["body"]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "I think the anomaly is at 40"}
    assert repair[-1]["content"].startswith("Fix this: ")
    server.push({"answer": "still prose"}, {"answer": "prose again"})
    failed = client.complete_json(request("other"), parse, lambda error: "Fix")
    assert not failed.ok and "prose again" in failed.raw and "still prose" in failed.raw
    assert failed.error


def test_map_keeps_concurrency_bounded(server, tmp_path):
    server.default = {"answer": "ok", "latency": 0.2}
    client = make_client(server, tmp_path, concurrency=4)
    results = list(client.map(lambda i: client.complete(request(f"window {i}")), range(12)))
    assert len(results) == 12 and all(r.text == "ok" for _, r in results)
    assert server.max_in_flight == 4


def test_map_stops_on_a_fatal_error(server, tmp_path):
    server.push({"status": 401})
    client = make_client(server, tmp_path, concurrency=1)
    with pytest.raises(LLMFatalError):
        list(client.map(lambda i: client.complete(request(f"w{i}")), range(5)))
    assert server.count == 1


def test_zhipuai_client_bare_base64_and_faults(server, tmp_path):
    server.push({"status": 429, "retry_after": "0"}, {"answer": "glm says hi"}, {"status": 401})
    client = make_client(server, tmp_path, provider="zhipuai")
    assert client.complete(request(image=png())).text == "glm says hi"
    sent = server.requests[1]
    assert sent["path"] == "/api/paas/v4/chat/completions"
    messages = sent["body"]["messages"]
    assert [m["role"] for m in messages] == ["user"]  # system folded into the user turn
    assert messages[0]["content"][0]["text"] == "You are an analyst."
    assert messages[0]["content"][2]["image_url"]["url"] == base64.b64encode(png()).decode()
    with pytest.raises(LLMFatalError) as info:
        client.complete(request("another"))
    assert "401" in str(info.value) and ZHIPU_KEY not in str(info.value)


# -- a server that is down, or that goes down -----------------------------------------------------


class Clock:
    """A fake monotonic clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def stopped_server() -> FakeLLMServer:
    """A fake server that was started and stopped: its port now refuses connections."""
    fake = FakeLLMServer().start()
    url = fake.url
    fake.stop()
    fake.url_when_up = url  # type: ignore[attr-defined]
    return fake


def down_client(concurrency: int = 4, **kw) -> tuple[LLMClient, str]:
    """A client with default settings (real sleeping, default retries) for a port nobody serves."""
    url = stopped_server().url_when_up + "/v1"
    config = ModelConfig(name="fake-gpt", provider="openai", model="gpt-fake", base_url=url)
    backend = OpenAIBackend("gpt-fake", KEY, base_url=url)
    return LLMClient(config, backend, None, concurrency=concurrency, **kw), url


def pool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("ThreadPoolExecutor")}


def test_down_server_stops_the_whole_map_within_seconds():
    client, url = down_client(concurrency=4)
    before = pool_threads()
    started = time.monotonic()
    with pytest.raises(UserError) as info:
        list(client.map(lambda i: client.complete(request(f"window {i}")), range(8)))
    took = time.monotonic() - started
    assert took < 40, took  # a single sanity bound: the deadline is 15 s
    message = str(info.value)
    assert isinstance(info.value, LLMFatalError) and "\n" not in message
    assert url in message and "fake-gpt" in message and "nothing was answered" in message
    assert "connection refused" in message and KEY not in message and KEY[:8] not in message
    assert not {t for t in pool_threads() - before if t.is_alive()}  # every worker has stopped


def test_down_server_gives_up_at_the_connect_deadline_or_the_last_retry():
    sleeps = Sleeps()
    client, url = down_client(clock=Clock(4.0), sleep=sleeps)  # 4 s pass per look at the clock
    with pytest.raises(LLMUnreachable) as info:
        client.complete(request())
    assert len(sleeps) < RetryPolicy().max_retries and sum(sleeps) <= 15.0
    assert url in str(info.value) and client.meter.failures == 1
    sleeps = Sleeps()
    client, url = down_client(clock=Clock(0.0), sleep=sleeps)  # no time passes: retries run out
    with pytest.raises(LLMUnreachable, match="7 tries"):
        client.complete(request())
    assert len(sleeps) == 6


def test_after_an_answer_connection_faults_are_retried_and_the_run_goes_on(server, tmp_path):
    port = int(server.url.rsplit(":", 1)[1])

    def restart_on_the_third_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:  # the server comes back on the same port
            fake = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(server))
            fake.daemon_threads = True
            server._server = fake
            threading.Thread(target=fake.serve_forever, daemon=True).start()

    sleeps = Sleeps()
    client = make_client(server, tmp_path, sleep=restart_on_the_third_sleep, clock=Clock(100.0))
    assert client.complete(request("first")).text  # answered once
    server.stop()  # the kept-alive connection is dropped at its next request, then refused
    server.push({"drop": True})
    server.default = {"answer": "back again"}
    results = list(client.map(lambda i: client.complete(request(f"w{i}")), range(1)))
    assert [r.text for _, r in results] == ["back again"] and len(sleeps) == 3
    url = f"{server.url}/v1"
    server.stop()
    server.push({"drop": True})
    results = list(client.map(lambda i: client.complete(request(f"x{i}")), range(2)))
    assert all(isinstance(r, RetriesExhausted) for _, r in results)  # recorded, the run goes on
    assert all(f"gpt-fake at {url}: " in str(r) for _, r in results)


@pytest.mark.parametrize(
    "fault", [{"status": 429}, {"status": 500}, {"drop": True}], ids=["429", "500", "dropped"]
)
@pytest.mark.parametrize("provider", ["openai", "zhipuai"])
def test_transient_messages_name_the_model_and_the_url(server, tmp_path, fault, provider):
    server.push(*[fault] * 5)  # one sent directly, then four tries through the client
    client = make_client(server, tmp_path, provider=provider)
    model, path = ("glm-fake", "/api/paas/v4") if provider == "zhipuai" else ("gpt-fake", "/v1")
    with pytest.raises(TransientError) as direct:
        client.backend.complete(request(), timeout=5)
    assert str(direct.value).startswith(f"{model} at {server.url}{path}: ")
    with pytest.raises(RetriesExhausted) as info:
        client.complete(request())
    message = str(info.value)
    assert "fake-gpt" in message and f"{model} at {server.url}{path}: " in message
    assert KEY not in message and ZHIPU_KEY not in message


def test_fatal_and_garbled_messages_name_the_model_and_the_url(server, tmp_path):
    server.push({"status": 401}, {"malformed": True})
    client = make_client(server, tmp_path)
    with pytest.raises(FatalError, match=f"gpt-fake at {server.url}/v1: HTTP 401"):
        client.backend.complete(request())
    with pytest.raises(TransientError, match=f"gpt-fake at {server.url}/v1: "):
        client.backend.complete(request())
    assert OpenAIBackend("gpt-4o", KEY).url == "https://api.openai.com/v1"


@pytest.fixture
def black_hole():
    """A port that takes no more connections: its accept queue is full, so a SYN gets no answer."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    filler.close()
    listener.close()


@pytest.mark.parametrize("provider", ["openai", "zhipuai"])
def test_connect_timeout_is_shorter_than_the_read_timeout(black_hole, provider):
    if provider == "zhipuai":
        backend = ZhipuBackend("glm-fake", ZHIPU_KEY, f"{black_hole}/api/paas/v4")
    else:
        backend = OpenAIBackend("gpt-fake", KEY, base_url=f"{black_hole}/v1")
    backend.connect_timeout = 0.3
    started = time.monotonic()
    with pytest.raises(ConnectFailure) as info:
        backend.complete(request(), timeout=60)
    assert time.monotonic() - started < 20  # the connect timeout, not the 60 s read timeout
    assert info.value.reason == "connect timeout" and black_hole in str(info.value)
