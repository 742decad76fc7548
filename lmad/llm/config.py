"""Named models (``BigModel/models.yaml``) and API keys (``BigModel/api_keys.yaml`` or environment).

A model entry names its provider, the provider's model id, an optional ``base_url``, whether it takes
images, prices per million input and output tokens, rate limits, and how the provider counts image
tokens. Keys keep the format of TAMA's ``api_keys.yaml`` (``openai: {api_key: ...}``,
``chatglm: {api_key: ...}``) plus other sections; an environment variable overrides the file. A key is
only ever handed to the provider's client: it is never logged, cached, written or shown in an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lmad.errors import ConfigError

PROVIDERS = ("openai", "azure", "openai-compatible", "zhipuai", "hf", "offline")
DEFAULT_KEY = {
    "openai": ("openai", "OPENAI_API_KEY"),
    "azure": ("azure", "AZURE_OPENAI_API_KEY"),
    "zhipuai": ("chatglm", "ZHIPUAI_API_KEY"),
    "openai-compatible": ("openai-compatible", "OPENAI_COMPATIBLE_API_KEY"),
}
NO_KEY = "none"


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
    json_mode: bool = False
    price_input: float = 0.0
    price_output: float = 0.0
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    key: str | None = None
    key_env: str | None = None
    image_tokens: ImageTokenRule = field(default_factory=ImageTokenRule)
    expected_output_tokens: int = 600

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """US dollars for the given token counts at this model's prices (per million tokens)."""
        return (prompt_tokens * self.price_input + completion_tokens * self.price_output) / 1e6


def _model_from_entry(name: str, entry: dict[str, Any], source: str) -> ModelConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"{source}: model {name!r} must be a mapping of settings")
    provider = str(entry.get("provider", "")).strip()
    if provider not in PROVIDERS:
        raise ConfigError(
            f"{source}: model {name!r} has provider {provider!r}; use one of {', '.join(PROVIDERS)}"
        )
    price = entry.get("price_per_million", {}) or {}
    limits = entry.get("limits", {}) or {}
    rule = entry.get("image_tokens", {}) or {}
    try:
        return ModelConfig(
            name=name,
            provider=provider,
            model=str(entry.get("model", name)),
            base_url=entry.get("base_url"),
            api_version=entry.get("api_version"),
            images=bool(entry.get("images", True)),
            json_mode=bool(entry.get("json_mode", False)),
            price_input=float(price.get("input", 0.0)),
            price_output=float(price.get("output", 0.0)),
            requests_per_minute=limits.get("requests_per_minute"),
            tokens_per_minute=limits.get("tokens_per_minute"),
            key=entry.get("key"),
            key_env=entry.get("key_env"),
            image_tokens=ImageTokenRule(**rule),
            expected_output_tokens=int(entry.get("expected_output_tokens", 600)),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: model {name!r}: {exc}") from None


def load_models(path: str | Path = "BigModel/models.yaml") -> dict[str, ModelConfig]:
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


def resolve_model(name: str, path: str | Path = "BigModel/models.yaml") -> ModelConfig:
    """The model ``--LLM name`` means: a ``models.yaml`` entry, ``hf:<id or path>`` or ``offline``."""
    if name.startswith("hf:"):
        return ModelConfig(name=name, provider="hf", model=name[3:], key=NO_KEY)
    models = load_models(path) if Path(path).exists() or name != "offline" else {}
    if name in models:
        return models[name]
    if name == "offline":
        return ModelConfig(name="offline", provider="offline", model="nn-distance", key=NO_KEY)
    folded = {n.lower(): n for n in models}
    hint = f" (did you mean {folded[name.lower()]!r}?)" if name.lower() in folded else ""
    raise ConfigError(
        f"unknown --LLM {name!r}{hint}; models in {path}: {', '.join(models)}; "
        "or use hf:<model id or path>, or offline"
    )


def load_api_key(config: ModelConfig, keys_path: str | Path = "BigModel/api_keys.yaml") -> str:
    """The API key of ``config``: its environment variable, else its section of ``api_keys.yaml``.

    Returns ``""`` for models that need none (``key: none``, local servers, hf, offline).
    """
    section, env = DEFAULT_KEY.get(config.provider, (None, None))
    section = config.key or section
    env = config.key_env or env
    if section == NO_KEY or config.provider in ("hf", "offline"):
        return ""
    if env and os.environ.get(env):
        return os.environ[env].strip()
    entry = load_key_file(keys_path).get(section) or {}
    key = entry.get("api_key") if isinstance(entry, dict) else None
    if key and str(key).strip() and not str(key).startswith("Your"):
        return str(key).strip()
    raise ConfigError(
        f"no API key for {config.name}: set {env} or add '{section}: {{api_key: ...}}' to "
        f"{keys_path} (see BigModel/api_keys.example.yaml)"
    )


def load_key_file(path: str | Path) -> dict[str, Any]:
    """The key file as a mapping (empty when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        raise ConfigError(f"{path}: not valid YAML; compare with api_keys.example.yaml") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected sections like 'openai: {{api_key: ...}}'")
    return data


def key_section(config: ModelConfig, keys_path: str | Path) -> dict[str, Any]:
    """Non-secret settings of the model's key section (endpoint, api_version) for Azure."""
    section = config.key or DEFAULT_KEY.get(config.provider, (None, None))[0]
    entry = load_key_file(keys_path).get(section) or {}
    return {k: v for k, v in entry.items() if k != "api_key"} if isinstance(entry, dict) else {}


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (and any 8+ character piece of one at its ends) replaced by ***."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "***")
        if len(secret) >= 12:
            text = text.replace(secret[:8], "***").replace(secret[-8:], "***")
    return text
