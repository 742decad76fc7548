"""Job records: the run CSV's columns, the features, the sentences and the labels.

A Flow-Bench run CSV has the job name first, then the 44 :data:`COLUMNS`: 8 text columns (the label
``anomaly_type``, the job ``type``, ``kickstart_*`` host and executable names) and 36 numeric ones
(timestamps, throughput, delays, bytes, cpu time, exit codes, I/O counters).

Two templates, both from the papers on Flow-Bench:

- ``paper`` (the supervised fine-tuning paper's CSVs): ``"<feature> is <value> "`` for every feature,
  joined, values printed as Python floats, e.g. ``wms_delay is 6.0 queue_delay is 1006.0 ...
  kickstart_executables_cpu_time is 771.8 `` (the original text ends with that space; kept).
- ``newer`` (the in-context paper): ``Job has wms delay 5 sec, queue delay 20 sec, runtime 987 sec,
  post script delay 5 sec, stage in delay 65 sec, and stage out delay 4 sec``: always the six delays,
  underscores read as spaces, whole numbers without ``.0``.

Labels: binary (1 when ``anomaly_type`` is not ``None``) or multi-class (the ``anomaly_type`` string
itself, ``None``, ``cpu_K``, ``hdd_K``, with an integer id in a fixed order).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from lmad.errors import ConfigError

TEMPLATES: tuple[str, ...] = ("paper", "newer")
NORMAL = "None"
"""The ``anomaly_type`` of a normal job."""

DELAY_FEATURES: tuple[str, ...] = (
    "wms_delay",
    "queue_delay",
    "runtime",
    "post_script_delay",
    "stage_in_delay",
    "stage_out_delay",
)
"""The six delays (seconds) of a job, in the papers' order; the ``newer`` template uses these."""
TIMESTAMP_COLUMNS: tuple[str, ...] = (
    "ready", "pre_script_start", "pre_script_end", "submit", "stage_in_start", "stage_in_end",
    "execute_start", "execute_end", "stage_out_start", "stage_out_end", "post_script_start",
    "post_script_end",
)  # fmt: skip
TEXT_COLUMNS: tuple[str, ...] = (
    "anomaly_type", "type", "kickstart_user", "kickstart_site", "kickstart_hostname",
    "kickstart_transformations", "kickstart_executables", "kickstart_executables_argv",
)  # fmt: skip
COLUMNS: tuple[str, ...] = (
    "anomaly_type", "type", "is_clustered", "ready", "pre_script_start", "pre_script_end", "submit",
    "stage_in_start", "stage_in_end", "stage_in_effective_bytes_per_sec", "execute_start",
    "execute_end", "stage_out_start", "stage_out_end", "stage_out_effective_bytes_per_sec",
    "post_script_start", "post_script_end", "wms_delay", "pre_script_delay", "queue_delay", "runtime",
    "post_script_delay", "stage_in_delay", "stage_in_bytes", "stage_out_delay", "stage_out_bytes",
    "kickstart_user", "kickstart_site", "kickstart_hostname", "kickstart_transformations",
    "kickstart_executables", "kickstart_executables_argv", "kickstart_executables_cpu_time",
    "kickstart_status", "kickstart_executables_exitcode", "kickstart_online_iowait",
    "kickstart_online_bytes_read", "kickstart_online_bytes_written",
    "kickstart_online_read_system_calls", "kickstart_online_write_system_calls",
    "kickstart_online_utime", "kickstart_online_stime", "kickstart_online_bytes_read_per_second",
    "kickstart_online_bytes_written_per_second",
)  # fmt: skip
"""The 44 columns of a Flow-Bench run CSV after the job-name column, in file order."""
NUMERIC_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in TEXT_COLUMNS)
"""What ``--features all`` uses: the 36 numeric columns (timestamps shifted to the run's start)."""
DEFAULT_FEATURES: tuple[str, ...] = (
    *DELAY_FEATURES, "stage_in_bytes", "stage_out_bytes", "kickstart_executables_cpu_time",
)  # fmt: skip
"""The paper's features: six delays, two byte counts, cpu time."""

_NORMAL_SPELLINGS = {"", "none", "0", "0.0", "normal", "nan"}


def resolve_features(features: str | Sequence[str]) -> list[str]:
    """``"default"``, ``"all"``, a comma-separated list or a sequence of numeric column names."""
    if isinstance(features, str):
        if features == "default":
            return list(DEFAULT_FEATURES)
        if features == "all":
            return list(NUMERIC_COLUMNS)
        features = [part.strip() for part in features.split(",") if part.strip()]
    unknown = [name for name in features if name not in NUMERIC_COLUMNS]
    if unknown or not features:
        raise ConfigError(
            f"unknown features {unknown or features}; use default, all or numeric columns such as "
            + ", ".join(DEFAULT_FEATURES)
        )
    return list(dict.fromkeys(features))


def paper_value(value: float) -> str:
    """A value as the paper's CSVs print it: the Python float (``6.0``, ``771.8``)."""
    return str(float(value))


def newer_value(value: float) -> str:
    """A value as the newer template prints it: ``5`` for 5.0, ``93.5`` for 93.5."""
    return np.format_float_positional(float(value), trim="-")


def paper_sentence(values: Mapping[str, float], features: Sequence[str]) -> str:
    """One job in the paper's template: ``"<feature> is <value> "`` joined over ``features``."""
    return "".join(f"{name} is {paper_value(values[name])} " for name in features)


def newer_sentence(values: Mapping[str, float]) -> str:
    """One job in the newer template (the six delays, in seconds)."""
    parts = [f"{name.replace('_', ' ')} {newer_value(values[name])} sec" for name in DELAY_FEATURES]
    return "Job has " + ", ".join(parts[:-1]) + ", and " + parts[-1]


def sentences(frame: pd.DataFrame, template: str, features: Sequence[str]) -> pd.Series:
    """The sentence of every row of ``frame`` (numeric columns, no NaN), column by column.

    ``features`` are the columns written by the ``paper`` template; ``newer`` always uses the six
    delays.
    """
    if template not in TEMPLATES:
        raise ConfigError(f"unknown template {template!r}; choose one of: {', '.join(TEMPLATES)}")
    text = pd.Series([""] * len(frame), index=frame.index, dtype=object)
    if template == "paper":
        for name in features:
            text = text + f"{name} is " + frame[name].astype(float).map(paper_value) + " "
        return text
    last = len(DELAY_FEATURES) - 1
    text = text + "Job has "
    for i, name in enumerate(DELAY_FEATURES):
        joiner = "" if i == 0 else (", and " if i == last else ", ")
        values = frame[name].astype(float).map(newer_value)
        text = text + f"{joiner}{name.replace('_', ' ')} " + values + " sec"
    return text


def normalise_anomaly_type(values: pd.Series) -> pd.Series:
    """``anomaly_type`` as strings: missing, ``0`` or ``normal`` become ``None``; others stripped."""
    text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    return text.where(~text.str.lower().isin(_NORMAL_SPELLINGS), NORMAL)


def _label_key(label: str) -> tuple:
    if label == NORMAL:
        return (0, "", 0)
    match = re.fullmatch(r"(.*?)_?(\d+)", label)
    if match:
        return (1, match.group(1), int(match.group(2)))
    return (1, label, -1)


def label_order(labels: Iterable[str]) -> list[str]:
    """Distinct labels in a fixed order: ``None`` first, then by kind and number (cpu_2 < cpu_10)."""
    return sorted(set(labels), key=_label_key)


def binary_labels(anomaly_type: pd.Series) -> pd.Series:
    """1 for every job whose ``anomaly_type`` is not ``None``, else 0."""
    return (anomaly_type != NORMAL).astype(int)
