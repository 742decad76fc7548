"""What evaluation.py scores: a run log's checked records, the work a complete run has, the answers.

The expected work is every window and channel of the processed test data (``--data_id_list``
narrows it), so windows a run never asked (``--limit``, a killed run, series not run) are counted as
missing rather than silently scored as normal answers.
"""

from __future__ import annotations

import json
from pathlib import Path

from lmad.errors import DataError
from lmad.series.datasets import get_loader
from lmad.series.defaults import subtask_flag
from lmad.series.eval_options import EvalOptions
from lmad.series.prepare import processed_root
from lmad.series.records import check_against_data, located
from lmad.series.run_state import Plan, RunState
from lmad.series.runlog import read_records, run_log_path


def dataset_name(options: EvalOptions) -> str:
    """The dataset's registered name, as run logs and detector scores are filed under."""
    processed_root(options.data_dir, options.dataset, options.subtask)  # checks the subtask
    return get_loader(options.dataset).name


def load_run(options: EvalOptions, llm: str) -> tuple[Path, list[dict]]:
    """The checked records of a run log; a missing log names the command that makes it."""
    dataset = dataset_name(options)
    path = run_log_path(
        options.data_dir, options.subtask, dataset, llm, options.run_name, options.modality
    )
    records = [
        r for r in read_records(path) if r["stage"] in ("reference", "analysis", "reflection")
    ]
    if not records:
        other = "text" if options.modality == "image" else "image"
        twin = run_log_path(options.data_dir, options.subtask, dataset, llm, "", other)
        hint = f" (there is a {other} run: add --modality {other})" if twin.exists() else ""
        script = "main_cli.py" if options.modality == "image" else "main_cli_text.py"
        raise DataError(
            f"no run log {path}{hint}; run first: python {script} --dataset {options.dataset} "
            f"--LLM {llm}" + subtask_flag(options.subtask)
        )
    return path, records


def run_plan(options: EvalOptions, path: Path, records: list[dict]) -> tuple[Plan, dict]:
    """The work a complete run has: every window and channel of the processed test data.

    Returns the plan and each series' ``meta.json``. The run's settings (references shown,
    self-reflection) come from its records.
    """
    root = processed_root(options.data_dir, options.dataset, options.subtask)
    metas = {} if options.ids else processed_metas(root, options.modality)
    ids = options.ids or sorted({str(r["series"]) for r in records} | set(metas))
    metas = {series: metas.get(series) or series_meta(root, series) for series in ids}
    used = {r.get("references") for r in records if r.get("references") is not None}
    if len(used) > 1:
        raise DataError(
            f"{path} mixes runs with --normal_reference {sorted(used)}; evaluate one setting per "
            "log (use --run_name when running)"
        )
    references = bool(used and max(used) > 0) or any(r["stage"] == "reference" for r in records)
    double_check = any(r.get("double_check", r["stage"] == "reflection") for r in records)
    windows = tuple(
        (series, w, c)
        for series in ids
        for w in range(len(metas[series]["starts"]))
        for c in range(len(metas[series].get("channels") or [0]))
    )
    refs = tuple(dict.fromkeys((s, c) for s, _, c in windows)) if references else ()
    for record in records:
        meta = metas.get(str(record["series"]))
        if meta is None:
            continue
        if (record.get("window_size"), record.get("stride")) not in (
            (None, None),
            (meta["window_size"], meta["stride"]),
        ):
            raise DataError(
                f"run log {path} used windows {record['window_size']}/{record['stride']} for "
                f"series {record['series']}, but the processed data has {meta['window_size']}/"
                f"{meta['stride']}; evaluate with the --subtask the run used, or run it again"
            )
        try:
            channels = len(meta.get("channels") or [0])
            check_against_data(record, len(meta["starts"]), meta["window_size"], channels)
        except ValueError as exc:
            raise located(path, record.get("_line", 0), exc) from None
    return Plan(refs, windows, double_check), metas


def processed_metas(root: Path, modality: str | None) -> dict[str, dict]:
    """``meta.json`` of every processed test split under ``root`` that has ``modality`` (any when
    ``None``)."""
    out = {}
    for meta_path in sorted(root.glob("*/test/meta.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        if modality is None or modality in meta.get("modalities", {}):
            out[meta_path.parent.parent.name] = meta
    return out


def series_meta(root: Path, series: str) -> dict:
    """The ``meta.json`` of one processed test split, or a :class:`DataError` saying it is not there."""
    folder = root / series / "test"
    try:
        return json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        raise DataError(
            f"no processed test data in {folder} for the run's series {series}"
        ) from None


def variant_answers(
    state: RunState, series: str, variant: str, fallback: bool = True
) -> dict[tuple[int, int], dict]:
    """The answer scored for each answered (window, channel) of ``series``.

    Pred: the analysis; DCheck: the self-reflection where one was answered, else the analysis
    (``fallback``) or, as TAMA's evaluation does, no anomaly at all.
    """
    out = {}
    for (s, window, channel), item in state.analyses.items():
        if s != series or item.status != "answered":
            continue
        answer = item.record["answer"]
        reflection = state.reflections.get((s, window, channel))
        if variant == "DCheck":
            if reflection is not None and reflection.status == "answered":
                answer = reflection.record["answer"]
            elif not fallback:
                answer = {"anomalies": []}
        out[(window, channel)] = answer
    return out
