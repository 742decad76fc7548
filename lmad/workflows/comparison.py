"""train_classifier.py's work: fine-tuned classifiers and the baselines on one split, one table.

    report = run_comparison(options, notify=print)
    print(report.table.markdown())

:func:`run_comparison` loads ``<data_dir>/<dataset>/{train,validation,test}.csv``, checks every
model before any training, then runs the requested rows in order: each fine-tuned model, the
log-anomaly rows (``deeplog``, ``loganomaly``, ``logbert`` in ``--models``), the feature baselines
(logistic regression, gradient-boosted trees) and the MiniLM embedding zero-shot, the NLI zero-shot,
and in-context prompting. Every row is appended, with one timestamp per run, to
``<data_dir>/results/classifier/<dataset>.csv`` as soon as it is done, so an interrupted run keeps
what it finished, and its test predictions and scores are written to
``<data_dir>/results/classifier/<dataset>/<model>_<method>_predictions.csv`` (a rerun replaces the
file). Under ``torchrun`` / ``accelerate launch`` only the main process goes past the fine-tuning.

A row is a result dict (see :mod:`lmad.workflows.results` for the contract): ``method``,
``model``, ``train_time_s``, ``eval_time_s``, ``accuracy``, ``f1``, ``precision``, ``recall``,
``predictions``, ``scores`` (or None) and optionally ``positions``; :class:`RowRecorder` adds
ROC-AUC and AP from ``scores`` and writes the rest.

torch, transformers and pandas are imported inside the functions, so building the script's flags
from :class:`ComparisonOptions` stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmad.errors import ConfigError
from lmad.llm.client import ClientOptions

if TYPE_CHECKING:
    from lmad.report.tables import Table
    from lmad.workflows.data import WorkflowData

RESULT_COLUMNS = [
    "timestamp", "dataset", "method", "model", "train_time_s", "eval_time_s", "accuracy", "f1",
    "precision", "recall", "roc_auc", "ap", "n_test", "epochs", "lr", "batch_size", "max_length",
    "seed", "max_steps", "train_rows", "failures", "predictions_file",
]  # fmt: skip
"""Leading columns of the results CSV (any other keys of a row follow them)."""
TABLE_COLUMNS = [
    "method", "model", "train time (s)", "eval time (s)", "accuracy", "F1", "precision", "recall",
    "ROC-AUC", "AP",
]  # fmt: skip
NO_MODELS = "none"
"""``--models none``: no fine-tuning (the baseline rows only)."""
LOG_ANOMALY_MODELS = ("deeplog", "loganomaly", "logbert")
"""``--models`` names run by :mod:`lmad.workflows.log_anomaly`, not loaded from Hugging Face."""


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
    """Several models, comma-separated; replaces ``model``. ``none``: no fine-tuning."""
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
    key_quantiles: str = "0.02,0.1"
    """Log-anomaly rows: candidate quantiles (comma-separated, chosen on validation); a job feature
    is ``low``/``high`` in its key below q / above 1 - q among the normal train jobs of its type."""
    windows: str = "3,5,10"
    """Log-anomaly rows: DeepLog's and LogAnomaly's candidate history lengths (comma-separated)."""
    max_g: int = 10
    """Log-anomaly rows: the top-g rule's g is chosen on validation among 1..max_g."""
    sequence_epochs: int | None = None
    """Log-anomaly rows: training epochs (None: each model's own default)."""

    def sequence_settings(self) -> Any:
        """The :class:`~lmad.workflows.log_anomaly.SequenceSettings` of the log-anomaly rows."""
        from lmad.workflows.log_anomaly import SequenceSettings

        try:
            windows = tuple(int(w) for w in self.windows.split(",") if w.strip())
            quantiles = tuple(float(q) for q in self.key_quantiles.split(",") if q.strip())
        except ValueError:
            windows = quantiles = ()
        if not windows or min(windows) < 1:
            raise ConfigError(f"--windows must be integers >= 1, e.g. 3,5,10; got {self.windows!r}")
        if not quantiles or not all(0.0 <= q < 0.5 for q in quantiles):
            raise ConfigError(
                f"--key_quantiles must be numbers in [0, 0.5), e.g. 0.02,0.1; got "
                f"{self.key_quantiles!r}"
            )
        return SequenceSettings(quantiles, windows, self.max_g, self.sequence_epochs, self.seed)

    def log_model_dir(self) -> Path:
        """``<data_dir>/models/log_anomaly/<dataset>``: fitted log-anomaly models, for reruns."""
        return Path(self.data_dir) / "models" / "log_anomaly" / self.dataset

    def model_names(self) -> list[str]:
        """Every ``--models`` name (split on commas; ``model`` when ``models`` is None); [] for none.

        Raises:
            ConfigError: an empty list (``--models ""``), or ``none`` next to other names.
        """
        flag, value = (
            ("--models", self.models) if self.models is not None else ("--model", self.model)
        )
        names = [m.strip() for m in value.split(",") if m.strip()]
        if not names:
            raise ConfigError(
                f"{flag} {value!r} names no model; give one or more (a,b,c), or "
                f"{flag} {NO_MODELS} to run the baseline rows only"
            )
        if any(n.lower() == NO_MODELS for n in names):
            if len(names) > 1:
                raise ConfigError(f"{flag} {value!r}: {NO_MODELS!r} cannot go with other models")
            return []
        return names

    def split_models(self) -> tuple[list[str], list[str]]:
        """(models to fine-tune, log-anomaly rows): the names in :data:`LOG_ANOMALY_MODELS`
        (any case, given lower-case) apart from the Hugging Face ids, paths and ``minilm``."""
        names = self.model_names()
        log = [n.lower() for n in names if n.lower() in LOG_ANOMALY_MODELS]
        return [n for n in names if n.lower() not in LOG_ANOMALY_MODELS], log

    def results_path(self) -> Path:
        """``<data_dir>/results/classifier/<dataset>.csv``."""
        return Path(self.data_dir) / "results" / "classifier" / f"{self.dataset}.csv"

    def predictions_dir(self) -> Path:
        """``<data_dir>/results/classifier/<dataset>/``: one predictions file per row."""
        return Path(self.data_dir) / "results" / "classifier" / self.dataset

    def output_dir_of(self, model: str) -> str:
        """Checkpoint folder of ``model``: a subfolder per model unless one ``output_dir`` is given."""
        from lmad.workflows.classifier import model_label

        out = self.output_dir or f"{self.data_dir}/models/classifier/{self.dataset}"
        if self.output_dir is None or len(self.model_names()) > 1:
            out = f"{out}/{model_label(model)}"
        return out


@dataclass
class ComparisonReport:
    """What :func:`run_comparison` did: the table of every row, where the rows were appended and
    where each row's test predictions went."""

    table: Table
    results_path: Path
    predictions_dir: Path | None = None
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


def _seconds(value: Any) -> float:
    """A time for the table: NaN (shown ``-``) when the row has none."""
    return math.nan if value is None else float(value)


class RowRecorder:
    """Records each finished row at once: ROC-AUC and AP from its ``scores``, its predictions file,
    a line of the results CSV and of the table.

    Any result dict that keeps the contract of :mod:`lmad.workflows.results` works; ``extra``
    keywords become columns of the results CSV.
    """

    def __init__(
        self, options: ComparisonOptions, report: ComparisonReport, data: WorkflowData
    ) -> None:
        self.base = {
            "timestamp": datetime.now().isoformat(timespec="seconds"),
            "dataset": options.dataset,
            "seed": options.seed,
        }
        self.report = report
        self.data = data
        self.predictions_dir = report.predictions_dir or options.predictions_dir()

    def __call__(self, result: dict[str, Any], **extra: object) -> None:
        from lmad.workflows.results import ranking_scores, row_positions, write_predictions

        positions = row_positions(result, len(self.data.test))
        labels = self.data.binary_labels("test")[positions]
        result = {**ranking_scores(labels, result.get("scores")), **result}
        path = write_predictions(self.predictions_dir, self.data, result)
        train, evaluation = (_seconds(result.get(k)) for k in ("train_time_s", "eval_time_s"))
        row = dict(self.base)
        row.update({k: result[k] for k in RESULT_COLUMNS if k in result})
        row.update(extra, predictions_file=str(path))
        append_results(self.report.results_path, [row])
        self.report.table.add(
            result["method"], result["model"], train, evaluation, result["accuracy"],
            result["f1"], result["precision"], result["recall"], result["roc_auc"], result["ap"],
        )  # fmt: skip
        self.report.rows.append(row)


def check_models(options: ComparisonOptions) -> None:
    """One ``error:`` line (exit 2) for a model that cannot be loaded, before any training."""
    from lmad.workflows.classifier import check_model

    fine_tuned, _ = options.split_models()  # the log-anomaly rows load nothing from Hugging Face
    for name in fine_tuned + ([options.nli_model] if options.nli_model else []):
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

    for name in options.split_models()[0]:
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
        ConfigError: a bad ``--dataset`` name, ``--models`` that names nothing (``""``), a model
            that cannot be loaded, a bad LLM setup, no row to run.
        DataError: the split CSVs are missing or unreadable.
    """
    from lmad.names import check_name

    check_name(options.dataset, "--dataset")  # a folder in data/, results/ and models/
    fine_tuned, log_models = options.split_models()  # --models "" or "none,x": an error here
    others = options.baselines or options.nli_model or options.in_context_llm
    if not (fine_tuned or log_models or others):
        raise ConfigError(
            f"--models {NO_MODELS} with --baselines False and no --nli_model or --in_context_llm "
            "leaves no row to run"
        )
    from lmad.report.tables import Table
    from lmad.workflows.classifier import is_main_process, load_workflow_data
    from lmad.workflows.zero_shot import run_nli

    data = load_workflow_data(options.data_dir, options.dataset, options.train_limit, options.seed)
    check_models(options)
    client = open_in_context_client(options)
    title = f"{options.dataset}: {len(data.test)} test jobs"
    table = Table(list(TABLE_COLUMNS), title=title)
    report = ComparisonReport(table, options.results_path(), options.predictions_dir())
    record = RowRecorder(options, report, data)
    fine_tune_rows(data, options, record)
    if not is_main_process():
        return None
    # -- the log-anomaly rows (DeepLog, LogAnomaly, LogBERT): their one call site ------------------
    if log_models:
        from lmad.workflows.log_anomaly import run_log_anomaly_rows

        run_log_anomaly_rows(
            data, log_models, options.sequence_settings(), options.log_model_dir(), record
        )
    if options.baselines:
        baseline_rows(data, options, record, notify)
    if options.nli_model:
        record(run_nli(data, options.nli_model, options.limit, options.seed))
    if client is not None:
        in_context_row(data, options, client, record, notify)
    return report
