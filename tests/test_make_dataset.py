"""make_dataset.py as a user runs it: outputs on disk, reruns, and one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from lmad.cli import parse_id_list, str2bool
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
        (["--stride", "-5"], ["stride must be positive"]),
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
