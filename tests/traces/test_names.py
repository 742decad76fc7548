"""Names that become folders in the SemAD scripts (--name of process_logs.py, a name taken from
--xes/--csv, the folder names fine_tune_llama3.py and eval.py take from --llm_path) are refused in
one line before anything is written or loaded; numeric flags that must be positive are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import assert_refused, tree

BAD_NAMES = ["../../x", "processed", "a/b", ".hidden"]
TRAIN_CSV = "trace,label,cause,evelabel\n" + '"open , check , close",normal,,[0 0 0]\n' * 8
XES = (
    "<log>"
    + "".join(
        f'<trace><string key="concept:name" value="c{i}"/>'
        + "".join(f'<event><string key="concept:name" value="{a}"/></event>' for a in acts)
        + "</trace>"
        for i, acts in enumerate([["open", "check", "close"]] * 10)
    )
    + "</log>"
)


pytestmark = pytest.mark.usefixtures("no_escapee")


# --- process_logs.py ------------------------------------------------------------------------------

SMALL = ["--n_train", "20", "--n_test", "10", "--n_eval", "10"]


@pytest.mark.parametrize("name", [*BAD_NAMES, "../../../x"])
def test_process_logs_refuses_a_bad_name(name, tmp_path, script):
    before = tree(tmp_path)
    result = script(
        "data_processing/process_logs.py", *SMALL, "--name", name,
        "--data_dir", str(tmp_path / "data"),
    )  # fmt: skip
    assert_refused(result, "--name", tmp_path, before)


@pytest.mark.parametrize("file_name", ["processed.xes", ".hidden.xes", "results.xes.gz"])
def test_process_logs_refuses_a_bad_name_taken_from_xes(file_name, tmp_path, script):
    log = tmp_path / "src" / file_name
    log.parent.mkdir()
    log.write_text(XES)
    before = tree(tmp_path)
    result = script(
        "data_processing/process_logs.py", "--xes", str(log), "--data_dir", str(tmp_path / "data")
    )
    line = assert_refused(result, "--xes", tmp_path, before)
    assert "--name" in line


@pytest.mark.parametrize("folder", ["processed", ".hidden"])
def test_process_logs_refuses_a_bad_name_taken_from_csv(folder, tmp_path, script):
    source = tmp_path / "src" / folder / "training_data.csv"
    source.parent.mkdir(parents=True)
    source.write_text(TRAIN_CSV)
    before = tree(tmp_path)
    result = script(
        "data_processing/process_logs.py",
        "--csv",
        str(source),
        "--data_dir",
        str(tmp_path / "data"),
    )
    line = assert_refused(result, "--csv", tmp_path, before)
    assert "--name" in line


def test_process_logs_good_name_from_a_file_still_works(tmp_path, script):
    log = tmp_path / "src" / "my-log.xes.gz"
    log.parent.mkdir()
    import gzip

    log.write_bytes(gzip.compress(XES.encode()))
    result = script(
        "data_processing/process_logs.py", "--xes", str(log), "--data_dir", str(tmp_path / "data")
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "process" / "my-log" / "training_data.csv").is_file()


@pytest.mark.parametrize(
    "flag, value",
    [("--n_train", "0"), ("--n_test", "-1"), ("--n_eval", "0"), ("--n_unseen", "0")],
)
def test_process_logs_refuses_non_positive_counts(flag, value, tmp_path, script):
    before = tree(tmp_path)
    result = script("data_processing/process_logs.py", flag, value, "--data_dir", str(tmp_path))
    assert_refused(result, flag, tmp_path, before)


# --- fine_tune_llama3.py and eval.py --------------------------------------------------------------


@pytest.fixture
def work(tmp_path) -> Path:
    """The current directory of the scripts: their default data/ folder lands here."""
    (tmp_path / "work").mkdir()
    source = tmp_path / "src"
    source.mkdir()
    (source / "training_data.csv").write_text(TRAIN_CSV)
    return tmp_path / "work"


def semad(script, name: str, work: Path, *args: str):
    source = work.parent / "src"
    data = ["--data_path", str(source / "training_data.csv")]
    if name == "eval.py":
        data += ["--train_path", str(source / "training_data.csv"), "--result_path", "r.csv"]
    return script(name, *data, *args, cwd=work)


@pytest.mark.parametrize("name", ["fine_tune_llama3.py", "eval.py"])
@pytest.mark.parametrize("gguf", ["..gguf", ".hidden.gguf", "semad.gguf", "smollm2-135m.gguf"])
def test_semad_scripts_refuse_a_bad_folder_name_from_a_gguf_file(name, gguf, work, script):
    model = work.parent / "src" / gguf
    model.write_bytes(b"GGUF")  # refused before it is read
    tmp_path = work.parent
    before = tree(tmp_path)
    extra = ["--output_dir", str(tmp_path / "out")] if name == "fine_tune_llama3.py" else []
    result = semad(script, name, work, "--llm_path", str(model), *extra)
    line = assert_refused(result, "--llm_path", tmp_path, before)
    assert "rename" in line


@pytest.mark.parametrize("name, flag", [("fine_tune_llama3.py", "--output_dir"),
                                        ("eval.py", "--peft_path")])  # fmt: skip
def test_semad_scripts_refuse_a_bad_default_adapter_folder(name, flag, work, script):
    model = work.parent / "src" / ".hidden"
    model.mkdir()
    (model / "config.json").write_text("{}")
    tmp_path = work.parent
    before = tree(tmp_path)
    result = semad(script, name, work, "--llm_path", str(model))
    line = assert_refused(result, "--llm_path", tmp_path, before)
    assert flag in line


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--epochs", "0"),
        ("--batch_size", "0"),
        ("--learning_rate", "0"),
        ("--gamma", "0"),
        ("--max_length", "0"),
        ("--max_length", "2"),
        ("--lora_r", "0"),
        ("--lora_alpha", "0"),
        ("--max_steps", "0"),
        ("--max_steps", "-3"),
    ],
)
def test_fine_tune_refuses_bad_numbers_before_loading(flag, value, work, script):
    tmp_path = work.parent
    before = tree(tmp_path)
    result = semad(script, "fine_tune_llama3.py", work, flag, value)
    assert_refused(result, flag, tmp_path, before)


@pytest.mark.parametrize(
    "flag, value",
    [("--limit", "0"), ("--batch_size", "0"), ("--chunk_size", "-1"), ("--ngram_order", "-1")],
)
def test_eval_refuses_bad_numbers_before_loading(flag, value, work, script):
    tmp_path = work.parent
    before = tree(tmp_path)
    result = semad(script, "eval.py", work, flag, value)
    assert_refused(result, flag, tmp_path, before)


def test_semad_defaults_are_unchanged():
    import eval as semad_eval
    import fine_tune_llama3

    args = fine_tune_llama3.build_parser().parse_args([])
    assert (args.epochs, args.batch_size, args.max_steps, args.max_length) == (10, 8, -1, 512)
    args = semad_eval.build_parser().parse_args(["--ngram_order", "0"])
    assert (args.limit, args.batch_size, args.chunk_size, args.ngram_order) == (None, 8, 64, 0)
