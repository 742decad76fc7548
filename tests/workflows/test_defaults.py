"""Each default of train_classifier.py, data_processing/flowbench.py and synthetic_workflow.py is
written once: in the script's constants block, or in its options dataclass (the flags read it)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from types import ModuleType

import pytest

import train_classifier
from data_processing import flowbench, synthetic_workflow
from lmad.errors import ConfigError
from lmad.workflows.comparison import LOG_ANOMALY_MODELS, ComparisonOptions, check_models
from lmad.workflows.options import FlowbenchOptions, SyntheticOptions
from tests.workflows.script_defaults import assert_defaults_written_once


def test_train_classifier_flags_default_to_the_constants_and_comparison_options():
    parsed = assert_defaults_written_once(train_classifier, ComparisonOptions)
    assert (parsed["epochs"], parsed["lr"], parsed["k_shot"]) == (
        train_classifier.EPOCHS, train_classifier.LR, train_classifier.K_SHOT,
    )  # fmt: skip
    assert (parsed["max_steps"], parsed["baselines"], parsed["concurrency"]) == (-1, True, 4)
    assert parsed["limit"] is None and parsed["lora"] is False


def test_flowbench_flags_default_to_the_constants_and_flowbench_options():
    parsed = assert_defaults_written_once(flowbench, FlowbenchOptions)
    assert (parsed["split"], parsed["template"], parsed["multiclass"]) == (
        flowbench.SPLIT, flowbench.TEMPLATE, False,
    )  # fmt: skip


def test_synthetic_workflow_flags_default_to_the_constants_and_synthetic_options():
    parsed = assert_defaults_written_once(synthetic_workflow, SyntheticOptions)
    assert (parsed["runs"], parsed["split_seed"], parsed["multiclass"]) == (
        synthetic_workflow.RUNS, synthetic_workflow.SPLIT_SEED, False,
    )  # fmt: skip


@dataclass
class Toy:
    size: int
    workers: int = 4


def toy_script(size_constant: int, size_flag: int, workers_flag: int) -> ModuleType:
    script = ModuleType("toy")
    script.SIZE = size_constant

    def build_parser() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser()
        parser.add_argument("--size", type=int, default=size_flag)
        parser.add_argument("--workers", type=int, default=workers_flag)
        return parser

    script.build_parser = build_parser
    return script


def test_the_check_catches_a_flag_default_that_drifted():
    assert assert_defaults_written_once(toy_script(10, 10, 4), Toy) == {"size": 10, "workers": 4}
    with pytest.raises(AssertionError):
        assert_defaults_written_once(toy_script(10, 10, 5), Toy)  # workers drifted from Toy
    with pytest.raises(AssertionError):
        assert_defaults_written_once(toy_script(10, 11, 4), Toy)  # size drifted from SIZE


def options(**changes) -> ComparisonOptions:
    values = {
        "dataset": "toy", "data_dir": "d", "model": "minilm", "epochs": 1.0, "lr": 1e-3,
        "batch_size": 4, "seed": 1, "k_shot": 0, "llm_models": "m.yaml", "keys": "k.yaml",
    }  # fmt: skip
    return ComparisonOptions(**(values | changes))


def test_comparison_models_folders_and_results_path():
    one = options()
    assert one.model_names() == ["minilm"]
    assert one.output_dir_of("minilm") == "d/models/classifier/toy/minilm"
    assert str(one.results_path()) == "d/results/classifier/toy.csv"
    two = options(models="minilm, org/bert ,", output_dir="out")
    assert two.model_names() == ["minilm", "org/bert"]
    assert two.output_dir_of("org/bert") == "out/org__bert"  # one folder per model
    assert options(output_dir="out").output_dir_of("minilm") == "out"  # one model: as given


def test_models_none_and_the_log_anomaly_names_are_not_fine_tuned():
    assert options(models="none").split_models() == ([], [])
    assert options(model="None").model_names() == []  # --model none works the same
    both = options(models="minilm, DeepLog,loganomaly ,logbert")
    assert both.split_models() == (["minilm"], list(LOG_ANOMALY_MODELS))
    assert both.output_dir_of("deeplog") == "d/models/classifier/toy/deeplog"
    for bad in ("", " , ", "none,minilm"):
        with pytest.raises(ConfigError, match="--models"):
            options(models=bad).split_models()
    # only the fine-tuned names are looked up: no Hugging Face error for the log-anomaly rows
    check_models(options(models="deeplog,LogBERT,loganomaly"))
    with pytest.raises(ConfigError, match="not available offline"):
        check_models(options(models="deeplog,no-such-org/no-such-model-xyz"))
