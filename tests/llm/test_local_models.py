"""Local model names for ``--LLM hf:<name>``: the packaged SmolLM2, .gguf files, folders."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lmad.errors import ConfigError
from lmad.llm import local_models
from lmad.llm.config import resolve_model
from tests.conftest import ROOT


def test_hf_names_resolve_to_constrained_local_models():
    config = resolve_model("hf:smollm2")
    assert (config.provider, config.model, config.structured) == ("hf", "smollm2", "json_schema")


def test_smollm2_source_is_the_gguf_until_converted(tmp_path, monkeypatch):
    gguf = tmp_path / "pkg" / local_models.SMOLLM2_FILE
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(local_models, "smollm2_gguf", lambda: gguf)
    models = tmp_path / "models"
    assert local_models.hf_model_source("smollm2", models) == (
        str(gguf.parent),
        {"gguf_file": local_models.SMOLLM2_FILE},
    )
    folder = models / local_models.SMOLLM2_NAME
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    assert local_models.hf_model_source("SmolLM2", models) == (str(folder.resolve()), {})
    assert local_models.resolve_hf_model("smollm2", models) == str(folder.resolve())


def test_a_model_folder_is_its_own_source(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert local_models.hf_model_source(str(tmp_path)) == (str(tmp_path.resolve()), {})


@pytest.mark.parametrize(
    "name, message",
    [
        ("", "--LLM hf: is empty"),
        ("/no/such/model", "does not exist"),
    ],
)
def test_bad_names_name_the_flag(name, message):
    with pytest.raises(ConfigError, match=message):
        local_models.resolve_hf_model(name)


def test_gguf_named_like_a_folder_lmad_writes_is_refused(tmp_path):
    bad = tmp_path / "semad.gguf"
    bad.write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="--LLM hf:"):
        local_models.resolve_hf_model(str(bad), tmp_path / "models")


def test_convert_command_reports_bad_input_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "lmad.llm.local_models", str(tmp_path / "missing.gguf")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: model path") and result.stderr.count("\n") == 1
