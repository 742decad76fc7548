"""The paper's ablations (TAMA, Sec. 5): number of references, window size, tick spacing, LLMs.

Each setting is one run with its own name: references and LLMs share the processed data and differ
by run name (``<dataset>_<llm>_<modality>_ref<n>``); window sizes and tick spacings need their own
processed data, kept apart by subtask (``w<size>``, ``t<ticks>``), and use the default log name.
A setting whose run is incomplete is marked in the table (``answered`` column and a note line).
With ``run=True`` missing data and runs are made first (answers come from the cache when already
paid for); otherwise existing runs are aggregated and missing ones are listed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from lmad.errors import DataError
from lmad.llm.cache import cache_under
from lmad.llm.client import ClientOptions
from lmad.llm.config import KEYS_FILE, MODELS_FILE
from lmad.llm.messages import GenerationParams
from lmad.report.tables import Table
from lmad.series.defaults import DEFAULT_SUBTASK
from lmad.series.evaluate import EvalOptions, evaluate_llm
from lmad.series.evaluation_report import llm_label
from lmad.series.pipeline import RunOptions
from lmad.series.protocols import get_protocol
from lmad.series.runlog import safe_name

log = logging.getLogger(__name__)
ABLATIONS = {
    "references": ("references", [0, 1, 2, 3, 4]),
    "window": ("window size", [300, 600, 900, 1200]),
    "ticks": ("x tick spacing", [10, 25, 50, 100, 200]),
    "llm": ("references", [0, 1]),
}


@dataclass
class AblationOptions:
    """One ablation: what varies, and how every setting's run is asked.

    ``run`` holds the settings every run shares (dataset, modality, references for the window and
    tick ablations, self-reflection, seed, data folder); ``params`` and ``client`` are the sampling
    and sending settings, the same as a ``main_cli.py`` run's, so a setting's answers and cache keys
    are those of the equivalent main run.
    """

    ablation: str
    llms: list[str]
    run: RunOptions
    values: list[int] | None = None
    make_missing: bool = False
    protocol: str = EvalOptions.protocol
    params: GenerationParams = field(default_factory=GenerationParams)
    client: ClientOptions = field(default_factory=ClientOptions)
    models: str | Path = MODELS_FILE
    keys: str | Path = KEYS_FILE


@dataclass
class Setting:
    """One cell of an ablation: what to vary, and where its data and run live."""

    llm: str
    value: int
    subtask: str
    run_name: str
    references: int
    window_size: int | None = None
    x_ticks: int | None = None


def settings(
    ablation: str,
    dataset: str,
    llms: list[str],
    values: list[int] | None,
    references: int,
    modality: str,
) -> list[Setting]:
    if ablation not in ABLATIONS:
        raise DataError(f"unknown ablation {ablation!r}; choose from {', '.join(ABLATIONS)}")
    values = values or ABLATIONS[ablation][1]
    out = []
    for llm in llms:
        for v in values:
            if ablation in ("references", "llm"):
                name = f"{safe_name(dataset)}_{safe_name(llm)}_{modality}_ref{v}"
                out.append(Setting(llm, v, DEFAULT_SUBTASK, name, v))
            elif ablation == "window":
                out.append(Setting(llm, v, f"w{v}", "", references, window_size=v))
            else:
                out.append(Setting(llm, v, f"t{v}", "", references, x_ticks=v))
    return out


def prepare_setting(setting: Setting, run: RunOptions) -> None:
    """Make the processed data a window or tick setting needs, when it is missing."""
    from lmad.series.prepare import PrepareOptions, prepare_dataset, processed_root

    root = processed_root(run.data_dir, run.dataset, setting.subtask)
    if any(root.glob("*/test/meta.json")):
        return
    for mode in ("train", "test"):  # a window without a stride gets TAMA's window / 3
        prepare_dataset(
            PrepareOptions(
                dataset=run.dataset,
                mode=mode,
                modality=run.modality,
                window_size=setting.window_size,
                x_ticks=setting.x_ticks,
                subtask=setting.subtask,
                data_dir=run.data_dir,
            )
        )


def run_setting(setting: Setting, options: AblationOptions) -> None:
    """Make the processed data the setting needs (if missing) and run it (resuming)."""
    from lmad.series.analyzers import open_analyzer
    from lmad.series.pipeline import TamaRun

    prepare_setting(setting, options.run)
    run = replace(
        options.run,
        llm=setting.llm,
        normal_reference=setting.references,
        subtask=setting.subtask,
        run_name=setting.run_name,
    )
    analyzer = open_analyzer(
        setting.llm,
        options.params,
        options.models,
        options.keys,
        cache_dir=cache_under(run.data_dir),
        client=options.client,
    )
    summary = TamaRun(run, analyzer).execute(show_progress=True)
    if summary.incomplete:
        log.warning("%s/%s: %s", setting.llm, setting.value, summary.incomplete)


def ablation_table(options: AblationOptions) -> Table:
    """One table: a row per (LLM, setting) with the protocol's F1 of each row and its two areas
    (precision-recall and ROC) of the Pred row, pooled as the protocol pools."""
    o, run = options, options.run
    label = ABLATIONS.get(o.ablation, (o.ablation,))[0]
    spec = get_protocol(o.protocol)
    f1_key, pr_key, roc_key = spec.headline
    area_names = [spec.columns[pr_key], spec.columns[roc_key]]
    table = Table(
        ["LLM", label, *(f"{spec.columns[f1_key]} {row}" for row in spec.rows), *area_names,
         "answered"],
        title=f"{run.dataset}: ablation of {label} ({spec.name} protocol, {spec.pooling})",
    )  # fmt: skip
    missing = []
    for s in settings(
        o.ablation, run.dataset, o.llms, o.values, run.normal_reference, run.modality
    ):
        if o.make_missing:
            run_setting(s, o)
        evaluation = EvalOptions(
            dataset=run.dataset, llms=[s.llm], subtask=s.subtask, data_dir=run.data_dir,
            run_name=s.run_name, plots=False, modality=run.modality, protocol=o.protocol,
        )  # fmt: skip
        try:
            result = evaluate_llm(evaluation, s.llm)
        except DataError as exc:
            missing.append(f"{s.llm}/{s.value}: {exc}")
            table.add(llm_label(s.llm), s.value, *[math.nan] * (len(spec.rows) + 2), "-")
            continue
        if result["incomplete"]:
            table.notes.append(f"{llm_label(s.llm)} / {s.value}: {result['incomplete']}")
        counts = result["counts"]["analysis"]
        pooled = result["pooled"]
        table.add(
            llm_label(s.llm),
            s.value,
            *(pooled[row][f1_key] for row in spec.rows),
            pooled["Pred"][pr_key],
            pooled["Pred"][roc_key],
            f"{counts['answered']}/{counts['expected']}",
        )
    for line in missing:
        log.warning("not run yet: %s", line)
    return table
