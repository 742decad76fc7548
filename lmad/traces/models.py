"""Which causal LM a SemAD run uses: resolving ``--llm_path`` and loading model and tokenizer.

SemAD (guanwei49/SemAD) fine-tunes Meta-Llama-3-8B; lmad takes any causal LM that
:mod:`lmad.llm.local_models` resolves: a model folder, a ``.gguf`` file, a cached Hugging Face id,
or ``smollm2`` (the packaged SmolLM2-135M-Instruct, converted once). torch and transformers are
imported inside the functions that need them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lmad.errors import ConfigError
from lmad.llm.local_models import (  # noqa: F401  (re-exported: the SemAD scripts use these names)
    MODELS_DIR,
    RESERVED_IN_MODELS,
    SMOLLM2,
    SMOLLM2_FILE,
    SMOLLM2_NAME,
    SMOLLM2_PACKAGE,
    convert_gguf,
    gguf_folder_name,
    model_name,
    resolve_llm_path,
    smollm2_gguf,
)
from lmad.names import check_name


def adapter_folder_name(llm_path: str, flag: str) -> str:
    """:func:`model_name`, checked: the folder under ``data/models/semad/`` of the adapter.

    ``flag`` names the option that sets the folder instead (``--output_dir``, ``--peft_path``).
    """
    try:
        return check_name(
            model_name(llm_path),
            f"the adapter folder name taken from --llm_path {llm_path}",
            frozenset(),
        )
    except ConfigError as exc:
        raise ConfigError(f"{exc}; rename the model folder or pass {flag}") from None


def load_tokenizer(path: str, need_offsets: bool = False) -> Any:
    """The model's tokenizer, right-padded, with ``pad = eos`` when it has no pad token.

    Args:
        path: a folder or id from :func:`resolve_llm_path`.
        need_offsets: scoring needs a fast tokenizer (character offsets per token).
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, padding_side="right")
    except (OSError, ValueError, KeyError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise ConfigError(f"cannot load the tokenizer of {path!r}: {reason}") from exc
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"the tokenizer of {path!r} has no end-of-sequence token")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if need_offsets and not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"the tokenizer of {path!r} is not a fast tokenizer; scoring needs character offsets"
        )
    return tokenizer


def use_4bit(qlora: str) -> bool:
    """``auto`` = 4-bit when CUDA is available; ``on``/``off`` force it."""
    choice = str(qlora).lower()
    if choice not in {"auto", "on", "off"}:
        raise ConfigError(f"--qlora must be auto, on or off, not {qlora!r}")
    if choice == "auto":
        import torch

        return torch.cuda.is_available()
    return choice == "on"


def bnb_config() -> Any:
    """SemAD's QLoRA quantisation: 4-bit NF4, double quantisation, bfloat16 compute."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def load_causal_lm(path: str, four_bit: bool = False, device: str | None = None) -> Any:
    """Load a causal LM in float32 (CPU) / bfloat16 (CUDA), or 4-bit NF4 when ``four_bit``.

    Under ``torchrun``/``accelerate launch`` a 4-bit model is placed on this process's GPU
    (``LOCAL_RANK``); the Trainer places unquantised models itself.
    """
    import torch
    from transformers import AutoModelForCausalLM

    cuda = torch.cuda.is_available()
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if cuda else torch.float32}
    if four_bit:
        kwargs["quantization_config"] = bnb_config()
        rank = int(os.environ.get("LOCAL_RANK", "0"))
        kwargs["device_map"] = {"": device or (f"cuda:{rank}" if cuda else "cpu")}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise ConfigError(f"cannot load causal LM {path!r}: {reason}") from exc
    if not four_bit and device:
        model.to(device)
    return model


def load_for_scoring(
    llm_path: str,
    peft_path: str | os.PathLike | None,
    qlora: str,
    models_dir: str | os.PathLike = MODELS_DIR,
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for scoring: the base model plus the LoRA adapter, in eval mode.

    The tokenizer comes from the adapter folder when it holds one (fine-tuning saves it there),
    else from the base model; it must be a fast tokenizer (character offsets).

    Raises:
        ConfigError: a missing adapter folder or one without ``adapter_config.json``.
    """
    path = resolve_llm_path(llm_path, models_dir)
    adapter = Path(peft_path) if peft_path else None
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        raise ConfigError(
            f"no LoRA adapter in {adapter} (adapter_config.json missing); run "
            "fine_tune_llama3.py first, or pass --peft_path none to score the base model"
        )
    has_tokenizer = adapter is not None and any(
        (adapter / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json")
    )
    tokenizer = load_tokenizer(str(adapter) if has_tokenizer else path, need_offsets=True)
    model = load_causal_lm(path, four_bit=use_4bit(qlora))
    if adapter is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(adapter))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            reason = " ".join(str(exc).split())[:300]
            raise ConfigError(f"cannot load the adapter {adapter} on {path}: {reason}") from exc
    model.eval()
    return model, tokenizer
