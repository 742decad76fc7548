"""The JSON schemas of TAMA's three answers, from the same definition the answer parser checks.

docs/design.md, "Answer schema": a window answer lists anomalies with window-local ``[start, end)``
intervals (end exclusive), a confidence from :data:`CONFIDENCE_MIN` to :data:`CONFIDENCE_MAX`
(TAMA's 1-4 scale) and one of the five TAMA types (:data:`lmad.anomaly_types.ANOMALY_TYPES`), with
an explanation each and a description of the window; a reference answer is the normal-pattern
description. Analysis and self-reflection answer in the same form.

A schema goes with every request (:attr:`lmad.llm.messages.ChatRequest.schema`): a model configured
with ``structured: json_schema`` is held to it, by the server (OpenAI structured outputs, vLLM,
llama.cpp, Ollama) or token by token (``hf:`` models). Whatever the schema cannot say (start before
end) is still checked by :func:`lmad.series.answers.parse_answer`; a reply valid under the schema
always parses there.
"""

from __future__ import annotations

from typing import Any

from lmad.anomaly_types import ANOMALY_TYPES

CONFIDENCE_MIN = 1
CONFIDENCE_MAX = 4
ANOMALY_FIELDS = ("start", "end", "confidence", "type", "explanation")
"""The fields of one anomaly, in the order the prompt shows them (:class:`answers.Anomaly`)."""
MAX_EXPLANATION = 400
MAX_DESCRIPTION = 1200
MAX_NORMAL_PATTERN = 3000
"""Characters a model held to the schema may write: a sentence or two per anomaly, a paragraph
per window, and TAMA's 300-400 words for the normal pattern. They keep a constrained small model
that loops inside a string within a reply limit; the parser itself accepts longer text, and servers
are not sent these bounds (:func:`lmad.llm.openai_backend.portable_schema`)."""


def _closed(properties: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly these properties, all required (OpenAI's strict-mode form)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def answer_schema(window_size: int) -> dict[str, Any]:
    """The schema of an analysis or reflection answer for a window of ``window_size`` points."""
    if window_size < 1:
        raise ValueError(f"window_size must be positive, not {window_size}")
    anomaly = _closed({
        "start": {"type": "integer", "minimum": 0, "maximum": window_size - 1},
        "end": {"type": "integer", "minimum": 1, "maximum": window_size},
        "confidence": {"type": "integer", "enum": list(range(CONFIDENCE_MIN, CONFIDENCE_MAX + 1))},
        "type": {"type": "string", "enum": list(ANOMALY_TYPES)},
        "explanation": {"type": "string", "maxLength": MAX_EXPLANATION},
    })  # fmt: skip
    return _closed({
        "anomalies": {"type": "array", "items": anomaly},
        "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
    })  # fmt: skip


def reference_schema() -> dict[str, Any]:
    """The schema of a reference answer: the normal pattern in words."""
    return _closed(
        {"normal_pattern": {"type": "string", "minLength": 1, "maxLength": MAX_NORMAL_PATTERN}}
    )
