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
from dataclasses import dataclass
from pathlib import Path

from lmad.errors import DataError
from lmad.report.tables import Table
from lmad.series.evaluate import EvalOptions, evaluate_llm
from lmad.series.evaluation_report import llm_label
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
    modality: str = "image",
) -> list[Setting]:
    if ablation not in ABLATIONS:
        raise DataError(f"unknown ablation {ablation!r}; choose from {', '.join(ABLATIONS)}")
    values = values or ABLATIONS[ablation][1]
    out = []
    for llm in llms:
        for v in values:
            if ablation in ("references", "llm"):
                name = f"{safe_name(dataset)}_{safe_name(llm)}_{modality}_ref{v}"
                out.append(Setting(llm, v, "detection", name, v))
            elif ablation == "window":
                out.append(Setting(llm, v, f"w{v}", "", references, window_size=v))
            else:
                out.append(Setting(llm, v, f"t{v}", "", references, x_ticks=v))
    return out


def run_setting(
    setting: Setting,
    dataset: str,
    data_dir: str | Path,
    modality: str,
    double_check: bool,
    concurrency: int,
) -> None:
    """Make the processed data the setting needs (if missing) and run it (resuming)."""
    from lmad.llm.client import open_client
    from lmad.series.pipeline import RunOptions, TamaRun
    from lmad.series.prepare import PrepareOptions, prepare_dataset, processed_root

    root = processed_root(data_dir, dataset, setting.subtask)
    if not any(root.glob("*/test/meta.json")):
        for mode in ("train", "test"):
            stride = setting.window_size // 3 if setting.window_size else None
            prepare_dataset(
                PrepareOptions(
                    dataset=dataset,
                    mode=mode,
                    modality=modality,
                    window_size=setting.window_size,
                    stride=stride,
                    x_ticks=setting.x_ticks,
                    subtask=setting.subtask,
                    data_dir=data_dir,
                )
            )
    client = open_client(
        setting.llm, cache_dir=Path(data_dir) / "cache" / "llm", concurrency=concurrency
    )
    options = RunOptions(
        dataset=dataset,
        llm=setting.llm,
        modality=modality,
        normal_reference=setting.references,
        double_check=double_check,
        subtask=setting.subtask,
        data_dir=data_dir,
        run_name=setting.run_name,
    )
    summary = TamaRun(options, client).execute(show_progress=True)
    if summary.incomplete:
        log.warning("%s/%s: %s", setting.llm, setting.value, summary.incomplete)


def ablation_table(
    ablation: str,
    dataset: str,
    llms: list[str],
    values: list[int] | None = None,
    data_dir: str | Path = "data",
    run: bool = False,
    modality: str = "image",
    references: int = 3,
    double_check: bool = True,
    concurrency: int = 4,
    protocol: str = "lmad",
) -> Table:
    """One table: a row per (LLM, setting) with the protocol's F1 of each row and its two areas
    (precision-recall and ROC) of the Pred row, pooled as the protocol pools."""
    label = ABLATIONS.get(ablation, (ablation,))[0]
    spec = get_protocol(protocol)
    f1_key, pr_key, roc_key = spec.headline
    area_names = [spec.columns[pr_key], spec.columns[roc_key]]
    table = Table(
        ["LLM", label, *(f"{spec.columns[f1_key]} {row}" for row in spec.rows), *area_names,
         "answered"],
        title=f"{dataset}: ablation of {label} ({spec.name} protocol, {spec.pooling})",
    )  # fmt: skip
    missing = []
    for s in settings(ablation, dataset, llms, values, references, modality):
        if run:
            run_setting(s, dataset, data_dir, modality, double_check, concurrency)
        options = EvalOptions(
            dataset, [s.llm], s.subtask, data_dir, s.run_name, plots=False, modality=modality,
            protocol=protocol,
        )  # fmt: skip
        try:
            result = evaluate_llm(options, s.llm)
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
