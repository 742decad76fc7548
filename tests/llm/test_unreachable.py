"""A run against a server that is down, as a user meets it: one error line, within seconds."""

from __future__ import annotations

import re

import pytest

from tests.conftest import assert_user_error
from tests.fake_llm_server import FakeLLMServer
from tests.series.test_pipeline import make_data, run_cli


@pytest.mark.slow
def test_main_cli_against_a_stopped_server_says_so_in_one_line(tmp_path):
    data_dir = make_data(tmp_path)
    server = FakeLLMServer().start()
    base_url = f"{server.url}/v1"
    server.stop()  # the port now refuses connections
    models = tmp_path / "models.yaml"
    models.write_text(
        f"fake-vlm:\n  provider: openai-compatible\n  model: vlm\n"
        f"  base_url: {base_url}\n  key: none\n"
    )
    result = run_cli(tmp_path, data_dir, str(models))
    line = assert_user_error(result, base_url, "fake-vlm", "nothing was answered")
    assert "connection refused" in line
    # the retries stop at the 15 s connect deadline (without it: minutes). The client's own count
    # of the time it spent retrying is checked, not the run's wall clock, which rendering the
    # windows on a busy machine can stretch to minutes.
    tries, seconds = map(int, re.search(r"(\d+) tries in (\d+) s", line).groups())
    assert tries >= 2 and seconds <= 20, line
    assert "Connection error." not in result.stderr.replace(line, "")  # no other noise
