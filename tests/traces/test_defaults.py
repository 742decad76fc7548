"""Each default of fine_tune_llama3.py, eval.py and data_processing/process_logs.py is written
once: in the script's constants block, or in its options dataclass (the flags read it)."""

from __future__ import annotations

import eval as semad_eval
import fine_tune_llama3
from data_processing import process_logs
from lmad.traces.datasets import ProcessLogsOptions
from lmad.traces.evaluate import EvalOptions
from lmad.traces.finetune import FinetuneConfig
from tests.workflows.script_defaults import assert_defaults_written_once


def test_fine_tune_flags_default_to_the_constants_and_finetune_config():
    parsed = assert_defaults_written_once(fine_tune_llama3, FinetuneConfig)
    assert parsed["target_modules"] == ["q_proj", "v_proj"]  # the constant, split at commas
    assert (parsed["lora_alpha"], parsed["gamma"], parsed["resume"]) == (16, 0.8, True)


def test_eval_flags_default_to_the_constants_and_eval_options():
    parsed = assert_defaults_written_once(semad_eval, EvalOptions)
    assert (parsed["alpha"], parsed["threshold"], parsed["limit"]) == (0.6, 0.9, None)


def test_process_logs_flags_default_to_the_constants_and_options():
    parsed = assert_defaults_written_once(process_logs, ProcessLogsOptions)
    assert (parsed["n_train"], parsed["holdout"], parsed["inject"]) == (2000, 0.2, False)
    assert parsed["name"] is None and process_logs.NAME == "simulated"


def test_eval_adapter_folder():
    options = EvalOptions(**vars(semad_eval.build_parser().parse_args([])))
    assert options.adapter() == "data/models/semad/smollm2-135m"  # where fine-tuning saves
    assert EvalOptions(**{**vars(options), "peft_path": "None"}).adapter() is None
    assert EvalOptions(**{**vars(options), "peft_path": "a/b"}).adapter() == "a/b"
