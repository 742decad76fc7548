"""What a script needs to build its LLM flags, without importing a client: the one place of these
defaults. Importing this module is cheap (no HTTP stack, no YAML, no pydantic), so ``--help`` and
flag parsing stay fast."""

from __future__ import annotations

from dataclasses import dataclass

MODELS_FILE = "BigModel/models.yaml"
"""Where ``--LLM`` names are looked up (the scripts' ``--models`` default)."""
KEYS_FILE = "BigModel/api_keys.yaml"
"""Where API keys are read when no environment variable holds them (``--keys``)."""


@dataclass(frozen=True)
class ClientOptions:
    """How a client sends requests: the one place of these defaults (the scripts' flags use them)."""

    concurrency: int = 4
    """Requests in flight at once."""
    timeout: float = 120.0
    """Seconds a request may take before it is retried."""
