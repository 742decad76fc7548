"""Every loader on small fixtures written in the format the dataset is published in."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from lmad.errors import ConfigError, DataError
from lmad.series.datasets import get_loader, list_series, load_series


def test_ucr_archive_txt_labels_begin_end(tmp_path):
    root = tmp_path / "UCR"
    root.mkdir()
    values = np.arange(30, dtype=float)
    (root / "007_UCR_Anomaly_Toy_10_14_17.txt").write_text("\n".join(map(str, values)))
    data = load_series("UCR", "7", tmp_path)
    assert data.train[:, 0].tolist() == list(range(10))
    assert data.test[:, 0].tolist() == list(range(10, 30))
    assert np.flatnonzero(data.test_labels).tolist() == [4, 5, 6]  # points 14, 15, 16
    assert list_series("UCR", tmp_path) == ["7"]


def test_ucr_archive_txt_on_one_line(tmp_path):
    root = tmp_path / "UCR"
    root.mkdir()
    (root / "204_UCR_Anomaly_OneLine_4_6_8.txt").write_text("  ".join(str(v) for v in range(12)))
    data = load_series("UCR", "204", tmp_path)
    assert data.test.shape == (8, 1)
    assert data.test_labels.tolist() == [0, 0, 1, 1, 0, 0, 0, 0]


def test_bundled_ucr_135_is_written_once_and_matches_the_archive_format(tmp_path):
    from aeon.datasets import load_kdd_tsad_135

    data = load_series("UCR", "135", tmp_path)
    assert data.train.shape == (1200, 1) and data.test.shape == (6301, 1)
    assert np.flatnonzero(data.test_labels).tolist() == list(range(4187 - 1200, 4199 - 1200))
    assert (tmp_path / "UCR" / "135_labels.npy").exists()
    # The same series in the archive's own file format gives the same split and labels.
    whole, _ = load_kdd_tsad_135("test")
    other = tmp_path / "archive" / "UCR"
    other.mkdir(parents=True)
    name = "135_UCR_Anomaly_InternalBleeding16_1200_4187_4199.txt"
    (other / name).write_text("\n".join(repr(float(v)) for v in whole))
    from_txt = load_series("UCR", "135", tmp_path / "archive")
    np.testing.assert_allclose(from_txt.test, data.test)
    assert from_txt.test_labels.tolist() == data.test_labels.tolist()


def test_tama_npy_layout_and_label_length_mismatch(tmp_path):
    root = tmp_path / "UCR"
    root.mkdir()
    np.save(root / "1_train.npy", np.zeros(50))
    np.save(root / "1_test.npy", np.ones((80, 2)))
    np.save(root / "1_labels.npy", np.zeros(80, dtype=int))
    with pytest.raises(DataError, match="train has 1 channels but test has 2"):
        load_series("UCR", "1", tmp_path)
    np.save(root / "1_train.npy", np.zeros((50, 2)))
    assert load_series("UCR", "1", tmp_path).test.shape == (80, 2)
    np.save(root / "1_labels.npy", np.zeros(79, dtype=int))
    with pytest.raises(DataError, match="79 labels for a series of 80 points"):
        load_series("UCR", "1", tmp_path)


def _telemanom(tmp_path):
    root = tmp_path / "NASA-SMAP"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    rng = np.random.default_rng(0)
    for chan in ("A-1", "P-2"):
        np.save(root / "train" / f"{chan}.npy", rng.normal(size=(100, 25)))
        np.save(root / "test" / f"{chan}.npy", rng.normal(size=(200, 25)))
    (root / "labeled_anomalies.csv").write_text(
        "chan_id,spacecraft,anomaly_sequences,class,num_values\n"
        'A-1,SMAP,"[[10, 19], [50, 59]]","[point, contextual]",200\n'
        'C-1,MSL,"[[0, 4]]",[point],200\n'
        'P-2,SMAP,"[[190, 199]]",[point],200\n'
    )
    return root


def test_nasa_smap_telemanom_layout(tmp_path):
    root = _telemanom(tmp_path)
    assert list_series("NASA-SMAP", tmp_path) == ["A-1", "P-2"]
    data = load_series("SMAP", "A-1", tmp_path)  # alias
    assert data.test.shape == (200, 1)  # telemetry column only
    np.testing.assert_array_equal(data.test[:, 0], np.load(root / "test" / "A-1.npy")[:, 0])
    labelled = np.flatnonzero(data.test_labels)
    assert labelled.tolist() == list(range(10, 20)) + list(range(50, 60))  # inclusive ends
    assert load_series("NASA-SMAP", "1", tmp_path).series_id == "P-2"  # position among SMAP rows
    assert load_series("NASA-SMAP", "P-2", tmp_path).test_labels[-1] == 1  # touches the end


def test_nasa_msl_filters_by_spacecraft(tmp_path):
    _telemanom(tmp_path)
    (tmp_path / "NASA-SMAP").rename(tmp_path / "NASA-MSL")
    assert list_series("NASA-MSL", tmp_path) == ["C-1"]
    with pytest.raises(DataError, match=r"missing .*C-1\.npy"):
        load_series("NASA-MSL", "C-1", tmp_path)


def test_missing_dataset_folder_says_what_to_download(tmp_path):
    with pytest.raises(DataError, match="telemanom") as info:
        list_series("NASA-SMAP", tmp_path)
    assert "labeled_anomalies.csv" in str(info.value)


def test_smd_comma_separated_38_channels(tmp_path):
    root = tmp_path / "SMD"
    rng = np.random.default_rng(1)
    for part, rows in (("train", 60), ("test", 70)):
        (root / part).mkdir(parents=True)
        np.savetxt(root / part / "machine-1-1.txt", rng.random((rows, 38)), delimiter=",")
    (root / "test_label").mkdir()
    labels = np.zeros(70, dtype=int)
    labels[30:35] = 1
    np.savetxt(root / "test_label" / "machine-1-1.txt", labels, fmt="%d")
    data = load_series("SMD", "machine-1-1", tmp_path)
    assert data.train.shape == (60, 38) and data.test.shape == (70, 38)
    assert np.flatnonzero(data.test_labels).tolist() == [30, 31, 32, 33, 34]
    assert get_loader("SMD").spec.window_size == 4500


def test_tsb_out_files_split_by_fraction(tmp_path):
    root = tmp_path / "NormA"
    root.mkdir()
    values = np.arange(100, dtype=float)
    labels = np.zeros(100, dtype=int)
    labels[80:85] = 1
    lines = "\n".join(f"{v},{lab}" for v, lab in zip(values, labels))
    (root / "1_marotta_valve.test.out").write_text(lines)
    (root / "13_other.out").write_text(lines)
    assert list_series("NormA", tmp_path) == ["13_other", "1_marotta_valve"]
    data = load_series("NormA", "1", tmp_path, train_fraction=0.3)
    assert data.train[:, 0].tolist() == list(range(30))
    assert data.test[0, 0] == 30.0
    assert np.flatnonzero(data.test_labels).tolist() == [50, 51, 52, 53, 54]
    (root / "1_second.out").write_text(lines)
    with pytest.raises(DataError, match="ambiguous"):
        load_series("NormA", "1", tmp_path, train_fraction=0.3)


def test_ecg_out_file_with_bad_columns(tmp_path):
    root = tmp_path / "ECG"
    root.mkdir()
    (root / "MBA_803.out").write_text("1,0,5\n2,0,5\n")
    with pytest.raises(DataError, match="expected 2 columns"):
        load_series("ECG", "MBA_803", tmp_path, train_fraction=0.3)


def test_dodgers_uci_files_missing_counts_and_games(tmp_path, caplog):
    root = tmp_path / "Dodgers"
    root.mkdir()
    times = [f"4/10/2005 {h}:{m:02d}" for h in range(4) for m in range(0, 60, 5)]
    counts = [10 + i for i in range(len(times))]
    counts[5] = -1
    (root / "Dodgers.data").write_text("\n".join(f"{t},{c}" for t, c in zip(times, counts)))
    (root / "Dodgers.events").write_text("04/10/05,02:00:00,02:30:00,55892,Chicago W 4-0\n\n")
    with caplog.at_level(logging.WARNING, logger="lmad"):
        data = load_series("Dodgers", "101-freeway-traffic", tmp_path, train_fraction=0.25)
    assert "1 missing or non-finite value(s) interpolated" in caplog.text
    assert data.train[5, 0] == pytest.approx(15.0)  # between 14 and 16, not -1
    labelled = np.flatnonzero(np.concatenate([data.train_labels, data.test_labels]))
    assert labelled.tolist() == list(range(24, 31))  # 2:00 .. 2:30 inclusive


def test_csv_loader_split_and_type_columns(tmp_path):
    root = tmp_path / "CSV"
    root.mkdir()
    rows = ["timestamp,a,b,label,split,type"]
    for i in range(20):
        split = "train" if i < 8 else "test"
        kind = "trend" if i == 15 else "none"
        rows.append(f"2024-01-01 00:{i:02d},{i},{2 * i},{int(i == 15)},{split},{kind}")
    (root / "mine.csv").write_text("\n".join(rows))
    data = load_series("csv", "mine", tmp_path, train_fraction=0.3)  # 'split' column wins
    assert data.channel_names == ["a", "b"]
    assert data.train.shape == (8, 2) and data.test.shape == (12, 2)
    assert np.flatnonzero(data.test_labels).tolist() == [7]
    assert data.test_types[7] == 4  # trend is the fourth type


def test_csv_without_label_names_the_columns(tmp_path):
    root = tmp_path / "CSV"
    root.mkdir()
    (root / "x.csv").write_text("value,flag\n1,0\n2,0\n")
    with pytest.raises(DataError, match=r"no 'label' column \(columns: value, flag\)"):
        load_series("CSV", "x", tmp_path, train_fraction=0.3)


def test_nan_interpolated_with_count_and_all_nan_channel_refused(tmp_path, caplog):
    root = tmp_path / "UCR"
    root.mkdir()
    test = np.arange(10, dtype=float)
    test[[3, 4]] = np.nan
    test[7] = np.inf
    np.save(root / "9_train.npy", np.arange(10, dtype=float))
    np.save(root / "9_test.npy", test)
    np.save(root / "9_labels.npy", np.zeros(10, dtype=int))
    with caplog.at_level(logging.WARNING, logger="lmad"):
        data = load_series("UCR", "9", tmp_path)
    assert "3 missing or non-finite value(s)" in caplog.text
    np.testing.assert_allclose(data.test[:, 0], np.arange(10, dtype=float))
    np.save(root / "9_test.npy", np.column_stack([np.arange(10.0), np.full(10, np.nan)]))
    np.save(root / "9_train.npy", np.zeros((10, 2)))
    with pytest.raises(DataError, match="channel 1 has no finite value"):
        load_series("UCR", "9", tmp_path)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="known datasets: UCR, NASA-SMAP, NASA-MSL, SMD"):
        get_loader("UCRX")


@pytest.mark.parametrize(
    ("dataset", "files", "series_id", "empty", "needle"),
    [
        ("UCR", ["3_UCR_Anomaly_X_10_14_17.txt"], "3", 0, "one number per line"),
        ("UCR", ["3_train.npy", "3_test.npy", "3_labels.npy"], "3", 1, "numpy.save"),
        ("ECG", ["MBA_1.out"], "MBA_1", 0, "'value,label' line"),
        ("SMD", ["train/m.txt", "test/m.txt", "test_label/m.txt"], "m", 2, "one 0 or 1 per line"),
        ("SMD", ["train/m.txt", "test/m.txt", "test_label/m.txt"], "m", 0, "comma-separated"),
        ("Dodgers", ["Dodgers.data", "Dodgers.events"], "0", 0, "M/D/YYYY H:MM,count"),
        ("Dodgers", ["Dodgers.data", "Dodgers.events"], "0", 1, "one per game"),
        ("NASA-SMAP", ["labeled_anomalies.csv"], "P-1", 0, "chan_id,spacecraft"),
        ("CSV", ["s.csv"], "s", 0, "'value,label'"),
    ],
)
def test_empty_files_name_the_file_and_what_it_should_hold(
    tmp_path, dataset, files, series_id, empty, needle
):
    root = tmp_path / dataset
    for i, name in enumerate(files):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if i == empty:
            (root / name).write_text("" if i % 2 else " \n\n")  # no bytes, or only white space
        elif name.endswith(".npy"):
            np.save(root / name, np.zeros(20))
        elif name == "Dodgers.data":
            (root / name).write_text("4/10/2005 0:00,10\n4/10/2005 0:05,11\n")
        elif name == "Dodgers.events":
            (root / name).write_text("04/10/05,00:00:00,00:05:00,1,W\n")
        else:
            (root / name).write_text("1\n0\n1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # np.loadtxt's "input contained no data" would be one
        with pytest.raises(DataError, match="the file is empty") as info:
            load_series(dataset, series_id, tmp_path, train_fraction=0.3)
    assert str(root / files[empty]) in str(info.value) and needle in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("value,label\n", r"has a header \(value, label\) but no rows"),
        ("name,label\nx,0\ny,0\n", r"column\(s\) name hold no numbers"),
        ("a,b,label\n1,,0\n2,,0\n", r"column\(s\) b hold no numbers"),
        ("value,label\n1,0\n2,0,7,8\n", "not a well-formed CSV file"),
    ],
)
def test_csv_without_usable_rows_or_columns(tmp_path, content, message):
    root = tmp_path / "CSV"
    root.mkdir()
    (root / "s.csv").write_text(content)
    with pytest.raises(DataError, match=message):
        load_series("CSV", "s", tmp_path, train_fraction=0.3)


def test_hidden_files_are_not_series(tmp_path):
    for dataset, name in (("CSV", ".s.csv"), ("NormA", ".s.out")):
        (tmp_path / dataset).mkdir()
        (tmp_path / dataset / name).write_text("value,label\n1,0\n")
        with pytest.raises(DataError, match="no series found"):
            list_series(dataset, tmp_path)


@pytest.mark.parametrize(
    ("dataset", "series_id"),
    [("CSV", "../x"), ("UCR", "../../x"), ("SMD", "a/b"), ("NormA", ".."), ("synthetic", "/tmp")],
)
def test_series_ids_cannot_leave_the_dataset_folder(tmp_path, dataset, series_id):
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "x.csv").write_text("value,label\n1,0\n2,0\n3,0\n")
    with pytest.raises(ConfigError, match="series id"):
        load_series(dataset, series_id, tmp_path / "sandbox")
    assert not any((tmp_path / "sandbox").iterdir())


def test_series_ids_may_use_lmad_folder_names(tmp_path):
    root = tmp_path / "CSV"
    root.mkdir()
    (root / "process.csv").write_text("value,label\n" + "\n".join(f"{i},0" for i in range(10)))
    assert load_series("CSV", "process", tmp_path, train_fraction=0.3).series_id == "process"


def _single_file_series(tmp_path, dataset: str) -> str:
    """Write a 100-point series of ``dataset`` in its published one-file form; returns its id."""
    root = tmp_path / dataset
    root.mkdir()
    pairs = [(float(i), int(i == 90)) for i in range(100)]
    if dataset == "Dodgers":
        times = [f"4/10/2005 {i // 12}:{5 * (i % 12):02d},{10 + i}" for i in range(100)]
        (root / "Dodgers.data").write_text("\n".join(times))
        (root / "Dodgers.events").write_text("04/10/05,07:00:00,07:30:00,1,W\n")
        return "101-freeway-traffic"
    if dataset == "CSV":
        (root / "s.csv").write_text("value,label\n" + "\n".join(f"{v},{lab}" for v, lab in pairs))
        return "s"
    (root / "s.out").write_text("\n".join(f"{v},{lab}" for v, lab in pairs))
    return "s"


@pytest.mark.parametrize("dataset", ["NormA", "ECG", "Dodgers", "CSV"])
def test_single_file_loaders_have_no_train_fraction_default(tmp_path, dataset):
    """Forgetting train_fraction is an error: no loader falls back to a value of its own."""
    series_id = _single_file_series(tmp_path, dataset)
    loader = get_loader(dataset)
    with pytest.raises(TypeError, match="train_fraction"):
        loader.load(tmp_path / dataset, series_id)
    with pytest.raises(TypeError, match="train_fraction"):
        load_series(dataset, series_id, tmp_path)
    for fraction, cut in ((0.3, 30), (0.55, 55)):
        data = load_series(dataset, series_id, tmp_path, train_fraction=fraction)
        assert (len(data.train), len(data.test)) == (cut, 100 - cut)
        assert data.train[:, 0].tolist() == [
            float(10 * (dataset == "Dodgers") + i) for i in range(cut)
        ]


def test_archive_loaders_need_no_train_fraction(tmp_path):
    root = tmp_path / "UCR"
    root.mkdir()
    np.save(root / "4_train.npy", np.arange(8.0))
    np.save(root / "4_test.npy", np.arange(12.0))
    np.save(root / "4_labels.npy", np.zeros(12))
    assert load_series("UCR", "4", tmp_path).train[:, 0].tolist() == list(range(8))
