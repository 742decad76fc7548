"""Named models (``BigModel/models.yaml``) and API keys (``BigModel/api_keys.yaml`` or environment).

A model entry names its provider, the provider's model id, an optional ``base_url``, whether it takes
images, prices per million input and output tokens, rate limits, and how the provider counts image
tokens. Keys keep the format of TAMA's ``api_keys.yaml`` (``openai: {api_key: ...}``,
``chatglm: {api_key: ...}``) plus other sections; an environment variable overrides the file. A key is
only ever handed to the provider's client: it is never logged, cached, written or shown in an error.

Both files are checked when they are read, by the schemas of :mod:`lmad.llm.config_schema`: a
misspelt key, a quoted number or boolean, or a list where a mapping belongs is a one-line
:class:`~lmad.errors.ConfigError` naming the file, the model or section, and the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lmad.errors import ConfigError
from lmad.llm.config_schema import (
    PROVIDERS,
    KeySection,
    LimitsSchema,
    ModelEntry,
    PriceSchema,
    plain_name,
    shown_name,
    validate_entry,
)
from lmad.llm.options import KEYS_FILE, MODELS_FILE

__all__ = [
    "BATCH_DISCOUNT",
    "DEFAULT_KEY",
    "NO_KEY",
    "PROVIDERS",
    "ImageTokenRule",
    "ModelConfig",
    "key_section",
    "load_api_key",
    "load_key_file",
    "load_models",
    "resolve_model",
    "scrub",
]


DEFAULT_KEY = {
    "openai": ("openai", "OPENAI_API_KEY"),
    "azure": ("azure", "AZURE_OPENAI_API_KEY"),
    "zhipuai": ("chatglm", "ZHIPUAI_API_KEY"),
    "openai-compatible": ("openai-compatible", "OPENAI_COMPATIBLE_API_KEY"),
}
NO_KEY = "none"
BATCH_DISCOUNT = {"openai": 0.5, "azure": 0.5, "zhipuai": 0.5}
"""Providers with a Batch API (files + batches, OpenAI's shape) and its price cut: half price at
OpenAI (platform.openai.com/docs/guides/batch), Azure OpenAI's global batch and ZhipuAI."""
SETTINGS = {
    "base_url",
    "api_version",
    "images",
    "key",
    "key_env",
    "batch_discount",
    "context_window",
}
"""Entry fields copied to :class:`ModelConfig` under the same name (with expected_output_tokens)."""


@dataclass(frozen=True)
class ImageTokenRule:
    """How a provider counts an image's input tokens.

    ``tiles`` is OpenAI's published rule for ``detail: high``: fit the image within
    ``max_side`` x ``max_side``, scale it down so its shorter side is at most ``short_side``, then
    count ``tile_size`` tiles: ``base + tile * n_tiles``; ``detail: low`` costs ``base``. ``fixed``
    charges ``base`` per image.
    """

    mode: str = "tiles"
    base: int = 85
    tile: int = 170
    tile_size: int = 512
    max_side: int = 2048
    short_side: int = 768


@dataclass(frozen=True)
class ModelConfig:
    """One entry of ``models.yaml``."""

    name: str
    provider: str
    model: str
    base_url: str | None = None
    api_version: str | None = None
    images: bool = True
    structured: str = "none"
    price_input: float = 0.0
    price_output: float = 0.0
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    key: str | None = None
    key_env: str | None = None
    image_tokens: ImageTokenRule = field(default_factory=ImageTokenRule)
    expected_output_tokens: int = 600
    price_cached_input: float | None = None
    """US dollars per million prompt tokens served from the provider's prompt cache (OpenAI's
    ``usage.prompt_tokens_details.cached_tokens``); None: charged at ``price_input``."""
    context_window: int | None = None
    """Tokens of prompt and reply together the model takes (models.yaml ``context_window``); None:
    asked of the server or read from the model's config when a run starts
    (:mod:`lmad.llm.context`)."""
    batch_discount: float | None = None
    """The share of the price the provider's Batch API takes off (models.yaml ``batch_discount``);
    None: the provider's own (:data:`BATCH_DISCOUNT`), and no batch mode for providers without one."""

    @property
    def sends_schema(self) -> bool:
        """Whether requests carry their answer's JSON schema (``structured: json_schema``)."""
        return self.structured == "json_schema"

    @property
    def batch_cut(self) -> float | None:
        """The Batch API's price cut (0.5: half price), or None when the model has no Batch API:
        ``batch_discount`` when set (an OpenAI-compatible server that implements OpenAI's Batch
        API opts in with it), else the provider's (:data:`BATCH_DISCOUNT`)."""
        if self.provider == "hf":  # runs in this process: nothing to batch
            return None
        if self.batch_discount is not None:
            return self.batch_discount
        return BATCH_DISCOUNT.get(self.provider)

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        """US dollars for the given token counts at this model's prices (per million tokens).

        ``cached_tokens`` (part of ``prompt_tokens``) are charged at ``price_cached_input``.
        """
        cached = min(max(cached_tokens, 0), prompt_tokens)
        cached_price = (
            self.price_input if self.price_cached_input is None else self.price_cached_input
        )
        return (
            (prompt_tokens - cached) * self.price_input
            + cached * cached_price
            + completion_tokens * self.price_output
        ) / 1e6


def _model_from_entry(name: str, entry: Any, source: str) -> ModelConfig:
    """``entry`` (one model of ``models.yaml``) checked by :class:`ModelEntry`, as a ModelConfig."""
    checked = validate_entry(ModelEntry, entry, f"{source}: model {name!r}")
    price = checked.price_per_million or PriceSchema()
    limits = checked.limits or LimitsSchema()
    rule = checked.image_tokens.model_dump(exclude_none=True) if checked.image_tokens else {}
    # a setting left out (or null) keeps ModelConfig's default
    settings = checked.model_dump(include=SETTINGS | {"expected_output_tokens"}, exclude_none=True)
    return ModelConfig(
        structured=_structured(checked, f"{source}: model {name!r}"),
        name=name,
        provider=checked.provider,
        model=checked.model or name,
        price_input=price.input or 0.0,
        price_output=price.output or 0.0,
        price_cached_input=price.cached_input,
        requests_per_minute=limits.requests_per_minute,
        tokens_per_minute=limits.tokens_per_minute,
        image_tokens=ImageTokenRule(**rule),
        **settings,
    )


def _structured(entry: ModelEntry, where: str) -> str:
    """``structured``, or what the older ``json_mode: true`` meant (``json_object``); unset, an hf
    model is constrained to the answer's schema (as ``hf:<name>`` is) and a server is sent nothing."""
    if entry.structured is not None and entry.json_mode is not None:
        raise ConfigError(
            f"{where}: json_mode and structured both set; keep structured "
            "(json_mode: true is structured: json_object)"
        )
    if entry.structured is not None:
        return entry.structured
    if entry.json_mode is not None:
        return "json_object" if entry.json_mode else "none"
    return "json_schema" if entry.provider == "hf" else "none"


def load_models(path: str | Path = MODELS_FILE) -> dict[str, ModelConfig]:
    """Every named model in ``models.yaml``."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found; it lists the models --LLM can name")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    models = data.get("models", data) if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ConfigError(f"{path}: expected a mapping of model names to settings")
    return {str(n): _model_from_entry(str(n), e, str(path)) for n, e in models.items()}


def resolve_model(name: str, path: str | Path = MODELS_FILE) -> ModelConfig:
    """The model ``--LLM name`` means: a ``models.yaml`` entry or ``hf:<id or path>``."""
    if name.startswith("hf:"):
        return ModelConfig(
            name=name, provider="hf", model=name[3:], key=NO_KEY, structured="json_schema"
        )
    models = load_models(path)
    if name in models:
        return models[name]
    if name == "offline":
        raise ConfigError(
            "--LLM offline is lmad's nearest-neighbour time-series analyzer, not an LLM: "
            "main_cli.py and ablation_eval.py take it; here name a model from "
            f"{path} or hf:<model id or path>"
        )
    folded = {n.lower(): n for n in models}
    hint = f" (did you mean {folded[name.lower()]!r}?)" if name.lower() in folded else ""
    raise ConfigError(
        f"unknown --LLM {name!r}{hint}; models in {path}: {', '.join(models)}; "
        "or use hf:<model id or path>"
    )


def load_api_key(config: ModelConfig, keys_path: str | Path = KEYS_FILE) -> str:
    """The API key of ``config``: its environment variable, else its section of ``api_keys.yaml``.

    Returns ``""`` for models that need none (``key: none``, local servers, hf).
    """
    section, env = DEFAULT_KEY.get(config.provider, (None, None))
    section = config.key or section
    env = config.key_env or env
    if section == NO_KEY or config.provider == "hf":
        return ""
    if env and os.environ.get(env):
        return os.environ[env].strip()
    key = load_key_file(keys_path).get(str(section), {}).get("api_key", "").strip()
    if key and not key.startswith("Your"):  # the example's placeholder is no key
        return key
    # key: and key_env: name a section and a variable; a key pasted there by mistake is not shown
    env_text = env if plain_name(env) else "the variable key_env names"
    section_text = section if plain_name(section) else "<section>"
    raise ConfigError(
        f"no API key for {config.name}: set {env_text} or add '{section_text}: {{api_key: ...}}' "
        f"to {keys_path} (see BigModel/api_keys.example.yaml)"
    )


def load_key_file(path: str | Path) -> dict[str, dict[str, str]]:
    """The key file's sections, each checked by :class:`KeySection` (empty when there is no file).

    A section maps only the keys it sets; an empty section (``openai:``) is ``{}``. Errors name the
    file, the section and the key, never the key's value.
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        raise ConfigError(f"{path}: not valid YAML; compare with api_keys.example.yaml") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected sections like 'openai: {{api_key: ...}}'")
    sections = {}
    for name, section in data.items():
        where = f"{path}: section {shown_name(name, secret=True)}"
        checked = validate_entry(KeySection, {} if section is None else section, where, secret=True)
        sections[str(name)] = checked.model_dump(exclude_none=True)
    return sections


def key_section(config: ModelConfig, keys_path: str | Path) -> dict[str, str]:
    """Non-secret settings of the model's key section (endpoint, api_version) for Azure."""
    section = config.key or DEFAULT_KEY.get(config.provider, (None, None))[0]
    entry = load_key_file(keys_path).get(str(section), {})
    return {k: v for k, v in entry.items() if k != "api_key"}


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (and any 8+ character piece of one at its ends) replaced by ***."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "***")
        if len(secret) >= 12:
            text = text.replace(secret[:8], "***").replace(secret[-8:], "***")
    return text
