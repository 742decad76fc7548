"""Schema-constrained generation for local Hugging Face models, with llguidance.

A JSON schema is compiled into a grammar over the model's own tokens (llguidance's
``LLMatcher``); before every sampled token the logits of tokens that would leave the grammar are
set to minus infinity, so the reply is valid JSON of that schema by construction (Earley parsing
with token masks: the "Guidance" approach, https://github.com/guidance-ai/llguidance).

Two details keep a small model's reply finite and samplable:

* the schema is bounded to the reply's token limit (:func:`lmad.llm.schema_budget.fit_schema`):
  strings and arrays get bounds small enough that the longest reply allowed fits ``max_tokens``,
  so a model that loops inside a string is made to close it instead of running to the limit with
  half a JSON object; replies are compact (:data:`~lmad.llm.schema_budget.JSON_FORM`);
* the mask is applied *before* temperature and nucleus (top-p) sampling: transformers adds its own
  warpers before custom processors, and a top-p set made only of forbidden tokens would leave
  nothing to sample; :func:`constrained_generation` therefore turns generate's warpers off and
  applies them itself after the mask.

llguidance and transformers are imported only when a constraint is built.
"""

from __future__ import annotations

import threading
from typing import Any

from lmad.errors import ConfigError
from lmad.llm.schema_budget import JSON_FORM, fit_schema

_TOKENIZERS: dict[int, Any] = {}
_LOCK = threading.Lock()


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

    def __init__(self, tokenizer: Any, schema: dict[str, Any], budget: int) -> None:
        """``budget``: bytes the longest reply may take (the token limit less the end token)."""
        llguidance = _llguidance()
        self.schema = fit_schema(schema, budget)
        grammar = llguidance.LLMatcher.grammar_from_json_schema(self.schema, overrides=JSON_FORM)
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
    tokenizer: Any, schema: dict[str, Any], temperature: float, top_p: float, max_tokens: int
) -> tuple[dict[str, Any], SchemaMask]:
    """Keyword arguments for ``model.generate`` that hold the reply to ``schema`` within
    ``max_tokens`` (one of them the end-of-sequence token), and the mask.

    Sampling (``temperature > 0``) keeps the request's temperature and top-p, applied after the
    mask; greedy decoding picks the most likely allowed token.
    """
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    mask = SchemaMask(tokenizer, schema, max_tokens - 1)
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
