"""evaluation.py --baselines: classical detectors' rows next to the LLM's, under every protocol.

Two processed CSV series (test split 180 points each, windows 60 / stride 20): ``toy`` (one channel,
anomaly 70..79) and ``toy2`` (channels a and b, anomaly 30..39). A hand-written run log of LLM ``m``
answers every window; the detector scores are written here with :func:`write_series_scores`:
``full`` scores both series (``toy2`` with two columns), ``partial`` only ``toy``. Every expected
value is computed from those scores by the metric functions themselves (or by hand), with the
mean + 3 std rule applied here, independently of the code under test.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import struct

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from lmad.metrics.adjust import point_adjust
from lmad.metrics.affiliation import affiliation_prf
from lmad.metrics.auc import threshold_sweep_auc
from lmad.metrics.event import event_prf
from lmad.metrics.point import point_prf
from lmad.metrics.range_based import range_prf
from lmad.metrics.tsbad import tsbad_metrics, tsbad_sliding_window
from lmad.metrics.vus import vus_paper
from lmad.series.baseline_eval import evaluate_baselines, resolve_baselines
from lmad.series.baseline_metrics import segment_max, sigma_predictions, tama_rows
from lmad.series.evaluate import EvalOptions, evaluate_llm
from lmad.series.prepare import PrepareOptions, prepare_dataset
from lmad.series.scores import SeriesScores, detector_folder, write_series_scores
from tests.conftest import assert_user_error, run_script, tree

TEST = 180
ANOMALY = {"toy": (70, 80), "toy2": (30, 40)}
CHANNELS = {"toy": 1, "toy2": 2}


def write_csvs(root) -> None:
    t = np.arange(300)
    base = np.sin(2 * np.pi * t / 20)
    split = np.where(t < 120, "train", "test")
    label = np.zeros(300, dtype=int)
    label[120 + 70 : 120 + 80] = 1
    value = base + 3.0 * label
    rows = ["value,label,split"] + [f"{v},{y},{s}" for v, y, s in zip(value, label, split)]
    (root / "toy.csv").write_text("\n".join(rows))
    label2 = np.zeros(300, dtype=int)
    label2[120 + 30 : 120 + 40] = 1
    a, b = np.cos(2 * np.pi * t / 30), base - 2.5 * label2
    rows = ["a,b,label,split"] + [f"{x},{y},{z},{s}" for x, y, z, s in zip(a, b, label2, split)]
    (root / "toy2.csv").write_text("\n".join(rows))


def answer(series: str, window: int, channel: int) -> dict:
    """The LLM's answer: the anomaly's windows flag it (in local coordinates), one false alarm."""
    start, end = ANOMALY[series]
    offset = 20 * window
    anomalies = []
    if channel == CHANNELS[series] - 1 and offset <= start and end <= offset + 60:
        anomalies.append({"start": start - offset, "end": end - offset, "confidence": 4,
                          "type": "global"})  # fmt: skip
    if window == 5:
        anomalies.append({"start": 0, "end": 5, "confidence": 4, "type": "global"})
    return {"anomalies": anomalies}


def detector_scores(series: str, seed: int) -> np.ndarray:
    """Noise in [0, 1) plus a bump shifted two points right of the anomaly (on the last channel)."""
    rng = np.random.default_rng(seed)
    scores = rng.random((TEST, CHANNELS[series]))
    start, end = ANOMALY[series]
    scores[start + 2 : end + 2, -1] += 1.5
    return scores


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Processed data, run log and detector scores, built once (tests copy it)."""
    base = tmp_path_factory.mktemp("baselines")
    data_dir = base / "data"
    (data_dir / "CSV").mkdir(parents=True)
    write_csvs(data_dir / "CSV")
    for mode in ("train", "test"):
        prepare_dataset(PrepareOptions(dataset="CSV", mode=mode, modality="text", window_size=60,
                                       stride=20, data_dir=data_dir, workers=1))  # fmt: skip
    records = [
        {"dataset": "CSV", "series": s, "window": w, "channel": c, "stage": "analysis",
         "status": "answered", "answer": answer(s, w, c), "error": None, "references": 0,
         "window_size": 60, "stride": 20, "modality": "text"}
        for s in ("toy", "toy2") for w in range(7) for c in range(CHANNELS[s])
    ]  # fmt: skip
    log = data_dir / "runs" / "detection" / "CSV_m_text.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    meta = {"detector": "x", "aeon_version": "1.2.0"}
    for name, series in (("full", ("toy", "toy2")), ("partial", ("toy",))):
        folder = detector_folder(data_dir, "detection", "CSV", name)
        for i, s in enumerate(series):
            info = {"parameters": {"window_size": 12 + i}, "channels": CHANNELS[s]}
            write_series_scores(folder, SeriesScores(s, detector_scores(s, i), info),
                                {**meta, "detector": name})  # fmt: skip
    return data_dir


@pytest.fixture
def data_dir(data, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    return copy


def split(data_dir, series: str) -> tuple[np.ndarray, np.ndarray]:
    folder = data_dir / "processed" / "CSV" / series / "test"
    return np.load(folder / "series_labels.npy").astype(np.int8), np.load(folder / "series.npy")


def scaled(series: str, seed: int) -> np.ndarray:
    """The one score per point, computed here: each channel min-max scaled, maximum over them."""
    raw = detector_scores(series, seed)
    span = raw.max(axis=0) - raw.min(axis=0)
    return ((raw - raw.min(axis=0)) / np.where(span > 0, span, 1.0)).max(axis=1)


def rule(score: np.ndarray) -> np.ndarray:
    return (score > np.mean(score) + 3 * np.std(score)).astype(np.int8)


def evaluation(data_dir, protocol: str, *extra: str, llm: str = "m"):
    args = ["--dataset", "CSV", "--LLM", llm, "--modality", "text", "--data_dir", str(data_dir),
            "--protocol", protocol, "--plots", "False", *extra]  # fmt: skip
    return run_script("evaluation.py", *args)


def metrics_json(data_dir, folder: str = "CSV_m_text") -> dict:
    return json.loads((data_dir / "results" / "detection" / folder / "metrics.json").read_text())


def table_row(stdout: str, label: str, row: str) -> list[str]:
    """The cells of one row of the printed table."""
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 2 and cells[:2] == [label, row]:
            return cells[2:]
    raise AssertionError(f"no row {label} / {row} in\n{stdout}")


def close(actual: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, nan_ok=True), key


# ------------------------------------------------------------------------------ the rule itself


def test_rule_is_mean_plus_three_population_std():
    scores = np.zeros(100)
    scores[7] = 1.0  # mean 0.01, population std sqrt(0.01 * 0.99) = 0.0995: threshold 0.3085
    scores[8] = 0.3
    assert np.flatnonzero(sigma_predictions(scores)).tolist() == [7]
    assert not sigma_predictions(np.full(10, 4.0)).any()  # constant: nothing exceeds its mean
    # invariant to min-max scaling, as TSB-AD scales before thresholding
    raw = np.random.default_rng(3).normal(size=500) ** 3
    np.testing.assert_array_equal(
        sigma_predictions(raw), sigma_predictions((raw - raw.min()) / np.ptp(raw))
    )


def test_tama_rows_by_hand():
    labels = np.array([0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.int8)
    one = np.zeros(20)
    one[3] = 1.0  # flags point 3 only: TP 1, FN 1, FP 0, TN 18
    two = np.zeros(20)
    two[10] = 1.0  # flags point 10 only: TP 0, FN 2, FP 1, TN 17
    rows = tama_rows([labels], [np.stack([one, two], axis=1)], pat=0.5)
    assert (rows["Pred"]["tp"], rows["Pred"]["fp"], rows["Pred"]["fn"], rows["Pred"]["tn"]) == (
        1, 1, 3, 35,
    )  # fmt: skip
    assert rows["Pred"]["precision"] == 0.5 and rows["Pred"]["recall"] == 0.25
    assert rows["Pred"]["accuracy"] == 36 / 40
    # adjusted with PAT 0.5: one of two points (0.5 * 2 = 1, not > 1) is not enough
    assert rows["Pred_adjust"]["tp"] == 1
    assert tama_rows([labels], [one[:, None]], pat=0.0)["Pred_adjust"]["tp"] == 2
    # AUC over the two channels together: 4 positive and 36 negative points, score 1 on one of each
    # ROC (0, 0) -> threshold 1: (FPR 1/36, TPR 1/4) -> (1, 1), trapezoids
    tpr, fpr = 1 / 4, 1 / 36
    roc = fpr * tpr / 2 + (1 - fpr) * (tpr + 1) / 2
    assert rows["Pred"]["auc_roc"] == pytest.approx(roc)
    # PR: (0, 1) -> (1/4, 1/2) -> (1, 4/40)
    pr = 0.25 * (1 + 0.5) / 2 + 0.75 * (0.5 + 0.1) / 2
    assert rows["Pred"]["auc_pr"] == pytest.approx(pr)


def test_segment_max_gives_the_adjusted_sweep():
    labels = np.array([0, 1, 1, 1, 0, 1, 1], dtype=np.int8)
    scores = np.array([0.5, 0.1, 0.9, 0.2, 0.3, 0.4, 0.0])
    raised = segment_max(labels, scores)
    assert raised.tolist() == [0.5, 0.9, 0.9, 0.9, 0.3, 0.4, 0.4]
    for c0 in np.unique(scores):
        adjusted = point_adjust(labels, (scores >= c0).astype(np.int8), 0.0)
        np.testing.assert_array_equal(adjusted, (raised >= c0).astype(np.int8))


# ---------------------------------------------------------------------- each protocol, end to end


def lmad_expected(labels, score, pat=0.0, buffer=10) -> dict[str, dict[str, float]]:
    pred = rule(score)
    shared = {
        "aff_f1": affiliation_prf(labels, pred)["f1"],
        **vus_paper(labels, score, max_buffer=buffer),
    }
    out = {}
    for row, p, adjust in (("Pred", pred, None), ("Pred_adjust", point_adjust(labels, pred, pat),
                                                   pat)):  # fmt: skip
        point = point_prf(labels, p)
        out[row] = {
            **{k: point[k] for k in ("precision", "recall", "f1")},
            "ap": threshold_sweep_auc(labels, score, adjust_pat=adjust)["average_precision"],
            "auc_roc": threshold_sweep_auc(labels, score, adjust_pat=adjust)["auc_roc"],
            "range_f1": range_prf(labels, p)["f1"],
            "event_f1": event_prf(labels, p)["f1"],
            **shared,
        }
    out["Pred"]["ap"] = average_precision_score(labels, score)  # no adjustment: sklearn's AP
    out["Pred"]["auc_roc"] = roc_auc_score(labels, score)
    return out


def test_lmad_protocol_rows_equal_the_metric_functions(data_dir):
    result = evaluation(data_dir, "lmad", "--baselines", "full", "--pat", "0.2")
    assert result.returncode == 0, result.stderr
    section = metrics_json(data_dir)["baselines"]["full"]
    labels = {s: split(data_dir, s)[0] for s in ("toy", "toy2")}
    scores = {"toy": scaled("toy", 0), "toy2": scaled("toy2", 1)}
    expected = {s: lmad_expected(labels[s], scores[s], pat=0.2) for s in labels}
    for s in labels:
        for row in ("Pred", "Pred_adjust"):
            close(section["series"][s][row], expected[s][row])
    # pooled: P/R/F1 over the concatenated series, the rest the mean over series
    y = np.concatenate([labels["toy"], labels["toy2"]])
    p = np.concatenate([rule(scores["toy"]), rule(scores["toy2"])])
    pooled = point_prf(y, p)
    close(section["pooled"]["Pred"], {k: pooled[k] for k in ("precision", "recall", "f1")})
    mean_ap = np.mean([expected[s]["Pred"]["ap"] for s in labels])
    assert section["pooled"]["Pred"]["ap"] == pytest.approx(mean_ap)
    adjusted = np.concatenate([point_adjust(labels[s], rule(scores[s]), 0.2) for s in labels])
    assert section["pooled"]["Pred_adjust"]["f1"] == pytest.approx(point_prf(y, adjusted)["f1"])
    # the printed table: the detector's rows next to the LLM's, no DCheck rows for it
    cells = table_row(result.stdout, "full (aeon)", "Pred")
    assert cells[2] == f"{pooled['f1']:.4f}" and cells[3] == f"{mean_ap:.4f}"
    assert cells[-1] == "2/2 series"
    assert table_row(result.stdout, "m", "DCheck_adjust")
    assert "| full (aeon)    | DCheck" not in result.stdout
    assert "mean + 3 std" in result.stdout and "no DCheck rows" in result.stdout
    assert section["rule"].startswith(
        "a point is predicted anomalous when its score > mean + 3 std"
    )
    assert section["thresholds"]["toy"] == pytest.approx(
        scores["toy"].mean() + 3 * scores["toy"].std()
    )
    assert section["parameters"]["aeon_version"] == "1.2.0"
    assert section["parameters"]["series"]["toy2"]["parameters"] == {"window_size": 13}
    assert (section["series_evaluated"], section["series_scored"], section["missing"]) == (2, 2, [])


def test_tama_protocol_scores_each_channel_and_sums_counts(data_dir):
    result = evaluation(data_dir, "tama", "--baselines", "full", "--pat", "0.5")
    assert result.returncode == 0, result.stderr
    section = metrics_json(data_dir)["baselines"]["full"]
    labels = {s: split(data_dir, s)[0] for s in ("toy", "toy2")}
    raw = {"toy": detector_scores("toy", 0), "toy2": detector_scores("toy2", 1)}
    channels = [
        (labels[s], (c - c.min()) / np.ptp(c)) for s in ("toy", "toy2") for c in raw[s].T
    ]  # three channels in all, each min-max scaled and thresholded on its own
    totals = np.sum([[point_prf(y, rule(c))[k] for k in ("tp", "fp", "fn", "tn")]
                     for y, c in channels], axis=0)  # fmt: skip
    tp, fp, fn, tn = (int(v) for v in totals)
    pooled = section["pooled"]["Pred"]
    assert (pooled["tp"], pooled["fp"], pooled["fn"], pooled["tn"]) == (tp, fp, fn, tn)
    assert pooled["precision"] == pytest.approx(tp / (tp + fp))
    assert pooled["accuracy"] == pytest.approx((tp + tn) / (3 * TEST))
    y_all = np.concatenate([y for y, _ in channels])
    area = threshold_sweep_auc(y_all, np.concatenate([c for _, c in channels]))
    assert pooled["auc_pr"] == pytest.approx(area["auc_pr"])
    assert pooled["auc_roc"] == pytest.approx(area["auc_roc"])
    raised = np.concatenate([segment_max(y, c) for y, c in channels])
    assert section["pooled"]["Pred_adjust"]["auc_roc"] == pytest.approx(
        threshold_sweep_auc(y_all, raised)["auc_roc"]
    )
    cells = table_row(result.stdout, "full (aeon)", "Pred_adjust")
    assert cells[0] == f"{section['pooled']['Pred_adjust']['accuracy']:.4f}"
    assert "per channel" in section["rule"]


def test_tsbad_protocol_is_tsbads_benchmark_call(data_dir):
    result = evaluation(data_dir, "tsb-ad", "--baselines", "full")
    assert result.returncode == 0, result.stderr
    section = metrics_json(data_dir)["baselines"]["full"]
    expected = {}
    for i, s in enumerate(("toy", "toy2")):
        labels, values = split(data_dir, s)
        window = tsbad_sliding_window(values.reshape(TEST, -1)[:, 0])
        score = scaled(s, i)
        # TSB-AD's benchmark: get_metrics(output, label, slidingWindow, pred=output > m + 3 s)
        expected[s] = tsbad_metrics(labels, score, window, score > score.mean() + 3 * score.std())
        close(section["series"][s]["Pred"], expected[s])
    assert set(section["pooled"]) == {"Pred"}
    for column in ("AUC-PR", "Standard-F1", "R-based-F1"):
        mean = np.mean([expected[s][column] for s in expected])
        assert section["pooled"]["Pred"][column] == pytest.approx(mean)
    cells = table_row(result.stdout, "full (aeon)", "Pred")
    assert cells[4] == f"{section['pooled']['Pred']['Standard-F1']:.4f}"
    assert "--tsbad_predictions c0" in result.stdout  # the LLM rows take the best threshold


# --------------------------------------------------------------------------- counts and honesty


def test_missing_series_scored_as_zero_and_noted(data_dir):
    result = evaluation(data_dir, "lmad", "--baselines", "all")
    assert result.returncode == 0, result.stderr
    note = "partial (aeon): no scores for 1 of 2 series (e.g. toy2): scored as all-zero"
    lines = result.stdout.splitlines()
    assert any(line.startswith(note) for line in lines[: lines.index(next(
        line for line in lines if line.startswith("**CSV")))])  # fmt: skip
    assert "python detect_baselines.py --dataset CSV --detectors partial" in result.stdout
    section = metrics_json(data_dir)["baselines"]
    assert set(section) == {"full", "partial"}
    partial = section["partial"]
    assert (partial["series_evaluated"], partial["series_scored"]) == (2, 1)
    assert partial["missing"] == ["toy2"] and partial["note"].startswith(note)
    assert "all-zero" in partial["missing_rule"]
    labels = split(data_dir, "toy2")[0]
    zero = lmad_expected(labels, np.zeros(TEST))["Pred"]
    close(partial["series"]["toy2"]["Pred"], zero)
    assert zero["auc_roc"] == 0.5 and zero["ap"] == pytest.approx(labels.mean())
    assert table_row(result.stdout, "partial (aeon)", "Pred")[-1] == "1/2 series"
    assert list(partial["parameters"]["series"]) == ["toy"]


def test_unknown_detector_refused_and_nothing_written(data_dir):
    before = tree(data_dir.parent)
    result = evaluation(data_dir, "lmad", "--baselines", "nosuch")
    line = assert_user_error(result, "--baselines nosuch", "detect_baselines.py")
    assert "detectors with scores: full, partial" in line
    assert tree(data_dir.parent) == before
    shutil.rmtree(data_dir / "scores")
    before = tree(data_dir.parent)
    line = assert_user_error(evaluation(data_dir, "lmad", "--baselines", "all"), "--baselines all")
    assert "no detector has scores" in line
    assert tree(data_dir.parent) == before


def test_library_function_scores_the_llms_series(data_dir):
    options = EvalOptions("CSV", ["m"], data_dir=data_dir, plots=False, modality="text",
                          ids=["toy"], baselines=["all"])  # fmt: skip
    options.baselines = resolve_baselines(options)
    assert options.baselines == ["full", "partial"]
    result = evaluate_llm(options, "m")
    baselines = evaluate_baselines(options, [result])
    assert [list(b["series"]) for b in baselines] == [["toy"], ["toy"]]  # --data_id_list narrows
    assert baselines[1]["missing"] == [] and baselines[1]["note"] is None
    labels = split(data_dir, "toy")[0]
    close(baselines[0]["pooled"]["Pred"], lmad_expected(labels, scaled("toy", 0))["Pred"])


def test_detectors_only_with_llm_none(data_dir):
    result = evaluation(data_dir, "lmad", "--baselines", "full", llm="none")
    assert result.returncode == 0, result.stderr
    assert "CSV_baselines" in result.stdout and "answers per stage" not in result.stdout
    assert not (data_dir / "results" / "detection" / "CSV_m_text").exists()
    section = metrics_json(data_dir, "CSV_baselines")["baselines"]["full"]
    labels = split(data_dir, "toy")[0]
    close(section["series"]["toy"]["Pred"], lmad_expected(labels, scaled("toy", 0))["Pred"])
    assert re.search(r"\| full \(aeon\)\s+\| Pred_adjust \|", result.stdout)
    refused = evaluation(data_dir, "lmad", llm="none")
    assert_user_error(refused, "--LLM none", "--baselines")


# ------------------------------------------------------------------------------------- report


def png_height(png: bytes) -> int:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", png[20:24])[0]


def test_report_plots_each_detectors_score(data_dir, monkeypatch):
    import lmad.series.evaluation_report as report

    drawn = []
    original = report.plot_series

    def recording(*args, **kwargs):
        drawn.append(kwargs["detectors"])
        return original(*args, **kwargs)

    monkeypatch.setattr(report, "plot_series", recording)
    options = EvalOptions("CSV", ["m"], data_dir=data_dir, modality="text", baselines=["full"])
    result = evaluate_llm(options, "m")
    folder = report.write_outputs(options, result, evaluate_baselines(options, [result]))
    assert [[t.label for t in traces] for traces in drawn] == [["full (aeon)"]] * 2
    np.testing.assert_allclose(drawn[0][0].scores, scaled("toy", 0))
    assert drawn[0][0].threshold == pytest.approx(
        scaled("toy", 0).mean() + 3 * scaled("toy", 0).std()
    )
    html = (folder / "report.html").read_text()
    assert "Detectors: full (aeon)" in html
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(images) == 2
    # series, LLM score, detector score: (4 + 1.2 * 2) inches at 100 dpi
    assert {png_height(base64.b64decode(i)) for i in images} == {640}
    section = json.loads((folder / "metrics.json").read_text())["baselines"]["full"]
    assert section["label"] == "full (aeon)" and not math.isnan(section["pooled"]["Pred"]["f1"])
