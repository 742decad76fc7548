"""Shared test set-up: offline Hugging Face, headless matplotlib, script runner, real-data paths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def run_script(script: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run one of the project's scripts as a user would, capturing its output."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def script():
    return run_script


def assert_user_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """A user error: exit code 2, one ``error:`` line, no traceback, mentioning ``needles``."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle.lower() in errors[0].lower(), (needle, errors[0])
    return errors[0]


@pytest.fixture
def no_escapee(tmp_path):
    """'../../x' under tmp_path/data lands in tmp_path.parent/x: start each test without it."""
    shutil.rmtree(tmp_path.parent / "x", ignore_errors=True)


def tree(root: Path) -> set[str]:
    """Every file and folder under ``root``, relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_refused(result, flag: str, tmp_path: Path, before: set[str]) -> str:
    """Exit 2, one ``error:`` line naming ``flag``, and nothing created in or around tmp_path."""
    line = assert_user_error(result, flag)
    assert tree(tmp_path) == before, sorted(tree(tmp_path) - before)
    assert not (tmp_path.parent / "x").exists(), "'../../x' escaped the data dir"
    return line


FIXTURES = ROOT / "tests" / "fixtures"
"""Reference values of published evaluation code and the cases they were computed on."""


def load_fixture(name: str):
    """The JSON file ``tests/fixtures/<name>``."""
    return json.loads((FIXTURES / name).read_text())
