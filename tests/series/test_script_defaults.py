"""Each time-series option's default is written once: the scripts' flags take it from the options
classes, and ablation_eval.py asks with exactly main_cli.py's sampling and sending settings."""

from __future__ import annotations

import dataclasses

import pytest

import ablation_eval
import evaluation
import main_cli
from lmad.llm.client import ClientOptions
from lmad.llm.messages import GenerationParams
from lmad.series.defaults import DATA_DIR, DEFAULT_MODALITY, DEFAULT_SUBTASK
from lmad.series.pipeline import RunOptions
from lmad.series.run_plan import EvalOptions


def defaults(options) -> dict:
    return {
        f.name: f.default
        for f in dataclasses.fields(options)
        if f.default is not dataclasses.MISSING
    }


def parsed(parser, *argv) -> dict:
    return vars(parser.parse_args(list(argv)))


@pytest.mark.parametrize(
    ("parser", "argv"),
    [(main_cli.build_parser(), ()), (ablation_eval.build_parser(), ("--ablation", "llm"))],
)
def test_run_flags_default_to_the_options_classes(parser, argv):
    args = parsed(parser, *argv)
    for options in (RunOptions, GenerationParams, ClientOptions):
        for name, value in defaults(options).items():
            if name in args and name != "modality":  # main_cli: the script decides the modality
                assert args[name] == value, (options.__name__, name)
    assert args["temperature"] == 0.1 and args["top_p"] == 0.3  # TAMA's sampling
    assert args["normal_reference"] == 3 and args["concurrency"] == 4


def test_evaluation_flags_default_to_evaloptions():
    args = parsed(evaluation.build_parser())
    shared = defaults(EvalOptions)
    checked = [name for name in shared if name in args]
    assert {"c0", "pat", "protocol", "subtask", "data_dir", "modality", "plots"} <= set(checked)
    assert all(args[name] == shared[name] for name in checked)
    assert (args["dataset"], args["LLM"]) == (main_cli.DATASET, [main_cli.LLM])


def test_the_stages_agree_on_the_shared_defaults():
    from lmad.series.prepare import PrepareOptions

    for options in (PrepareOptions, RunOptions, EvalOptions):
        found = defaults(options)
        assert found["data_dir"] == DATA_DIR and found["subtask"] == DEFAULT_SUBTASK
        assert found["modality"] == DEFAULT_MODALITY


def test_ablation_runs_use_main_cli_generation_settings(monkeypatch, tmp_path):
    """The sampling and sending flags a user gives reach the ablation's runs as main_cli's would."""
    seen = {}

    def capture(options):
        seen["options"] = options
        from lmad.report.tables import Table

        return Table(["x"])

    monkeypatch.setattr("lmad.series.ablation.ablation_table", capture)
    argv = ["--ablation", "llm", "--LLM", "offline", "--temperature", "0.7", "--top_p", "0.9"]
    argv += ["--max_tokens", "99", "--seed", "5", "--concurrency", "2", "--timeout", "7"]
    assert ablation_eval.main([*argv, "--data_dir", str(tmp_path)]) == 0
    options = seen["options"]
    assert options.params == GenerationParams(0.7, 0.9, 99)
    assert options.client == ClientOptions(2, 7.0)
    assert options.run.seed == 5
    main_args = main_cli.build_parser().parse_args(argv[4:])
    assert main_cli.generation_params(main_args) == options.params
    assert main_cli.client_options(main_args) == options.client
