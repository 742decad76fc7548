"""SemAD's learning curve: fine-tune on a schedule of step budgets and score a fixed sample at each.

``learning_curve.py``'s work. One LoRA run (``fine_tune_llama3.py``'s settings and code) is trained
to each budget in turn, resuming from the checkpoint the previous budget left (the Trainer writes
one at ``max_steps``), so the adapter at 400 steps is the one a single 400-step run gives. After
each budget the same seeded stratified sample of the test file (:mod:`lmad.traces.sampling`) is
scored by :func:`lmad.traces.evaluate.evaluate_run`, with the n-gram baseline beside it; every
trace's and event's score goes to ``<output_dir>/scores/steps_<n>.csv`` and one row per budget to
``<output_dir>/curve.csv`` (:data:`CURVE_COLUMNS`), written after each budget. A rerun skips the
budgets already in curve.csv, so the schedule can be stopped and extended. Budget 0 scores the
base model. A budget may be given in epochs (``2ep``: twice the steps of one epoch).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lmad.errors import ConfigError, DataError

log = logging.getLogger(__name__)

OUTPUT_ROOT = Path("data") / "results" / "semad" / "learning_curve"
METHODS = ("semad", "ngram")
BOOTSTRAP_RESAMPLES = 1000
CURVE_COLUMNS = (
    "steps", "epochs", "train_loss", "train_seconds", "score_seconds", "sample", "positives",
    "trace_anomaly_rate", "event_anomaly_rate",
    *(f"{m}_{lvl}_{k}" for m in METHODS for lvl in ("trace", "event") for k in ("ap", "roc_auc")),
    "semad_trace_flagged",
    *(f"{lvl}_ap_gain{end}" for lvl in ("trace", "event") for end in ("", "_low", "_high")),
    "time",
)  # fmt: skip
"""Columns of curve.csv: per budget the loss, the time spent and each method's AP and ROC-AUC
at trace and event level (AP's chance level is the anomaly rate), and the share of traces the
fixed 0.9 threshold flags; ``<level>_ap_gain`` is SemAD's AP minus the n-gram's, with the 95 %
paired bootstrap interval (``_low``, ``_high``; events resampled by trace, lmad.metrics.bootstrap)."""


@dataclass
class CurveOptions:
    """Every flag of learning_curve.py. The fields without a default take the script's constants
    or, for the settings it shares, fine_tune_llama3.py's and eval.py's (written there once)."""

    llm_path: str
    train_path: str
    test_path: str
    budgets: list[str]
    """Step budgets (``400``) or epoch budgets (``2ep``), in increasing order."""
    sample: int | None
    """Test traces scored at every budget, stratified by label (None: all)."""
    seed: int
    batch_size: int
    learning_rate: float
    qlora: str
    batching: str
    """fine_tune_llama3.py's --batching."""
    ngram_order: int
    """0 leaves the n-gram baseline out."""
    output_dir: str | None = None
    """None: ``data/results/semad/learning_curve/<model name>/``."""
    bootstrap: int = BOOTSTRAP_RESAMPLES
    """Resamples of the paired bootstrap of SemAD's AP gain over the baseline."""

    def folder(self) -> Path:
        """The output folder (the model name checked for use as a folder name)."""
        from lmad.traces import models

        if self.output_dir:
            return Path(self.output_dir)
        return OUTPUT_ROOT / models.adapter_folder_name(self.llm_path, "--output_dir")


def parse_budget(text: str) -> tuple[int, str]:
    """``"400"`` -> (400, "steps"), ``"2ep"`` -> (2, "epochs"); a budget below 0 is refused."""
    raw = text.strip().lower()
    unit = "epochs" if raw.endswith("ep") else "steps"
    number = raw[:-2] if unit == "epochs" else raw
    try:
        value = int(number)
    except ValueError:
        value = -1
    if value < 0 or (unit == "epochs" and value == 0):
        raise ConfigError(f"a budget is a number of steps >= 0 or of epochs such as 2ep: {text!r}")
    return value, unit


def budget_steps(budgets: Sequence[str], steps_per_epoch: int) -> list[int]:
    """The budgets in optimizer steps; they must increase strictly."""
    steps = []
    for text in budgets:
        value, unit = parse_budget(text)
        steps.append(value * steps_per_epoch if unit == "epochs" else value)
    if not steps or any(b <= a for a, b in itertools.pairwise(steps)):
        raise ConfigError(f"--budgets must increase: {','.join(budgets)} is {steps} steps")
    return steps


def finetune_config(options: CurveOptions, base: Any, steps: int) -> Any:
    """``base`` (fine_tune_llama3.py's settings) with the curve's, trained to ``steps`` in the
    curve's ``adapter`` folder and resuming from the last checkpoint there."""
    return replace(
        base,
        llm_path=options.llm_path,
        data_path=options.train_path,
        output_dir=str(options.folder() / "adapter"),
        batch_size=options.batch_size,
        learning_rate=options.learning_rate,
        qlora=options.qlora,
        batching=options.batching,
        seed=options.seed,
        max_steps=steps,
        resume=True,
        logging_steps=1,
    )


def eval_options(options: CurveOptions, base: Any, steps: int) -> Any:
    """``base`` (eval.py's settings) scoring the curve's sample at ``steps`` (0: the base model)."""
    folder = options.folder()
    return replace(
        base,
        llm_path=options.llm_path,
        peft_path=str(folder / "adapter") if steps > 0 else "none",
        data_path=options.test_path,
        train_path=options.train_path,
        result_path=str(folder / "result.csv"),  # not written: curve.csv holds the rows
        qlora=options.qlora,
        ngram_order=options.ngram_order,
        limit=options.sample,
        seed=options.seed,
        scores_path=str(folder / "scores" / f"steps_{steps}.csv"),
        from_scores=None,
    )


def curve_row(steps: int, steps_per_epoch: int, rows: Sequence[dict[str, Any]],
              train: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    """One curve.csv row from eval's result rows (semad and n-gram, trace and event level)."""
    row: dict[str, Any] = {"steps": steps, "epochs": round(steps / steps_per_epoch, 4), **train}
    for result in rows:
        method = "semad" if result["method"] == "semad" else "ngram"
        for key in ("ap", "roc_auc"):
            row[f"{method}_{result['level']}_{key}"] = result[key]
        if method == "semad":
            rate = result["positives"] / result["n"]
            row[f"{result['level']}_anomaly_rate"] = rate
            if result["level"] == "trace":
                row.update(sample=result["sample"], positives=result["positives"])
                row["semad_trace_flagged"] = result["flagged"]
    row["score_seconds"] = round(sum({r["method"]: r["seconds"] for r in rows}.values()), 3)
    row["time"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return {column: row.get(column, math.nan) for column in CURVE_COLUMNS}


def ap_gains(scores_path: Any, resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, float]:
    """SemAD's AP minus the baseline's at trace and event level, from a scores file, with the
    95 % paired bootstrap interval (events resampled with their trace); NaN without a baseline."""
    from lmad.metrics.bootstrap import paired_ap_difference
    from lmad.traces.score_file import read_scores

    frame = read_scores(scores_path)
    gains: dict[str, float] = {}
    for level in ("trace", "event"):
        part = frame[frame["level"] == level]
        semad = part[part["method"] == "semad"].sort_values(["trace", "event"], kind="stable")
        ngram = part[part["method"] != "semad"].sort_values(["trace", "event"], kind="stable")
        keys = ["trace", "event"]
        if ngram.empty or not semad[keys].reset_index(drop=True).equals(
            ngram[keys].reset_index(drop=True)
        ):
            gains.update({f"{level}_ap_gain{end}": math.nan for end in ("", "_low", "_high")})
            continue
        diff = paired_ap_difference(
            semad["label"].to_numpy(int), semad["score"].to_numpy(float),
            ngram["score"].to_numpy(float), groups=semad["trace"].to_numpy(int),
            resamples=resamples,
        )  # fmt: skip
        gains.update({f"{level}_ap_gain": diff.value, f"{level}_ap_gain_low": diff.low,
                      f"{level}_ap_gain_high": diff.high})  # fmt: skip
    return gains


def segment_loss(history: Sequence[dict[str, Any]], after: int, upto: int) -> float:
    """The mean logged training loss of the steps in (``after``, ``upto``] (NaN when none was
    logged). The curve logs every step. The Trainer's own ``training_loss`` is not used: after a
    resume it divides the loss of the steps it trained by all the steps since the start."""
    losses = [e["loss"] for e in history if "loss" in e and after < e.get("step", -1) <= upto]
    return float(sum(losses) / len(losses)) if losses else math.nan


def read_curve(path: Path) -> list[dict[str, Any]]:
    """The rows of an existing curve.csv (none when absent); a foreign file is a DataError."""
    import pandas as pd

    if not path.is_file():
        return []
    frame = pd.read_csv(path, float_precision="round_trip")
    if "steps" not in frame.columns:
        raise DataError(f"{path} is not a learning curve (no steps column); move it away")
    return frame.to_dict("records")


def write_curve(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write curve.csv atomically, rows sorted by steps."""
    import pandas as pd

    from lmad.io import atomic_write_text

    frame = pd.DataFrame(list(rows)).reindex(columns=list(CURVE_COLUMNS))
    frame = frame.sort_values("steps", kind="stable")
    return atomic_write_text(path, frame.to_csv(index=False))


def check_schedule(schedule: Sequence[int], done: dict[int, Any], checkpoints: Path) -> None:
    """Refuse a budget to train that lies below what the adapter has already been trained to
    (a curve.csv row or a checkpoint): the Trainer would not go back, and the row would describe
    the later adapter."""
    from lmad.traces.finetune import CHECKPOINT

    names = checkpoints.iterdir() if checkpoints.is_dir() else []
    saved = [int(p.name.split("-")[1]) for p in names if CHECKPOINT.fullmatch(p.name)]
    trained = max([*done, *saved], default=0)
    for steps in schedule:
        if steps not in done and 0 < steps < trained:
            raise ConfigError(
                f"budget {steps} lies below the {trained} steps the adapter in "
                f"{checkpoints.parent} was already trained to; give another --output_dir"
            )


def fill_gains(row: dict[str, Any], folder: Path, resamples: int) -> dict[str, Any]:
    """A curve.csv row with its AP gains computed from its scores file when they are missing
    (rows written before the gains existed); unchanged when they are there or no file is."""
    scores = folder / "scores" / f"steps_{int(row['steps'])}.csv"
    missing = not isinstance(row.get("trace_ap_gain"), float) or math.isnan(row["trace_ap_gain"])
    if not missing or not scores.is_file():
        return row
    return {**row, **ap_gains(scores, resamples)}


SETTINGS = ("llm_path", "train_path", "test_path", "sample", "seed", "batch_size",
            "learning_rate", "qlora", "batching", "ngram_order")  # fmt: skip
"""The options one curve must keep: rows trained or scored otherwise do not belong on it."""


def check_settings(options: CurveOptions, folder: Path, has_rows: bool) -> None:
    """Record the curve's settings in ``curve.json``; refuse a rerun that changes one of them
    (its adapter would resume from checkpoints trained otherwise). A curve.csv written before
    curve.json existed is taken to match."""
    from dataclasses import asdict

    from lmad.io import atomic_write_json

    now = {key: value for key, value in asdict(options).items() if key in SETTINGS}
    path = folder / "curve.json"
    if path.is_file():
        before = json.loads(path.read_text())
        changed = [key for key in SETTINGS if key in before and before[key] != now[key]]
        if changed:
            key = changed[0]
            raise ConfigError(
                f"{folder} holds a curve with {key} {before[key]!r}, this run asks for "
                f"{now[key]!r}; give another --output_dir (or the same settings to extend it)"
            )
    elif has_rows:
        log.warning("%s predates curve.json: its settings are taken to be this run's", folder)
    atomic_write_json(path, now)


def run_curve(options: CurveOptions, train_base: Any, eval_base: Any) -> list[dict[str, Any]]:
    """Train and score at every budget not yet in curve.csv; returns every row (see module doc).

    ``train_base`` (a FinetuneConfig) and ``eval_base`` (an EvalOptions) hold the settings the
    curve does not set: fine_tune_llama3.py's and eval.py's.

    Raises:
        ConfigError: budgets that do not increase, or a bad budget; settings other than those
            of the curve already in the folder (:func:`check_settings`).
        DataError: a training file without normal traces; a foreign curve.csv.
    """
    from lmad.traces.evaluate import evaluate_run
    from lmad.traces.finetune import finetune, steps_per_epoch, training_texts, world_size

    folder = options.folder()
    texts = training_texts(options.train_path)
    per_epoch = steps_per_epoch(len(texts), options.batch_size, world_size())
    schedule = budget_steps(options.budgets, per_epoch)
    path = folder / "curve.csv"
    rows = read_curve(path)
    check_settings(options, folder, bool(rows))
    done = {int(r["steps"]): r for r in rows}
    spent = max((r["train_seconds"] for r in rows if r["steps"] > 0), default=0.0)
    check_schedule(schedule, done, folder / "adapter" / "checkpoints")
    rows = [fill_gains(row, folder, options.bootstrap) for row in rows]
    if rows:
        write_curve(path, rows)
    previous = 0
    for steps in schedule:
        if steps in done:
            log.info("%d steps: already in %s, skipped", steps, path)
            previous = steps
            continue
        train = {"train_loss": math.nan, "train_seconds": 0.0}
        if steps > 0:
            started = time.perf_counter()
            result = finetune(finetune_config(options, train_base, steps), texts)
            spent += time.perf_counter() - started
            loss = segment_loss(result.log_history, previous, steps)
            train = {"train_loss": loss, "train_seconds": round(spent, 1)}
            previous = steps
        settings = eval_options(options, eval_base, steps)
        results = evaluate_run(settings)
        gains = ap_gains(settings.scores_path, options.bootstrap)
        row = curve_row(steps, per_epoch, results, {**train, **gains})
        rows = [r for r in rows if int(r["steps"]) != steps] + [row]
        write_curve(path, rows)
        log.info("%d steps: SemAD trace AP %.3f, %s trace AP %.3f (written to %s)", steps,
                 row["semad_trace_ap"], "n-gram", row["ngram_trace_ap"], path)  # fmt: skip
    return sorted(rows, key=lambda r: r["steps"])


def overtaking_step(rows: Sequence[dict[str, Any]], level: str) -> int | None:
    """The first budget from which SemAD's AP at ``level`` stays above the n-gram's beyond
    sampling noise (None: never): the 95 % interval of the gain lies above 0 there and at every
    later budget of ``rows``, so one lucky budget does not count."""
    ordered = sorted(rows, key=lambda r: r["steps"])
    ahead = [r[f"{level}_ap_gain_low"] > 0 for r in ordered]  # NaN compares False
    for index, row in enumerate(ordered):
        if all(ahead[index:]):
            return int(row["steps"])
    return None


def verdict(rows: Sequence[dict[str, Any]], ngram: str = "n-gram") -> list[str]:
    """One line per level: from which budget SemAD's AP stays above the baseline's beyond noise,
    or that it did not, and the gain at the largest budget (none without a baseline)."""
    if not rows or all(math.isnan(r["ngram_trace_ap"]) for r in rows):
        return []  # no baseline (--ngram_order 0)
    last = max(rows, key=lambda r: r["steps"])
    largest, lines = int(last["steps"]), []
    for level in ("trace", "event"):
        step = overtaking_step(rows, level)
        gain = (f"at {largest} steps SemAD {last[f'semad_{level}_ap']:.3f}, {ngram} "
                f"{last[f'ngram_{level}_ap']:.3f}, chance {last[f'{level}_anomaly_rate']:.3f}: "
                f"gain {last[f'{level}_ap_gain']:+.3f} [{last[f'{level}_ap_gain_low']:+.3f}, "
                f"{last[f'{level}_ap_gain_high']:+.3f}]")  # fmt: skip
        if step is None:
            lines.append(f"{level} level: SemAD's AP did not stay above the {ngram} baseline's "
                         f"beyond noise within {largest} steps ({gain})")  # fmt: skip
        else:
            lines.append(f"{level} level: SemAD's AP is above the {ngram} baseline's beyond "
                         f"noise from {step} steps on ({gain})")  # fmt: skip
    return lines
