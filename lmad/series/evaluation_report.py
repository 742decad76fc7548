"""Writing an evaluation: Table-8-style tables (markdown, CSV, LaTeX), plots and report.html.

Detector rows (``--baselines``) join the LLM rows of the summary table: ``Pred`` (and ``Pred_adjust``
where the protocol has it) labelled ``<detector> (aeon)``, no ``DCheck`` rows (a note line says why),
and ``k/n series`` in the ``answered`` column. Their per-series rows go to ``per_series_baselines``;
the report plots each detector's score under the series.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmad.io import atomic_write_json
from lmad.report.html import ReportSection, write_report
from lmad.report.plots import ScoreTrace, plot_series
from lmad.report.tables import Table
from lmad.series.baseline_eval import DetectorSeries
from lmad.series.evaluate import (
    EvalOptions,
    SeriesEval,
    jsonable,
    public,
    results_folder,
    threshold_of,
    write_metrics,
)
from lmad.series.merge import interval_types
from lmad.series.protocols import get_protocol
from lmad.series.run_plan import dataset_name

Baselines = Sequence[dict[str, Any]]


def llm_label(llm: str) -> str:
    """The LLM column; the offline analyzer is named as the non-LLM baseline it is."""
    return "offline (non-LLM baseline)" if llm == "offline" else llm


def summary_table(results: list[dict[str, Any]], dataset: str, baselines: Baselines = ()) -> Table:
    """Rows (LLM or detector, variant) of pooled metrics over all series, as in TAMA's Table 8.

    ``answered`` is answered/expected analysis windows (a detector: scored/evaluated series); an
    incomplete run, a detector without some series' scores and the detectors' rule get note lines.
    """
    protocol = get_protocol((results or baselines)[0]["protocol"])
    typed = any("type_accuracy" in r["pooled"]["Pred"] for r in results)
    first = "LLM / detector" if baselines else "LLM"
    columns = [first, "variant", *protocol.columns.values(), "answered"]
    columns += ["type-acc"] if typed else []
    notes = [
        r["incomplete"] if len(results) == 1 else f"{llm_label(r['llm'])}: {r['incomplete']}"
        for r in results
        if r.get("incomplete")
    ]
    notes += baseline_notes(results, baselines)
    title = f"{dataset}, {protocol.name} protocol, pooled over series: {protocol.pooling}"
    table = Table(columns, title=title, notes=notes)
    for result in results:
        c = result["counts"]["analysis"]
        for row in protocol.rows:
            m = result["pooled"][row]
            cells = [llm_label(result["llm"]), row, *(m[k] for k in protocol.columns)]
            cells.append(f"{c['answered']}/{c['expected']}")
            table.add(*cells, *([m.get("type_accuracy", float("nan"))] if typed else []))
    for baseline in baselines:
        for row in protocol.rows_of("Pred"):
            m = baseline["pooled"][row.name]
            cells = [baseline["label"], row.name, *(m[k] for k in protocol.columns)]
            cells.append(f"{baseline['series_scored']}/{baseline['series_evaluated']} series")
            table.add(*cells, *([float("nan")] if typed else []))
    return table


def baseline_notes(results: list[dict[str, Any]], baselines: Baselines) -> list[str]:
    """The detectors' rule, a line per detector with missing series, and a caution where the
    tsb-ad protocol gives the LLM rows TSB-AD's best thresholds but the detectors the rule."""
    if not baselines:
        return []
    labels = ", ".join(b["label"] for b in baselines)
    notes = [
        f"detector rows ({labels}): {baselines[0]['rule']}; {baselines[0]['threshold_free']}; "
        "no DCheck rows (a detector has no self-reflection)"
    ]
    notes += [b["note"] for b in baselines if b.get("note")]
    if (
        results
        and results[0]["protocol"] == "tsb-ad"
        and results[0].get("tsbad_predictions") == "best"
    ):
        notes.append(
            "the LLM rows' F columns take TSB-AD's best threshold per series "
            "(--tsbad_predictions best), the detector rows the rule above: compare them with "
            "--tsbad_predictions c0"
        )
    return notes


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


def baselines_series_table(baselines: Baselines) -> Table:
    """Per detector and series: its rows, then the mean over series."""
    protocol = get_protocol(baselines[0]["protocol"])
    title = f"detectors, {protocol.name} protocol: per series; mean = the mean over series"
    table = Table(["detector", "series", "variant", *protocol.columns.values()], title=title)
    for baseline in baselines:
        per_series = [*baseline["series"].items(), ("mean", baseline["mean"])]
        for series, rows in per_series:
            for row in protocol.rows_of("Pred"):
                metrics = rows[row.name]
                table.add(
                    baseline["label"], series, row.name, *(metrics[k] for k in protocol.columns)
                )
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


def write_outputs(options: EvalOptions, result: dict[str, Any], baselines: Baselines = ()) -> Path:
    """Tables, plots and report.html of one LLM's evaluation (with the detectors' rows and scores
    when ``baselines``); returns the folder."""
    folder = results_folder(options, result["llm"])
    write_metrics(options, result, baselines)
    summary = summary_table([result], options.dataset, baselines)
    summary.write(folder, "table")
    status = status_table([result], options.dataset)
    status.write(folder, "status")
    series_table(result).write(folder, "per_series")
    if baselines:
        baselines_series_table(baselines).write(folder, "per_series_baselines")
    for variant, conf in result.get("type_confusion", {}).items():
        confusion_table(conf, variant).write(folder, f"confusion_{variant}")
    label = llm_label(result["llm"])
    sections = [series_section(options, folder, e, label, baselines) for e in result["_evals"]]
    threshold = threshold_of(options)
    usage = result["usage"]
    intro = [
        f"LLM: {label}; run log {result['run_log']}.",
        f"Threshold: {'normalised score >= ' if options.normalised_threshold is not None else 'c0 = '}"
        f"{threshold:g}; point adjustment PAT = {options.pat:g}.",
        f"Usage: {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion tokens, "
        f"${usage['cost_usd']:.4f} (cached answers cost nothing again).",
        "Intervals below are the self-reflection (DCheck) answers, in series coordinates.",
        *baselines_intro(baselines),
    ]
    sections.insert(0, ReportSection("Answers per stage", None, status, []))
    write_report(
        folder / "report.html", f"TAMA evaluation: {options.dataset}", intro, summary, sections
    )
    return folder


def series_section(
    options: EvalOptions, folder: Path, evaluation: SeriesEval, label: str, baselines: Baselines
) -> ReportSection:
    """One series of an LLM's report: the plot (LLM intervals and score, detector scores under
    them), the DCheck intervals and what was scored as normal."""
    merged = evaluation.merged["DCheck"]
    traces, notes = detector_traces(evaluation.series, baselines)
    png = None
    if options.plots:
        preds = merged.predictions(options.c0, options.normalised_threshold)
        scores = merged.normalised if options.normalised_threshold is not None else merged.scores
        png = plot_series(
            evaluation.values, evaluation.labels, scores, interval_types(merged, preds),
            threshold_of(options), f"{options.dataset} {evaluation.series} - {label}",
            detectors=traces,
        )  # fmt: skip
        save_plot(folder, evaluation.series, png)
    if merged.unanswered:
        notes.insert(
            0,
            f"{merged.unanswered} window(s) without a usable answer (failed, blocked or never "
            "asked) are scored as normal",
        )
    return ReportSection(f"Series {evaluation.series}", png, intervals_table(evaluation), notes)


def save_plot(folder: Path, series: str, png: bytes) -> None:
    (folder / "plots").mkdir(parents=True, exist_ok=True)
    (folder / "plots" / f"{series}.png").write_bytes(png)


def detector_traces(series: str, baselines: Baselines) -> tuple[list[ScoreTrace], list[str]]:
    """Each detector's score of ``series`` with its threshold, and a note where it has none."""
    traces, notes = [], []
    for baseline in baselines:
        found: DetectorSeries = next(e for e in baseline["_evals"] if e.series == series)
        traces.append(ScoreTrace(baseline["label"], found.score, found.threshold, "mean + 3 std"))
        if not found.scored:
            notes.append(f"{baseline['label']}: no scores for this series (scored as all-zero)")
    return traces, notes


def baselines_intro(baselines: Baselines) -> list[str]:
    if not baselines:
        return []
    return [
        f"Detectors: {', '.join(b['label'] for b in baselines)}; {baselines[0]['rule']}. "
        "Each detector's score is plotted under the series (min-max scaled, channels merged by "
        "their maximum), its threshold dashed."
    ]


def baselines_folder(options: EvalOptions) -> Path:
    """``<data_dir>/results/<subtask>/<dataset>_baselines``: an evaluation without an LLM."""
    return (
        Path(options.data_dir) / "results" / options.subtask / f"{dataset_name(options)}_baselines"
    )


def write_baseline_outputs(options: EvalOptions, baselines: Baselines) -> Path:
    """metrics.json, tables, plots and report.html of the detectors alone (``--LLM none``)."""
    folder = baselines_folder(options)
    data = {
        "dataset": options.dataset,
        "protocol": options.protocol,
        "pooling": baselines[0]["pooling"],
        "baselines": {b["detector"]: public(b) for b in baselines},
    }
    atomic_write_json(folder / "metrics.json", jsonable(data))
    summary = summary_table([], options.dataset, baselines)
    summary.write(folder, "table")
    baselines_series_table(baselines).write(folder, "per_series_baselines")
    sections = []
    for evaluation in baselines[0]["_evals"]:
        traces, notes = detector_traces(evaluation.series, baselines)
        png = None
        if options.plots:
            png = plot_series(evaluation.values, evaluation.labels, None, [], 0.0,
                              f"{options.dataset} {evaluation.series}", detectors=traces)  # fmt: skip
            save_plot(folder, evaluation.series, png)
        sections.append(ReportSection(f"Series {evaluation.series}", png, None, notes))
    write_report(folder / "report.html", f"Detector evaluation: {options.dataset}",
                 baselines_intro(baselines), summary, sections)  # fmt: skip
    return folder
