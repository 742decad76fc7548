"""A scripted fake LLM for the toy CSV series, and running the scripts on it as a user would.

:class:`Script` answers by (series, window): windows in ``found`` get one anomaly, the others none,
and a stage listed in ``broken`` gets replies that are not JSON (so it fails after its repair).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

from tests.conftest import ROOT

FOUND = {"anomalies": [{"start": 5, "end": 15, "confidence": 4, "type": "shapelet"}]}
NONE_FOUND = {"anomalies": [], "description": "normal"}
LOG = ("runs", "detection", "CSV_fake-vlm_image.jsonl")


def image_index(data_dir) -> dict[str, tuple[str, int]]:
    """base64 of every test PNG -> (series, window)."""
    out = {}
    for png in (data_dir / "processed" / "CSV").glob("*/test/image/*.png"):
        series = png.parent.parent.parent.name
        out[base64.b64encode(png.read_bytes()).decode()] = (series, int(png.stem.split("-")[0]))
    return out


def _text(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else " ".join(c.get("text", "") for c in content)


class Script:
    """Answers by (series, window); a stage listed in ``broken`` gets unparseable replies."""

    def __init__(self, data_dir, found=(1, 2, 3)) -> None:
        self.images = image_index(data_dir)
        self.train = {
            base64.b64encode(p.read_bytes()).decode(): p.parent.parent.parent.name
            for p in (data_dir / "processed" / "CSV").glob("*/train/image/*.png")
        }
        self.found = set(found)
        self.broken: set[tuple[str, str, int | None]] = set()
        self.asked: list[tuple[str, str, int | None]] = []

    def __call__(self, body: dict) -> str:
        users = [m for m in body["messages"] if m["role"] == "user"]
        task2 = [m for m in users if "This is Task 2" in _text(m)]
        if not task2:  # reference learning (or the repair turn that follows it)
            urls = [c["image_url"]["url"] for c in users[0]["content"] if c["type"] == "image_url"]
            key = ("reference", self.train[urls[0].split(",", 1)[1]], None)
            self.asked.append(key)
            if key in self.broken or ("reference", "*", None) in self.broken:
                return "{broken"
            return json.dumps({"normal_pattern": "a sine wave with period 20"})
        url = next(c["image_url"]["url"] for c in task2[0]["content"] if c["type"] == "image_url")
        series, window = self.images[url.split(",", 1)[1]]
        reflection = any("Self-reflection" in _text(m) for m in users)
        stage = "reflection" if reflection else "analysis"
        self.asked.append((stage, series, window))
        if (stage, series, window) in self.broken:
            return "not JSON at all"
        return json.dumps(FOUND if window in self.found else NONE_FOUND)

    def count(self, stage: str) -> int:
        return sum(1 for s, *_ in self.asked if s == stage)


def command(data_dir, models, *extra, script="main_cli.py", llm="fake-vlm") -> list[str]:
    """The command line of ``script`` on the toy CSV data with the fake model (2 references)."""
    args = ["--dataset", "CSV", "--data_dir", str(data_dir), *extra]
    if script.startswith("main_cli"):
        args += ["--LLM", llm, "--models", models]
        if "--normal_reference" not in extra:
            args += ["--normal_reference", "2"]
    else:
        args += ["--LLM", llm]
    return [sys.executable, str(ROOT / script), *args]


def run(tmp_path, data_dir, models, *extra, script="main_cli.py", llm="fake-vlm"):
    """Run :func:`command` as a user would, capturing its output."""
    return subprocess.run(
        command(data_dir, models, *extra, script=script, llm=llm),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def records_of(data_dir) -> list[dict]:
    """Every whole record of the toy run log (none when there is no log yet)."""
    path = data_dir.joinpath(*LOG)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
