"""Schemas of a ``models.yaml`` entry and an ``api_keys.yaml`` section, and their one-line errors.

pydantic checks each entry strictly: a quoted ``"60"`` is not a number, ``"false"`` is not a boolean,
``12345`` is not a URL, and a key the schema does not know (``json_mod``, ``limit``) is an error. Its
errors are rewritten from their location and type into one line that says what is expected, using the
``description`` of the field; the value the user wrote is never quoted back (pydantic's own messages
show it, and in ``api_keys.yaml`` it may be an API key).
"""

from __future__ import annotations

import datetime
import difflib
import re
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from lmad.errors import ConfigError

Provider = Literal["openai", "azure", "openai-compatible", "zhipuai", "hf"]
PROVIDERS: tuple[str, ...] = get_args(Provider)
Structured = Literal["json_schema", "json_object", "none"]
STRUCTURED: tuple[str, ...] = get_args(Structured)
MAX_PROBLEMS = 3
"""Problems of one entry spelled out in its message; the rest are counted."""


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("not an http(s) URL")
    return value


def _date_as_text(value: object) -> object:
    """An unquoted ``2024-10-21`` is a date to YAML; an API version is its text."""
    return value.isoformat() if isinstance(value, datetime.date) else value


Url = Annotated[str, AfterValidator(_http_url)]
Version = Annotated[str, BeforeValidator(_date_as_text)]
Name = Annotated[str, Field(min_length=1)]
URL_TEXT = "a URL string starting with http:// or https://"
VERSION_TEXT = "a string such as '2024-10-21'"
BOOL_TEXT = "true or false (a YAML boolean: write true/false without quotes)"
PRICE_TEXT = "a number >= 0 (US dollars per million {} tokens, without quotes)"
RATE_TEXT = "a number > 0 (without quotes)"
COUNT_TEXT = "a whole number >= 0 (without quotes)"
SIZE_TEXT = "a whole number > 0 (without quotes)"
DISCOUNT_TEXT = "a number >= 0 and < 1 (the Batch API's price cut: 0.5 = half price)"


class Schema(BaseModel):
    """Strict, closed mapping: no coercion from strings, no unknown keys. ``None`` means default."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    expected: ClassVar[str] = "a mapping"


class PriceSchema(Schema):
    """``price_per_million: {input, output, cached_input}``; ``cached_input`` is the price of
    prompt tokens the provider serves from its prompt cache (unset: the input price)."""

    expected: ClassVar[str] = (
        "a mapping {input: <$ per million>, output: <$ per million>, cached_input: <$ per million>}"
    )
    input: float | None = Field(
        None, ge=0, allow_inf_nan=False, description=PRICE_TEXT.format("input")
    )
    output: float | None = Field(
        None, ge=0, allow_inf_nan=False, description=PRICE_TEXT.format("output")
    )
    cached_input: float | None = Field(
        None, ge=0, allow_inf_nan=False, description=PRICE_TEXT.format("cached input")
    )


class LimitsSchema(Schema):
    """``limits: {requests_per_minute, tokens_per_minute}`` for the client-side rate limiter."""

    expected: ClassVar[str] = (
        "a mapping {requests_per_minute: <number>, tokens_per_minute: <number>}"
    )
    requests_per_minute: float | None = Field(
        None, gt=0, allow_inf_nan=False, description=RATE_TEXT
    )
    tokens_per_minute: float | None = Field(None, gt=0, allow_inf_nan=False, description=RATE_TEXT)


class ImageTokensSchema(Schema):
    """``image_tokens``: the fields of :class:`~lmad.llm.config.ImageTokenRule`."""

    expected: ClassVar[str] = (
        "a mapping {mode: tiles|fixed, base: <tokens>, tile: <tokens>, tile_size: <px>, "
        "max_side: <px>, short_side: <px>}"
    )
    mode: Literal["tiles", "fixed"] | None = Field(None, description="tiles or fixed")
    base: int | None = Field(None, ge=0, description=COUNT_TEXT)
    tile: int | None = Field(None, ge=0, description=COUNT_TEXT)
    tile_size: int | None = Field(None, gt=0, description=SIZE_TEXT)
    max_side: int | None = Field(None, gt=0, description=SIZE_TEXT)
    short_side: int | None = Field(None, gt=0, description=SIZE_TEXT)


class ModelEntry(Schema):
    """One named model of ``models.yaml`` (see the comment at the top of that file)."""

    expected: ClassVar[str] = "a mapping of settings (provider: ..., model: ...)"
    provider: Provider = Field(description=f"one of {', '.join(PROVIDERS)}")
    model: Name | None = Field(
        None, description="the provider's model id (a non-empty string; quote numbers)"
    )
    base_url: Url | None = Field(None, description=URL_TEXT)
    api_version: Version | None = Field(None, description=VERSION_TEXT)
    images: bool | None = Field(None, description=BOOL_TEXT)
    json_mode: bool | None = Field(None, description=BOOL_TEXT)
    structured: Structured | None = Field(None, description=f"one of {', '.join(STRUCTURED)}")
    price_per_million: PriceSchema | None = Field(None, description=PriceSchema.expected)
    limits: LimitsSchema | None = Field(None, description=LimitsSchema.expected)
    image_tokens: ImageTokensSchema | None = Field(None, description=ImageTokensSchema.expected)
    key: Name | None = Field(
        None, description="the name of a section of api_keys.yaml, or none (a string)"
    )
    key_env: Name | None = Field(None, description="the name of an environment variable (a string)")
    expected_output_tokens: int | None = Field(None, gt=0, description=SIZE_TEXT)
    context_window: int | None = Field(
        None, gt=0, description="a whole number > 0 (tokens of prompt and reply together)"
    )
    batch_discount: float | None = Field(
        None, ge=0, lt=1, allow_inf_nan=False, description=DISCOUNT_TEXT
    )


class KeySection(Schema):
    """One section of ``api_keys.yaml``: the key and, for Azure, its endpoint and API version."""

    expected: ClassVar[str] = "a mapping like {api_key: '...'}"
    api_key: str | None = Field(None, description="one string, the key (put it in quotes)")
    endpoint: Url | None = Field(None, description=URL_TEXT)
    api_version: Version | None = Field(None, description=VERSION_TEXT)


SchemaT = TypeVar("SchemaT", bound=Schema)


def validate_entry(schema: type[SchemaT], data: Any, where: str, secret: bool = False) -> SchemaT:
    """``data`` checked against ``schema``, or a one-line :class:`ConfigError` starting ``where: ``.

    ``secret``: the data may hold an API key, so names of unknown keys that could be one are not
    shown either.
    """
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        given = data if isinstance(data, dict) else {}
        problems = [_problem(schema, e, given, secret) for e in exc.errors(include_input=False)]
    shown = "; ".join(problems[:MAX_PROBLEMS])
    more = len(problems) - MAX_PROBLEMS
    raise ConfigError(f"{where}: {shown}" + (f"; and {more} more" if more > 0 else "")) from None


def _problem(schema: type[Schema], error: Any, given: dict[str, Any], secret: bool) -> str:
    """One error of pydantic as ``path: expected ...`` (or ``path: unknown key ...``)."""
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind in ("extra_forbidden", "invalid_key"):  # invalid_key: a key that is not a string
        parent, key = loc[:-1], loc[-1]
        allowed = list(_schema_at(schema, parent).model_fields)
        prefix = f"{_dotted(parent)}: " if parent else ""
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{prefix}unknown key {shown_name(key, secret)}{hint}; allowed keys: {', '.join(allowed)}"
    if not loc:
        return f"expected {schema.expected}"
    field = _schema_at(schema, loc[:-1]).model_fields.get(str(loc[-1]))
    expected = field.description if field is not None and field.description else "a valid value"
    if kind == "missing":
        return f"{_dotted(loc)}: missing; expected {expected}"
    got = given.get("provider") if loc == ("provider",) and not secret else None
    shown = f" (got {got!r})" if isinstance(got, str) and len(got) <= 40 else ""
    return f"{_dotted(loc)}: expected {expected}{shown}"


def _schema_at(schema: type[Schema], path: tuple[Any, ...]) -> type[Schema]:
    """The schema of the mapping at ``path`` (a chain of fields whose types are schemas)."""
    for part in path:
        field = schema.model_fields.get(str(part))
        inner = [t for t in get_args(field.annotation) if isinstance(t, type)] if field else []
        schema = next((t for t in inner if issubclass(t, Schema)), schema)
    return schema


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def plain_name(text: object) -> bool:
    """Whether ``text`` reads as a name (short, a letter then word characters), not as an API key."""
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,23}", str(text)) is not None


def shown_name(key: object, secret: bool = False) -> str:
    """``key`` quoted, unless the file holds secrets and it could be one (long or odd characters)."""
    if secret and not plain_name(key):
        return "(name not shown: it could be a key)"
    return repr(str(key))
