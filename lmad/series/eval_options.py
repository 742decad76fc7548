"""The options of evaluation.py: a light module, so the script builds its flags from it without
importing the evaluation (pandas, the loaders, the metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lmad.series.defaults import DATA_DIR, DEFAULT_MODALITY, DEFAULT_SUBTASK


@dataclass
class EvalOptions:
    dataset: str
    llms: list[str]
    subtask: str = DEFAULT_SUBTASK
    data_dir: str | Path = DATA_DIR
    run_name: str = ""
    c0: float = 9.0
    normalised_threshold: float | None = None
    pat: float = 0.0
    vus_buffer: int | None = None
    plots: bool = True
    modality: str = DEFAULT_MODALITY
    ids: list[str] | None = None
    protocol: str = "lmad"
    tsbad_predictions: str = "best"
    baselines: list[str] = field(default_factory=list)
    """Score-based detectors whose rows join the table (``--baselines``; names, resolved)."""
