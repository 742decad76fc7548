"""Local Hugging Face models (``hf:<id or path>``) behind the :class:`Backend` interface.

Two kinds of model are served:

* image-text-to-text models (the config has a ``vision_config``, e.g. LLaVA, Qwen2-VL, Gemma 3):
  ``AutoProcessor`` + ``AutoModelForImageTextToText``; the chat goes through the processor's chat
  template with the PNG images decoded by PIL, so ``takes_images`` is True;
* plain causal LMs: ``AutoTokenizer`` + ``AutoModelForCausalLM``; text only.

Weights are loaded once per process and shared by every backend naming the same model, device and
dtype. Answers are held to their JSON form by constrained decoding (:mod:`lmad.llm.constrained`):
with ``structured: json_schema`` (the default for ``hf:`` names) a request's answer schema is
enforced token by token, with ``json_object`` any JSON object is, and ``none`` leaves the model
free (the answer parser and one repair turn cope with what comes back). ``timeout`` is honoured
loosely, as ``generate(max_time=...)``, which stops generation after that many seconds and returns
what was produced so far; a reply stopped by that or by ``max_tokens`` is marked ``truncated``.
Names go through :func:`lmad.llm.local_models.resolve_hf_model`, so ``hf:smollm2`` is the packaged
SmolLM2-135M-Instruct (converted once). torch and transformers are imported only when a model is
loaded.
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from lmad.errors import ConfigError
from lmad.llm.base import Backend, FatalError, Reply, Usage
from lmad.llm.local_models import resolve_hf_model
from lmad.llm.messages import ChatRequest, ImagePart, Message, TextPart

ANY_OBJECT = {"type": "object"}
"""The schema ``structured: json_object`` holds a reply to: some JSON object."""

MODALITIES = {"auto": "auto", "text": "text", "image": "image", "vision": "image"}


@dataclass
class LoadedModel:
    """One model in memory: the network, its tokenizer or processor, and a lock for generate."""

    model: Any
    tokenizer: Any
    processor: Any | None
    device: str
    dtype: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def vision(self) -> bool:
        return self.processor is not None


_MODELS: dict[tuple[str, str, str, str], LoadedModel] = {}
_LOAD_LOCK = threading.Lock()


def clear_model_cache() -> None:
    """Forget every loaded model (the weights are freed once no backend holds them)."""
    with _LOAD_LOCK:
        _MODELS.clear()


def resolve_device(device: str | None) -> str:
    """The device asked for, else ``cuda`` when available, else ``cpu``."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` is bfloat16 on CUDA and float32 elsewhere; other names must be torch dtypes."""
    import torch

    name = dtype.lower().removeprefix("torch.")
    if name == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    if not isinstance(getattr(torch, name, None), torch.dtype):
        raise ConfigError(f"hf: unknown dtype {dtype!r}; use auto, float32, float16 or bfloat16")
    return name


def _load_error(path: str, exc: Exception) -> ConfigError:
    """A one-line ConfigError naming the model path."""
    if os.path.isdir(path):
        reason = " ".join(str(exc).split())[:300]
    else:
        reason = "not a local folder and not in the Hugging Face cache (HF_HUB_OFFLINE is set?)"
    return ConfigError(f"hf: cannot load model {path!r}: {reason}")


def is_vision_config(config: Any) -> bool:
    """Whether the config describes an image-text-to-text model."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
    )

    if getattr(config, "vision_config", None) is not None:
        return True
    model_type = getattr(config, "model_type", "")
    return (
        model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
        and model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    )


def load_model(path: str, device: str, dtype: str, modality: str = "auto") -> LoadedModel:
    """Load (once per process) the model at ``path``; raise :class:`ConfigError` if it cannot be."""
    key = (path, device, dtype, modality)
    with _LOAD_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        import torch
        from transformers import (
            AutoConfig,
            AutoModelForCausalLM,
            AutoModelForImageTextToText,
            AutoProcessor,
            AutoTokenizer,
        )

        try:
            config = AutoConfig.from_pretrained(path)
            vision = is_vision_config(config) if modality == "auto" else modality == "image"
            kwargs = {"config": config, "dtype": getattr(torch, dtype)}
            if vision:
                processor = AutoProcessor.from_pretrained(path)
                tokenizer = getattr(processor, "tokenizer", processor)
                model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
            else:
                processor = None
                tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise _load_error(path, exc) from exc
        model.to(device)
        model.eval()
        loaded = LoadedModel(model, tokenizer, processor, device, dtype)
        _MODELS[key] = loaded
        return loaded


def _merge_system(conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold system turns into the first user turn, for templates that reject the system role."""
    system_texts = [m["content"] for m in conversation if m["role"] == "system"]
    rest = [dict(m) for m in conversation if m["role"] != "system"]
    if not system_texts or not rest:
        return rest or conversation
    if isinstance(rest[0]["content"], str):
        rest[0]["content"] = "\n\n".join([*system_texts, rest[0]["content"]])
    else:
        texts = [p["text"] for c in system_texts for p in c if p["type"] == "text"]
        rest[0]["content"] = [{"type": "text", "text": "\n\n".join(texts)}, *rest[0]["content"]]
    return rest


def apply_chat_template_to(apply: Any, conversation: list[dict[str, Any]], **kwargs: Any) -> Any:
    """Apply a chat template, retrying without a system role if the template refuses it."""
    from jinja2.exceptions import TemplateError

    try:
        return apply(conversation, **kwargs)
    except TemplateError:
        merged = _merge_system(conversation)
        if merged == conversation:
            raise
        return apply(merged, **kwargs)


def _image(part: ImagePart) -> Any:
    from PIL import Image

    with Image.open(io.BytesIO(part.png)) as img:
        return img.convert("RGB")


class HFBackend(Backend):
    """A local Hugging Face model; see the module docstring."""

    provider = "hf"

    def __init__(
        self,
        model: str,
        device: str | None = None,
        dtype: str = "auto",
        modality: str = "auto",
        structured: str = "json_schema",
    ) -> None:
        super().__init__(model)
        if modality not in MODALITIES:
            raise ConfigError(f"hf: unknown modality {modality!r}; use auto, text or image")
        self.structured = structured
        try:
            path = resolve_hf_model(model)
            self.device = resolve_device(device)
            self.dtype = resolve_dtype(dtype, self.device)
            self.loaded = load_model(path, self.device, self.dtype, MODALITIES[modality])
        except ImportError as exc:
            raise ConfigError(f"hf: {exc}; install the extras with pip install 'lmad[hf]'") from exc
        self.takes_images = self.loaded.vision

    @property
    def answer_identity(self) -> str:
        """The dtype changes the answers of a local model, so it is part of the cache key."""
        return f"{self.model}[dtype={self.dtype}]"

    def _text_inputs(self, messages: tuple[Message, ...]) -> Any:
        """Token ids and attention mask of a text-only chat (tensors on CPU)."""
        tokenizer = self.loaded.tokenizer
        if getattr(tokenizer, "chat_template", None):
            conversation = [{"role": m.role, "content": m.text} for m in messages]
            return apply_chat_template_to(
                tokenizer.apply_chat_template,
                conversation,
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
            )
        prompt = "".join(f"{m.role}: {m.text}\n" for m in messages) + "assistant:"
        return tokenizer(prompt, return_tensors="pt")

    def _vision_inputs(self, messages: tuple[Message, ...]) -> Any:
        """Token ids, attention mask and pixel values of a chat with images (tensors on CPU)."""
        processor = self.loaded.processor
        if getattr(processor, "chat_template", None):
            conversation = [
                {
                    "role": m.role,
                    "content": [
                        {"type": "text", "text": p.text}
                        if isinstance(p, TextPart)
                        else {"type": "image", "image": _image(p)}
                        for p in m.parts
                    ],
                }
                for m in messages
            ]
            return apply_chat_template_to(
                processor.apply_chat_template,
                conversation,
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
            )
        token = getattr(processor, "image_token", "<image>")
        lines = []
        for m in messages:
            body = "".join(p.text if isinstance(p, TextPart) else token for p in m.parts)
            lines.append(f"{m.role}: {body}\n")
        images = [_image(img) for m in messages for img in m.images] or None
        return processor(text="".join(lines) + "assistant:", images=images, return_tensors="pt")

    def complete(self, request: ChatRequest, timeout: float | None = None) -> Reply:
        """Generate one answer. ``timeout`` bounds generation time (``max_time``), not loading."""
        import torch

        loaded = self.loaded
        if not loaded.vision and any(m.images for m in request.messages):
            raise FatalError(
                f"model {self.model} takes no images; use the text modality (main_cli_text.py)"
            )
        if loaded.vision:
            inputs = self._vision_inputs(request.messages)
        else:
            inputs = self._text_inputs(request.messages)
        model_dtype = getattr(torch, loaded.dtype)
        inputs = {
            k: v.to(loaded.device, dtype=model_dtype)
            if torch.is_floating_point(v)
            else v.to(loaded.device)
            for k, v in inputs.items()
            if isinstance(v, torch.Tensor)
        }
        prompt_len = int(inputs["input_ids"].shape[1])
        params = request.params
        if params.max_tokens <= 0:
            return Reply(text="", usage=Usage(prompt_len, 0), cost_usd=0.0)

        tokenizer = loaded.tokenizer
        eos = self._eos_ids()
        gen: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "do_sample": params.temperature > 0,
            "pad_token_id": tokenizer.pad_token_id
            if tokenizer.pad_token_id is not None
            else eos[0],
        }
        if params.temperature > 0:
            gen.update(temperature=params.temperature, top_p=params.top_p)
        schema = self._schema(request)
        if schema is not None:
            from lmad.llm.constrained import constrained_generation

            constrained, _ = constrained_generation(
                tokenizer, schema, params.temperature, params.top_p, params.max_tokens
            )
            gen.update(constrained)
        if timeout is not None and timeout > 0:
            gen["max_time"] = float(timeout)
        try:
            with loaded.lock, torch.inference_mode():
                output = loaded.model.generate(**inputs, **gen)
        except torch.OutOfMemoryError as exc:
            raise FatalError(
                f"model {self.model} ran out of memory on {loaded.device}; "
                "try a smaller model, a shorter prompt or --max-tokens"
            ) from exc
        new_tokens = output[0, prompt_len:]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        usage = Usage(prompt_tokens=prompt_len, completion_tokens=int(new_tokens.shape[0]))
        ended = new_tokens.shape[0] > 0 and int(new_tokens[-1]) in eos
        return Reply(text=text, usage=usage, cost_usd=0.0, truncated=not ended)

    def _eos_ids(self) -> list[int]:
        """The token ids that end a reply (the generation config's, else the tokenizer's)."""
        eos = self.loaded.model.generation_config.eos_token_id
        if eos is None:
            eos = self.loaded.tokenizer.eos_token_id
        return [int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None]

    def _schema(self, request: ChatRequest) -> dict[str, Any] | None:
        """The schema generation is held to: the request's answer schema (``json_schema``), any
        JSON object (``json_object``), or none (``none``, a request that carries no schema under
        ``json_schema``, or one that asks for no JSON)."""
        if not request.params.json_mode:
            return None
        if self.structured == "json_schema":
            return request.schema
        return ANY_OBJECT if self.structured == "json_object" else None

    def close(self) -> None:
        """Nothing to release per backend: the weights stay cached for other backends."""
