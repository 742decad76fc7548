"""open_client from models.yaml and api_keys.yaml, as a user configures it, against the fake server."""

from __future__ import annotations

import pytest

from lmad.errors import ConfigError
from lmad.llm.client import open_client
from lmad.llm.messages import ChatRequest, user
from tests.fake_llm_server import FakeLLMServer

AZURE_KEY = "az-" + "0123456789abcdef" * 2


@pytest.fixture
def server():
    with FakeLLMServer({"answer": "hello"}) as fake:
        yield fake


def write_config(tmp_path, server):
    models = tmp_path / "models.yaml"
    models.write_text(
        "my-azure:\n  provider: azure\n  model: gpt4o-deploy\n  api_version: '2024-10-21'\n"
        "  price_per_million: {input: 2.5, output: 10}\n"
        f"my-vllm:\n  provider: openai-compatible\n  model: llava\n  base_url: {server.url}/v1\n"
        "  key: none\n"
    )
    keys = tmp_path / "api_keys.yaml"
    keys.write_text(f"azure:\n  api_key: '{AZURE_KEY}'\n  endpoint: '{server.url}'\n")
    return models, keys


def ask(client):
    return client.complete(ChatRequest((user("hi, answer in JSON"),)))


def test_azure_deployment_path_and_version(tmp_path, server, monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    models, keys = write_config(tmp_path, server)
    client = open_client("my-azure", models, keys, cache_dir=tmp_path / "cache")
    assert ask(client).text == "hello"
    sent = server.requests[0]
    assert (
        sent["path"] == "/openai/deployments/gpt4o-deploy/chat/completions?api-version=2024-10-21"
    )
    assert {k.lower(): v for k, v in sent["headers"].items()}["api-key"] == AZURE_KEY
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "api_keys.yaml":
            assert AZURE_KEY not in path.read_text(errors="ignore")


def test_local_openai_compatible_server_needs_no_key(tmp_path, server):
    models, keys = write_config(tmp_path, server)
    client = open_client("my-vllm", models, keys, no_cache=True)
    assert ask(client).text == "hello" and ask(client).text == "hello"
    assert server.count == 2  # --no_cache: every call is sent
    assert server.requests[0]["body"]["model"] == "llava"


def test_missing_key_names_the_file_and_the_variable(tmp_path, server, monkeypatch):
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    models, _ = write_config(tmp_path, server)
    with pytest.raises(ConfigError) as info:
        open_client("my-azure", models, tmp_path / "absent.yaml")
    assert "AZURE_OPENAI_API_KEY" in str(info.value) and "absent.yaml" in str(info.value)
