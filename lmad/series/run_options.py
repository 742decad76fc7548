"""The options of a TAMA run: a light module, so the scripts build their flags from it without
importing the pipeline (pandas, the loaders)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lmad.errors import ConfigError
from lmad.series.defaults import DATA_DIR, DEFAULT_MODALITY, DEFAULT_SUBTASK


@dataclass
class RunOptions:
    """What a run does; the one place of its defaults (main_cli.py builds its flags from these)."""

    dataset: str
    llm: str
    ids: list[str] | None = None
    modality: str = DEFAULT_MODALITY
    normal_reference: int = 3
    double_check: bool = True
    subtask: str = DEFAULT_SUBTASK
    data_dir: str | Path = DATA_DIR
    run_name: str = ""
    limit: int | None = None
    seed: int = 42

    def check(self) -> None:
        """Refuse values that would silently do something else than asked."""
        if self.normal_reference < 0:
            raise ConfigError(f"--normal_reference must be 0 or more, not {self.normal_reference}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(
                f"--limit must be at least 1 (leave it out for all), not {self.limit}"
            )
        if self.modality not in ("image", "text"):
            raise ConfigError(f"unknown modality {self.modality!r}; use image or text")
        from lmad.series.datasets import check_series_id

        for series in self.ids or []:  # --subtask and --run_name: processed_root, run_log_path
            check_series_id(series)
