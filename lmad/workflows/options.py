"""The flags of the two workflow data scripts, as dataclasses (their fields are the flag names).

Each script's editable constants block (``data_processing/flowbench.py``,
``data_processing/synthetic_workflow.py``) is the one written place of the defaults of the fields
that have none here; the fields with a default are written only here, and the scripts' flags read
them with :func:`lmad.cli.add_field_flag`. The library functions the scripts call
(:func:`lmad.workflows.flowbench.process_flowbench`,
:func:`lmad.workflows.synthetic.write_synthetic`) take every value as a required argument.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class FlowbenchOptions:
    """Every flag of data_processing/flowbench.py (the keyword arguments of process_flowbench)."""

    raw: str
    dag: str | None
    """None: ``adjacency_list_dags/<name>.json`` found beside ``raw``."""
    name: str | None
    """None: the raw file's name."""
    features: str
    template: str
    seed: int
    split: str
    data_dir: str
    multiclass: bool = False

    def process_arguments(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~lmad.workflows.flowbench.process_flowbench` (with ``raw``)."""
        return asdict(self)


@dataclass
class SyntheticOptions:
    """Every flag of data_processing/synthetic_workflow.py."""

    runs: int
    seed: int
    """Seed of the generator (``split_seed`` seeds the split by run)."""
    normal_share: float
    affected_share: float
    raw_dir: str | None
    """None: ``<data_dir>/raw/synthetic_workflow``."""
    process: bool
    name: str
    features: str
    template: str
    split_seed: int
    split: str
    data_dir: str
    multiclass: bool = False

    def process_arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``process_flowbench`` but ``raw`` and ``dag`` (the written runs)."""
        return {
            "name": self.name, "features": self.features, "multiclass": self.multiclass,
            "template": self.template, "seed": self.split_seed, "split": self.split,
            "data_dir": self.data_dir,
        }  # fmt: skip
