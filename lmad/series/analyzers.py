"""What answers a TAMA run: an analyzer turns one job (a stage of one window) into its run-log record.

:class:`~lmad.series.pipeline.TamaRun` keeps the run log, resume, concurrency and progress; it builds
a :class:`Job` per reference, analysis and reflection still to do and hands it to its analyzer:

- :meth:`Analyzer.reference` describes the normal pattern from the job's reference windows;
- :meth:`Analyzer.analyse` lists the anomalous intervals of the job's window;
- :meth:`Analyzer.reflect` re-checks the first answer (``job.first``) of a window with anomalies.

Each returns the complete run-log record (docs/design.md, "Run log"): the job's common fields, the
answer (or the failure), and the hashes that link it to the reference and analysis it depends on.
Two analyzers exist: :class:`~lmad.series.llm_analyzer.LLMAnalyzer` (TAMA's prompts sent to a model
through :class:`~lmad.llm.client.LLMClient`) and :class:`~lmad.series.offline.OfflineAnalyzer` (a
nearest-neighbour detector run on the window arrays; ``--LLM offline``). :func:`open_analyzer` picks
one from the ``--LLM`` name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmad.llm.client import ClientOptions
from lmad.llm.config import KEYS_FILE, MODELS_FILE
from lmad.llm.cost import Estimate
from lmad.llm.messages import GenerationParams
from lmad.series.defaults import LLM_CACHE
from lmad.series.processed import ProcessedSplit

OFFLINE = "offline"
"""The ``--LLM`` name of the built-in non-LLM analyzer."""
ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "cost_usd": 0.0}


@dataclass
class SeriesWork:
    """The processed splits of one series a run works on (``train`` is None without references)."""

    series: str
    test: ProcessedSplit
    train: ProcessedSplit | None


@dataclass(frozen=True)
class Job:
    """One stage of one (series, window, channel): everything an analyzer needs to answer it.

    ``window`` is None for a reference. ``reference`` is the answered reference record an analysis
    or reflection is conditioned on (None when the run shows no references); ``first`` is the
    analysis record a reflection re-checks; ``reference_windows`` are the train windows shown.
    """

    stage: str
    item: SeriesWork
    window: int | None
    channel: int
    base: dict[str, Any] = field(repr=False)
    reference_windows: tuple[int, ...] = ()
    reference: dict[str, Any] | None = field(default=None, repr=False)
    first: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[str, int | None, int]:
        return (self.item.series, self.window, self.channel)

    @property
    def modality(self) -> str:
        return self.base["modality"]

    def values(self) -> np.ndarray:
        """The job's test window, one channel, as float64."""
        return np.asarray(self.item.test.windows[self.window, :, self.channel], dtype=np.float64)

    def reference_values(self) -> list[np.ndarray]:
        """The reference windows shown, one channel each, as float64 (empty without references)."""
        train = self.item.train
        if train is None:
            return []
        return [
            np.asarray(train.windows[w, :, self.channel], dtype=np.float64)
            for w in self.reference_windows
        ]

    def links(self) -> dict[str, str | None]:
        """The records this job was conditioned on, by request hash (docs/design.md, "Run log")."""
        if self.stage == "reference":
            return {}
        reference = self.reference.get("request_hash") if self.reference else None
        out: dict[str, str | None] = {"reference_hash": reference}
        if self.stage == "reflection":
            out["analysis_hash"] = (self.first or {}).get("request_hash")
        return out

    def record(self, **fields: Any) -> dict[str, Any]:
        """The run-log record: the common fields, ``fields``, then the links."""
        return {**self.base, **fields, **self.links()}

    def failed(self, error: str) -> dict[str, Any]:
        """The record of a job that got no answer at all (no request hash, nothing paid)."""
        return self.record(
            status="failed", request_hash=None, answer=None, raw=None,
            usage=dict(ZERO_USAGE), error=error,
        )  # fmt: skip


class Analyzer:
    """Answers TAMA's three stages; subclasses implement :meth:`reference`, :meth:`analyse` and
    :meth:`reflect` (``refresh``: ask again rather than reuse a stored answer)."""

    name = "analyzer"
    """The ``--LLM`` name: the ``llm`` field of every record and part of the run log's name."""
    label = "analyzer"
    """How tables and messages name it."""
    takes_images = True

    def reference(self, job: Job, refresh: bool) -> dict[str, Any]:
        raise NotImplementedError

    def analyse(self, job: Job, refresh: bool) -> dict[str, Any]:
        raise NotImplementedError

    def reflect(self, job: Job, refresh: bool) -> dict[str, Any]:
        raise NotImplementedError

    def map(
        self, fn: Callable[[Job], dict], jobs: Iterable[Job]
    ) -> Iterator[tuple[Job, dict | Exception]]:
        """Run ``fn`` over ``jobs``, yielding (job, record) as each finishes (here: in order)."""
        for job in jobs:
            yield job, fn(job)

    def estimate(
        self, references: list[Job], analyses: list[Job], records: Sequence[dict] = ()
    ) -> Estimate:
        """Requests, tokens and dollars of the jobs (nothing for an analyzer that sends nothing);
        ``records``: the run log so far (observed reply lengths and repair rate)."""
        return Estimate()

    @property
    def cost_usd(self) -> float:
        return 0.0

    def usage_summary(self) -> str:
        return "no requests (not an LLM)"

    def close(self) -> None:
        """Release clients or models."""


def open_analyzer(
    name: str,
    params: GenerationParams | None = None,
    models_path: str | Path = MODELS_FILE,
    keys_path: str | Path = KEYS_FILE,
    cache_dir: str | Path | None = LLM_CACHE,
    no_cache: bool = False,
    client: ClientOptions | None = None,
) -> Analyzer:
    """The analyzer ``--LLM name`` means: ``offline``, else a model asked through an LLM client.

    ``params`` are the :class:`~lmad.llm.messages.GenerationParams` of the LLM (TAMA's defaults when
    None); ``client`` says how requests are sent (:class:`~lmad.llm.client.ClientOptions`).
    """
    if name == OFFLINE:
        from lmad.series.offline import OfflineAnalyzer

        return OfflineAnalyzer()
    from lmad.llm.client import open_client
    from lmad.series.llm_analyzer import LLMAnalyzer

    client = client or ClientOptions()
    return LLMAnalyzer(
        open_client(
            name, models_path, keys_path, cache_dir, no_cache, client.concurrency, client.timeout
        ),
        params,
    )
