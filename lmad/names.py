"""Names that become path components: checked, so that no flag can write outside the data root.

``--name``, ``--subtask``, ``--run_name``, series ids and dataset names are joined into paths under
``--data_dir``. :func:`check_name` refuses anything that could leave that folder or land in one that
lmad manages itself: path separators, ``..``, a leading dot, control characters, and the folder names
lmad owns under ``data/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from lmad.errors import ConfigError

RESERVED = frozenset(
    {"processed", "runs", "cache", "results", "models", "process", "scores", "raw"}
)
"""Folders lmad itself writes directly under ``--data_dir``; no user name may take one of them."""

_BAD_CHARACTERS = re.compile(r"[/\\\x00-\x1f:*?\"<>|]")


def check_name(value: str, what: str, reserved: frozenset[str] | set[str] = RESERVED) -> str:
    """``value`` unchanged when it is safe as one path component, else a :class:`ConfigError`.

    ``what`` names the flag in the message (``"--name"``, ``"series id"``).
    """
    text = str(value)
    problem = None
    if not text.strip():
        problem = "is empty"
    elif text != text.strip():
        problem = "starts or ends with a space"
    elif _BAD_CHARACTERS.search(text):
        problem = "contains a path separator or a character not allowed in file names"
    elif text in (".", "..") or text.startswith("."):
        problem = "starts with a dot"
    elif text.lower() in reserved:
        problem = "is a folder lmad manages under the data directory"
    if problem:
        allowed = "letters, digits, '-', '_', '.' and spaces, not starting with a dot"
        extra = f" (reserved: {', '.join(sorted(reserved))})" if text.lower() in reserved else ""
        raise ConfigError(f"{what} {text!r} {problem}{extra}; use one folder name: {allowed}")
    return text


def inside(root: str | Path, path: str | Path, what: str) -> Path:
    """``path`` resolved, or a :class:`ConfigError` when it lies outside ``root``."""
    root_resolved = Path(root).resolve()
    resolved = Path(path).resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        raise ConfigError(f"{what} {path} lies outside {root}; choose a name inside it")
    return resolved
