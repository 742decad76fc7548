"""Answer parsing: JSON extraction, TAMA's legacy forms, normalisation, window checks, repair."""

from __future__ import annotations

import json

import pytest

from lmad.anomaly_types import ANOMALY_TYPES
from lmad.series.answers import (
    ANSWER_SCHEMA_TEXT,
    Anomaly,
    Answer,
    AnswerError,
    extract_json,
    parse_answer,
    parse_legacy_index,
    parse_reference,
    repair_prompt,
)


def design(*anomalies: dict, description: str = "d") -> dict:
    return {"anomalies": list(anomalies), "description": description}


def item(start, end, confidence=3, type_="trend", explanation="e") -> dict:
    return {
        "start": start,
        "end": end,
        "confidence": confidence,
        "type": type_,
        "explanation": explanation,
    }


# ---------------------------------------------------------------- extract_json


@pytest.mark.parametrize(
    "text",
    [
        '{"anomalies": [], "description": "flat"}',
        '  \n{"anomalies": [], "description": "flat"}\n ',
        '```json\n{"anomalies": [], "description": "flat"}\n```',
        '```\n{"anomalies": [], "description": "flat"}\n```',
        'Here is my answer:\n```json\n{"anomalies": [], "description": "flat"}\n```\nThanks.',
        'Sure. {"anomalies": [], "description": "flat"} Hope this helps!',
        '{"anomalies": [], "description": "flat",}',
        '{"anomalies": [ ], "description": "flat" , }',
        'I think {"anomalies": [], "description": "flat",\n} is it.',
    ],
)
def test_extract_json_finds_the_object(text):
    assert extract_json(text) == {"anomalies": [], "description": "flat"}


def test_extract_json_trailing_comma_in_list():
    assert extract_json('{"a": [1, 2, 3,], "b": {"c": 1,},}') == {"a": [1, 2, 3], "b": {"c": 1}}


def test_extract_json_keeps_commas_inside_strings():
    assert extract_json('{"a": "x,}", "b": [1,]}') == {"a": "x,}", "b": [1]}


def test_extract_json_braces_and_escaped_quotes_inside_strings():
    text = 'Answer: {"description": "a } brace, a { brace and a \\"quote}\\"", "anomalies": []} end'
    assert extract_json(text) == {
        "description": 'a } brace, a { brace and a "quote}"',
        "anomalies": [],
    }


def test_extract_json_skips_unparseable_braces_in_prose():
    text = 'Use {x} as a placeholder. Then {"anomalies": [], "description": "ok"} and {"other": 1}'
    assert extract_json(text) == {"anomalies": [], "description": "ok"}


def test_extract_json_nested_objects():
    text = 'prefix {"anomalies": [{"start": 1, "end": 2}], "meta": {"k": {"j": 1}}} suffix'
    assert extract_json(text) == {"anomalies": [{"start": 1, "end": 2}], "meta": {"k": {"j": 1}}}


def test_extract_json_wraps_a_top_level_list():
    assert extract_json("[[10, 20], [45]]") == {"anomalies": [[10, 20], [45]]}
    assert extract_json('```json\n[{"start": 1}]\n```') == {"anomalies": [{"start": 1}]}
    assert extract_json('The list: [{"start": 1}] done') == {"anomalies": [{"start": 1}]}


def test_extract_json_ignores_plain_lists_in_prose():
    text = 'Values [1, 2] look fine; {"anomalies": []}'
    assert extract_json(text) == {"anomalies": []}


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_extract_json_empty_reply(text):
    with pytest.raises(AnswerError, match="empty"):
        extract_json(text)


@pytest.mark.parametrize("text", ["no json here at all", "42", '"a string"', "[1, 2, 3] in prose"])
def test_extract_json_no_object(text):
    with pytest.raises(AnswerError, match="no JSON object found in the reply"):
        extract_json(text)


def test_extract_json_broken_object_reports_the_json_error():
    with pytest.raises(AnswerError, match="not valid JSON") as info:
        extract_json('Here: {"anomalies": [ {"start": 1 "end": 2} ]}')
    assert "delimiter" in str(info.value)


def test_extract_json_truncated_object():
    with pytest.raises(AnswerError):
        extract_json('{"anomalies": [{"start": 1, "end": 2')


# ---------------------------------------------------------------- legacy index strings


def test_legacy_full_form():
    got = parse_legacy_index("[(10, 20)/3/trend, (45)/4/global]", 1, "none")
    assert got == [Anomaly(10, 20, 3, "trend"), Anomaly(45, 46, 4, "global")]


def test_legacy_without_type_uses_default():
    got = parse_legacy_index("[(10, 20)/3, (45)/2]", 1, "shapelet")
    assert got == [Anomaly(10, 20, 3, "shapelet"), Anomaly(45, 46, 2, "shapelet")]


def test_legacy_without_confidence_uses_default():
    got = parse_legacy_index("[(10, 20), (45)]", 2, "contextual")
    assert got == [Anomaly(10, 20, 2, "contextual"), Anomaly(45, 46, 2, "contextual")]


@pytest.mark.parametrize("text", ["[]", "  [ ]  ", "", "None"])
def test_legacy_empty(text):
    assert parse_legacy_index(text, 1, "global") == []


def test_legacy_whitespace_and_floats():
    got = parse_legacy_index("  [ ( 12.0 ,30.0 ) / 2.0 / Level Shift ,( 7 )/ 1 /spike ]  ", 1, "x")
    assert got == [Anomaly(12, 30, 2, "trend"), Anomaly(7, 8, 1, "global")]


def test_legacy_float_rounding():
    assert parse_legacy_index("[(9.6, 20.4)/3/trend]", 1, "x") == [Anomaly(10, 20, 3, "trend")]


def test_legacy_square_brackets_items():
    got = parse_legacy_index("[[10, 20]/3/trend, [45]/4/global]", 1, "x")
    assert got == [Anomaly(10, 20, 3, "trend"), Anomaly(45, 46, 4, "global")]


def test_legacy_type_none_is_inferred():
    got = parse_legacy_index("[(10, 20)/3/none, (45)/4]", 1, "none")
    assert got == [Anomaly(10, 20, 3, "shapelet"), Anomaly(45, 46, 4, "global")]


def test_legacy_unparseable_item_is_named():
    with pytest.raises(AnswerError, match=r"\(10 to 20\)/3/trend"):
        parse_legacy_index("[(5)/2/global, (10 to 20)/3/trend]", 1, "global")


def test_legacy_unknown_type():
    with pytest.raises(
        AnswerError, match="use one of global, contextual, frequency, trend, shapelet"
    ):
        parse_legacy_index("[(10, 20)/3/weird]", 1, "global")


# ---------------------------------------------------------------- TAMA dict forms


def test_tama_string_index():
    reply = json.dumps(
        {
            "abnormal_index": "[(10, 20)/3/trend, (45)/4/global]",
            "abnormal_description": "a drop then a spike",
            "abnormal_type_description": "trend then global",
        }
    )
    answer = parse_answer(reply, 600)
    assert answer.anomalies == [
        Anomaly(10, 20, 3, "trend", "trend then global"),
        Anomaly(45, 46, 4, "global", "trend then global"),
    ]
    assert answer.description == "a drop then a spike"
    assert answer.warnings == []


def test_tama_top_level_confidence_and_type_are_defaults():
    data = {"abnormal_index": "[(10, 20), (45)/1]", "confidence": 3, "abnormal_type": "shapelet"}
    assert parse_answer(data, 100).anomalies == [
        Anomaly(10, 20, 3, "shapelet"),
        Anomaly(45, 46, 1, "shapelet"),
    ]


def test_tama_list_index():
    data = {"abnormal_index": [[10, 20], 45, [60]], "confidence": "2", "abnormal_type": "Trend"}
    assert parse_answer(data, 100).anomalies == [
        Anomaly(10, 20, 2, "trend"),
        Anomaly(45, 46, 2, "trend"),
        Anomaly(60, 61, 2, "trend"),
    ]


def test_tama_type_none_with_intervals_infers_and_warns():
    data = {"abnormal_index": "[(10, 20), (45)]", "confidence": 2, "abnormal_type": "none"}
    answer = parse_answer(data, 100)
    assert answer.anomalies == [Anomaly(10, 20, 2, "shapelet"), Anomaly(45, 46, 2, "global")]
    assert len(answer.warnings) == 2


def test_tama_no_confidence_anywhere_raises():
    with pytest.raises(AnswerError, match="anomaly 0: confidence missing"):
        parse_answer({"abnormal_index": "[(10, 20)/trend]"}, 100)


def test_tama_has_abnormality_false():
    data = {
        "has_abnormality": "False",
        "abnormal_index": "[]",
        "abnormal_type": "none",
        "abnormal_description": "nothing unusual",
    }
    answer = parse_answer(data, 600)
    assert answer.anomalies == []
    assert answer.description == "nothing unusual"
    assert parse_answer({"has_abnormality": False}, 600).anomalies == []


def test_tama_reflection_form():
    reply = '{"corrected_abnormal_index": "[(100, 140)/4/frequency]", "reason": "period halves"}'
    answer = parse_answer(reply, 600)
    assert answer.anomalies == [Anomaly(100, 140, 4, "frequency")]
    assert answer.description == "period halves"


def test_tama_reflection_index_wins_over_first_answer():
    data = {"abnormal_index": "[(1, 2)/1/global]", "corrected_abnormal_index": "[]"}
    assert parse_answer(data, 600).anomalies == []


def test_no_anomaly_key_at_all():
    with pytest.raises(AnswerError, match='no "anomalies"'):
        parse_answer('{"foo": 1}', 100)


# ---------------------------------------------------------------- answer schema and normalisation


def test_design_schema_round_trip_values():
    answer = parse_answer(design(item(5, 9, 2, "contextual", "odd dip")), 50)
    assert answer.anomalies == [Anomaly(5, 9, 2, "contextual", "odd dip")]
    assert answer.description == "d"
    assert answer.warnings == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("seasonal", "frequency"),
        ("Seasonality", "frequency"),
        ("period", "frequency"),
        ("periodic", "frequency"),
        ("point", "global"),
        ("outlier", "global"),
        ("spike", "global"),
        ("Global Outlier", "global"),
        ("level shift", "trend"),
        ("level_shift", "trend"),
        ("level", "trend"),
        ("shift", "trend"),
        ("shape", "shapelet"),
        ("contextual outlier", "contextual"),
        ("  TREND  ", "trend"),
        ("trend anomaly", "trend"),
        ("point anomaly", "global"),
        ("Frequency Anomaly", "frequency"),
        ("spike outlier", "global"),
        ("shapelet", "shapelet"),
    ],
)
def test_type_synonyms(given, expected):
    assert parse_answer(design(item(1, 3, 2, given)), 10).anomalies[0].type == expected


def test_unknown_type_lists_the_five():
    with pytest.raises(AnswerError) as info:
        parse_answer(design(item(1, 3, 2, "banana")), 10)
    message = str(info.value)
    assert message.startswith("anomaly 0:")
    assert all(t in message for t in ANOMALY_TYPES)


def test_type_none_with_interval_in_design_schema_raises():
    with pytest.raises(AnswerError, match="use one of"):
        parse_answer(design(item(1, 3, 2, "none")), 10)


def test_type_missing_in_design_schema_raises():
    with pytest.raises(AnswerError, match="anomaly 0: type missing"):
        parse_answer(design({"start": 1, "end": 3, "confidence": 2}), 10)


def test_type_none_without_interval_is_ignored():
    answer = parse_answer(design({"type": "none"}, item(1, 3)), 10)
    assert answer.anomalies == [Anomaly(1, 3, 3, "trend", "e")]
    assert len(answer.warnings) == 1


def test_confidence_missing_in_design_schema():
    bad = {"start": 1, "end": 3, "type": "trend"}
    with pytest.raises(AnswerError, match="anomaly 0: confidence missing"):
        parse_answer(design(bad), 10)


@pytest.mark.parametrize(
    ("given", "expected"), [(3, 3), (2.0, 2), ("4", 4), (" 1 ", 1), ("3.0", 3)]
)
def test_confidence_forms(given, expected):
    answer = parse_answer(design(item(1, 3, given)), 10)
    assert answer.anomalies[0].confidence == expected
    assert answer.warnings == []


@pytest.mark.parametrize(("given", "expected"), [(0, 1), (5, 4), (10, 4), (-2, 1), ("7", 4)])
def test_confidence_clamped_with_warning(given, expected):
    answer = parse_answer(design(item(1, 3, given)), 10)
    assert answer.anomalies[0].confidence == expected
    assert len(answer.warnings) == 1
    assert "clamped" in answer.warnings[0]


@pytest.mark.parametrize("given", [2.5, "high", None, True, [3]])
def test_confidence_not_an_integer(given):
    with pytest.raises(AnswerError, match="anomaly 0: confidence"):
        parse_answer(design(item(1, 3, given)), 10)


def test_start_end_forms():
    answer = parse_answer(design(item("4", 8.0), item(10.4, "12.6")), 20)
    assert [(a.start, a.end) for a in answer.anomalies] == [(4, 8), (10, 13)]


def test_bad_start():
    with pytest.raises(AnswerError, match="anomaly 0: start"):
        parse_answer(design(item("ten", 12)), 20)


def test_point_when_end_equals_start_or_missing():
    missing_end = {"start": 9, "confidence": 2, "type": "global"}
    answer = parse_answer(design(item(5, 5, 2, "global"), missing_end), 20)
    assert [(a.start, a.end) for a in answer.anomalies] == [(5, 6), (9, 10)]
    assert answer.warnings == []


def test_swap_with_warning():
    answer = parse_answer(design(item(30, 10)), 100)
    assert (answer.anomalies[0].start, answer.anomalies[0].end) == (10, 30)
    assert len(answer.warnings) == 1
    assert "swapped" in answer.warnings[0]


def test_sorted_by_start():
    answer = parse_answer(design(item(50, 60), item(5, 9), item(20, 22), item(5, 7)), 100)
    assert [(a.start, a.end) for a in answer.anomalies] == [(5, 7), (5, 9), (20, 22), (50, 60)]


def test_anomalies_must_be_objects():
    with pytest.raises(AnswerError, match="anomaly 1: expected an object"):
        parse_answer(design(item(1, 2), [3, 4]), 10)


def test_anomalies_must_be_a_list():
    with pytest.raises(AnswerError, match="must be a list"):
        parse_answer({"anomalies": "none", "description": ""}, 10)


def test_empty_anomalies():
    answer = parse_answer('{"anomalies": [], "description": "calm"}', 10)
    assert answer == Answer([], "calm", [])


# ---------------------------------------------------------------- window


def test_clamp_out_of_window():
    reply = design(item(590, 650), item(700, 710), item(-5, 3), item(100, 120))
    answer = parse_answer(reply, 600)
    assert [(a.start, a.end) for a in answer.anomalies] == [(0, 3), (100, 120), (590, 600)]
    assert len(answer.warnings) == 3
    assert any("dropped" in w and "[700, 710)" in w for w in answer.warnings)


def test_clamp_drops_a_point_at_the_window_end():
    answer = parse_answer({"abnormal_index": "[(600)/3/global]"}, 600)
    assert answer.anomalies == []
    assert len(answer.warnings) == 1


def test_end_equal_to_window_length_is_inside():
    answer = parse_answer(design(item(590, 600), item(599, 599, 2, "global")), 600)
    assert [(a.start, a.end) for a in answer.anomalies] == [(590, 600), (599, 600)]
    assert answer.warnings == []


def test_reject_out_of_window():
    with pytest.raises(AnswerError) as info:
        parse_answer(design(item(10, 20), item(590, 650)), 600, on_out_of_window="reject")
    message = str(info.value)
    assert message.startswith("anomaly 1:")
    assert "[590, 650)" in message
    assert "600" in message


def test_reject_accepts_intervals_inside():
    answer = parse_answer(design(item(0, 600)), 600, on_out_of_window="reject")
    assert answer.anomalies == [Anomaly(0, 600, 3, "trend", "e")]


def test_bad_mode_and_window():
    with pytest.raises(ValueError, match="on_out_of_window"):
        parse_answer(design(), 10, on_out_of_window="ignore")
    with pytest.raises(ValueError, match="window_length"):
        parse_answer(design(), 0)


# ---------------------------------------------------------------- serialisation


def test_to_dict_and_from_dict_round_trip():
    answer = parse_answer(design(item(590, 650), item(1, 4, 5, "spike", "x")), 600)
    assert answer.warnings
    d = answer.to_dict()
    assert set(d) == {"anomalies", "description"}
    assert d["anomalies"][0] == {
        "start": 1,
        "end": 4,
        "confidence": 4,
        "type": "global",
        "explanation": "x",
    }
    back = Answer.from_dict(json.loads(json.dumps(d)))
    assert back.anomalies == answer.anomalies
    assert back.description == answer.description
    assert back.warnings == []


def test_from_dict_without_explanation():
    back = Answer.from_dict(
        {"anomalies": [{"start": 1, "end": 2, "confidence": 1, "type": "global"}]}
    )
    assert back == Answer([Anomaly(1, 2, 1, "global", "")], "", [])


# ---------------------------------------------------------------- reference and repair


def test_parse_reference_json_and_fenced():
    assert parse_reference('{"normal_pattern": "  a sine of period 50  "}') == "a sine of period 50"
    fenced = 'ok:\n```json\n{"normal_pattern": "flat",}\n```'
    assert parse_reference(fenced) == "flat"


def test_parse_reference_plain_text():
    assert parse_reference("\n  The series is periodic.  \n") == "The series is periodic."


@pytest.mark.parametrize("text", ["", "  ", '{"normal_pattern": "   "}', '{"other": 1}'])
def test_parse_reference_errors(text):
    with pytest.raises(AnswerError):
        parse_reference(text)


def test_parse_reference_broken_json_is_not_taken_as_text():
    with pytest.raises(AnswerError):
        parse_reference('{"normal_pattern": "cut off')


def test_repair_prompt_mentions_error_window_and_schema():
    prompt = repair_prompt("anomaly 0: confidence missing", 600)
    assert "anomaly 0: confidence missing" in prompt
    assert "600" in prompt
    assert ANSWER_SCHEMA_TEXT in prompt
    assert "only the JSON object" in prompt


def test_schema_text_names_types_and_ranges():
    assert all(t in ANSWER_SCHEMA_TEXT for t in ANOMALY_TYPES)
    assert "<1-4>" in ANSWER_SCHEMA_TEXT
    assert "exclusive" in ANSWER_SCHEMA_TEXT
