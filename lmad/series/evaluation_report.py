"""Writing an evaluation: Table-8-style tables (markdown, CSV, LaTeX), plots and report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmad.report.html import ReportSection, write_report
from lmad.report.plots import plot_series
from lmad.report.tables import Table
from lmad.series.evaluate import (
    EvalOptions,
    SeriesEval,
    results_folder,
    threshold_of,
    write_metrics,
)
from lmad.series.merge import interval_types
from lmad.series.protocols import get_protocol


def llm_label(llm: str) -> str:
    """The LLM column; the offline analyzer is named as the non-LLM baseline it is."""
    return "offline (non-LLM baseline)" if llm == "offline" else llm


def summary_table(results: list[dict[str, Any]], dataset: str) -> Table:
    """Rows (LLM, variant) of pooled metrics over all series, as in TAMA's Table 8.

    ``answered`` is answered/expected analysis windows; an incomplete run gets a note line above.
    """
    protocol = get_protocol(results[0]["protocol"])
    typed = any("type_accuracy" in r["pooled"]["Pred"] for r in results)
    columns = ["LLM", "variant", *protocol.columns.values(), "answered"]
    columns += ["type-acc"] if typed else []
    notes = [
        r["incomplete"] if len(results) == 1 else f"{llm_label(r['llm'])}: {r['incomplete']}"
        for r in results
        if r.get("incomplete")
    ]
    title = f"{dataset}, {protocol.name} protocol, pooled over series: {protocol.pooling}"
    table = Table(columns, title=title, notes=notes)
    for result in results:
        c = result["counts"]["analysis"]
        for row in protocol.rows:
            m = result["pooled"][row]
            cells = [llm_label(result["llm"]), row, *(m[k] for k in protocol.columns)]
            cells.append(f"{c['answered']}/{c['expected']}")
            table.add(*cells, *([m.get("type_accuracy", float("nan"))] if typed else []))
    return table


def status_table(results: list[dict[str, Any]], dataset: str) -> Table:
    """Per LLM and stage: answers expected, answered, failed, blocked, never asked."""
    table = Table(
        ["LLM", "stage", "expected", "answered", "failed", "blocked", "missing"],
        title=f"{dataset}: answers per stage",
    )
    for result in results:
        for stage, c in result["counts"].items():
            table.add(llm_label(result["llm"]), stage, *(c[k] for k in list(c)))
    return table


def series_table(result: dict[str, Any]) -> Table:
    protocol = get_protocol(result["protocol"])
    title = f"{result['llm']}, {protocol.name} protocol: per series; mean = the mean over series"
    table = Table(["series", "variant", *protocol.columns.values()], title=title)
    for series, rows in result["series"].items():
        for row in protocol.rows:
            table.add(series, row, *(rows[row][k] for k in protocol.columns))
    for row in protocol.rows:
        table.add("mean", row, *(result["mean"][row][k] for k in protocol.columns))
    return table


def confusion_table(conf: dict[str, Any], variant: str) -> Table:
    """Rows: true type; columns: predicted type ("none" = missed)."""
    names = conf["labels"]
    title = f"{variant}: anomaly types, accuracy {conf['accuracy']:.4f} over {conf['segments']} segments"
    table = Table(["true \\ predicted", *names], title=title)
    for name, row in zip(names, conf["matrix"]):
        table.add(name, *row)
    return table


def intervals_table(evaluation: SeriesEval, variant: str = "DCheck") -> Table:
    table = Table(["start", "end", "confidence", "type", "window", "channel", "explanation"])
    for i in sorted(evaluation.merged[variant].intervals, key=lambda i: (i.start, i.window)):
        table.add(i.start, i.end, i.confidence, i.type, i.window, i.channel, i.explanation)
    return table


def write_outputs(options: EvalOptions, result: dict[str, Any]) -> Path:
    """Tables, plots and report.html of one LLM's evaluation; returns the folder."""
    folder = results_folder(options, result["llm"])
    write_metrics(options, result)
    summary = summary_table([result], options.dataset)
    summary.write(folder, "table")
    status = status_table([result], options.dataset)
    status.write(folder, "status")
    series_table(result).write(folder, "per_series")
    for variant, conf in result.get("type_confusion", {}).items():
        confusion_table(conf, variant).write(folder, f"confusion_{variant}")
    sections = []
    threshold = threshold_of(options)
    for evaluation in result["_evals"]:
        merged = evaluation.merged["DCheck"]
        preds = merged.predictions(options.c0, options.normalised_threshold)
        scores = merged.normalised if options.normalised_threshold is not None else merged.scores
        png = None
        if options.plots:
            png = plot_series(
                evaluation.values,
                evaluation.labels,
                scores,
                interval_types(merged, preds),
                threshold,
                f"{options.dataset} {evaluation.series} - {llm_label(result['llm'])}",
            )
            (folder / "plots").mkdir(parents=True, exist_ok=True)
            (folder / "plots" / f"{evaluation.series}.png").write_bytes(png)
        notes = []
        if merged.unanswered:
            notes.append(
                f"{merged.unanswered} window(s) without a usable answer (failed, blocked or never "
                "asked) are scored as normal"
            )
        sections.append(
            ReportSection(f"Series {evaluation.series}", png, intervals_table(evaluation), notes)
        )
    usage = result["usage"]
    intro = [
        f"LLM: {llm_label(result['llm'])}; run log {result['run_log']}.",
        f"Threshold: {'normalised score >= ' if options.normalised_threshold is not None else 'c0 = '}"
        f"{threshold:g}; point adjustment PAT = {options.pat:g}.",
        f"Usage: {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion tokens, "
        f"${usage['cost_usd']:.4f} (cached answers cost nothing again).",
        "Intervals below are the self-reflection (DCheck) answers, in series coordinates.",
    ]
    sections.insert(0, ReportSection("Answers per stage", None, status, []))
    write_report(
        folder / "report.html", f"TAMA evaluation: {options.dataset}", intro, summary, sections
    )
    return folder
