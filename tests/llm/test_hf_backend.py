"""HFBackend on tiny models built offline from configs (no network, no downloads).

The tokenizer is a WordLevel tokenizer split on whitespace, so every word of a rendered prompt is one
token and prompt lengths can be counted by hand.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from lmad.errors import ConfigError
from lmad.llm.base import FatalError
from lmad.llm.hf_backend import HFBackend, clear_model_cache
from lmad.llm.messages import (
    ChatRequest,
    GenerationParams,
    ImagePart,
    Message,
    TextPart,
    system,
    user,
)

SPECIAL = ["</s>", "<unk>", "<pad>", "<s>", "<image>"]  # eos is id 0: ties in argmax pick it
WORDS = "system user assistant : the a series is normal anomaly window value high low yes no"
VOCAB = {t: i for i, t in enumerate([*SPECIAL, *WORDS.split()])}
IMAGE_TOKENS = 4  # 16x16 crop, patch 8: 4 patches (+ CLS, dropped by the "default" strategy)
TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : "
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for p in m['content'] %}{% if p['type'] == 'image' %}<image> "
    "{% else %}{{ p['text'] }} {% endif %}{% endfor %}{% endif %} </s> {% endfor %}"
    "{% if add_generation_prompt %}assistant : {% endif %}"
)
SYS, ASK = "the series", "is the window normal"
CHAT = (system(SYS), user(ASK))


def _tokenizer(template: str | None):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(VOCAB, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )
    fast.chat_template = template
    return fast


def _text_config():
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        eos_token_id=0,
        pad_token_id=2,
        bos_token_id=3,
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Tiny models saved to disk: a causal LM (eos disabled), one that always says eos, one with
    no chat template, and a LLaVA."""
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaForCausalLM,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    paths = {name: root / name for name in ("lm", "eos", "plain", "vlm")}

    lm = LlamaForCausalLM(_text_config())
    lm.generation_config.eos_token_id = None  # generation always runs to max_new_tokens
    lm.save_pretrained(paths["lm"])
    _tokenizer(TEMPLATE).save_pretrained(paths["lm"])

    shutil.copytree(paths["lm"], paths["plain"])
    (paths["plain"] / "chat_template.jinja").unlink()
    _tokenizer(None).save_pretrained(paths["plain"])

    eos = LlamaForCausalLM(_text_config())
    with torch.no_grad():
        eos.lm_head.weight.zero_()  # all logits equal: greedy picks id 0, the eos
    eos.save_pretrained(paths["eos"])
    _tokenizer(TEMPLATE).save_pretrained(paths["eos"])

    vision = CLIPVisionConfig(
        image_size=16,
        patch_size=8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=_text_config(),
        image_token_id=VOCAB["<image>"],
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    vlm = LlavaForConditionalGeneration(config)
    vlm.generation_config.eos_token_id = None
    vlm.save_pretrained(paths["vlm"])
    LlavaProcessor(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}
        ),
        tokenizer=_tokenizer(TEMPLATE),
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=TEMPLATE,
    ).save_pretrained(paths["vlm"])
    yield paths
    clear_model_cache()


def _png() -> ImagePart:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (40, 24), (200, 30, 30, 255)).save(buf, "PNG")
    return ImagePart(buf.getvalue())


def _request(messages=CHAT, temperature: float = 0.0, max_tokens: int = 6) -> ChatRequest:
    params = GenerationParams(temperature=temperature, max_tokens=max_tokens)
    return ChatRequest(tuple(messages), params)


def _templated_length(messages) -> int:
    """Tokens of TEMPLATE's rendering, counted by hand: one per whitespace-separated word."""
    words = 0
    for m in messages:
        words += 2 + sum(
            len(p.text.split()) if isinstance(p, TextPart) else 1 for p in m.parts
        )  # "role :" + content
        words += 1  # "</s>"
    return words + 2  # "assistant :"


def test_greedy_reply_and_usage(models):
    backend = HFBackend(str(models["lm"]))
    assert backend.provider == "hf" and not backend.takes_images
    assert backend.device == "cpu" and backend.dtype == "float32"
    reply = backend.complete(_request(max_tokens=6))
    assert isinstance(reply.text, str) and reply.text
    assert reply.usage.prompt_tokens == _templated_length(CHAT) == 14
    assert reply.usage.completion_tokens == 6
    assert reply.cost_usd == 0.0
    again = backend.complete(_request(max_tokens=6), timeout=60)
    assert again.text == reply.text and again.usage == reply.usage


def test_sampling_runs(models):
    reply = HFBackend(str(models["lm"])).complete(_request(temperature=0.8, max_tokens=5))
    assert isinstance(reply.text, str)
    assert reply.usage.completion_tokens == 5


def test_zero_max_tokens(models):
    reply = HFBackend(str(models["lm"])).complete(_request(max_tokens=0))
    assert reply.text == "" and reply.usage.completion_tokens == 0
    assert reply.usage.prompt_tokens == 14


def test_stops_at_eos_and_skips_special_tokens(models):
    reply = HFBackend(str(models["eos"])).complete(_request(max_tokens=8))
    assert reply.usage.completion_tokens == 1  # the eos itself
    assert reply.text == ""


def test_no_chat_template_joins_role_lines(models):
    reply = HFBackend(str(models["plain"])).complete(_request(max_tokens=3))
    prompt = f"system: {SYS}\nuser: {ASK}\nassistant:"
    assert reply.usage.prompt_tokens == len(prompt.split())
    assert reply.usage.completion_tokens == 3


def test_model_loaded_once(models):
    a = HFBackend(str(models["lm"]))
    b = HFBackend(f"{models['lm']}/.")
    assert a.loaded is b.loaded and a.loaded.model is b.loaded.model
    a.close()
    assert HFBackend(str(models["lm"])).loaded.model is b.loaded.model


def test_image_to_text_model_raises_fatal(models):
    backend = HFBackend(str(models["lm"]))
    request = _request(messages=(system(SYS), user(ASK, images=[_png()])))
    with pytest.raises(FatalError, match="takes no images; use the text modality"):
        backend.complete(request)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("/no/such/dir/tiny-model", "does not exist"),
        ("no-such-org/no-such-model", "not in the Hugging Face cache"),
    ],
)
def test_missing_model_is_config_error(name, reason):
    with pytest.raises(ConfigError) as info:
        HFBackend(name)
    message = str(info.value)
    assert name in message and "\n" not in message
    assert reason in message


def test_bad_options_are_config_errors(models, tmp_path):
    with pytest.raises(ConfigError, match="dtype"):
        HFBackend(str(models["lm"]), dtype="float7")
    with pytest.raises(ConfigError, match="modality"):
        HFBackend(str(models["lm"]), modality="audio")
    with pytest.raises(ConfigError, match=str(tmp_path)):
        HFBackend(str(tmp_path))  # an existing folder without a model


def test_vision_model_reads_images(models):
    backend = HFBackend(str(models["vlm"]))
    assert backend.takes_images
    messages = (system(SYS), Message("user", (TextPart(ASK), _png())))
    reply = backend.complete(_request(messages=messages, max_tokens=4))
    assert isinstance(reply.text, str)
    text_tokens = _templated_length(messages)  # the image counted as a single <image>
    assert reply.usage.prompt_tokens == text_tokens - 1 + IMAGE_TOKENS
    assert reply.usage.prompt_tokens > text_tokens
    assert reply.usage.completion_tokens == 4
    text_only = backend.complete(_request(max_tokens=2))
    assert text_only.usage.prompt_tokens == _templated_length(CHAT)


def test_vision_model_forced_to_text_is_config_error(models):
    with pytest.raises(ConfigError, match="cannot load model"):
        HFBackend(str(models["vlm"]), modality="text")
