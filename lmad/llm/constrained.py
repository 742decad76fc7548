"""Schema-constrained generation for local Hugging Face models, with llguidance.

A JSON schema is compiled into a grammar over the model's own tokens (llguidance's
``LLMatcher``); before every sampled token the logits of tokens that would leave the grammar are
set to minus infinity, so the reply is valid JSON of that schema by construction (Earley parsing
with token masks: the "Guidance" approach, https://github.com/guidance-ai/llguidance).

Two details keep a small model's reply finite and samplable:

* :func:`bounded_schema` gives every string without a ``maxLength`` one (and every array without
  ``maxItems`` one), so a model that loops inside a string is made to close it instead of running
  to the token limit with half a JSON object;
* replies are compact (:data:`JSON_FORM`), so whitespace cannot run on either;
* the mask is applied *before* temperature and nucleus (top-p) sampling: transformers adds its own
  warpers before custom processors, and a top-p set made only of forbidden tokens would leave
  nothing to sample; :func:`constrained_generation` therefore turns generate's warpers off and
  applies them itself after the mask.

llguidance and transformers are imported only when a constraint is built.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from lmad.errors import ConfigError

MAX_STRING = 3000
"""Characters a constrained string may hold (TAMA's 300-400 word description fits)."""
MAX_ITEMS = 50
"""Items a constrained array may hold (anomalies in one window)."""

_TOKENIZERS: dict[int, Any] = {}
_LOCK = threading.Lock()


JSON_FORM = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
"""Replies are written on one line with a space after each comma and colon: no run of whitespace
for a small model to loop in."""


def bounded_schema(schema: dict[str, Any], max_string: int | None = None) -> dict[str, Any]:
    """A copy of ``schema`` in which every string has a ``maxLength`` (``max_string``, default
    :data:`MAX_STRING`) and every array ``maxItems`` (:data:`MAX_ITEMS`).

    Bounds the schema already sets are kept; nothing else changes, so a value valid under the
    result is valid under ``schema``.
    """
    max_string = MAX_STRING if max_string is None else max_string
    bounded = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "string" and "enum" not in node and "const" not in node:
                node.setdefault("maxLength", max_string)
            if kind == "array":
                node.setdefault("maxItems", MAX_ITEMS)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(bounded)
    return bounded


def _llguidance() -> Any:
    try:
        import llguidance
        import llguidance.hf  # the from_tokenizer submodule
    except ImportError as exc:
        raise ConfigError(
            f"hf: schema-constrained answers need llguidance ({exc}); pip install llguidance, "
            "or set structured: none"
        ) from exc
    return llguidance


def grammar_tokenizer(tokenizer: Any) -> Any:
    """llguidance's view of a fast Hugging Face tokenizer, built once per tokenizer (about 0.3 s)."""
    llguidance = _llguidance()
    with _LOCK:
        found = _TOKENIZERS.get(id(tokenizer))
        if found is None or found[0] is not tokenizer:
            try:
                converted = llguidance.hf.from_tokenizer(tokenizer)
            except ValueError as exc:  # a slow (Python) tokenizer
                raise ConfigError(f"hf: cannot constrain this model's answers: {exc}") from exc
            found = (tokenizer, converted)
            _TOKENIZERS[id(tokenizer)] = found
        return found[1]


class SchemaMask:
    """A logits processor that allows only the tokens that keep the reply inside the grammar.

    Generation is one sequence at a time (the hf backend sends batch size 1). The first call sees
    the prompt; every later call first feeds the token sampled last to the matcher.
    """

    def __init__(self, tokenizer: Any, schema: dict[str, Any]) -> None:
        llguidance = _llguidance()
        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            bounded_schema(schema), overrides=JSON_FORM
        )
        self.matcher = llguidance.LLMatcher(grammar_tokenizer(tokenizer), grammar)
        if self.matcher.is_error():
            raise ConfigError(
                f"hf: the answer schema cannot be enforced: {self.matcher.get_error()}"
            )
        self._started = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np
        import torch

        if self._started and not self.matcher.is_stopped():
            self.matcher.consume_token(int(input_ids[0, -1]))
        self._started = True
        if self.matcher.is_error():  # cannot happen for masked tokens; keep the model's choice
            return scores
        bits = np.unpackbits(
            np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8), bitorder="little"
        )
        vocab = scores.shape[-1]
        allowed = np.zeros(vocab, dtype=bool)
        n = min(vocab, bits.size)
        allowed[:n] = bits[:n].astype(bool)
        mask = torch.from_numpy(allowed).to(scores.device)
        return scores.masked_fill(~mask, float("-inf"))

    @property
    def finished(self) -> bool:
        """Whether the reply is a complete value of the schema."""
        return self.matcher.is_accepting()


def constrained_generation(
    tokenizer: Any, schema: dict[str, Any], temperature: float, top_p: float
) -> tuple[dict[str, Any], SchemaMask]:
    """Keyword arguments for ``model.generate`` that hold the reply to ``schema``, and the mask.

    Sampling (``temperature > 0``) keeps the request's temperature and top-p, applied after the
    mask; greedy decoding picks the most likely allowed token.
    """
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    mask = SchemaMask(tokenizer, schema)
    processors: list[Any] = [mask]
    kwargs: dict[str, Any] = {"do_sample": temperature > 0}
    if temperature > 0:
        # generate's own warpers off (they would run before the mask), ours after it
        kwargs.update(temperature=1.0, top_p=1.0, top_k=0)
        processors.append(TemperatureLogitsWarper(temperature))
        if top_p < 1.0:
            processors.append(TopPLogitsWarper(top_p))
    kwargs["logits_processor"] = LogitsProcessorList(processors)
    return kwargs, mask
