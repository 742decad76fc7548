"""Bad input to every script: one ``error:`` line, the expected exit code, nothing written outside.

Each case is (script, arguments, files to put in place first, exit code, message fragment). A case
runs in ``<tmp>/a/b/box`` with ``--data_dir data`` where the script has one, so a name that
escapes (``../../x``) would land inside ``<tmp>``, which is compared file by file before and after:
nothing outside ``box/data`` may change, and a refused command leaves ``box/data`` as it was too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, assert_user_error
from tests.series.test_pipeline import make_data

MODEL = "m:\n  provider: openai-compatible\n  model: x\n  base_url: http://127.0.0.1:9/v1\n  key: none\n"
OPENAI = "m:\n  provider: openai\n  model: gpt-4o\n"
RUN = ["--dataset", "CSV", "--LLM", "m", "--models", "models.yaml", "--data_dir", "data"]
EVAL = ["--dataset", "CSV", "--LLM", "m", "--data_dir", "data", "--plots", "False"]
LOG = "data/runs/detection/CSV_m_image.jsonl"


def record(window, confidence=3, **extra) -> str:
    """One answered analysis record of the toy series."""
    answer = {"anomalies": [{"start": 1, "end": 5, "confidence": confidence, "type": "global"}]}
    base = {"dataset": "CSV", "series": "toy", "window": window, "channel": 0,
            "stage": "analysis", "status": "answered", "answer": answer, "error": None,
            "references": 0, "window_size": 60, "stride": 20, "modality": "image"}  # fmt: skip
    return json.dumps({**base, **extra})


FAILED = json.dumps(
    {"dataset": "CSV", "series": "toy", "window": 0, "channel": 0, "stage": "analysis",
     "status": "failed", "answer": None, "error": "no JSON", "references": 0}
)  # fmt: skip

CASES = [
    # make_dataset.py
    ("make_dataset.py", ["--dataset", "CSV", "--data_dir", "data"], {"data/CSV/empty.csv": ""},
     2, "empty"),
    ("make_dataset.py", ["--window_size", "0", "--data_dir", "data"], {}, 2, "--window_size"),
    ("make_dataset.py", ["--stride", "0", "--data_dir", "data"], {}, 2, "--stride"),
    ("make_dataset.py", ["--subtask", "x/../../../escaped", "--data_dir", "data"], {}, 2,
     "--subtask"),
    ("make_dataset.py", ["--data_id_list", "[../../x]", "--data_dir", "data"], {}, 2, "series id"),
    # main_cli.py: flags
    ("main_cli.py", [*RUN, "--limit", "-1"], {"models.yaml": MODEL}, 2, "--limit"),
    ("main_cli.py", [*RUN, "--limit", "0"], {"models.yaml": MODEL}, 2, "--limit"),
    ("main_cli.py", [*RUN, "--timeout", "0"], {"models.yaml": MODEL}, 2, "--timeout"),
    ("main_cli.py", [*RUN, "--concurrency", "0"], {"models.yaml": MODEL}, 2, "--concurrency"),
    ("main_cli.py", [*RUN, "--normal_reference", "-1"], {"models.yaml": MODEL}, 2,
     "--normal_reference"),
    ("main_cli.py", [*RUN, "--run_name", "../../x"], {"models.yaml": MODEL}, 2, "--run_name"),
    ("main_cli.py", [*RUN, "--subtask", "../x"], {"models.yaml": MODEL}, 2, "--subtask"),
    ("main_cli.py", [*RUN, "--data_id_list", "[../toy]"], {"models.yaml": MODEL}, 2, "series id"),
    ("main_cli_text.py", [*RUN, "--limit", "0"], {"models.yaml": MODEL}, 2, "--limit"),
    ("main_cli_text.py", RUN, {"models.yaml": MODEL}, 2, "no text files"),
    ("make_dataset.py", ["--window_size", "300", "--stride", "400", "--data_dir", "data"], {}, 2,
     "--stride 400 is larger than the window size 300"),
    ("make_dataset.py", ["--train_fraction", "1.5", "--data_dir", "data"], {}, 2,
     "--train_fraction"),
    # main_cli.py: models.yaml and api_keys.yaml
    ("main_cli.py", RUN, {"models.yaml": MODEL + "  price_per_million: cheap\n"}, 2,
     "price_per_million: expected a mapping"),
    ("main_cli.py", RUN, {"models.yaml": MODEL + "  limits: [60, 1000]\n"}, 2,
     "limits: expected a mapping"),
    ("main_cli.py", RUN, {"models.yaml": MODEL + '  limits: {requests_per_minute: "fast"}\n'}, 2,
     "limits.requests_per_minute"),
    ("main_cli.py", RUN, {"models.yaml": MODEL.replace("http://127.0.0.1:9/v1", "12345")}, 2,
     "base_url"),
    ("main_cli.py", RUN, {"models.yaml": MODEL + '  images: "false"\n'}, 2, "images: expected true"),
    ("main_cli.py", RUN, {"models.yaml": MODEL + "  json_mod: true\n"}, 2, "unknown key 'json_mod'"),
    ("main_cli.py", RUN, {"models.yaml": MODEL + "  limit: {requests_per_minute: 60}\n"}, 2,
     "unknown key 'limit'"),
    ("main_cli.py", [*RUN, "--keys", "keys.yaml"],
     {"models.yaml": OPENAI, "keys.yaml": "openai:\n  api_key: [sk-abcdefghijkl, sk-mnopqrstuvwx]\n"},
     2, "api_key: expected one string"),
    # main_cli.py: processed files checked before anything is sent
    ("main_cli.py", RUN, {"models.yaml": MODEL, "data/processed/CSV/toy/test/image/3-0.png": "GIF"},
     2, "3-0.png: not a PNG"),
    ("main_cli.py", [*RUN, "--dry_run"],
     {"models.yaml": MODEL, "data/processed/CSV/toy/test/image/3-0.png": None}, 2, "3-0.png: missing"),
    # evaluation.py
    ("evaluation.py", EVAL, {LOG: record(999) + "\n"}, 2, "CSV_m_image.jsonl:1: window 999"),
    ("evaluation.py", EVAL, {LOG: record(0) + "\n" + record(1, "high") + "\n"}, 2,
     "CSV_m_image.jsonl:2: anomaly 0: confidence"),
    ("evaluation.py", EVAL, {LOG: "[1, 2]\n"}, 2, "CSV_m_image.jsonl:1: expected a JSON object"),
    ("evaluation.py", EVAL, {LOG: FAILED + "\n"}, 2, "no successful analysis answer"),
    ("evaluation.py", [*EVAL, "--pat", "1.5"], {}, 2, "--pat"),
    ("evaluation.py", [*EVAL, "--normalised_threshold", "2"], {}, 2, "--normalised_threshold"),
    ("evaluation.py", [*EVAL, "--c0", "0"], {}, 2, "--c0"),
    ("evaluation.py", [*EVAL, "--run_name", "../x"], {}, 2, "--run_name"),
    # ablation_eval.py
    ("ablation_eval.py", ["--ablation", "references", "--dataset", "../x", "--data_dir", "data"],
     {}, 2, "--dataset"),
    ("ablation_eval.py", ["--ablation", "references", "--concurrency", "0"], {}, 2, "--concurrency"),
    # the workflow and process-trace scripts
    ("data_processing/flowbench.py", ["--raw", "runs", "--name", "processed/UCR/135/test",
                                      "--data_dir", "data"], {"runs/x.csv": "a\n1\n"}, 2, "--name"),
    ("data_processing/flowbench.py", ["--raw", "runs", "--name", "../../fb_escaped",
                                      "--data_dir", "data"], {"runs/x.csv": "a\n1\n"}, 2, "--name"),
    ("data_processing/process_logs.py", ["--name", "../../../pl_escaped", "--data_dir", "data"],
     {}, 2, "--name"),
    ("data_processing/synthetic_workflow.py", ["--name", ".hidden", "--data_dir", "data"], {}, 2,
     "--name"),
    ("train_classifier.py", ["--dataset", "../x", "--data_dir", "data"], {}, 2, "--dataset"),
    ("fine_tune_llama3.py", ["--max_steps", "0"], {}, 2, "--max_steps"),
    ("eval.py", ["--limit", "0"], {}, 2, "--limit"),
    ("learning_curve.py", ["--sample", "0"], {}, 2, "--sample"),
    ("learning_curve.py", ["--budgets", "10,2ep,1ep", "--train_path", "t.csv"],
     {"t.csv": "trace,label,raw_cause,cause,evelabel\n" + '"a , b",normal,,,[0 0]\n' * 16}, 2,
     "must increase"),
]  # fmt: skip


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    """The toy CSV series processed once (image modality), copied into every case's box."""
    return make_data(tmp_path_factory.mktemp("template"))


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("script", "args", "files", "code", "fragment"),
    CASES,
    ids=[f"{c[0].split('/')[-1]}:{' '.join(c[1][-2:])}:{c[4][:20]}" for c in CASES],
)
def test_bad_input(tmp_path, processed, script, args, files, code, fragment):
    box = tmp_path / "a" / "b" / "box"
    shutil.copytree(processed, box / "data")
    for name, content in files.items():
        path = box / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.unlink()
        else:
            path.write_text(content)
    before = snapshot(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.endswith("API_KEY")}
    result = subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=box,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(env, PYTHONPATH=str(ROOT)),
    )
    assert result.returncode == code
    assert_user_error(result, fragment)
    after = snapshot(tmp_path)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert not changed, f"files changed by a refused command: {sorted(changed)[:5]}"
    assert "sk-abcdefghijkl" not in result.stderr + result.stdout
