"""make_dataset.py as a user runs it: outputs on disk, reruns, and one-line errors for bad input."""

from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pytest
import yaml

import make_dataset
from lmad.cli import field_default, parse_id_list, str2bool
from lmad.series import (
    datasets,
    loaders_archive,
    loaders_single,
    prepare,
    render,
    synthetic,
    text,
    windows,
)
from lmad.series.prepare import PrepareOptions
from lmad.series.text import parse_tama
from tests.conftest import assert_user_error


def test_bundled_ucr_train_and_test_images(tmp_path, script):
    data = tmp_path / "data"
    for mode in ("train", "test"):
        result = script(
            "make_dataset.py", "--dataset", "UCR", "--mode", mode, "--data_dir", str(data)
        )
        assert result.returncode == 0, result.stderr
    test = data / "processed" / "UCR" / "135" / "test"
    assert len(list((test / "image").glob("*.png"))) == 30
    assert "135                    test       30     27        3" in result.stdout
    windows, labels = np.load(test / "windows.npy"), np.load(test / "labels.npy")
    assert windows.shape == (30, 600, 1) and labels.shape == (30, 600)
    meta = json.loads((test / "meta.json").read_text())
    assert meta["starts"][-1] == 6301 - 600 and meta["modalities"]["image"]["x_ticks"] == 5
    train = np.load(data / "UCR" / "135_train.npy")
    assert meta["mean"] == pytest.approx([train.mean()]) and meta["std"] == pytest.approx(
        [train.std()]
    )
    structure = yaml.safe_load((data / "processed" / "UCR" / "test_structure.yaml").read_text())
    assert structure["135"]["abnormal"] == ["12-0", "13-0", "14-0"]
    train_structure = yaml.safe_load(
        (data / "processed" / "UCR" / "train_structure.yaml").read_text()
    )
    assert train_structure["135"]["abnormal"] == [] and len(train_structure["135"]["normal"]) == 4


def test_text_modality_writes_every_value(tmp_path, script):
    data = tmp_path / "data"
    args = ["--dataset", "UCR", "--modality", "text", "--data_dir", str(data)]
    result = script("make_dataset.py", *args, "--window_size", "300", "--stride", "100")
    assert result.returncode == 0, result.stderr
    test = data / "processed" / "UCR" / "135" / "test"
    windows = np.load(test / "windows.npy")
    text = (test / "text" / "7-0.txt").read_text()
    assert "..." not in text
    np.testing.assert_allclose(parse_tama(text), windows[7, :, 0], atol=5e-4 + 1e-6)
    assert "tokens/window" in result.stdout


def test_rerun_with_other_windows_drops_stale_outputs(tmp_path, script):
    data = tmp_path / "data"
    base = ["--dataset", "UCR", "--data_dir", str(data)]
    assert script("make_dataset.py", *base, "--modality", "text").returncode == 0
    result = script("make_dataset.py", *base, "--window_size", "1200", "--stride", "400")
    assert result.returncode == 0, result.stderr
    test = data / "processed" / "UCR" / "135" / "test"
    assert not (test / "text").exists()  # made with 600/200, removed with a warning
    assert "removing text/" in result.stderr
    assert "x_ticks 5 would make tick labels overlap" in result.stderr  # 1200 points at 2000 px
    meta = json.loads((test / "meta.json").read_text())
    assert meta["window_size"] == 1200 and meta["modalities"]["image"]["x_ticks"] == 10
    assert len(list((test / "image").glob("*.png"))) == len(meta["starts"])


def test_synthetic_writes_types(tmp_path, script):
    data = tmp_path / "data"
    args = ["--dataset", "synthetic", "--data_id_list", "[0, 1]", "--data_dir", str(data)]
    result = script("make_dataset.py", *args, "--subtask", "trend", "--modality", "text")
    assert result.returncode == 0, result.stderr
    types = np.load(data / "processed" / "synthetic-trend" / "1" / "test" / "types.npy")
    assert set(np.unique(types).tolist()) == {0, 4}
    assert (data / "synthetic" / "trend" / "1_types.npy").exists()


def test_nasa_without_data_says_what_to_download(tmp_path, script):
    result = script("make_dataset.py", "--dataset", "NASA-SMAP", "--data_dir", str(tmp_path))
    assert_user_error(result, "NASA-SMAP", "not found", "telemanom", "labeled_anomalies.csv")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--dataset", "UCRX"], ["unknown dataset", "NASA-SMAP", "synthetic"]),
        (["--window_size", "7000"], ["longer than the series", "6301 points"]),
        (["--stride", "-5"], ["argument --stride", "expected an integer >= 1", "'-5'"]),
        (["--dataset", "synthetic", "--subtask", "spikes"], ["unknown subtask"]),
        (["--data_id_list", "[999]"], ["UCR", "not found", "UCR_Anomaly"]),
    ],
)
def test_bad_input_is_one_line(tmp_path, script, args, needles):
    result = script("make_dataset.py", "--data_dir", str(tmp_path), *args)
    assert_user_error(result, *needles)


def test_nan_and_label_mismatch(tmp_path, script):
    root = tmp_path / "CSV"
    root.mkdir()
    rows = ["value,label"] + [f"{'nan' if i in (50, 51) else np.sin(i / 5)},0" for i in range(400)]
    (root / "s.csv").write_text("\n".join(rows))
    args = [
        "--dataset",
        "CSV",
        "--data_dir",
        str(tmp_path),
        "--window_size",
        "100",
        "--stride",
        "50",
    ]
    result = script("make_dataset.py", *args, "--modality", "text")
    assert result.returncode == 0, result.stderr
    assert "2 missing or non-finite value(s) interpolated" in result.stderr
    ucr = tmp_path / "UCR"
    ucr.mkdir()
    np.save(ucr / "5_train.npy", np.zeros(700))
    np.save(ucr / "5_test.npy", np.zeros(700))
    np.save(ucr / "5_labels.npy", np.zeros(650))
    result = script("make_dataset.py", "--data_dir", str(tmp_path), "--data_id_list", "[5]")
    assert_user_error(result, "650 labels for a series of 700 points")


def test_help_explains_every_flag(script):
    result = script("make_dataset.py", "--help")
    assert result.returncode == 0
    for flag in ("--dataset", "--data_id_list", "--mode", "--modality", "--window_size", "--stride",
                 "--x_ticks", "--aux_enable", "--subtask", "--data_dir", "--workers"):  # fmt: skip
        assert flag in result.stdout


def test_flag_parsers():
    assert parse_id_list("[135, 136]") == ["135", "136"]
    assert parse_id_list("[machine-1-1, machine-1-2]") == ["machine-1-1", "machine-1-2"]
    assert parse_id_list("135") == ["135"]
    assert parse_id_list("[]") is None and parse_id_list("") is None
    assert str2bool("False") is False and str2bool("true") is True


def _snapshot(folder):
    """Every file under ``folder`` with its bytes (empty when the folder does not exist)."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_csv(root, name, n, period=20):
    root.mkdir(parents=True, exist_ok=True)
    rows = ["value,label"] + [f"{np.sin(2 * np.pi * i / period):.6f},0" for i in range(n)]
    (root / f"{name}.csv").write_text("\n".join(rows))


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ("", ["the file is empty", "header", "label"]),
        ("\n  \n", ["the file is empty", "header", "label"]),
        ("value,label\n", ["no rows", "one row per time point"]),
        ("name,label\nx,0\ny,0\nz,1\n", ["column(s) name", "no numbers"]),
    ],
)
def test_csv_without_data_is_one_line(tmp_path, script, content, needles):
    data = tmp_path / "data"
    (data / "CSV").mkdir(parents=True)
    (data / "CSV" / "s.csv").write_text(content)
    result = script("make_dataset.py", "--dataset", "CSV", "--data_dir", str(data))
    assert_user_error(result, "s.csv", *needles)
    assert not (data / "processed").exists()


@pytest.mark.parametrize(
    ("dataset", "name", "needles"),
    [
        ("UCR", "001_UCR_Anomaly_Empty_10_14_17.txt", ["one number per line"]),
        ("NormA", "1_valve.out", ["value,label"]),
        ("UCR", "4_test.npy", ["numpy"]),
    ],
)
def test_empty_raw_file_is_one_line(tmp_path, script, dataset, name, needles):
    data = tmp_path / "data"
    (data / dataset).mkdir(parents=True)
    (data / dataset / name).write_text("")
    if name.endswith(".npy"):
        np.save(data / dataset / "4_labels.npy", np.zeros(5))
        np.save(data / dataset / "4_train.npy", np.zeros(5))
    args = ["--dataset", dataset, "--data_dir", str(data), "--modality", "text"]
    result = script("make_dataset.py", *args)
    assert_user_error(result, name, "the file is empty", *needles)
    assert "warning" not in result.stderr.lower()
    assert not (data / "processed").exists()


def test_every_series_is_checked_before_anything_is_written(tmp_path, script):
    data = tmp_path / "data"
    _write_csv(data / "CSV", "a", 1000)
    _write_csv(data / "CSV", "b", 200)  # train split: 60 points, shorter than the window
    base = ["--dataset", "CSV", "--mode", "train", "--data_dir", str(data), "--modality", "text"]
    windows = ["--window_size", "100", "--stride", "50"]
    result = script("make_dataset.py", *base, *windows)
    line = assert_user_error(result, "series b", "train split, 60 points", "--window_size 60")
    assert "--data_id_list" in line
    assert not (data / "processed").exists()
    ok = script("make_dataset.py", *base, *windows, "--data_id_list", "[a]")
    assert ok.returncode == 0, ok.stderr
    before = _snapshot(data / "processed")
    assert (data / "processed" / "CSV" / "train_structure.yaml") in before
    assert_user_error(script("make_dataset.py", *base, *windows), "series b")
    assert _snapshot(data / "processed") == before


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--window_size", "0"], ["argument --window_size", "expected an integer >= 1", "'0'"]),
        (["--stride", "0"], ["argument --stride", "expected an integer >= 1", "'0'"]),
        (["--workers", "0"], ["argument --workers", "expected an integer >= 1"]),
        (["--x_ticks", "0"], ["argument --x_ticks", "expected an integer >= 1"]),
        (["--width", "0"], ["argument --width", "expected an integer >= 1"]),
        (["--height", "-3"], ["argument --height", "expected an integer >= 1"]),
        (["--window_size", "abc"], ["argument --window_size", "'abc'"]),
        (["--train_fraction", "0"], ["argument --train_fraction", "between 0 and 1", "'0'"]),
        (["--train_fraction", "1"], ["argument --train_fraction", "between 0 and 1"]),
        (["--train_fraction", "1.5"], ["argument --train_fraction", "between 0 and 1"]),
        (["--train_fraction", "nan"], ["argument --train_fraction", "between 0 and 1"]),
        (["--train_fraction", "x"], ["argument --train_fraction", "between 0 and 1"]),
        (["--window_size", "300", "--stride", "400"], ["--stride 400", "window size 300", "100"]),
        (["--stride", "700"], ["--stride 700", "window size 600 (the UCR default)"]),
        (["--subtask", "x/../../../escaped"], ["--subtask", "path separator"]),
        (["--subtask", ".."], ["--subtask", "dot"]),
        (["--data_id_list", "[../../../x]"], ["series id", "'../../../x'", "path separator"]),
        (["--data_id_list", "[135, ..]"], ["series id", "'..'"]),
        (
            ["--dataset", "CSV", "--data_id_list", "[../../escaped]"],
            ["series id", "path separator"],
        ),
        (["--dataset", "synthetic", "--data_id_list", "[.hidden]"], ["series id", "dot"]),
    ],
)
def test_bad_flags_are_refused_before_anything_is_written(tmp_path, script, args, needles):
    data = tmp_path / "sandbox" / "data"
    result = script("make_dataset.py", "--data_dir", str(data), *args)
    assert_user_error(result, *needles)
    assert not any(tmp_path.rglob("*"))  # nothing anywhere, not even the bundled UCR series


def test_stride_follows_the_window(tmp_path, script):
    data = tmp_path / "data"
    base = ["--dataset", "UCR", "--modality", "text", "--data_dir", str(data)]
    meta_path = data / "processed" / "UCR" / "135" / "test" / "meta.json"
    for args, window, stride in (
        (["--window_size", "300"], 300, 100),  # window/3, like TAMA
        (["--stride", "150"], 600, 150),  # the dataset's window
        ([], 600, 200),  # the dataset's defaults
    ):
        result = script("make_dataset.py", *base, *args)
        assert result.returncode == 0, result.stderr
        assert "c0 = 9" not in result.stderr
        meta = json.loads(meta_path.read_text())
        assert (meta["window_size"], meta["stride"]) == (window, stride)
        assert meta["starts"][1] == stride
    help_text = script("make_dataset.py", "--help").stdout
    assert "window_size // 3" in help_text


def test_unreachable_c0_is_warned_in_test_mode(tmp_path, script):
    data = tmp_path / "data"
    base = ["--dataset", "UCR", "--modality", "text", "--data_dir", str(data)]
    windows = ["--window_size", "300", "--stride", "200"]
    result = script("make_dataset.py", *base, *windows)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    for needle in ("at most 2 windows", "at most 8", "c0 = 9", "--stride 100",
                   "--normalised_threshold"):  # fmt: skip
        assert needle in warnings[0], warnings[0]
    train = script("make_dataset.py", *base, *windows, "--mode", "train")
    assert train.returncode == 0 and "c0 = 9" not in train.stderr
    exact = script("make_dataset.py", *base, "--window_size", "300", "--stride", "100")
    assert exact.returncode == 0 and "c0 = 9" not in exact.stderr
    whole = script("make_dataset.py", *base, "--window_size", "6301", "--stride", "100")
    assert whole.returncode == 0, whole.stderr
    assert "at most 1 window, " in whole.stderr and "--window_size 3780 or less" in whole.stderr


def test_unreachable_c0_names_the_short_series(tmp_path, script):
    data = tmp_path / "data"
    _write_csv(data / "CSV", "long", 3000)
    _write_csv(data / "CSV", "short", 1000)  # test split: 700 points, one regular window
    result = script("make_dataset.py", "--dataset", "CSV", "--data_dir", str(data), "--modality",
                    "text")  # fmt: skip
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "c0 = 9" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: window size 600 with stride 200")
    assert "in series short," in warning[0] and "--window_size 420 or less" in warning[0]


def test_synthetic_type_subtask_stays_inside_the_data_dir(tmp_path, script):
    data = tmp_path / "sandbox" / "data"
    args = ["--dataset", "synthetic", "--data_id_list", "[3]", "--data_dir", str(data)]
    result = script("make_dataset.py", *args, "--subtask", "classification", "--modality", "text")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["sandbox"]
    assert [p.name for p in (tmp_path / "sandbox").iterdir()] == ["data"]
    assert (data / "processed" / "synthetic-classification" / "3" / "test" / "meta.json").exists()
    assert (data / "synthetic" / "classification" / "3_test.npy").exists()


def test_parser_defaults_are_the_prepare_options_defaults():
    options = make_dataset.options_from_args(make_dataset.build_parser().parse_args([]))
    assert options.dataset == make_dataset.DATASET == "UCR"
    for item in dataclasses.fields(PrepareOptions):
        if item.name != "dataset":
            assert getattr(options, item.name) == field_default(PrepareOptions, item.name), item
    assert options == PrepareOptions(dataset="UCR")
    # the values a bare run has always used
    assert (options.mode, options.modality, options.subtask, options.data_dir) == (
        "test",
        "image",
        "detection",
        "data",
    )
    assert (options.train_fraction, options.text_form, options.workers, options.aux_enable) == (
        0.3,
        "tama",
        2,
        True,
    )
    assert options.ids is options.window_size is options.stride is options.x_ticks is None


def test_editing_a_prepare_options_default_moves_the_flag(monkeypatch):
    monkeypatch.setattr(PrepareOptions.__dataclass_fields__["train_fraction"], "default", 0.45)
    monkeypatch.setattr(PrepareOptions.__dataclass_fields__["text_form"], "default", "index_value")
    args = make_dataset.build_parser().parse_args([])
    assert (args.train_fraction, args.text_form) == (0.45, "index_value")
    parsed = make_dataset.build_parser().parse_args(["--data_id_list", "[3, 4]", "--workers", "5"])
    options = make_dataset.options_from_args(parsed)
    assert (options.ids, options.workers) == (["3", "4"], 5)


def test_help_numbers_come_from_the_dataset_specs():
    assert make_dataset.dataset_defaults("window_size") == "600; SMD 4500, NormA 900"
    assert make_dataset.dataset_defaults("stride") == "200; SMD 1500, NormA 300"
    assert make_dataset.dataset_defaults("height") == "400"


OPTION_NAMES = {item.name for item in dataclasses.fields(PrepareOptions)} | {"form"}


def _callables(module):
    """Functions, methods and dataclass constructors written in ``module``."""
    for obj in vars(module).values():
        if getattr(obj, "__module__", None) != module.__name__ or obj is PrepareOptions:
            continue
        if inspect.isfunction(obj):
            yield obj
        elif inspect.isclass(obj):
            yield from (f for f in vars(obj).values() if inspect.isfunction(f))


@pytest.mark.parametrize(
    "module",
    [prepare, datasets, loaders_single, loaders_archive, windows, render, text, synthetic],
    ids=lambda module: module.__name__,
)
def test_no_library_function_repeats_an_option_default(module):
    """A parameter named like a PrepareOptions field may be required or None, never a value."""
    repeated = [
        f"{function.__qualname__}({name}={parameter.default!r})"
        for function in _callables(module)
        for name, parameter in inspect.signature(function).parameters.items()
        if name in OPTION_NAMES and parameter.default not in (inspect.Parameter.empty, None)
    ]
    assert repeated == []
