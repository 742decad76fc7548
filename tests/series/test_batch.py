"""``main_cli.py --batch`` against the fake server's files and batches endpoints: the same run log as
a live run, expiry, polling without resubmitting, repair turns in a later batch, batch prices."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from lmad.llm.cache import cache_under
from lmad.series.analyzers import open_analyzer
from lmad.series.batch_run import IN_FLIGHT, BatchRun
from lmad.series.pipeline import RunOptions, TamaRun
from lmad.series.runlog import read_records
from tests.conftest import ROOT, assert_user_error
from tests.fake_llm_server import FakeLLMServer
from tests.series.test_pipeline import make_data, models_file, scripted, window_of

KEY = "sk-" + "batchkey0123456789" * 2  # built at run time: no key-like literal in the tree
LOG = ("runs", "detection", "CSV_fake-gpt_image.jsonl")
COMPARED = ("status", "answer", "request_hash", "reference_hash", "analysis_hash", "repaired",
            "raw", "error", "warnings", "reference_windows")  # fmt: skip
PRICE = {"input": 2.5, "output": 10.0}


def batch_models(tmp_path, server) -> str:
    """fake-gpt: an OpenAI model (so it has a Batch API) served by the fake server."""
    path = tmp_path / "batch-models.yaml"
    path.write_text(
        f"fake-gpt:\n  provider: openai\n  model: vlm\n  base_url: {server.url}/v1\n"
        f"  price_per_million: {{input: {PRICE['input']}, output: {PRICE['output']}}}\n"
    )
    return str(path)


def keys_file(tmp_path) -> str:
    path = tmp_path / "keys.yaml"
    path.write_text(f"openai: {{api_key: '{KEY}'}}\n")
    return str(path)


def run_cli(tmp_path, data_dir, *extra, llm="fake-gpt", models=None):
    args = ["--dataset", "CSV", "--LLM", llm, "--data_dir", str(data_dir), "--normal_reference",
            "2", "--models", models or str(tmp_path / "batch-models.yaml"),
            "--keys", str(tmp_path / "keys.yaml"), *extra]  # fmt: skip
    return subprocess.run(
        [sys.executable, str(ROOT / "main_cli.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def by_item(records: list[dict]) -> dict[tuple, dict]:
    return {(r["stage"], r["series"], r["window"], r["channel"]): r for r in records}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The toy run once live (``--run_name live``, no cache) and once by batch, same server."""
    tmp_path = tmp_path_factory.mktemp("batch")
    data_dir = make_data(tmp_path)
    with FakeLLMServer() as server:
        server.default = {"answer_fn": scripted(window_of(data_dir))}
        batch_models(tmp_path, server)
        keys_file(tmp_path)
        live = run_cli(tmp_path, data_dir, "--run_name", "live", "--no_cache")
        live_count = server.count
        batch = run_cli(tmp_path, data_dir, "--batch", "--batch_poll", "0.02")
        yield {
            "tmp": tmp_path, "data": data_dir, "server": server, "live": live, "batch": batch,
            "live_count": live_count, "count_after_batch": server.count,
            "live_records": read_records(data_dir / "runs" / "detection" / "live.jsonl"),
            "batch_records": read_records(data_dir.joinpath(*LOG)),
        }  # fmt: skip


def test_batch_run_writes_the_records_a_live_run_writes(pair):
    assert pair["live"].returncode == 1, pair["live"].stderr  # window 4 never answers
    assert pair["batch"].returncode == 1, pair["batch"].stderr
    assert pair["count_after_batch"] == pair["live_count"]  # no live request in batch mode
    live, batch = by_item(pair["live_records"]), by_item(pair["batch_records"])
    assert len(pair["batch_records"]) == len(pair["live_records"]) == 11
    assert live.keys() == batch.keys()
    for item, record in live.items():
        assert {k: batch[item].get(k) for k in COMPARED} == {k: record.get(k) for k in COMPARED}
    assert [r["window"] for r in pair["batch_records"] if r["status"] == "failed"] == [4]
    out = pair["batch"].stdout
    assert "analysis: 6 of 7 answered (6 new, 0 already done), 1 failed" in out
    assert "13 requests answered by batch" in out and "13 requests submitted in 3 batches" in out


def test_stages_go_in_order_and_repairs_in_the_batch_after_their_reply(pair):
    api = pair["server"].batch_api
    batches = list(api.batches)
    assert len(batches) == 3
    tasks = [Counter(_task(line["body"]) for line in api.lines(b)) for b in batches]
    assert tasks == [
        {"reference": 1},
        {"analysis": 7},
        {"repair": 2, "reflection": 3},  # windows 4 and 5; windows 1, 2, 3 found anomalies
    ]
    analysed = [line["body"]["messages"] for line in api.lines(batches[1])]
    for line in api.lines(batches[2]):
        if _task(line["body"]) == "repair":  # the conversation it repairs went in batch 2
            assert line["body"]["messages"][:-2] in analysed


def test_answers_cost_the_batch_price_once(pair):
    live = by_item(pair["live_records"])
    cost = 0.0
    for item, record in by_item(pair["batch_records"]).items():
        # a repaired window counts both its replies (sent in two batches), as a live record does
        usage, full = record["usage"], live[item]["usage"]
        assert usage["prompt_tokens"] == full["prompt_tokens"] > 0
        assert usage["completion_tokens"] == full["completion_tokens"] > 0
        assert usage["cost_usd"] == pytest.approx(full["cost_usd"] / 2)
        cost += usage["cost_usd"]
    assert by_item(pair["batch_records"])[("analysis", "toy", 5, 0)]["repaired"]
    assert f"${cost:.4f} at the batch price (50% off)" in pair["batch"].stdout
    assert f"${cost:.4f}" in pair["batch"].stdout.split("usage:")[1].splitlines()[0]


def test_no_key_in_any_file_written(pair):
    calls = pair["server"].batch_api.calls
    assert calls and all(h.get("authorization") == f"Bearer {KEY}" for _, _, h in calls)
    written = [p for p in pair["data"].rglob("*") if p.is_file() and "processed" not in p.parts]
    assert any(p.name.endswith(".batch.json") for p in written)
    assert any(p.name.endswith(".output.jsonl") for p in written)
    for path in written:
        text = path.read_bytes()
        assert KEY.encode() not in text and KEY[:12].encode() not in text, path


def test_rerun_asks_only_the_failed_window_again_in_a_new_batch(pair):
    api, tmp_path, data_dir = pair["server"].batch_api, pair["tmp"], pair["data"]
    before = len(api.answered)
    again = run_cli(tmp_path, data_dir, "--batch", "--batch_poll", "0.02")
    assert again.returncode == 1, again.stderr
    new = [_task(body) for _, _, body in api.answered[before:]]
    assert new == ["analysis", "repair"]  # window 4, asked afresh (not its stale batch reply)
    records = read_records(data_dir.joinpath(*LOG))
    assert [(r["window"], r["status"]) for r in records[11:]] == [(4, "failed")]


def test_expired_batch_is_completed_by_the_next_batch_without_repeats(tmp_path):
    data_dir = make_data(tmp_path)
    with FakeLLMServer() as server:
        server.default = {"answer_fn": scripted(window_of(data_dir))}
        batch_models(tmp_path, server)
        keys_file(tmp_path)
        server.batch_api.plan({}, {"expire_after": 3})  # the analysis batch expires after 3 of 7
        result = run_cli(tmp_path, data_dir, "--batch", "--batch_poll", "0.02")
        api = server.batch_api
    assert result.returncode == 1, result.stderr
    statuses = [b["status"] for b in api.batches.values()]
    assert statuses[:2] == ["completed", "expired"] and set(statuses[2:]) == {"completed"}
    answered = Counter(custom_id for _, custom_id, _ in api.answered)
    assert set(answered.values()) == {1}  # no request answered twice
    assert len(answered) == 13  # and every request of a live run answered once
    expired = set(list(api.batches)[1:2])
    second = [k for b, k, _ in api.answered if b in expired]
    later = {line["custom_id"] for b in list(api.batches)[2:] for line in api.lines(b)}
    assert len(second) == 3 and not later & set(second)
    analyses = [k for b in list(api.batches)[1:2] for k in (x["custom_id"] for x in api.lines(b))]
    assert set(analyses) - set(second) <= later  # the 4 expired ones went in a later batch
    records = read_records(data_dir.joinpath(*LOG))
    assert Counter(r["status"] for r in records) == {"answered": 10, "failed": 1}


def test_rerun_while_a_batch_is_in_progress_polls_it(tmp_path):
    data_dir = make_data(tmp_path)
    with FakeLLMServer() as server:
        server.default = {"answer_fn": scripted(window_of(data_dir))}
        batch_models(tmp_path, server)
        keys_file(tmp_path)
        api = server.batch_api.plan({"polls": 3})
        first = run_cli(tmp_path, data_dir, "--batch", "--batch_wait", "0")
        assert first.returncode == IN_FLIGHT, first.stderr
        assert (
            "still in flight: batch_" in first.stderr and "rerun the same command" in first.stderr
        )
        second = run_cli(tmp_path, data_dir, "--batch", "--batch_wait", "0")
        assert second.returncode == IN_FLIGHT, second.stderr
        assert "in_progress" in second.stderr
        assert len(api.batches) == 1 and not api.answered  # polled, not submitted again
        polls = [p for m, p, _ in api.calls if m == "GET" and "/batches/" in p]
        assert len(polls) == 1
        done = run_cli(tmp_path, data_dir, "--batch", "--batch_poll", "0.02")
        assert done.returncode == 1, done.stderr
        assert len(api.batches) == 3 and len(api.answered) == 13


def test_a_rejected_batch_stops_the_run_and_a_refused_item_is_a_failed_record(tmp_path):
    data_dir = make_data(tmp_path)
    with FakeLLMServer() as server:
        server.default = {"answer_fn": scripted(window_of(data_dir))}
        batch_models(tmp_path, server)
        keys_file(tmp_path)
        server.batch_api.plan({"fail": "Enqueued token limit reached"})
        rejected = run_cli(tmp_path, data_dir, "--batch", "--batch_poll", "0.02")
        assert_user_error(rejected, "batch_", "rejected by openai", "token limit", "again")
        server.push({"status": 400})  # the reference's line, in the batch the rerun submits
        refused = run_cli(tmp_path, data_dir, "--batch", "--batch_poll", "0.02")
        assert len(server.batch_api.batches) == 2
    assert refused.returncode == 1, refused.stderr
    records = read_records(data_dir.joinpath(*LOG))
    assert [(r["stage"], r["status"]) for r in records] == [("reference", "failed")] + [
        ("analysis", "blocked")
    ] * 7
    assert "HTTP 400: fake 400" in records[0]["error"] and KEY not in records[0]["error"]


def test_stopped_between_submitting_and_recording_finds_its_batch(tmp_path, monkeypatch):
    data_dir = make_data(tmp_path)
    with FakeLLMServer() as server:
        server.default = {"answer_fn": scripted(window_of(data_dir))}
        models, keys = batch_models(tmp_path, server), keys_file(tmp_path)

        def batch_run() -> BatchRun:
            analyzer = open_analyzer("fake-gpt", None, models, keys, cache_under(data_dir))
            options = RunOptions("CSV", "fake-gpt", data_dir=data_dir, normal_reference=2)
            return BatchRun(TamaRun(options, analyzer), analyzer.client, sleep=lambda s: None)

        stopped = batch_run()
        real = stopped.api.submit

        def submit_then_stop(file_id):
            real(file_id)
            raise KeyboardInterrupt  # Ctrl-C after the provider took it, before it was recorded

        monkeypatch.setattr(stopped.api, "submit", submit_then_stop)
        with pytest.raises(KeyboardInterrupt):
            stopped.step()
        state = json.loads(stopped.state.path.read_text())
        assert [b["id"] for b in state["batches"]] == [None]
        outcome = batch_run().wait(None, 0.0)
        api = server.batch_api
    assert outcome.exit_code == 1 and not outcome.in_flight
    assert len(api.batches) == 3  # the stopped one was found, not submitted again
    assert set(Counter(k for _, k, _ in api.answered).values()) == {1}


@pytest.mark.parametrize(
    ("llm", "needle"),
    [("fake-vlm", "no Batch API"), ("hf:some/model", "runs in this process"),
     ("offline", "offline sends none")],
)  # fmt: skip
def test_batch_needs_a_provider_with_a_batch_api(tmp_path, llm, needle):
    with FakeLLMServer() as server:
        models = models_file(tmp_path, server)  # fake-vlm: an openai-compatible server
        keys_file(tmp_path)
        result = run_cli(tmp_path, tmp_path / "data", "--batch", llm=llm, models=models)
        assert server.count == 0 and not server.batch_api.calls
    assert_user_error(result, "--batch", needle)


def _task(body: dict) -> str:
    """The stage of a request body as the scripted server sees it."""
    users = [m for m in body["messages"] if m["role"] == "user"]
    last = users[-1]["content"]
    text = last if isinstance(last, str) else " ".join(c.get("text", "") for c in last)
    if "could not be used" in text or "Answer again with only" in text:
        return "repair"
    if "This is Task 1" in text:
        return "reference"
    return "reflection" if "Self-reflection" in text else "analysis"


def test_dry_run_with_batch_prices_at_the_batch_price(tmp_path):
    data_dir = make_data(tmp_path)
    with FakeLLMServer() as server:
        batch_models(tmp_path, server)
        keys_file(tmp_path)
        result = run_cli(tmp_path, data_dir, "--batch", "--dry_run")
        assert server.count == 0 and server.batch_api.batches == {}
    assert result.returncode == 0, result.stderr
    live = float(re.search(r"tokens, ~\$([\d.]+); nothing was sent", result.stdout)[1])
    batch = float(
        re.search(r"with --batch: ~\$([\d.]+) at the batch price \(50% off\)", result.stdout)[1]
    )
    assert live > 0 and abs(batch - live / 2) <= 0.006  # both rounded to cents
