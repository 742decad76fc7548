"""Bounding a JSON schema so that every reply it allows fits a token limit.

Constrained decoding (:mod:`lmad.llm.constrained`) makes a reply valid only if the model is allowed
to finish it: a small model that loops inside a string runs to ``max_tokens`` and leaves half a JSON
object. So, before generation, the schema is bounded:

1. every free-text string gets ``maxLength`` (default :data:`MAX_STRING`) and the pattern
   :data:`TEXT_PATTERN` (printable ASCII without ``"`` and ``\\``): one byte, and so at most one
   token of a byte-level BPE vocabulary, per character, with no escapes;
2. every array gets ``maxItems`` (:data:`MAX_ITEMS`);
3. :func:`longest_reply` gives the bytes of the longest compact reply the schema allows (the
   separators of :data:`JSON_FORM`), and :func:`fit_schema` shrinks string lengths and item counts
   by a fifth at a time until that is within the budget (``max_tokens`` less the end-of-sequence
   token). A token is at least one byte, so such a reply cannot be cut by the token limit.

Bounds a schema sets itself are only ever lowered; a value valid under the result is valid under
the original schema.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

MAX_STRING = 3000
"""Characters a constrained string may hold when the schema sets no bound."""
MAX_ITEMS = 20
"""Items a constrained array may hold when the schema sets no bound."""
MIN_STRING = 16
"""Fitting never shortens a string bound below this (or below the schema's own ``minLength``)."""
TEXT_PATTERN = r"^[ !#-\[\]-~]*$"
"""Printable ASCII except ``"`` and ``\\``: a character is one byte and needs no escape."""
JSON_FORM = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
"""Replies are written on one line with a space after each comma and colon: no run of whitespace
for a small model to loop in, and a length that can be counted."""
_SEPARATOR = len(JSON_FORM["item_separator"])
_KEY_SEPARATOR = len(JSON_FORM["key_separator"])
_UNBOUNDED_INTEGER = 20  # digits and sign of a 64-bit integer


def _is_text(node: dict[str, Any]) -> bool:
    return node.get("type") == "string" and "enum" not in node and "const" not in node


def bounded_schema(schema: dict[str, Any], max_string: int | None = None) -> dict[str, Any]:
    """A copy of ``schema`` with every free-text string bounded (``maxLength``, at most
    ``max_string``, default :data:`MAX_STRING`, and :data:`TEXT_PATTERN`) and every array bounded
    (``maxItems``, :data:`MAX_ITEMS`); bounds already set are kept when lower."""
    max_string = MAX_STRING if max_string is None else max_string
    bounded = copy.deepcopy(schema)
    for node in _nodes(bounded):
        if _is_text(node):
            node["maxLength"] = min(node.get("maxLength", max_string), max_string)
            node.setdefault("pattern", TEXT_PATTERN)
        if node.get("type") == "array":
            node.setdefault("maxItems", MAX_ITEMS)
    return bounded


def _nodes(schema: Any) -> list[dict[str, Any]]:
    """Every sub-schema of ``schema`` (objects' properties, arrays' items), outermost first."""
    found: list[dict[str, Any]] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        found.append(node)
        stack.extend((node.get("properties") or {}).values())
        if isinstance(node.get("items"), dict):
            stack.append(node["items"])
    return found


def longest_reply(schema: dict[str, Any]) -> int | None:
    """Bytes of the longest compact JSON value ``schema`` allows; None when it is unbounded
    (a string without ``maxLength`` or :data:`TEXT_PATTERN`, an array without ``maxItems``, an
    object open to other keys)."""
    if "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        return max(len(json.dumps(v)) for v in values)
    kind = schema.get("type")
    if kind == "string":
        if "maxLength" not in schema or schema.get("pattern") != TEXT_PATTERN:
            return None
        return schema["maxLength"] + 2
    if kind == "integer":
        ends = [schema.get("minimum"), schema.get("maximum")]
        if None in ends:
            return _UNBOUNDED_INTEGER
        return max(len(str(int(v))) for v in ends)
    if kind == "boolean":
        return len("false")
    if kind == "null":
        return len("null")
    if kind == "array":
        item = longest_reply(schema.get("items", {}))
        count = schema.get("maxItems")
        if item is None or count is None:
            return None
        return 2 + count * item + max(0, count - 1) * _SEPARATOR
    if kind == "object":
        if schema.get("additionalProperties", True) is not False:
            return None
        total = 2
        for name, sub in schema.get("properties", {}).items():
            value = longest_reply(sub)
            if value is None:
                return None
            total += len(json.dumps(name)) + _KEY_SEPARATOR + value + _SEPARATOR
        return total - (_SEPARATOR if schema.get("properties") else 0)
    return None


def fit_schema(schema: dict[str, Any], budget: int) -> dict[str, Any]:
    """``schema`` bounded (:func:`bounded_schema`) and shrunk until its longest reply is at most
    ``budget`` bytes, or as far as it goes (strings to :data:`MIN_STRING`, arrays to their
    ``minItems`` or one item)."""
    fitted = bounded_schema(schema)
    for _ in range(100):
        longest = longest_reply(fitted)
        if longest is None or longest <= budget or not _shrink(fitted):
            break
    return fitted


def _shrink(schema: dict[str, Any]) -> bool:
    """Lower every string and array bound by a fifth; False when none could be lowered."""
    changed = False
    for node in _nodes(schema):
        if _is_text(node):
            floor = max(MIN_STRING, node.get("minLength", 0))
            lowered = max(floor, math.floor(node["maxLength"] * 0.8))
            changed |= lowered < node["maxLength"]
            node["maxLength"] = min(node["maxLength"], lowered)
        if node.get("type") == "array":
            floor = max(1, node.get("minItems", 0))
            lowered = max(floor, math.floor(node["maxItems"] * 0.8))
            changed |= lowered < node["maxItems"]
            node["maxItems"] = min(node["maxItems"], lowered)
    return changed
