"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions API, with scriptable faults.

Any POST whose path ends in ``/chat/completions`` is answered (OpenAI ``/v1/...``, Azure
``/openai/deployments/<name>/...``, ZhipuAI ``/api/paas/v4/...``). Each request takes the next
behaviour pushed with :meth:`FakeLLMServer.push`, or the default (the lines of a batch too: the
files and batches endpoints are ``server.batch_api``, :mod:`tests.fake_batch_api`):

- ``{"answer": "text"}`` (optionally ``"usage": {...}``, ``"finish_reason": "length"``) or
  ``{"answer_fn": callable(body) -> str}``
- ``{"latency": seconds}`` before answering (combines with the others)
- ``{"status": 429, "retry_after": "0.1"}`` or any status, with an OpenAI-style error body
- ``{"malformed": True}``: status 200 with a body that is not JSON
- ``{"truncated": True}``: a Content-Length longer than the body, then the connection closes
- ``{"drop": True}``: the connection closes without any response

Without an explicit ``usage``, a live reply reports the usage a real server would: prompt tokens of
the chat-templated messages under SmolLM2's tokenizer, the answer's tokens, and OpenAI-style
``prompt_tokens_details.cached_tokens`` for a prefix shared with an earlier prompt. The server also
answers llama.cpp's ``/props``, ``/tokenize`` and ``/apply-template`` and ``/v1/models``
(``kind``, ``context_window``; :mod:`tests.fake_llamacpp`); those calls are not chat requests and
are kept in ``server.llamacpp.requests``, not ``server.requests``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fake_batch_api import FakeBatchAPI
from tests.fake_llamacpp import FakeLlamaCpp


class FakeLLMServer:
    def __init__(
        self,
        default: dict[str, Any] | None = None,
        kind: str = "llamacpp",
        context_window: int = 131072,
    ) -> None:
        """``kind`` and ``context_window``: the endpoints and context size it reports
        (``server.llamacpp``, :mod:`tests.fake_llamacpp`)."""
        self.default = default or {"answer": '{"anomalies": [], "description": "none"}'}
        self.script: deque[dict[str, Any]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self._server: ThreadingHTTPServer | None = None
        self.batch_api = FakeBatchAPI(self)  # files and batches endpoints (tests/fake_batch_api.py)
        self.llamacpp = FakeLlamaCpp(kind, context_window)  # usage, /props, /models, /tokenize

    # -- control ---------------------------------------------------------------------------------
    def push(self, *behaviours: dict[str, Any]) -> FakeLLMServer:
        with self.lock:
            self.script.extend(behaviours)
        return self

    def next_behaviour(self) -> dict[str, Any]:
        with self.lock:
            return self.script.popleft() if self.script else dict(self.default)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def count(self) -> int:
        return len(self.requests)

    def start(self) -> FakeLLMServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def completion_body(
    answer: str, model: str, usage: dict[str, int] | None = None, finish_reason: str = "stop"
) -> bytes:
    usage = usage or {"prompt_tokens": 1000, "completion_tokens": 100}
    usage = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}
    return json.dumps(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage,
        }
    ).encode()


def _make_handler(fake: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes; without this, Nagle's algorithm and the
            # client's delayed ACK add about 40 ms to every response.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            if not fake.llamacpp.route(self) and not fake.batch_api.route(self):
                self._send(404, b'{"error": {"message": "not found"}}')

        def do_POST(self) -> None:
            if fake.llamacpp.route(self) or fake.batch_api.route(self):
                return
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            with fake.lock:
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            try:
                self._respond(body, fake.next_behaviour())
            finally:
                with fake.lock:
                    fake.in_flight -= 1

        def _respond(self, body: dict[str, Any], behaviour: dict[str, Any]) -> None:
            if not self.path.split("?")[0].endswith("/chat/completions"):
                return self._send(404, b'{"error": {"message": "not found"}}')
            time.sleep(behaviour.get("latency", 0))
            if behaviour.get("drop"):
                self.close_connection = True
                self.connection.shutdown(2)
                return None
            if "status" in behaviour:
                error = {"error": {"message": f"fake {behaviour['status']}", "type": "fake"}}
                headers = {}
                if "retry_after" in behaviour:
                    headers["Retry-After"] = str(behaviour["retry_after"])
                return self._send(behaviour["status"], json.dumps(error).encode(), headers)
            if behaviour.get("malformed"):
                return self._send(200, b'{"choices": [ this is not json')
            answer = (
                behaviour["answer_fn"](body) if "answer_fn" in behaviour else behaviour["answer"]
            )
            payload = completion_body(
                answer,
                body.get("model", "fake"),
                behaviour.get("usage") or fake.llamacpp.usage(body, answer),
                behaviour.get("finish_reason", "stop"),
            )
            if behaviour.get("truncated"):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload) + 100))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return None
            return self._send(200, payload)

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler
