"""LLM throughput: sequential requests (as TAMA's code sends them) against lmad's bounded concurrency.

200 requests go to the fake OpenAI server (tests/fake_llm_server.py) on 127.0.0.1 with 100 ms latency,
through the real ``openai`` client: first one at a time, then with concurrency 8. Prints both wall
times, the speed-up against the ideal 8x (goal: within 1.25x of it), then reruns the concurrent batch
with the response cache and prints how many requests reached the server (goal: 0).

    python bench/llm_throughput.py [--requests 200] [--latency 0.1] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lmad.llm.cache import ResponseCache
from lmad.llm.client import LLMClient
from lmad.llm.config import ModelConfig
from lmad.llm.messages import ChatRequest, user
from lmad.llm.openai_backend import OpenAIBackend
from tests.fake_llm_server import FakeLLMServer


def client_for(server: FakeLLMServer, concurrency: int, cache: ResponseCache | None) -> LLMClient:
    config = ModelConfig("bench", "openai-compatible", "gpt-fake", base_url=f"{server.url}/v1")
    backend = OpenAIBackend("gpt-fake", "bench-key", base_url=f"{server.url}/v1")
    return LLMClient(config, backend, cache, concurrency=concurrency)


def run(client: LLMClient, count: int, concurrent: bool) -> float:
    requests = [
        ChatRequest((user(f"window {i}: find anomalies, answer JSON"),)) for i in range(count)
    ]
    start = time.perf_counter()
    if concurrent:
        for _, result in client.map(client.complete, requests):
            if isinstance(result, Exception):
                raise result
    else:
        for request in requests:
            client.complete(request)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1, help="server latency in seconds")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with FakeLLMServer({"answer": '{"anomalies": []}', "latency": args.latency}) as server:
        sequential = run(client_for(server, 1, None), args.requests, concurrent=False)
        with tempfile.TemporaryDirectory() as tmp:
            cache = ResponseCache(tmp)
            concurrent = run(client_for(server, args.concurrency, cache), args.requests, True)
            before = server.count
            rerun = client_for(server, args.concurrency, cache)
            cached_time = run(rerun, args.requests, concurrent=True)
            rerun_requests = server.count - before
    speedup = sequential / concurrent
    ideal = args.concurrency
    print(
        f"{args.requests} requests, {args.latency * 1000:.0f} ms server latency, real openai client"
    )
    print(f"sequential (TAMA's way):   {sequential:6.2f} s")
    print(f"concurrency {ideal}:           {concurrent:6.2f} s")
    print(
        f"speed-up: {speedup:.2f}x of ideal {ideal}x  (ideal / actual = {ideal / speedup:.2f}, goal <= 1.25)"
    )
    print(
        f"cached rerun: {rerun_requests} requests reached the server in {cached_time:.2f} s (goal 0)"
    )


if __name__ == "__main__":
    main()
