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
) -> Table:
    """One table: a row per (LLM, setting) with F1 of the four variants and the AUCs."""
    label = ABLATIONS.get(ablation, (ablation,))[0]
    table = Table(
        [
            "LLM",
            label,
            "F1 Pred",
            "F1 Pred_adjust",
            "F1 DCheck",
            "F1 DCheck_adjust",
            "AUC-PR",
            "AUC-ROC",
            "answered",
        ],
        title=f"{dataset}: ablation of {label}",
    )
    missing = []
    for s in settings(ablation, dataset, llms, values, references, modality):
        if run:
            run_setting(s, dataset, data_dir, modality, double_check, concurrency)
        options = EvalOptions(
            dataset, [s.llm], s.subtask, data_dir, s.run_name, plots=False, modality=modality
        )
        try:
            result = evaluate_llm(options, s.llm)
        except DataError as exc:
            missing.append(f"{s.llm}/{s.value}: {exc}")
            table.add(llm_label(s.llm), s.value, *[math.nan] * 6, "-")
            continue
        if result["incomplete"]:
            table.notes.append(f"{llm_label(s.llm)} / {s.value}: {result['incomplete']}")
        counts = result["counts"]["analysis"]
        pooled = result["pooled"]
        table.add(
            llm_label(s.llm),
            s.value,
            pooled["Pred"]["f1"],
            pooled["Pred_adjust"]["f1"],
            pooled["DCheck"]["f1"],
            pooled["DCheck_adjust"]["f1"],
            pooled["Pred"]["auc_pr"],
            pooled["Pred"]["auc_roc"],
            f"{counts['answered']}/{counts['expected']}",
        )
    for line in missing:
        log.warning("not run yet: %s", line)
    return table
