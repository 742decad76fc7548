"""Bounding answer schemas to a token budget: the longest reply is counted exactly."""

from __future__ import annotations

import copy
import json
import re

import pytest

from lmad.llm.schema_budget import (
    MAX_ITEMS,
    MAX_STRING,
    MIN_STRING,
    TEXT_PATTERN,
    bounded_schema,
    fit_schema,
    longest_reply,
)
from lmad.series.answer_schema import answer_schema, reference_schema


def longest_value(schema: dict):
    """The longest value ``schema`` allows, built directly (not by :func:`longest_reply`)."""
    if "enum" in schema:
        return max(schema["enum"], key=lambda v: len(json.dumps(v)))
    kind = schema["type"]
    if kind == "string":
        return "a" * schema["maxLength"]
    if kind == "integer":
        return max((schema["minimum"], schema["maximum"]), key=lambda v: len(str(v)))
    if kind == "array":
        return [longest_value(schema["items"])] * schema["maxItems"]
    return {name: longest_value(sub) for name, sub in schema["properties"].items()}


def compact(value) -> str:
    return json.dumps(value, separators=(", ", ": "))


def test_by_hand():
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": -5, "maximum": 40},
            "s": {"type": "string", "maxLength": 3, "pattern": TEXT_PATTERN},
        },
        "additionalProperties": False,
    }
    # {"n": -5, "s": "aaa"}: 2 braces + '"n": ' 5 + 2 + ', ' 2 + '"s": ' 5 + 5 = 21
    assert longest_reply(schema) == 21 == len(compact({"n": -5, "s": "aaa"}))


@pytest.mark.parametrize("schema", [answer_schema(300), answer_schema(7), reference_schema()])
def test_longest_reply_is_the_longest_value(schema):
    bounded = bounded_schema(schema)
    assert longest_reply(bounded) == len(compact(longest_value(bounded)))


def test_bounds_added_kept_when_lower_and_the_input_untouched():
    schema = answer_schema(300)
    original = copy.deepcopy(schema)
    bounded = bounded_schema(schema, max_string=100)
    anomalies = bounded["properties"]["anomalies"]
    assert anomalies["maxItems"] == MAX_ITEMS
    explanation = anomalies["items"]["properties"]["explanation"]
    assert explanation["maxLength"] == 100 and explanation["pattern"] == TEXT_PATTERN
    assert "pattern" not in anomalies["items"]["properties"]["type"]  # an enum is bounded already
    assert bounded_schema(schema)["properties"]["description"]["maxLength"] == 1200  # schema's own
    assert bounded_schema({"type": "string"})["maxLength"] == MAX_STRING
    assert schema == original


@pytest.mark.parametrize("budget", [200, 255, 511, 1023, 4095])
@pytest.mark.parametrize("schema", [answer_schema(300), reference_schema()])
def test_fit_schema_fits_the_budget(schema, budget):
    fitted = fit_schema(schema, budget)
    assert longest_reply(fitted) <= budget
    assert longest_reply(fit_schema(schema, 10**6)) == longest_reply(bounded_schema(schema))


def test_fit_stops_at_the_floors():
    fitted = fit_schema(answer_schema(300), 10)  # cannot fit: shrinks as far as it goes
    anomalies = fitted["properties"]["anomalies"]
    assert anomalies["maxItems"] == 1
    assert anomalies["items"]["properties"]["explanation"]["maxLength"] == MIN_STRING
    assert fitted["properties"]["description"]["maxLength"] == MIN_STRING


def test_unbounded_schemas_have_no_longest_reply():
    assert longest_reply({"type": "object"}) is None
    assert longest_reply({"type": "string", "maxLength": 5}) is None  # escapes could lengthen it
    assert longest_reply({"type": "array", "items": {"type": "boolean"}}) is None


def test_text_pattern_is_printable_ascii_without_quote_or_backslash():
    allowed = "".join(chr(c) for c in range(32, 127) if chr(c) not in '"\\')
    assert re.fullmatch(TEXT_PATTERN, allowed)
    for bad in ('"', "\\", "\n", "é", "\x7f"):
        assert not re.fullmatch(TEXT_PATTERN, bad)
