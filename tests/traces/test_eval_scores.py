"""SemAD evaluation outputs: ROC-AUC (by hand, by pair counting, against scikit-learn), the marking
of thresholds that flag (almost) everything, the stratified --limit sample, the scores file and
eval.py --from_scores reproducing the rows of the scoring run."""

from __future__ import annotations

import csv
import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest

from lmad.errors import ConfigError, DataError
from lmad.metrics.auc import auc_roc as roc_auc
from lmad.traces.evaluate import result_table, rows_from_scores
from lmad.traces.ranking import FLAGS_ALL_SHARE, flagged_share, flags_all
from lmad.traces.sampling import Sample, stratified_sample
from lmad.traces.score_file import (
    SCORE_COLUMNS,
    metric_rows,
    read_scores,
    score_frame,
    scores_path,
    write_scores,
)
from lmad.traces.scoring import TraceScore, detection_metrics
from tests.conftest import SHARED_DATA, assert_user_error

THRESHOLD = 0.9


def pair_count_auc(labels, scores) -> float:
    """Mann-Whitney by brute force: over all (anomalous, normal) pairs, 1 when the anomaly scores
    higher, 1/2 on a tie."""
    pos = [s for y, s in zip(labels, scores) if y == 1]
    neg = [s for y, s in zip(labels, scores) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def same(a, b) -> bool:
    """Equal values, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# --- ROC-AUC -----------------------------------------------------------------------------------


def test_roc_auc_by_hand_with_ties():
    labels = [1, 0, 1, 0, 1, 0]
    scores = [0.9, 0.9, 0.5, 0.3, 0.3, 0.1]
    # anomalies 0.9, 0.5, 0.3 against normals 0.9, 0.3, 0.1:
    # 0.9: tie, win, win = 2.5; 0.5: loss, win, win = 2; 0.3: loss, tie, win = 1.5 -> 6 / 9
    assert roc_auc(labels, scores) == pytest.approx(6 / 9)
    assert pair_count_auc(labels, scores) == pytest.approx(6 / 9)
    assert roc_auc([1, 0], [0.4, 0.4]) == 0.5  # one tied pair counts one half
    assert roc_auc([1, 1, 0], [0.9, 0.8, 0.1]) == 1.0
    assert roc_auc([0, 0, 1], [0.9, 0.8, 0.1]) == 0.0
    assert math.isnan(roc_auc([0, 0], [0.1, 0.2])) and math.isnan(roc_auc([1], [0.3]))


def test_roc_auc_equals_pair_counting_and_sklearn_on_random_tied_scores():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(7)
    for size in (5, 17, 60):
        labels = (rng.random(size) < 0.3).astype(int)
        labels[:2] = [0, 1]
        scores = np.round(rng.random(size), 1)  # many ties
        want = pair_count_auc(labels.tolist(), scores.tolist())
        assert roc_auc(labels, scores) == pytest.approx(want, abs=1e-12)
        assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_detection_metrics_report_roc_auc_and_flagged_shares():
    labels = [0, 0, 1, 1, 0, 1]
    scores = [0.1, 0.95, 0.92, 0.5, 0.3, 0.99]
    m = detection_metrics(labels, scores, threshold=THRESHOLD)
    # anomalies 0.92, 0.5, 0.99 outrank 2, 2 and 3 of the normals 0.1, 0.95, 0.3
    assert m["roc_auc"] == pytest.approx(7 / 9)
    assert m["flagged"] == pytest.approx(3 / 6) and m["flags_all"] is False
    assert m["best_threshold"] == pytest.approx(0.5)
    assert m["best_flagged"] == pytest.approx(4 / 6) and m["best_flags_all"] is False
    none = detection_metrics([0, 0], [0.2, 0.95], THRESHOLD)
    assert math.isnan(none["roc_auc"]) and math.isnan(none["best_flagged"])
    assert none["best_flags_all"] is False


# --- thresholds that flag (almost) everything ---------------------------------------------------


def test_a_threshold_flagging_at_least_95_percent_is_marked():
    assert FLAGS_ALL_SHARE == 0.95
    scores = np.linspace(0.0, 1.0, 20)  # 20 items
    assert flagged_share(scores, scores[1]) == 0.95 and flags_all(0.95)
    assert flagged_share(scores, scores[2]) == 0.90 and not flags_all(0.90)
    assert not flags_all(math.nan) and math.isnan(flagged_share([], 0.5))
    # a weak model: everything above 0.9; precision is the anomaly rate, at both thresholds
    labels = [1, 0, 0, 1, 0, 0, 0, 1, 0, 0]
    weak = [0.97, 0.99, 0.95, 0.96, 0.98, 0.97, 0.99, 0.95, 0.96, 0.98]
    m = detection_metrics(labels, weak, THRESHOLD)
    assert m["flagged"] == 1.0 and m["flags_all"] is True
    assert m["precision"] == pytest.approx(0.3) and m["recall"] == 1.0
    assert m["best_flags_all"] is True  # the best F1 is flagging everything: 2p / (1 + p)
    assert m["best_f1"] == pytest.approx(2 * 0.3 / 1.3)


def rows_for(labels, scores, events, event_labels, threshold=THRESHOLD):
    sample = Sample(tuple(range(len(labels))), len(labels))
    traces = [TraceScore(np.asarray(e, dtype=float), 0.0, []) for e in events]
    for trace, s in zip(traces, scores):
        trace.end = s  # the trace score is the max: the end here
    frame = score_frame("semad", "m", "", sample, "d.csv", labels, event_labels, traces)
    return metric_rows(frame, threshold)


def test_the_table_marks_and_footnotes_a_threshold_that_flags_everything():
    from eval import ROW_KEYS, TABLE_COLUMNS

    labels, event_labels = [1, 0, 0, 1], [[0, 1], [0, 0], [0], [1]]
    events = [[0.1, 0.2], [0.3, 0.1], [0.2], [0.4]]  # events flag nothing at 0.9
    rows = rows_for(labels, [0.95, 0.92, 0.99, 0.91], events, event_labels)
    assert [(r["level"], r["flags_all"]) for r in rows] == [("trace", True), ("event", False)]
    text = result_table(rows, TABLE_COLUMNS, ROW_KEYS)
    assert "100.0% †" in text and "0.0%" in text
    assert "flagged*" in text and "best thr" in text and "ROC-AUC" in text
    foot = text.strip().splitlines()[-1]
    assert foot.startswith("† ") and "95%" in foot and "anomaly rate (trace 0.500" in foot
    # nothing near everything: no dagger, no footnote
    calm = rows_for(labels, [0.95, 0.2, 0.3, 0.5], [[0.1, 0.95], [0.2, 0.1], [0.2], [0.4]],
                    event_labels)  # fmt: skip
    assert not any(r["flags_all"] or r["best_flags_all"] for r in calm)
    assert "†" not in result_table(calm, TABLE_COLUMNS, ROW_KEYS)


# --- stratified sample -------------------------------------------------------------------------


@pytest.mark.parametrize("total, positives", [(80, 40), (97, 13), (50, 49), (10, 1), (33, 0)])
def test_stratified_sample_keeps_the_label_share(total, positives):
    labels = np.zeros(total, dtype=int)
    labels[np.random.default_rng(total).choice(total, positives, replace=False)] = 1
    for limit in range(1, total + 1):
        sample = stratified_sample(labels, limit, seed=3)
        chosen = np.asarray(sample.indices)
        assert sample.size == limit == np.unique(chosen).size
        assert list(chosen) == sorted(chosen) and chosen.min() >= 0 and chosen.max() < total
        share = labels[chosen].mean()
        assert abs(share - positives / total) <= 0.5 / limit + 1e-12, (limit, share)
        assert labels[chosen].sum() == min(math.floor(limit * positives / total + 0.5), positives)


def test_stratified_sample_is_seeded_and_recorded():
    labels = [int(i % 3 == 0) for i in range(60)]
    a, b = stratified_sample(labels, 20, 42), stratified_sample(labels, 20, 42)
    assert a == b and stratified_sample(labels, 20, 43).indices != a.indices
    assert a.describe() == "20 of 60 traces, stratified by label, seed 42"
    every = stratified_sample(labels, None, 42)
    assert every.indices == tuple(range(60)) and every.describe() == "all 60 traces"
    assert stratified_sample(labels, 60, 42) == every  # the whole file is no sample
    with pytest.raises(ConfigError, match=r"--limit 61 is more than the 60 traces in x\.csv"):
        stratified_sample(labels, 61, 42, "x.csv")


# --- scores file -------------------------------------------------------------------------------


def two_methods(sample: Sample):
    """The frames of an LM and a baseline on three traces (tied scores and exact 1.0 included)."""
    trace_y, event_y = [1, 0, 1], [[0, 1, 0], [0, 0], [1]]
    lm = [
        TraceScore(np.array([0.2, 0.93, 0.5]), 0.1, []),
        TraceScore(np.array([0.2, 0.7]), 0.93, []),
        TraceScore(np.array([1.0]), 1 / 3, []),
    ]
    ngram = [
        TraceScore(np.array([0.25, 0.9, 0.9]), 0.4, []),
        TraceScore(np.array([0.6, 0.1]), 0.2, []),
        TraceScore(np.array([0.123456789012345678]), 0.99, []),
    ]
    return [
        score_frame("semad", "tiny", "/a/b", sample, "t.csv", trace_y, event_y, lm),
        score_frame("3-gram", "n-gram", "", sample, "t.csv", trace_y, event_y, ngram),
    ]


def test_scores_file_layout_and_round_trip(tmp_path):
    import pandas as pd

    sample = Sample((2, 5, 7), 10, 42)
    frames = two_methods(sample)
    path = write_scores(tmp_path / "s.csv", frames)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(SCORE_COLUMNS)
    assert lines[1] == "semad,trace,2,,1,0.93,tiny,/a/b,t.csv,10,42"
    assert lines[2] == "semad,event,2,0,0,0.2,tiny,/a/b,t.csv,10,42"
    assert lines[10] == "3-gram,trace,2,,1,0.9,n-gram,,t.csv,10,42"
    assert len(lines) == 1 + 2 * (3 + 6)
    back = read_scores(path)
    assert list(back["score"]) == list(np.concatenate([f["score"] for f in frames]))  # bit-exact
    for threshold in (THRESHOLD, 0.5, 0.0, 1.0):
        want = metric_rows(pd.concat(frames, ignore_index=True), threshold)
        got = metric_rows(back, threshold)
        assert [(r["method"], r["level"]) for r in got] == [
            ("semad", "trace"), ("semad", "event"), ("3-gram", "trace"), ("3-gram", "event"),
        ]  # fmt: skip
        for a, b in zip(want, got):
            assert a.keys() == b.keys() and all(same(a[k], b[k]) for k in a), (a, b)
    row = got[0]
    assert row["sample"] == "3 of 10 traces, stratified by label, seed 42"
    assert (row["model"], row["adapter"], row["data"], row["n"]) == ("tiny", "/a/b", "t.csv", 3)
    # every trace, no seed: the seed column is empty
    every = write_scores(tmp_path / "all.csv", two_methods(Sample((0, 1, 2), 3)))
    assert every.read_text().splitlines()[1].endswith(",t.csv,3,")
    assert rows_from_scores(every, THRESHOLD)[0]["sample"] == "all 3 traces"


def test_scores_path_is_next_to_the_results_and_checked(tmp_path):
    got = scores_path("data/results/semad/result.csv", "x/test_data.csv", "smollm2-135m")
    assert got == Path("data/results/semad/test_data/smollm2-135m_scores.csv")
    with pytest.raises(ConfigError, match="--scores_path"):
        scores_path("r.csv", "x/.hidden.csv", "m")
    with pytest.raises(ConfigError, match="--llm_path"):
        scores_path("r.csv", "x/t.csv", "a:b")


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda t: "", "not a scores CSV"),
        (lambda t: t.splitlines()[0] + "\n", "no scores"),
        (lambda t: t.replace(",score,", ",value,", 1), "lacks the column(s) score"),
        (lambda t: t.replace("semad,trace,2,,1,", "semad,trace,2,,2,", 1), "line 2: label"),
        (lambda t: t.replace(",0.93,", ",x,", 1), "line 2: score"),
        (lambda t: t.replace(",0.93,", ",,", 1), "line 2: score"),
        (lambda t: t.replace("semad,trace", "semad,case", 1), "level must be"),
        (lambda t: t.replace(",t.csv,10,", ",u.csv,10,", 1), "several runs"),
        (lambda t: t.replace("semad,event,2,0,", "semad,event,2,,", 1), "line 3: an event"),
    ],
)
def test_bad_scores_files_are_data_errors(tmp_path, change, needle):
    text = write_scores(tmp_path / "s.csv", two_methods(Sample((2, 5, 7), 10, 42))).read_text()
    (tmp_path / "bad.csv").write_text(change(text))
    with pytest.raises(DataError, match=re.escape(needle)):
        read_scores(tmp_path / "bad.csv")
    with pytest.raises(DataError, match="no such file"):
        read_scores(tmp_path / "missing.csv")


# --- eval.py: scoring run and --from_scores ------------------------------------------------------


def test_from_scores_reproduces_the_rows_of_the_scoring_run(script, semad_files, tmp_path):
    from lmad.traces.log_io import read_traces

    root, results = semad_files, tmp_path / "results" / "result.csv"
    labels = [int(t.label == "anomalous") for t in read_traces(root / "test_data.csv")]
    done = script("eval.py", "--llm_path", str(root / "base"), "--peft_path", "none",
                  "--data_path", str(root / "test_data.csv"), "--train_path",
                  str(root / "training_data.csv"), "--limit", "20", "--seed", "5",
                  "--result_path", str(results), "--batch_size", "16")  # fmt: skip
    assert done.returncode == 0, done.stderr
    scores = tmp_path / "results" / "test_data" / "base_scores.csv"
    assert f"scores written to {scores}" in done.stdout
    assert "20 of 60 traces, stratified by label, seed 5" in done.stdout
    assert "ROC-AUC" in done.stdout
    table = read_scores(scores)
    traces = table[(table["method"] == "semad") & (table["level"] == "trace")]
    assert len(traces) == 20 and set(table["method"]) == {"semad", "3-gram"}
    assert abs(traces["label"].mean() - np.mean(labels)) <= 0.5 / 20
    assert list(traces["label"]) == [labels[i] for i in traces["trace"]]  # ids are file rows
    # --from_scores needs no model: a model that does not exist is never looked at
    again = script("eval.py", "--from_scores", str(scores), "--result_path", str(results),
                   "--llm_path", "/no/such/model")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "scores written" not in again.stdout
    rows = list(csv.DictReader(results.open()))
    assert len(rows) == 8
    for first, second in zip(rows[:4], rows[4:]):
        assert first.keys() == second.keys()
        for key in first.keys() - {"time", "seconds"}:
            assert first[key] == second[key], key
    assert rows[0]["sample"] == "20 of 60 traces, stratified by label, seed 5"
    assert rows[0]["scores"] == str(scores) and rows[0]["roc_auc"] != ""
    assert {r["flags_all"] for r in rows} <= {"True", "False"}


def test_eval_bad_scores_and_limit_input_one_error_line(script, semad_files, tmp_path):
    done = script("eval.py", "--from_scores", str(tmp_path / "missing.csv"))
    assert_user_error(done, "no such file")
    (tmp_path / "bad.csv").write_text("method,level,trace\nsemad,trace,0\n")
    assert_user_error(script("eval.py", "--from_scores", str(tmp_path / "bad.csv")), "lacks")
    done = script("eval.py", "--llm_path", str(semad_files / "base"), "--peft_path", "none",
                  "--data_path", str(semad_files / "test_data.csv"), "--limit", "61",
                  "--result_path", str(tmp_path / "r.csv"))  # fmt: skip
    assert_user_error(done, "--limit 61", "60 traces")
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.integration
def test_stratified_sample_and_ngram_scores_round_trip_on_the_semad_test_file(tmp_path):
    path = SHARED_DATA / "semad" / "test_data.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    from lmad.traces.log_io import read_traces
    from lmad.traces.ngram import NGramModel

    traces = read_traces(path)
    labels = [int(t.label == "anomalous") for t in traces]
    sample = stratified_sample(labels, 100, seed=42)
    chosen = [traces[i] for i in sample.indices]
    share = sum(labels) / len(labels)
    assert abs(sum(labels[i] for i in sample.indices) / 100 - share) <= 0.005
    model = NGramModel(3).fit([t.events for t in chosen if t.label == "normal"])
    frame = score_frame("3-gram", "n-gram", "", sample, str(path),
                        [labels[i] for i in sample.indices],
                        [list(t.event_labels) for t in chosen],
                        model.score(t.events for t in chosen))  # fmt: skip
    written = write_scores(tmp_path / "s.csv", [frame])
    for want, got in zip(metric_rows(frame, THRESHOLD), rows_from_scores(written, THRESHOLD)):
        assert all(same(want[k], got[k]) for k in want)


def test_appending_rows_rewrites_the_older_rows_digit_for_digit(tmp_path):
    from lmad.traces.evaluate import append_results

    rows = rows_for([1, 0, 0, 1], [0.95, 0.2, 0.3, 0.5], [[0.1, 0.95], [0.2, 0.1], [0.2], [0.4]],
                    [[0, 1], [0, 0], [0], [1]])  # fmt: skip
    rows = [{**r, "roc_auc": 0.40476190476190477, "ap": 0.10003475823055105} for r in rows]
    path = append_results(tmp_path / "r.csv", rows)
    first = path.read_text()
    assert "0.40476190476190477" in first  # the plain parser would read it back one ulp off
    again = append_results(path, rows).read_text().splitlines()
    assert again[: len(first.splitlines())] == first.splitlines()
    assert again[1:3] == again[3:5]
