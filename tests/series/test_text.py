"""Text serialisations: TAMA's digit-spaced form and index:value, round trips, token estimate."""

from __future__ import annotations

import numpy as np
import pytest

from lmad.errors import DataError
from lmad.series.text import (
    estimate_tokens,
    parse_index_value,
    parse_tama,
    serialize,
    serialize_index_value,
    serialize_tama,
)


def test_tama_form_matches_the_published_example():
    assert serialize_tama(np.array([1.234, -0.567])) == "1 2 3 4,- 5 6 7"
    assert serialize_tama(np.array([0.0, 2.0])) == "0,2 0 0 0"


def test_tama_round_trip_and_never_abbreviated():
    values = np.random.default_rng(0).normal(0, 3, 5000)
    text = serialize_tama(values)
    assert "..." not in text
    assert text.count(",") == 4999
    np.testing.assert_allclose(parse_tama(text), values, atol=0.5e-3 + 1e-12)


def test_index_value_round_trip():
    values = np.array([1.5, -0.25, 0.0001, 3.0])
    text = serialize_index_value(values, start=10)
    assert text == "10:1.5,11:-0.25,12:0,13:3"
    indices, parsed = parse_index_value(text)
    assert indices.tolist() == [10, 11, 12, 13]
    np.testing.assert_allclose(parsed, [1.5, -0.25, 0.0, 3.0])


def test_token_estimate_counts_digit_groups_and_punctuation():
    # GPT-4o's pre-tokeniser: a space before a digit is a piece of its own, ",-" one piece
    assert estimate_tokens("1 2 3 4,- 5 6 7") == 14
    assert estimate_tokens("1 2 3 4,- 5 6 7", "digits") == 14
    assert estimate_tokens("0:1.234,1:-0.5") == 11  # 0 : 1 . 234 , 1 :- 0 . 5
    assert estimate_tokens("0:1.234,1:-0.5", "digits") == 13  # every digit alone
    assert estimate_tokens("12345") == 2  # 123 and 45
    assert estimate_tokens("Hello, world") == 3


def test_rejects_nan_and_unknown_form():
    with pytest.raises(DataError, match="NaN"):
        serialize_tama(np.array([1.0, np.nan]))
    with pytest.raises(DataError, match="unknown text form"):
        serialize(np.zeros(3), "csv")
    with pytest.raises(TypeError, match="form"):
        serialize(np.zeros(3))  # the form's default is PrepareOptions.text_form, not repeated here
    assert serialize(np.array([1.5]), "tama") == "1 5 0 0"
    assert serialize(np.array([1.5]), "index_value") == "0:1.5"
    with pytest.raises(DataError, match="not TAMA"):
        parse_tama("1 2,x")
