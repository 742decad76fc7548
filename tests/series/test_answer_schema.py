"""The answer schemas agree with the parser, go with every request, and a cut reference fails."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lmad.anomaly_types import ANOMALY_TYPES
from lmad.series.answer_schema import ANOMALY_FIELDS, answer_schema, reference_schema
from lmad.series.answers import Anomaly, parse_answer, parse_reference
from lmad.series.prompts import PromptBuilder
from lmad.series.runlog import read_records
from tests.fake_llm_server import FakeLLMServer
from tests.series.test_pipeline import make_data, models_file, run_cli, scripted, window_of

WINDOW = 40


def test_answer_schema_fields_follow_the_answer_definition():
    schema = answer_schema(WINDOW)
    assert schema["required"] == ["anomalies", "description"]
    item = schema["properties"]["anomalies"]["items"]
    assert tuple(item["required"]) == ANOMALY_FIELDS
    assert tuple(f.name for f in dataclasses.fields(Anomaly)) == ANOMALY_FIELDS
    assert item["additionalProperties"] is False and schema["additionalProperties"] is False
    props = item["properties"]
    assert props["type"]["enum"] == list(ANOMALY_TYPES)
    assert props["confidence"]["enum"] == [1, 2, 3, 4]
    assert (props["start"]["minimum"], props["start"]["maximum"]) == (0, WINDOW - 1)
    assert (props["end"]["minimum"], props["end"]["maximum"]) == (1, WINDOW)
    with pytest.raises(ValueError):
        answer_schema(0)


@pytest.mark.parametrize("kind", ANOMALY_TYPES)
@pytest.mark.parametrize("start, end", [(0, 1), (0, WINDOW), (WINDOW - 1, WINDOW), (12, 30)])
def test_every_extreme_answer_the_schema_allows_parses_unchanged(kind, start, end):
    for confidence in (1, 4):
        item = dict(zip(ANOMALY_FIELDS, (start, end, confidence, kind, "why")))
        text = json.dumps({"anomalies": [item], "description": "d"})
        answer = parse_answer(text, WINDOW, on_out_of_window="reject")
        assert answer.warnings == []
        assert answer.anomalies == [Anomaly(start, end, confidence, kind, "why")]


def test_reference_schema_parses():
    schema = reference_schema()
    assert schema["required"] == ["normal_pattern"]
    assert parse_reference(json.dumps({"normal_pattern": "a sine"})) == "a sine"


def test_every_request_carries_its_answer_schema():
    import numpy as np

    builder = PromptBuilder("text", WINDOW, None, "tama")
    part = builder.window_part(np.arange(WINDOW, dtype=float))
    reference = builder.reference_request([part])
    assert reference.schema == reference_schema()
    analysis = builder.analysis_request(builder.history([part], "normal"), part)
    assert analysis.schema == answer_schema(WINDOW)
    first = {"anomalies": [], "description": "none"}
    reflection = builder.reflection_request(analysis, first, np.arange(WINDOW, dtype=float), [])
    assert reflection.schema == answer_schema(WINDOW)


def test_a_reference_cut_by_the_token_limit_is_not_taken_as_the_normal_pattern(tmp_path):
    data_dir = make_data(tmp_path)
    with FakeLLMServer() as server:
        server.default = {"answer_fn": scripted(window_of(data_dir))}
        cut_then_whole(tmp_path, data_dir, server, models_file(tmp_path, server))


def cut_then_whole(tmp_path, data_dir, server, models) -> None:
    server.push({"answer": '{"normal_pattern": "a sine wave that"}', "finish_reason": "length"})
    result = run_cli(tmp_path, data_dir, models)
    assert result.returncode == 1
    log = data_dir / "runs" / "detection" / "CSV_fake-vlm_image.jsonl"
    references = [r for r in read_records(log) if r["stage"] == "reference"]
    cut = [r for r in references if r["status"] == "failed"]
    assert len(cut) == 1 and cut[0]["truncated"] is True and cut[0]["answer"] is None
    assert "cut off by the generation limit" in cut[0]["error"]
    assert all(r["truncated"] is False for r in references if r["status"] == "answered")
    again = run_cli(tmp_path, data_dir, models)  # asked again; the server now finishes replies
    answered = [r for r in read_records(log) if r["stage"] == "reference"][len(references) :]
    assert [r["status"] for r in answered] == ["answered"], again.stderr
