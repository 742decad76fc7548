"""train_classifier.py's work: fine-tuned classifiers and the baselines on one split, one table.

    report = run_comparison(options, notify=print)
    print(report.table.markdown())

:func:`run_comparison` loads ``<data_dir>/<dataset>/{train,validation,test}.csv``, checks every
model before any training, then runs the requested rows in order: each fine-tuned model, the
feature baselines (logistic regression, gradient-boosted trees) and the MiniLM embedding zero-shot,
the NLI zero-shot, and in-context prompting. Every row is appended, with one timestamp per run, to
``<data_dir>/results/classifier/<dataset>.csv`` as soon as it is done, so an interrupted run keeps
what it finished. Under ``torchrun`` / ``accelerate launch`` only the main process goes past the
fine-tuning.

torch, transformers and pandas are imported inside the functions, so building the script's flags
from :class:`ComparisonOptions` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmad.llm.client import ClientOptions

if TYPE_CHECKING:
    from lmad.report.tables import Table
    from lmad.workflows.classifier import WorkflowData

RESULT_COLUMNS = [
    "timestamp", "dataset", "method", "model", "train_time_s", "accuracy", "f1", "precision",
    "recall", "n_test", "epochs", "lr", "batch_size", "max_length", "seed", "max_steps",
    "train_rows", "failures",
]  # fmt: skip
"""Leading columns of the results CSV (any other keys of a row follow them)."""
TABLE_COLUMNS = ["method", "model", "train time (s)", "accuracy", "F1", "precision", "recall"]


@dataclass
class ComparisonOptions:
    """Every flag of train_classifier.py.

    The fields without a default take the constants at the top of train_classifier.py (the one
    place researchers edit them); the others are written here once and the script's flags read them.
    """

    dataset: str
    data_dir: str
    model: str
    epochs: float
    lr: float
    batch_size: int
    seed: int
    k_shot: int
    llm_models: str
    keys: str
    models: str | None = None
    """Several models, comma-separated; replaces ``model``."""
    max_length: int | None = None
    """Tokens; None: the model maximum, at most 512."""
    output_dir: str | None = None
    """None: ``<data_dir>/models/classifier/<dataset>/<model>``."""
    lora: bool = False
    max_steps: int = -1
    """-1: train every epoch; N: stop after N optimiser steps."""
    train_limit: int | None = None
    baselines: bool = True
    nli_model: str | None = None
    in_context_llm: str | None = None
    cot: bool = False
    limit: int | None = None
    """NLI and in-context rows: a seeded sample of this many test rows (None: all)."""
    concurrency: int = ClientOptions.concurrency
    no_cache: bool = False

    def model_names(self) -> list[str]:
        """The models to fine-tune: ``models`` split on commas, else ``model``."""
        return [m.strip() for m in (self.models or self.model).split(",") if m.strip()]

    def results_path(self) -> Path:
        """``<data_dir>/results/classifier/<dataset>.csv``."""
        return Path(self.data_dir) / "results" / "classifier" / f"{self.dataset}.csv"

    def output_dir_of(self, model: str) -> str:
        """Checkpoint folder of ``model``: a subfolder per model unless one ``output_dir`` is given."""
        from lmad.workflows.classifier import model_label

        out = self.output_dir or f"{self.data_dir}/models/classifier/{self.dataset}"
        if self.output_dir is None or len(self.model_names()) > 1:
            out = f"{out}/{model_label(model)}"
        return out


@dataclass
class ComparisonReport:
    """What :func:`run_comparison` did: the table of every row and where the rows were appended."""

    table: Table
    results_path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)


def append_results(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` to the results CSV (written to a temporary name, then renamed)."""
    import pandas as pd

    from lmad.io import atomic_write_text

    new = pd.DataFrame(rows)
    columns = [c for c in RESULT_COLUMNS if c in new.columns]
    new = new[columns + [c for c in new.columns if c not in columns]]
    if path.exists() and path.stat().st_size:
        new = pd.concat([pd.read_csv(path), new], ignore_index=True)
    atomic_write_text(path, new.to_csv(index=False))


class RowRecorder:
    """Adds each finished row to the table and appends it to the results CSV at once."""

    def __init__(self, options: ComparisonOptions, report: ComparisonReport) -> None:
        self.base = {
            "timestamp": datetime.now().isoformat(timespec="seconds"),
            "dataset": options.dataset,
            "seed": options.seed,
        }
        self.report = report

    def __call__(self, result: dict[str, Any], **extra: object) -> None:
        self.report.table.add(
            result["method"], result["model"], float(result["train_time_s"]),
            result["accuracy"], result["f1"], result["precision"], result["recall"],
        )  # fmt: skip
        row = dict(self.base)
        row.update({k: result[k] for k in RESULT_COLUMNS if k in result})
        row.update(extra)
        append_results(self.report.results_path, [row])
        self.report.rows.append(row)


def check_models(options: ComparisonOptions) -> None:
    """One ``error:`` line (exit 2) for a model that cannot be loaded, before any training."""
    from lmad.workflows.classifier import check_model

    for name in options.model_names() + ([options.nli_model] if options.nli_model else []):
        check_model(name)


def open_in_context_client(options: ComparisonOptions) -> Any:
    """The LLM client of ``--in_context_llm`` (None without it); models and keys are checked here."""
    if not options.in_context_llm:
        return None
    from lmad.llm.cache import cache_under
    from lmad.llm.client import open_client

    return open_client(
        options.in_context_llm, options.llm_models, options.keys,
        cache_under(options.data_dir), options.no_cache, options.concurrency,
    )  # fmt: skip


def fine_tune_rows(data: WorkflowData, options: ComparisonOptions, record: RowRecorder) -> None:
    """Fine-tune every model in turn; only the main process records a row."""
    from lmad.workflows.classifier import ClassifierArgs, train_classifier

    for name in options.model_names():
        settings = ClassifierArgs(
            model=name, output_dir=options.output_dir_of(name), epochs=options.epochs,
            lr=options.lr, batch_size=options.batch_size, max_length=options.max_length,
            seed=options.seed, lora=options.lora, max_steps=options.max_steps,
        )  # fmt: skip
        result = train_classifier(data, settings)
        if result["is_main_process"]:
            record(
                result, epochs=options.epochs, lr=options.lr, batch_size=options.batch_size,
                max_length=result["max_length"], max_steps=options.max_steps,
                train_rows=len(data.train),
            )  # fmt: skip


def baseline_rows(
    data: WorkflowData,
    options: ComparisonOptions,
    record: RowRecorder,
    notify: Callable[[str], None],
) -> None:
    """Logistic regression and boosted trees (when there are feature columns), embedding zero-shot."""
    from lmad.workflows.baselines import run_baselines
    from lmad.workflows.zero_shot import EMBEDDING_MODEL, run_embedding

    if data.feature_columns:
        for result in run_baselines(data, None, options.seed):
            record(result, train_rows=len(data.train))
    else:
        notify("note: no numeric feature columns; skipping the feature baselines")
    record(run_embedding(data, EMBEDDING_MODEL, limit=None, seed=options.seed))


def in_context_row(
    data: WorkflowData,
    options: ComparisonOptions,
    client: Any,
    record: RowRecorder,
    notify: Callable[[str], None],
) -> None:
    """In-context prompting of ``client``; its cost and the first failures go to ``notify``."""
    from lmad.workflows.in_context import PromptSettings, run_in_context

    prompt = PromptSettings(k=options.k_shot, seed=options.seed, chain_of_thought=options.cot)
    result = run_in_context(data, client, prompt, options.limit)
    record(result, failures=result["failures"], train_rows=len(data.train))
    notify(f"in-context: {client.meter.summary()}")
    for position, reason in result["failed"][:5]:
        notify(f"in-context failure, test row {position}: {reason}")


def run_comparison(
    options: ComparisonOptions, notify: Callable[[str], None]
) -> ComparisonReport | None:
    """Run every requested row (see the module docstring); None on a non-main process.

    ``notify`` receives the lines meant for the user besides the table (skipped rows, LLM cost,
    failed in-context requests).

    Raises:
        ConfigError: a bad ``--dataset`` name, a model that cannot be loaded, a bad LLM setup.
        DataError: the split CSVs are missing or unreadable.
    """
    from lmad.names import check_name

    check_name(options.dataset, "--dataset")  # a folder in data/, results/ and models/
    from lmad.report.tables import Table
    from lmad.workflows.classifier import is_main_process, load_workflow_data
    from lmad.workflows.zero_shot import run_nli

    data = load_workflow_data(options.data_dir, options.dataset, options.train_limit, options.seed)
    check_models(options)
    client = open_in_context_client(options)
    title = f"{options.dataset}: {len(data.test)} test jobs"
    report = ComparisonReport(Table(list(TABLE_COLUMNS), title=title), options.results_path())
    record = RowRecorder(options, report)
    fine_tune_rows(data, options, record)
    if not is_main_process():
        return None
    if options.baselines:
        baseline_rows(data, options, record, notify)
    if options.nli_model:
        record(run_nli(data, options.nli_model, options.limit, options.seed))
    if client is not None:
        in_context_row(data, options, client, record, notify)
    return report
