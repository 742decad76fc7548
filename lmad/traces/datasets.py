"""data_processing/process_logs.py's settings, and the splits they make (simulated or imported).

The fields of :class:`ProcessLogsOptions` without a default take the constants at the top of
process_logs.py (the one place researchers edit them); the others are written here once, and the
script's flags read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lmad.traces.log_io import Trace


@dataclass
class ProcessLogsOptions:
    """Every flag of data_processing/process_logs.py."""

    data_dir: str
    n_train: int
    n_test: int
    n_eval: int
    n_unseen: int
    """The last ``n_unseen`` built-in processes never appear in training."""
    anomaly_ratio: float
    seed: int
    holdout: float
    """Share of an imported log's normal traces held out for test, and again for eval."""
    xes: str | None = None
    """Import this XES event log instead of simulating."""
    csv: list[str] | None = None
    """Re-validate and copy these SemAD CSV files instead of simulating."""
    name: str | None = None
    """None: the file's name (``--xes``, ``--csv``), else the script's ``NAME``."""
    inject: bool = False
    """With ``xes``: inject anomalies into the held-out traces."""
    lifecycle: str | None = None
    """With ``xes``: keep only events with this ``lifecycle:transition``."""


def build_splits(options: ProcessLogsOptions) -> dict[str, list[Trace]]:
    """The traces of each file to write, by file stem (``training_data``, ``test_data``, ...).

    ``csv``: the files as they are; ``xes``: the log split by
    :func:`~lmad.traces.inject.log_dataset`; else the built-in processes played out by
    :func:`~lmad.traces.inject.simulated_dataset`.
    """
    from lmad.traces.inject import log_dataset, simulated_dataset
    from lmad.traces.log_io import read_traces
    from lmad.traces.xes import read_xes

    if options.csv:
        return {Path(f).stem: read_traces(f) for f in options.csv}
    if options.xes:
        traces = read_xes(options.xes, options.lifecycle)
        ratio = options.anomaly_ratio if options.inject else None
        return log_dataset(traces, ratio, options.seed, options.holdout)
    return simulated_dataset(
        options.n_train, options.n_test, options.n_eval, options.anomaly_ratio, options.seed,
        n_unseen=options.n_unseen,
    )  # fmt: skip
