"""TAMA end to end against the fake LLM server: scripted answers in, exact scores and metrics out.

Test series: 180 points, anomaly at 70..79; windows of 60 with stride 20 start at 0, 20, ..., 120, so
the anomaly is seen by windows 1 (local 50-59), 2 (local 30-39) and 3 (local 10-19).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lmad.series.analyzers import Analyzer, Job
from lmad.series.evaluate import EvalOptions, evaluate_llm
from lmad.series.pipeline import RunOptions, TamaRun
from lmad.series.prepare import PrepareOptions, prepare_dataset
from lmad.series.runlog import read_records
from tests.conftest import ROOT, assert_user_error
from tests.fake_llm_server import FakeLLMServer

ANALYSIS = {
    1: json.dumps(
        {
            "anomalies": [
                {"start": 50, "end": 60, "confidence": 3, "type": "shapelet", "explanation": "bump"}
            ],
            "description": "d",
        }
    ),
    2: json.dumps({"abnormal_index": "[(30, 40)/4/shapelet]", "abnormal_description": "legacy"}),
    3: json.dumps({"anomalies": [{"start": 10, "end": 75, "confidence": 2, "type": "trend"}]}),
    4: "I am not sure, it looks fine to me",
    5: "",
}
REPAIR = {4: "still no JSON", 5: json.dumps({"anomalies": [], "description": "normal"})}
REFLECTION = {
    3: json.dumps({"anomalies": [{"start": 10, "end": 20, "confidence": 3, "type": "shapelet"}]}),
}
NORMAL = json.dumps({"anomalies": [], "description": "normal"})


def make_data(tmp_path, modality="image"):
    root = tmp_path / "data" / "CSV"
    root.mkdir(parents=True)
    t = np.arange(300)
    values = np.sin(2 * np.pi * t / 20)
    labels = np.zeros(300, dtype=int)
    values[120 + 70 : 120 + 80] += 3.0
    labels[120 + 70 : 120 + 80] = 1
    split = np.where(t < 120, "train", "test")
    rows = ["value,label,split"] + [f"{v},{lab},{s}" for v, lab, s in zip(values, labels, split)]
    (root / "toy.csv").write_text("\n".join(rows))
    for mode in ("train", "test"):
        prepare_dataset(
            PrepareOptions(
                dataset="CSV",
                mode=mode,
                modality=modality,
                window_size=60,
                stride=20,
                data_dir=tmp_path / "data",
                workers=1,
            )
        )
    return tmp_path / "data"


def window_of(data_dir) -> dict[str, int]:
    folder = data_dir / "processed" / "CSV" / "toy" / "test" / "image"
    return {
        base64.b64encode(p.read_bytes()).decode(): int(p.stem.split("-")[0])
        for p in folder.glob("*.png")
    }


def text(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else " ".join(c.get("text", "") for c in content)


def scripted(images: dict[str, int]):
    def answer(body: dict) -> str:
        users = [m for m in body["messages"] if m["role"] == "user"]
        last = text(users[-1])
        if "This is Task 1" in last:
            return json.dumps({"normal_pattern": "a sine wave with period 20"})
        task2 = next(m for m in users if "This is Task 2" in text(m))
        url = next(c["image_url"]["url"] for c in task2["content"] if c["type"] == "image_url")
        window = images[url.split(",", 1)[1]]
        if "could not be used" in last:
            return REPAIR[window]
        if "Self-reflection" in last:
            return REFLECTION.get(window, json.dumps(json.loads(ANALYSIS[window])))
        return ANALYSIS.get(window, NORMAL)

    return answer


def models_file(tmp_path, server) -> str:
    path = tmp_path / "models.yaml"
    path.write_text(
        f"fake-vlm:\n  provider: openai-compatible\n  model: vlm\n"
        f"  base_url: {server.url}/v1\n  key: none\n"
        "fake-text:\n  provider: openai-compatible\n  model: t\n"
        f"  base_url: {server.url}/v1\n  key: none\n  images: false\n"
    )
    return str(path)


def cli_args(data_dir, models, *extra, script="main_cli.py") -> list[str]:
    """The command line of a run on the toy CSV with the fake vision model."""
    return [
        sys.executable,
        str(ROOT / script),
        "--dataset",
        "CSV",
        "--LLM",
        "fake-vlm",
        "--data_dir",
        str(data_dir),
        "--models",
        models,
        "--normal_reference",
        "2",
        *extra,
    ]


def run_cli(tmp_path, data_dir, models, *extra, script="main_cli.py"):
    return subprocess.run(
        cli_args(data_dir, models, *extra, script=script),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


@pytest.fixture
def setup(tmp_path):
    data_dir = make_data(tmp_path)
    with FakeLLMServer() as server:
        server.default = {"answer_fn": scripted(window_of(data_dir))}
        yield tmp_path, data_dir, server, models_file(tmp_path, server)


def test_scripted_run_scores_and_metrics_exactly(setup):
    tmp_path, data_dir, server, models = setup
    result = run_cli(tmp_path, data_dir, models)
    assert result.returncode == 1, result.stderr  # window 4 never gives a usable answer
    assert "analysis: 6 of 7 answered (6 new, 0 already done), 1 failed" in result.stdout
    records = read_records(data_dir / "runs" / "detection" / "CSV_fake-vlm_image.jsonl")
    stages = [r["stage"] for r in records]
    assert stages.count("reference") == 1 and stages.count("analysis") == 7
    assert stages.count("reflection") == 3  # windows 1, 2 and 3 had anomalies
    failed = [r for r in records if r["error"]]
    assert [(r["window"], r["stage"]) for r in failed] == [(4, "analysis")]
    assert "still no JSON" in failed[0]["raw"]  # the raw reply is kept
    assert server.count == 1 + 7 + 2 + 3  # reference, windows, two repairs, reflections
    by_window = {r["window"]: r for r in records if r["stage"] == "analysis"}
    assert by_window[3]["answer"]["anomalies"][0]["end"] == 60  # 75 clamped to the window
    assert by_window[5]["repaired"] and by_window[5]["answer"]["anomalies"] == []
    result = evaluate_llm(
        EvalOptions("CSV", ["fake-vlm"], data_dir=data_dir, plots=False), "fake-vlm"
    )
    pred, dcheck = result["_evals"][0].merged["Pred"], result["_evals"][0].merged["DCheck"]
    expected = np.zeros(180)
    expected[70:80] = 3 + 4 + 2  # windows 1, 2, 3
    expected[80:120] = 2  # window 3's interval clamped to [60, 120)
    np.testing.assert_array_equal(pred.scores, expected)
    expected[70:80], expected[80:120] = 3 + 4 + 3, 0  # window 3 corrected by self-reflection
    np.testing.assert_array_equal(dcheck.scores, expected)
    assert pred.unanswered == 1
    for row in ("Pred", "DCheck"):  # c0 = 9 flags exactly 70..79
        m = result["series"]["toy"][row]
        assert (m["precision"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0)
    assert result["pooled"]["Pred"]["auc_roc"] == pytest.approx(1.0)


def test_rerun_sends_nothing_and_keys_stay_out(setup):
    tmp_path, data_dir, server, models = setup
    assert run_cli(tmp_path, data_dir, models).returncode == 1
    first = server.count
    again = run_cli(tmp_path, data_dir, models)
    assert again.returncode == 1 and "toy/4/0 analysis" in again.stderr
    # Only the failed window is retried (asking again, bypassing its cached reply).
    assert server.count - first == 2 and "already done" in again.stdout


def test_dry_run_sends_nothing(setup):
    tmp_path, data_dir, server, models = setup
    result = run_cli(tmp_path, data_dir, models, "--dry_run")
    assert result.returncode == 0, result.stderr
    assert "8 requests" in result.stdout and server.count == 0  # 1 reference + 7 windows


def test_bad_input(setup, tmp_path):
    _, data_dir, server, models = setup
    assert_user_error(
        run_cli(tmp_path, data_dir, models, "--LLM", "nope"), "unknown --LLM", "fake-vlm"
    )
    result = run_cli(tmp_path, data_dir, models, "--LLM", "fake-text")
    assert_user_error(result, "takes no images", "main_cli_text.py")
    result = run_cli(tmp_path, tmp_path / "empty", models)
    assert_user_error(result, "no processed windows", "make_dataset.py --dataset CSV")
    assert run_cli(tmp_path, data_dir, models, "--limit", "2").returncode == 0
    (data_dir / "processed" / "CSV" / "toy" / "test" / "meta.json").write_text(
        (data_dir / "processed" / "CSV" / "toy" / "test" / "meta.json")
        .read_text()
        .replace('"stride": 20', '"stride": 30')
    )
    assert_user_error(
        run_cli(tmp_path, data_dir, models), "was written for series toy with stride 20"
    )
    assert server.count > 0


def test_interrupted_run_resumes_without_repeating_answers(setup):
    tmp_path, data_dir, server, models = setup
    server.default = {**server.default, "latency": 0.4}
    log = data_dir / "runs" / "detection" / "CSV_fake-vlm_image.jsonl"
    process = subprocess.Popen(
        cli_args(data_dir, models, "--concurrency", "1"),
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(read_records(log)) < 4:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = len(read_records(log))
    assert 4 <= killed_at < 11
    sent_before = [json.dumps(r["body"], sort_keys=True) for r in server.requests]
    server.default = {"answer_fn": server.default["answer_fn"]}
    assert run_cli(tmp_path, data_dir, models, "--concurrency", "1").returncode == 1
    bodies = [json.dumps(r["body"], sort_keys=True) for r in server.requests]
    repeated = len(bodies) - len(set(bodies))
    assert repeated <= 1  # at most the request in flight when the run was killed
    assert len(set(bodies) - set(sent_before)) + len(set(sent_before)) == len(set(bodies))
    resumed = read_records(log)
    keys = [(r["series"], r["window"], r["channel"], r["stage"]) for r in resumed if not r["error"]]
    assert len(keys) == len(set(keys)) == 1 + 6 + 3  # nothing answered twice
    reference = tmp_path / "fresh"
    reference.mkdir()
    fresh_data = make_data(reference)
    server.default = {"answer_fn": scripted(window_of(fresh_data))}
    assert run_cli(reference, fresh_data, models).returncode == 1
    fresh = read_records(fresh_data / "runs" / "detection" / "CSV_fake-vlm_image.jsonl")

    def answers(records):
        return sorted(
            (r["stage"], r["window"], json.dumps(r["answer"])) for r in records if not r["error"]
        )

    assert answers(resumed) == answers(fresh)


def test_api_key_never_reaches_any_written_file(setup):
    tmp_path, data_dir, server, _ = setup
    key = "sk-" + "pipelinekey0123456789" * 2
    models = tmp_path / "keyed.yaml"
    models.write_text(
        f"fake-vlm:\n  provider: openai-compatible\n  model: vlm\n  base_url: {server.url}/v1\n"
        "  key: mine\n  key_env: LMAD_TEST_KEY\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), LMAD_TEST_KEY=key)
    for script, extra in (
        ("main_cli.py", ["--models", str(models), "--normal_reference", "2"]),
        ("evaluation.py", []),
    ):
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / script),
                "--dataset",
                "CSV",
                "--LLM",
                "fake-vlm",
                "--data_dir",
                str(data_dir),
                *extra,
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert result.returncode == (1 if script == "main_cli.py" else 0), result.stderr
        assert key not in result.stdout + result.stderr
    headers = {k.lower(): v for k, v in server.requests[0]["headers"].items()}
    assert headers["authorization"] == f"Bearer {key}"  # it was used...
    written = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".jsonl" for p in written) and any(
        p.name == "report.html" for p in written
    )
    for path in written:  # ...and appears in no run record, cache file, table or report
        assert key.encode() not in path.read_bytes() and key[:12].encode() not in path.read_bytes()


class RecordingAnalyzer(Analyzer):
    """Answers every stage at once and keeps the jobs it was given."""

    name = label = "recording"

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def _answer(self, job: Job, answer: dict) -> dict:
        self.jobs.append(job)
        digest = f"{job.stage}-{job.key}-{job.reference_windows}"
        return job.record(
            status="answered", request_hash=digest, answer=answer, raw="", error=None,
            usage={"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0},
        )  # fmt: skip

    def reference(self, job, refresh):
        return self._answer(job, {"normal_pattern": f"windows {job.reference_windows}"})

    def analyse(self, job, refresh):
        return self._answer(job, {"anomalies": [], "description": "none"})


def test_windows_asked_after_a_seed_change_see_the_reference_that_was_described(tmp_path):
    """A rerun with another --seed keeps the answered reference, so every later window must be
    shown the reference windows that description was written from, not the new seed's."""
    from lmad.series.processed import choose_references

    data_dir = make_data(tmp_path)
    options = RunOptions("CSV", "recording", normal_reference=2, data_dir=data_dir, limit=2)
    first = RecordingAnalyzer()
    TamaRun(options, first).execute(show_progress=False)
    described = first.jobs[0].reference_windows
    run = TamaRun(options, first)
    train = run.work[0].train
    other = next(s for s in range(100) if choose_references(train, 2, s, "toy", 0) != described)
    again = RecordingAnalyzer()
    rerun = RunOptions("CSV", "recording", normal_reference=2, data_dir=data_dir, seed=other)
    TamaRun(rerun, again).execute(show_progress=False)
    asked = [job for job in again.jobs if job.stage == "analysis"]
    assert asked and all(job.stage != "reference" for job in again.jobs)
    assert {job.reference_windows for job in asked} == {described}
