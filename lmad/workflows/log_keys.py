"""Workflow runs as sequences of log keys, for the log-anomaly detectors (DeepLog, LogAnomaly, LogBERT).

Log-anomaly detectors read a system's log as a sequence of *log keys* (the template of each line).
A workflow run has no log lines, but its jobs play their part: the processed split CSVs keep each
run's jobs in DAG (topological) order, and a job's key is its **job type** plus its **discretised
features**:

- job type: the job name without its instance numbers (``eht-imaging_pipeline_ID0000003`` ->
  ``eht-imaging_pipeline``, ``stage_out_local_condorpool_0_0`` -> ``stage_out_local_condorpool``);
- a bucket per numeric feature (``runtime``, ``stage_in_delay``, ...): ``low`` below the
  ``quantile`` and ``high`` above the ``1 - quantile`` quantile of that feature among the *normal*
  train jobs of the same type, else ``mid``; only ``low``/``high`` appear in the key, so a job whose
  features all lie in their usual range has the key of its type alone.

Edges are chosen on the train split only, so validation and test see no information they should
not. A key never seen among the normal train jobs maps to :data:`UNKNOWN`; :data:`PAD` fills
windows at a run's start. Each job keeps its label and its row in the split, so job-level
predictions map back to the rows the classifiers score. Runs never cross splits: the split CSVs
are already split by run (``data_processing/flowbench.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lmad.errors import DataError

PAD, UNKNOWN = 0, 1
"""Key ids reserved for padding and for keys not seen among the normal train jobs."""
MIN_PROBABILITY = 1e-12
"""Probability floor of a predicted key: an unknown key's surprisal is ``-log(MIN_PROBABILITY)``."""
RESERVED = ("<pad>", "<unknown>")
_INSTANCE = re.compile(r"(_ID\d+|_\d+)(?=_|$)")


def job_type(job: str) -> str:
    """The job's name without instance numbers (``_ID0000003``, ``_0``)."""
    return _INSTANCE.sub("", str(job))


@dataclass
class KeyScheme:
    """How a job becomes a key: per (job type, feature) bucket edges from normal train jobs."""

    features: list[str]
    quantile: float
    edges: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def fit(cls, train: pd.DataFrame, features: Sequence[str], quantile: float) -> KeyScheme:
        """Edges from the normal jobs of ``train`` (label 0), per job type and feature."""
        if not 0.0 <= quantile < 0.5:
            raise DataError(f"key quantile must lie in [0, 0.5), not {quantile}")
        check_columns(train, features)
        scheme = cls(list(features), quantile)
        normal = train[train["label_id"] == 0]
        for kind, jobs in normal.groupby(normal["job"].map(job_type)):
            for feature in scheme.features:
                values = jobs[feature].to_numpy(dtype=np.float64)
                low, high = np.quantile(values, [quantile, 1.0 - quantile])
                scheme.edges[(kind, feature)] = (float(low), float(high))
        return scheme

    def key(self, job: str, values: Sequence[float]) -> str:
        """``<type>`` plus `` <feature>=low|high`` for each feature outside its usual range."""
        kind = job_type(job)
        parts = [kind]
        for feature, value in zip(self.features, values):
            low, high = self.edges.get((kind, feature), (-np.inf, np.inf))
            if value < low:
                parts.append(f"{feature}=low")
            elif value > high:
                parts.append(f"{feature}=high")
        return " ".join(parts)

    def keys(self, frame: pd.DataFrame) -> list[str]:
        check_columns(frame, self.features)
        values = frame[self.features].to_numpy(dtype=np.float64)
        return [self.key(job, row) for job, row in zip(frame["job"], values)]


def check_columns(frame: pd.DataFrame, features: Sequence[str]) -> None:
    missing = [c for c in ("run", "job", *features) if c not in frame.columns]
    if missing:
        raise DataError(
            f"log keys need the columns run, job and the numeric features; missing "
            f"{', '.join(missing)} (process the data with data_processing/flowbench.py)"
        )


@dataclass
class Vocabulary:
    """Key text <-> id; ids 0 and 1 are :data:`PAD` and :data:`UNKNOWN`."""

    texts: list[str]

    @classmethod
    def of(cls, keys: Sequence[str]) -> Vocabulary:
        """Every distinct key, in order of first appearance, after the reserved ones."""
        return cls([*RESERVED, *dict.fromkeys(keys)])

    def __len__(self) -> int:
        return len(self.texts)

    def ids(self, keys: Sequence[str]) -> np.ndarray:
        index = {text: i for i, text in enumerate(self.texts)}
        return np.array([index.get(k, UNKNOWN) for k in keys], dtype=np.int64)


@dataclass
class JobSequences:
    """The runs of one split: key ids, key texts, job labels and split rows, each in job order.

    ``texts`` are the keys as written, also for keys the vocabulary does not know (their id is
    :data:`UNKNOWN`): LogAnomaly embeds the text, so an unseen key still has a meaning.
    """

    runs: list[str]
    keys: list[np.ndarray]
    labels: list[np.ndarray]
    rows: list[np.ndarray]
    texts: list[list[str]]

    def __len__(self) -> int:
        return len(self.runs)

    def normal(self) -> JobSequences:
        """Only the runs without an anomalous job (what the detectors train on)."""
        keep = [i for i, labels in enumerate(self.labels) if not labels.any()]
        return self.subset(keep)

    def subset(self, indices: Sequence[int]) -> JobSequences:
        return JobSequences(
            [self.runs[i] for i in indices],
            [self.keys[i] for i in indices],
            [self.labels[i] for i in indices],
            [self.rows[i] for i in indices],
            [self.texts[i] for i in indices],
        )

    def job_labels(self) -> np.ndarray:
        return np.concatenate(self.labels) if self.labels else np.zeros(0, dtype=np.int64)

    def to_rows(self, per_job: Sequence[np.ndarray], n_rows: int, fill: float = 0.0) -> np.ndarray:
        """Per-job values (one array per run, job order) placed at their split rows."""
        out = np.full(n_rows, fill, dtype=np.float64)
        for rows, values in zip(self.rows, per_job):
            out[rows] = values
        return out


def build_sequences(frame: pd.DataFrame, scheme: KeyScheme, vocabulary: Vocabulary) -> JobSequences:
    """One sequence per run, jobs in the order the split CSV lists them (DAG order).

    Labels are binary (any anomalous class is 1); ``rows`` are positions in ``frame``.
    """
    texts = scheme.keys(frame)
    ids = vocabulary.ids(texts)
    labels = (frame["label_id"].to_numpy() != 0).astype(np.int64)
    position = np.arange(len(frame))
    out = JobSequences([], [], [], [], [])
    for run, index in frame.groupby("run", sort=False).indices.items():
        index = np.sort(index)  # the CSV's order within the run: DAG order
        out.runs.append(str(run))
        out.keys.append(ids[index])
        out.labels.append(labels[index])
        out.rows.append(position[index])
        out.texts.append([texts[i] for i in index])
    return out


@dataclass
class JobScores:
    """What a log-anomaly detector says about every job of some runs (one array per run).

    ``ranks``: the 1-based rank of the job's true key among the model's predicted keys for its
    position (1 = the most likely; an unknown key ranks ``len(vocabulary)``, below every known one);
    the job is anomalous under the top-g rule when ``rank > g`` (DeepLog, Du et al. 2017, Sec. 3.1).
    ``surprisal``: ``-log p`` of the true key (p floored at :data:`MIN_PROBABILITY`), a continuous
    score for ROC-AUC and AP.
    """

    ranks: list[np.ndarray]
    surprisal: list[np.ndarray]

    def flagged(self, top_g: int) -> list[np.ndarray]:
        """1 where the true key is not among the ``top_g`` most likely keys."""
        return [(r > top_g).astype(np.int64) for r in self.ranks]


@dataclass
class KeyedSplits:
    """The three splits as sequences over one vocabulary learnt from the normal train jobs."""

    scheme: KeyScheme
    vocabulary: Vocabulary
    train: JobSequences
    validation: JobSequences
    test: JobSequences


def keyed_splits(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    features: Sequence[str],
    quantile: float,
) -> KeyedSplits:
    """Fit the key scheme and vocabulary on normal train jobs; build every split's sequences."""
    scheme = KeyScheme.fit(train, features, quantile)
    normal = train[train["label_id"] == 0]
    vocabulary = Vocabulary.of(scheme.keys(normal))
    return KeyedSplits(
        scheme,
        vocabulary,
        build_sequences(train, scheme, vocabulary),
        build_sequences(validation, scheme, vocabulary),
        build_sequences(test, scheme, vocabulary),
    )
