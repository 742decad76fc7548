"""The ``toy`` fixture: the toy CSV series processed, a fake server answering by script."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.fake_llm_server import FakeLLMServer
from tests.series.scripted import Script
from tests.series.test_pipeline import make_data, models_file


@pytest.fixture
def toy(tmp_path):
    data_dir = make_data(tmp_path)
    script = Script(data_dir)
    with FakeLLMServer() as server:
        server.default = {"answer_fn": script}
        yield SimpleNamespace(
            tmp_path=tmp_path,
            data_dir=data_dir,
            server=server,
            models=models_file(tmp_path, server),
            script=script,
        )
