"""The schema of models.yaml and api_keys.yaml: every mistake is a one-line ConfigError at load time."""

from __future__ import annotations

import pytest

from lmad.errors import ConfigError, UserError
from lmad.llm.config import (
    ImageTokenRule,
    ModelConfig,
    key_section,
    load_api_key,
    load_key_file,
    load_models,
)
from tests.conftest import ROOT

HEAD = "GPT-4o:\n  provider: openai\n  model: gpt-4o\n"
BOOL = "expected true or false (a YAML boolean: write true/false without quotes)"
MODEL_KEYS = (
    "provider, model, base_url, api_version, images, json_mode, structured, price_per_million, "
    "limits, image_tokens, key, key_env, expected_output_tokens, context_window, batch_discount"
)
SECRET = "sk-proj-" + "Zq8Xw3Vb7Nm2Lk5J" * 3


def models_error(tmp_path, lines: str) -> str:
    """The message load_models raises for a GPT-4o entry with ``lines`` added."""
    path = tmp_path / "models.yaml"
    path.write_text(HEAD + lines + "\n")
    with pytest.raises(ConfigError) as info:
        load_models(path)
    message = str(info.value)
    assert isinstance(info.value, UserError) and info.value.exit_code == 2
    assert "\n" not in message and message.startswith(f"{path}: model 'GPT-4o': ")
    assert "input_value" not in message and "pydantic" not in message
    return message[len(f"{path}: model 'GPT-4o': ") :]


def keys_error(tmp_path, text: str) -> str:
    """The message load_key_file raises for an api_keys.yaml holding ``text``."""
    path = tmp_path / "api_keys.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_key_file(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert "input_value" not in message
    return message[len(f"{path}: ") :]


# 1-6: the mistakes a user reported, in models.yaml


def test_price_per_million_must_be_a_mapping(tmp_path):
    assert models_error(tmp_path, "  price_per_million: cheap") == (
        "price_per_million: expected a mapping {input: <$ per million>, output: <$ per million>, "
        "cached_input: <$ per million>}"
    )
    assert models_error(tmp_path, "  price_per_million: {input: two, output: 1}") == (
        "price_per_million.input: expected a number >= 0 (US dollars per million input "
        "tokens, without quotes)"
    )
    assert "price_per_million.output: expected a number >= 0" in models_error(
        tmp_path, "  price_per_million: {input: 1, output: -1}"
    )


def test_limits_must_be_a_mapping(tmp_path):
    assert models_error(tmp_path, "  limits: [60, 1000]") == (
        "limits: expected a mapping {requests_per_minute: <number>, tokens_per_minute: <number>}"
    )


@pytest.mark.parametrize(
    "value", ['"fast"', '"60"', "0", "-5", ".inf", "true", "[60]"], ids=lambda v: v
)
def test_limits_are_positive_numbers_checked_at_load_time(tmp_path, value):
    message = models_error(tmp_path, f"  limits: {{requests_per_minute: {value}}}")
    assert message == "limits.requests_per_minute: expected a number > 0 (without quotes)"
    message = models_error(tmp_path, f"  limits: {{tokens_per_minute: {value}}}")
    assert message == "limits.tokens_per_minute: expected a number > 0 (without quotes)"


@pytest.mark.parametrize("value", ["12345", "localhost:8000/v1", "ftp://host", "[http://a]"])
def test_base_url_must_be_an_http_url(tmp_path, value):
    assert models_error(tmp_path, f"  base_url: {value}") == (
        "base_url: expected a URL string starting with http:// or https://"
    )


@pytest.mark.parametrize("key", ["images", "json_mode"])
@pytest.mark.parametrize("value", ['"false"', "'true'", "1", "0", "yes please"])
def test_booleans_are_yaml_booleans_only(tmp_path, key, value):
    assert models_error(tmp_path, f"  {key}: {value}") == f"{key}: {BOOL}"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            "  json_mod: true",
            f"unknown key 'json_mod' (did you mean 'json_mode'?); allowed keys: {MODEL_KEYS}",
        ),
        (
            "  limit: {requests_per_minute: 60}",
            f"unknown key 'limit' (did you mean 'limits'?); allowed keys: {MODEL_KEYS}",
        ),
        (
            "  image_token: {mode: fixed, base: 258}",
            f"unknown key 'image_token' (did you mean 'image_tokens'?); allowed keys: {MODEL_KEYS}",
        ),
        (
            "  1: true",
            f"unknown key '1'; allowed keys: {MODEL_KEYS}",
        ),
        (
            "  limits: {rpm: 60}",
            "limits: unknown key 'rpm'; allowed keys: requests_per_minute, tokens_per_minute",
        ),
        (
            "  price_per_million: {inputs: 1, output: 2}",
            "price_per_million: unknown key 'inputs' (did you mean 'input'?); "
            "allowed keys: input, output, cached_input",
        ),
        (
            "  image_tokens: {mode: fixed, bas: 258}",
            "image_tokens: unknown key 'bas' (did you mean 'base'?); "
            "allowed keys: mode, base, tile, tile_size, max_side, short_side",
        ),
    ],
)
def test_unknown_keys_are_named_with_the_allowed_ones(tmp_path, lines, expected):
    assert models_error(tmp_path, lines) == expected


def test_image_tokens_values(tmp_path):
    assert models_error(tmp_path, "  image_tokens: {mode: tile}") == (
        "image_tokens.mode: expected tiles or fixed"
    )
    assert models_error(tmp_path, "  image_tokens: {mode: fixed, base: '258'}") == (
        "image_tokens.base: expected a whole number >= 0 (without quotes)"
    )
    assert models_error(tmp_path, "  image_tokens: {tile_size: 0}") == (
        "image_tokens.tile_size: expected a whole number > 0 (without quotes)"
    )
    assert models_error(tmp_path, "  image_tokens: fixed") == (
        "image_tokens: expected a mapping {mode: tiles|fixed, base: <tokens>, tile: <tokens>, "
        "tile_size: <px>, max_side: <px>, short_side: <px>}"
    )


def test_provider_is_checked(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("X:\n  provider: anthropic\n")
    with pytest.raises(ConfigError) as info:
        load_models(path)
    assert str(info.value) == (
        f"{path}: model 'X': provider: expected one of openai, azure, openai-compatible, "
        "zhipuai, hf (got 'anthropic')"
    )
    path.write_text("X:\n  model: gpt-4o\n")
    with pytest.raises(ConfigError, match=r"model 'X': provider: missing; expected one of openai"):
        load_models(path)


def test_strings_are_not_coerced(tmp_path):
    assert models_error(tmp_path, "  key_env: 42") == (
        "key_env: expected the name of an environment variable (a string)"
    )
    assert models_error(tmp_path, "  expected_output_tokens: '600'") == (
        "expected_output_tokens: expected a whole number > 0 (without quotes)"
    )
    assert models_error(tmp_path, "  model: [gpt-4o]").startswith("model: expected ")


def test_several_problems_in_one_line(tmp_path):
    message = models_error(tmp_path, "  images: 'no'\n  json_mode: 'no'\n  limits: {rpm: 1}")
    assert message.count(";") >= 2
    assert f"images: {BOOL}" in message and f"json_mode: {BOOL}" in message
    assert "limits: unknown key 'rpm'" in message


def test_entry_and_file_shapes(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(HEAD)
    assert load_models(path)["GPT-4o"].model == "gpt-4o"
    path.write_text("X: just a string\n")
    with pytest.raises(ConfigError, match=r"models.yaml: model 'X': expected a mapping of"):
        load_models(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"models.yaml: expected a mapping of model names"):
        load_models(path)


def test_valid_entry_becomes_model_config(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(
        "M:\n  provider: azure\n  model: dep\n  api_version: 2024-10-21\n  images: false\n"
        "  json_mode: true\n  price_per_million: {input: 2, output: 10.5}\n"
        "  limits: {requests_per_minute: 60}\n  image_tokens: {mode: fixed, base: 258}\n"
        "  base_url: https://x.openai.azure.com\n  key: az\n  key_env: AZ_KEY\n"
        "  expected_output_tokens: 300\n"
        "N:\n  provider: openai\n  price_per_million:\n  limits:\n"
    )
    models = load_models(path)
    m = models["M"]
    assert m == ModelConfig(
        name="M",
        provider="azure",
        model="dep",
        base_url="https://x.openai.azure.com",
        api_version="2024-10-21",  # an unquoted YAML date is read back as its text
        images=False,
        structured="json_object",  # what the older json_mode: true means
        price_input=2.0,
        price_output=10.5,
        requests_per_minute=60.0,
        tokens_per_minute=None,
        key="az",
        key_env="AZ_KEY",
        image_tokens=ImageTokenRule(mode="fixed", base=258),
        expected_output_tokens=300,
    )
    assert isinstance(m.price_input, float) and isinstance(m.requests_per_minute, float)
    n = models["N"]  # empty sections mean the defaults; the model id defaults to the name
    assert (n.model, n.images, n.structured, n.price_input, n.requests_per_minute) == (
        "N",
        True,
        "none",
        0.0,
        None,
    )
    assert n.image_tokens == ImageTokenRule()


def test_bundled_files_pass_the_schema():
    models = load_models(ROOT / "BigModel" / "models.yaml")
    assert models["Qwen-VL-max"].image_tokens.tile_size == 28
    assert models["azure-GPT-4o"].api_version == "2024-10-21"
    assert models["llamacpp-local"].images is False
    sections = load_key_file(ROOT / "BigModel" / "api_keys.example.yaml")
    assert sections["azure"]["endpoint"].startswith("https://")


# 7: api_keys.yaml


def test_api_key_must_be_one_string_and_is_never_shown(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    half = SECRET[: len(SECRET) // 2]
    message = keys_error(tmp_path, f"openai:\n  api_key: [{half}, {SECRET[len(half) :]}]\n")
    assert message == "section 'openai': api_key: expected one string, the key (put it in quotes)"
    for text in (f"openai:\n  api_key: {{k: '{SECRET}'}}\n", "openai:\n  api_key: 123456789\n"):
        assert keys_error(tmp_path, text).startswith("section 'openai': api_key: expected one")
    with pytest.raises(ConfigError) as info:  # and through load_api_key, as the client calls it
        load_api_key(ModelConfig("GPT-4o", "openai", "gpt-4o"), tmp_path / "api_keys.yaml")
    assert SECRET[:8] not in str(info.value) and SECRET[-8:] not in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        f"openai:\n  api_key: [{SECRET}]\n",
        f"openai: {SECRET}\n",
        f"openai:\n  - {SECRET}\n",
        f"openai:\n  api_key: '{SECRET}'\n  endpoint: {SECRET}\n",
        f"openai:\n  api_key: '{SECRET}'\n  api_version: [{SECRET}]\n",
        f"openai:\n  api_key: '{SECRET}'\n  apikey: '{SECRET}'\n",
        f"openai:\n  {SECRET}: 1\n",
        f"openai: {{{SECRET}}}\n",
    ],
)
def test_key_file_errors_never_contain_the_key(tmp_path, text):
    message = keys_error(tmp_path, text)
    for piece in (SECRET, SECRET[:8], SECRET[-8:], "Zq8Xw3Vb"):
        assert piece not in message


def test_key_file_sections(tmp_path):
    assert keys_error(tmp_path, "openai: sk-abc\n") == (
        "section 'openai': expected a mapping like {api_key: '...'}"
    )
    assert keys_error(tmp_path, "azure:\n  api_key: x\n  endpont: https://a\n") == (
        "section 'azure': unknown key 'endpont' (did you mean 'endpoint'?); "
        "allowed keys: api_key, endpoint, api_version"
    )
    assert keys_error(tmp_path, "azure:\n  api_key: x\n  endpoint: my-resource\n") == (
        "section 'azure': endpoint: expected a URL string starting with http:// or https://"
    )
    assert keys_error(tmp_path, "- openai\n") == "expected sections like 'openai: {api_key: ...}'"


def test_key_file_values_reach_the_client(tmp_path):
    path = tmp_path / "api_keys.yaml"
    path.write_text(
        "azure:\n  api_key: ' az-key '\n  endpoint: https://r.openai.azure.com\n"
        "  api_version: 2024-10-21\nopenai:\n"
    )
    azure = ModelConfig("a", "azure", "dep")
    assert load_api_key(azure, path) == "az-key"
    assert key_section(azure, path) == {
        "endpoint": "https://r.openai.azure.com",
        "api_version": "2024-10-21",
    }
    assert load_key_file(path)["openai"] == {}
    assert load_key_file(tmp_path / "absent.yaml") == {}


def test_a_key_pasted_into_models_yaml_is_not_shown(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for pasted in ({"key": SECRET}, {"key_env": SECRET}):
        config = ModelConfig("GPT-4o", "openai", "gpt-4o", **pasted)
        with pytest.raises(ConfigError) as info:
            load_api_key(config, tmp_path / "absent.yaml")
        assert SECRET[:8] not in str(info.value) and "absent.yaml" in str(info.value)
    with pytest.raises(ConfigError, match=r"set OPENAI_API_KEY or add 'openai: \{api_key"):
        load_api_key(ModelConfig("GPT-4o", "openai", "gpt-4o"), tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    "settings, expected",
    [
        ("  provider: openai\n", "none"),
        ("  provider: openai\n  json_mode: true\n", "json_object"),
        ("  provider: openai\n  json_mode: false\n", "none"),
        ("  provider: openai\n  structured: json_schema\n", "json_schema"),
        ("  provider: hf\n", "json_schema"),  # as --LLM hf:<name>
        ("  provider: hf\n  structured: none\n", "none"),
    ],
)
def test_structured_output_setting(tmp_path, settings, expected):
    path = tmp_path / "models.yaml"
    path.write_text("M:\n" + settings)
    assert load_models(path)["M"].structured == expected


def test_json_mode_and_structured_together_is_an_error(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("M:\n  provider: openai\n  json_mode: true\n  structured: json_object\n")
    with pytest.raises(ConfigError, match="json_mode and structured both set"):
        load_models(path)
