"""The whole pipeline under faults: a server that is down, a failing reference, a failing
self-reflection, and kill -9 in the middle of a run. At every step the exit code, the counts the run
prints, the counts in ``metrics.json`` and the table must agree, and no analysis may ever have been
conditioned on a reference that failed.

Two series, ``toy`` and ``toy2`` (different periods, so their pictures differ), 7 windows each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from lmad.series.prepare import PrepareOptions, prepare_dataset
from tests.conftest import ROOT, assert_user_error
from tests.fake_llm_server import FakeLLMServer
from tests.series.scripted import Script, command, records_of, run
from tests.series.test_pipeline import models_file

pytestmark = pytest.mark.slow


def make_two_series(tmp_path):
    root = tmp_path / "data" / "CSV"
    root.mkdir(parents=True)
    t = np.arange(300)
    for name, period in (("toy", 20), ("toy2", 15)):
        values = np.sin(2 * np.pi * t / period)
        labels = np.zeros(300, dtype=int)
        values[190:200] += 3.0
        labels[190:200] = 1
        split = np.where(t < 120, "train", "test")
        rows = ["value,label,split"] + [f"{v},{a},{s}" for v, a, s in zip(values, labels, split)]
        (root / f"{name}.csv").write_text("\n".join(rows))
    for mode in ("train", "test"):
        prepare_dataset(
            PrepareOptions(
                dataset="CSV", mode=mode, window_size=60, stride=20,
                data_dir=tmp_path / "data", workers=1,
            )
        )  # fmt: skip
    return tmp_path / "data"


def metrics(data_dir) -> dict:
    folder = data_dir / "results" / "detection" / "CSV_fake-vlm_image"
    return json.loads((folder / "metrics.json").read_text())


def assert_never_conditioned_on_a_failed_reference(log: list[dict]) -> None:
    answered_refs = {
        r["request_hash"] for r in log if r["stage"] == "reference" and r["status"] == "answered"
    }
    for r in log:
        if r["stage"] != "reference" and r["status"] == "answered":
            assert r["reference_hash"] in answered_refs, r


def test_pipeline_under_faults(tmp_path):
    data_dir = make_two_series(tmp_path)
    script = Script(data_dir)
    server = FakeLLMServer({"answer_fn": script}).start()
    models = models_file(tmp_path, server)
    server.stop()

    # 1. the server is down: one line naming the address, quickly, nothing logged
    started = time.monotonic()
    down = run(tmp_path, data_dir, models)
    assert time.monotonic() - started < 45
    assert_user_error(down, "127.0.0.1")
    assert records_of(data_dir) == []

    # 2. a server is up; toy2's reference and one self-reflection of toy fail
    with FakeLLMServer({"answer_fn": script}) as server:
        models = models_file(tmp_path, server)
        script.broken |= {("reference", "toy2", None), ("reflection", "toy", 2)}
        first = run(tmp_path, data_dir, models)
        assert first.returncode == 1, first.stderr
        assert "reference: 1 of 2 answered (1 new, 0 already done), 1 failed" in first.stdout
        assert "analysis: 7 of 14 answered (7 new, 0 already done), 7 blocked" in first.stdout
        assert "reflection: 2 of 3 answered (2 new, 0 already done), 1 failed" in first.stdout
        assert "toy2/-/0 reference" in first.stderr and "toy/2/0 reflection" in first.stderr
        assert not any(a[0] != "reference" and a[1] == "toy2" for a in script.asked)
        log = records_of(data_dir)
        assert_never_conditioned_on_a_failed_reference(log)
        evaluation = run(tmp_path, data_dir, models, "--plots", "False", script="evaluation.py")
        assert evaluation.returncode == 0, evaluation.stderr
        line = "incomplete: 2 of 19 answers failed (1 reference, 1 reflection), "
        line += "7 windows blocked by a failed reference"
        assert line in evaluation.stdout
        counts = metrics(data_dir)["counts"]
        assert counts["reference"] == dict(expected=2, answered=1, failed=1, blocked=0, missing=0)
        assert counts["analysis"] == dict(expected=14, answered=7, failed=0, blocked=7, missing=0)
        assert counts["reflection"] == dict(expected=3, answered=2, failed=1, blocked=0, missing=0)
        table = data_dir / "results" / "detection" / "CSV_fake-vlm_image" / "table.md"
        assert table.read_text().splitlines()[0] == line
        assert "| fake-vlm | Pred " in table.read_text() and "7/14" in table.read_text()

        # 3. the faults are gone; the run is killed part way, then finishes
        script.broken.clear()
        server.default = {"answer_fn": script, "latency": 0.3}
        process = subprocess.Popen(
            command(data_dir, models, "--concurrency", "1"),
            cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        before = len(log)
        deadline = time.time() + 120
        while time.time() < deadline and len(records_of(data_dir)) < before + 4:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        server.default = {"answer_fn": script}
        final = run(tmp_path, data_dir, models)
        assert final.returncode == 0, final.stderr
        log = records_of(data_dir)
        assert_never_conditioned_on_a_failed_reference(log)
        evaluation = run(tmp_path, data_dir, models, "--plots", "False", script="evaluation.py")
        assert evaluation.returncode == 0 and "incomplete" not in evaluation.stdout
        counts = metrics(data_dir)["counts"]
        assert counts["analysis"] == dict(expected=14, answered=14, failed=0, blocked=0, missing=0)
        assert counts["reflection"]["answered"] == counts["reflection"]["expected"] == 6
        assert metrics(data_dir)["complete"] is True
