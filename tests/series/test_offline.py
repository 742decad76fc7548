"""The offline analyzer: finds synthetic anomalies in the window arrays, in the answer schema."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lmad.anomaly_types import ANOMALY_TYPES
from lmad.series.analyzers import Job, SeriesWork
from lmad.series.offline import OfflineAnalyzer
from lmad.series.offline_detection import Detection
from lmad.series.offline_features import nn_profile
from lmad.series.processed import ProcessedSplit
from lmad.series.synthetic import generate_series

W = 600
SEEDS = range(10)


def make_case(seed: int, kind: str, anomaly: str):
    """Three z-scored 600-point references and one normal window from train, and a test window.

    Returns (series, refs, normal, window, (start, end) of the anomaly in window coordinates).
    """
    s = generate_series(seed, (anomaly,), n_anomalies=1, kind=kind, train_length=4 * W)
    train = s.values[: s.train_length]
    z = (s.values - train.mean()) / train.std()
    index = np.flatnonzero(s.labels)
    a, b = int(index[0]), int(index[-1]) + 1
    offset = 100 + (seed * 37) % 300  # the anomaly's place in the window varies with the seed
    start = min(max(a - offset, s.train_length, b - W), a, len(z) - W)
    assert start <= a and b <= start + W and start >= s.train_length
    refs = [z[i * W : (i + 1) * W] for i in range(3)]
    return s, refs, z[3 * W : 4 * W], z[start : start + W], (a - start, b - start)


def split_of(windows: list[np.ndarray]) -> ProcessedSplit:
    """An in-memory processed split of one channel holding ``windows``."""
    array = np.stack(windows)[:, :, None]
    meta = {"window_size": array.shape[1], "starts": list(range(len(windows)))}
    return ProcessedSplit(Path("."), meta, array, np.zeros(array.shape[:2], dtype=np.int8))


def job_of(stage: str, refs, window=None, first: dict | None = None) -> Job:
    """A job as TamaRun builds it: the window (test), the references (train), the first answer."""
    test = split_of([window if window is not None else refs[0]])
    work = SeriesWork("s", test, split_of(refs) if len(refs) else None)
    base = {"series": "s", "stage": stage, "modality": "text", "window": 0, "channel": 0}
    reference = {"request_hash": "ref", "answer": {"normal_pattern": "..."}} if len(refs) else None
    analysis = {"request_hash": "first", "answer": first} if first is not None else None
    window_index = None if stage == "reference" else 0
    return Job(stage, work, window_index, 0, base, tuple(range(len(refs))), reference, analysis)


def answer_of(analyzer: OfflineAnalyzer, job: Job) -> dict:
    """The answer of the record the analyzer writes for ``job`` (checked: answered, free)."""
    stage = {"reference": analyzer.reference, "analysis": analyzer.analyse}
    record = stage.get(job.stage, analyzer.reflect)(job, False)
    assert record["status"] == "answered" and record["error"] is None
    assert record["usage"] == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cached_tokens": 0,
        "cost_usd": 0.0,
    }
    assert json.loads(record["raw"])[
        "description" if job.stage != "reference" else "normal_pattern"
    ]
    return record["answer"]


def analysis_job(refs, window) -> Job:
    return job_of("analysis", refs, window)


def check_answer(answer: dict, length: int) -> list[dict]:
    """The answer schema (docs/design.md), window-local end-exclusive intervals; the anomalies."""
    assert set(answer) == {"anomalies", "description"}
    assert answer["description"].startswith("Offline analyzer (not an LLM): ")
    anomalies = answer["anomalies"]
    assert len(anomalies) <= 5
    for item in anomalies:
        assert set(item) == {"start", "end", "confidence", "type", "explanation"}
        assert isinstance(item["start"], int) and isinstance(item["end"], int)
        assert 0 <= item["start"] < item["end"] <= length
        assert item["confidence"] in (1, 2, 3, 4)
        assert item["type"] in ANOMALY_TYPES
        assert item["explanation"]
    starts = [item["start"] for item in anomalies]
    assert starts == sorted(starts)
    return anomalies


def overlapping(anomalies: list[dict], span: tuple[int, int]) -> list[dict]:
    return [x for x in anomalies if x["start"] < span[1] and x["end"] > span[0]]


def brute_nn(query, refs, m, exclusion=0):
    """Nearest-neighbour distances by explicit loops (the definition)."""
    return np.array(
        [
            min(
                float(np.linalg.norm(query[i : i + m] - r[j : j + m]))
                for r in refs
                for j in range(len(r) - m + 1)
                if not exclusion or abs(i - j) >= exclusion
            )
            for i in range(len(query) - m + 1)
        ]
    )


def test_profile_and_thresholds_match_their_definitions():
    rng = np.random.default_rng(7)
    refs = [np.sin(np.arange(120) / 3 + k) + rng.normal(0, 0.2, 120) for k in range(3)]
    target = np.sin(np.arange(100) / 3) + rng.normal(0, 0.2, 100)
    np.testing.assert_allclose(nn_profile(target, refs, 12), brute_nn(target, refs, 12), atol=1e-6)
    np.testing.assert_allclose(
        nn_profile(refs[0], refs[:1], 12, 6), brute_nn(refs[0], refs[:1], 12, 6), atol=1e-6
    )
    det = Detection(target, refs, margin=1.3, mad_k=5.0)
    assert det.m == 19  # the period 2 * pi * 3 = 18.85, inside [8, 100 // 4]
    np.testing.assert_allclose(det.profile, brute_nn(target, refs, 19), atol=1e-6)
    left_out = [brute_nn(r, refs[:i] + refs[i + 1 :], 19) for i, r in enumerate(refs)]
    assert det.threshold == pytest.approx(1.3 * max(x.max() for x in left_out), rel=1e-6)
    single = Detection(target, refs[:1], margin=1.2, mad_k=5.0)
    assert single.threshold == pytest.approx(1.2 * brute_nn(refs[0], refs[:1], 19, 9).max())
    alone = Detection(target, [], margin=1.2, mad_k=4.0)
    own = brute_nn(target, [target], 19, 9)
    mad = np.median(np.abs(own - np.median(own)))
    assert alone.threshold == pytest.approx(np.median(own) + 4.0 * 1.4826 * mad, rel=1e-6)


@pytest.mark.parametrize("kind", ["sine", "square"])
@pytest.mark.parametrize("anomaly", ["global", "trend", "frequency"])
def test_finds_and_types_synthetic_anomalies(anomaly, kind):
    analyzer = OfflineAnalyzer()
    hits = typed = 0
    for seed in SEEDS:
        _, refs, _, window, span = make_case(seed, kind, anomaly)
        anomalies = check_answer(answer_of(analyzer, analysis_job(refs, window)), W)
        found = overlapping(anomalies, span)
        hits += bool(found)
        typed += bool(found) and found[0]["type"] == anomaly
        # nothing else of any weight is reported on these clean windows
        assert all(x["confidence"] == 1 for x in anomalies if x not in found), (seed, anomalies)
    assert hits >= 8, (anomaly, kind, hits)
    if anomaly in ("global", "trend"):
        assert typed >= 8, (anomaly, kind, typed)


@pytest.mark.parametrize("kind", ["sine", "square", "ecg"])
def test_a_spike_is_one_confident_global_point(kind):
    for seed in range(4):
        _, refs, _, window, (a, _) = make_case(seed, kind, "global")
        anomalies = answer_of(OfflineAnalyzer(), analysis_job(refs, window))["anomalies"]
        spikes = [x for x in anomalies if x["start"] <= a < x["end"]]
        assert len(spikes) == 1 and spikes[0]["end"] - spikes[0]["start"] <= 3, anomalies


def test_trend_interval_lies_inside_the_truth_and_explains_with_numbers():
    for seed in range(5):
        _, refs, _, window, (a, b) = make_case(seed, "sine", "trend")
        anomalies = answer_of(OfflineAnalyzer(), analysis_job(refs, window))["anomalies"]
        assert len(anomalies) == 1, anomalies
        item = anomalies[0]
        assert a - 5 <= item["start"] < item["end"] <= b + 5
        assert item["end"] - item["start"] >= 0.5 * (b - a)
        assert item["confidence"] >= 3
        assert re.search(r"distance \d+\.\d+ vs threshold \d+\.\d+", item["explanation"])


@pytest.mark.parametrize("where", [0, 4, 300, W - 5, W - 1])
def test_spike_stays_on_its_point_even_at_the_window_edges(where):
    _, refs, normal, _, _ = make_case(3, "sine", "trend")
    window = normal.copy()
    window[where] += 5.0
    anomalies = answer_of(OfflineAnalyzer(), analysis_job(refs, window))["anomalies"]
    assert [(x["start"], x["end"], x["type"]) for x in anomalies] == [(where, where + 1, "global")]
    assert anomalies[0]["confidence"] >= 3


def test_close_spikes_form_one_interval_and_distant_ones_two():
    _, refs, normal, _, _ = make_case(3, "sine", "trend")
    window = normal.copy()
    window[[200, 204, 450]] += 5.0
    anomalies = answer_of(OfflineAnalyzer(), analysis_job(refs, window))["anomalies"]
    assert [(x["start"], x["end"], x["type"]) for x in anomalies] == [
        (200, 205, "global"),
        (450, 451, "global"),
    ]


def test_anomaly_near_the_window_start_is_not_stretched_to_the_edge():
    for seed in range(4):
        s, refs, _, _, _ = make_case(seed, "sine", "shapelet")
        train = s.values[: s.train_length]
        z = (s.values - train.mean()) / train.std()
        start = int(np.flatnonzero(s.labels)[0]) - 20  # the anomaly begins 20 points in
        request = analysis_job(refs, z[start : start + W])
        anomalies = answer_of(OfflineAnalyzer(), request)["anomalies"]
        assert len(anomalies) == 1 and 15 <= anomalies[0]["start"] <= 25, (seed, anomalies)


@pytest.mark.parametrize("kind", ["sine", "square", "ecg", "seasonal_walk"])
def test_normal_window_has_no_confident_anomaly(kind):
    analyzer = OfflineAnalyzer()
    for seed in range(5):
        _, refs, normal, _, _ = make_case(seed, kind, "trend")
        anomalies = check_answer(answer_of(analyzer, analysis_job(refs, normal)), W)
        assert all(x["confidence"] == 1 for x in anomalies), (seed, anomalies)


def test_margin_is_the_threshold_factor():
    _, refs, _, window, _ = make_case(1, "sine", "trend")
    loose = answer_of(OfflineAnalyzer(margin=1.2), analysis_job(refs, window))
    strict = answer_of(OfflineAnalyzer(margin=100.0), analysis_job(refs, window))
    assert loose["anomalies"] and not strict["anomalies"]
    low = float(re.search(r"distance (\d+\.\d+)", loose["description"]).group(1))
    high = float(re.search(r"distance (\d+\.\d+)", strict["description"]).group(1))
    assert high == pytest.approx(low / 1.2 * 100, rel=0.01)


@pytest.mark.parametrize("kind", ["sine", "square", "ecg", "seasonal_walk"])
def test_reference_description_reports_the_period(kind):
    for seed in range(5):
        s, refs, _, _, _ = make_case(seed, kind, "trend")
        answer = answer_of(OfflineAnalyzer(), job_of("reference", refs))
        assert set(answer) == {"normal_pattern"}
        text = answer["normal_pattern"]
        assert text.startswith("Offline analyzer (not an LLM): ")
        period = int(re.search(r"Estimated period (\d+) points", text).group(1))
        assert abs(period - s.period) <= 0.15 * s.period, (seed, period, s.period)
        joined = np.concatenate(refs)
        assert f"from {joined.min():.2f} to {joined.max():.2f}" in text
        assert "per 100 points" in text and "peaks near" in text and "troughs near" in text


def test_reference_without_period_says_so():
    noise = [np.random.default_rng(i).normal(size=W) for i in range(3)]
    text = answer_of(OfflineAnalyzer(), job_of("reference", noise))["normal_pattern"]
    assert "No clear period" in text and "Estimated period" not in text


def reflection_job(refs, window, first: dict) -> Job:
    return job_of("reflection", refs, window, first)


@pytest.mark.parametrize("anomaly", ["global", "trend", "shapelet"])
def test_reflection_drops_a_normal_stretch_and_keeps_the_anomaly(anomaly):
    for seed in range(4):
        _, refs, _, window, (a, b) = make_case(seed, "sine", anomaly)
        fake = (20, 60) if a > W / 2 else (W - 60, W - 20)
        first = {
            "anomalies": [
                {"start": a, "end": b, "confidence": 3, "type": anomaly, "explanation": "odd"},
                {"start": fake[0], "end": fake[1], "confidence": 2, "type": "shapelet"},
            ],
            "description": "two intervals",
        }
        first["anomalies"].sort(key=lambda x: x["start"])
        answer = answer_of(OfflineAnalyzer(), reflection_job(refs, window, first))
        kept = check_answer(answer, W)
        assert [(x["start"], x["end"], x["type"], x["confidence"]) for x in kept] == [
            (a, b, anomaly, 3)
        ], (seed, kept)
        assert kept[0]["explanation"].startswith("confirmed: ")
        assert "kept 1 and dropped 1" in answer["description"]


def test_reflection_without_anomalies():
    _, refs, _, window, _ = make_case(0, "sine", "trend")
    empty = reflection_job(refs, window, {"anomalies": [], "description": "none"})
    assert answer_of(OfflineAnalyzer(), empty)["anomalies"] == []


@pytest.mark.parametrize("anomaly", ["global", "trend"])
def test_zero_references(anomaly):
    hits = 0
    for seed in range(5):
        _, _, _, window, span = make_case(seed, "sine", anomaly)
        job = analysis_job([], window)
        assert job.reference is None and job.reference_values() == []
        anomalies = check_answer(answer_of(OfflineAnalyzer(), job), W)
        hits += bool(overlapping(anomalies, span))
    assert hits >= 4


def test_deterministic_and_the_hash_follows_what_decides_the_answer():
    _, refs, _, window, _ = make_case(2, "square", "frequency")
    analyzer = OfflineAnalyzer()
    first = analyzer.analyse(analysis_job(refs, window), False)
    again = OfflineAnalyzer().analyse(analysis_job(refs, window.copy()), False)
    assert again["answer"] == first["answer"] and again["request_hash"] == first["request_hash"]
    assert first["reference_hash"] == "ref" and first["cached"] is False
    reversed_window = analyzer.analyse(analysis_job(refs, window[::-1].copy()), False)
    assert reversed_window["request_hash"] != first["request_hash"]
    stricter = OfflineAnalyzer(margin=1.5).analyse(analysis_job(refs, window), False)
    assert stricter["request_hash"] != first["request_hash"]
    other_reference = analysis_job(refs, window)
    other_reference = replace(other_reference, reference={"request_hash": "new"})
    assert analyzer.analyse(other_reference, False)["request_hash"] != first["request_hash"]


def test_reflection_record_links_the_analysis_it_rechecks():
    _, refs, _, window, (a, b) = make_case(1, "square", "trend")
    first = {"anomalies": [{"start": a, "end": b, "confidence": 2, "type": "trend"}]}
    record = OfflineAnalyzer().reflect(reflection_job(refs, window, first), False)
    assert record["analysis_hash"] == "first" and record["reference_hash"] == "ref"
    kept = record["answer"]["anomalies"]
    assert [(x["start"], x["end"], x["type"]) for x in kept] == [(a, b, "trend")]


def test_answers_do_not_depend_on_the_prompt_wording(monkeypatch):
    """The analyzer reads arrays, not chat: rewording every TAMA prompt changes no answer."""
    import lmad.series.prompts as prompts

    _, refs, _, window, (a, b) = make_case(4, "sine", "global")
    before = answer_of(OfflineAnalyzer(), analysis_job(refs, window))
    first = {"anomalies": [{"start": a, "end": b, "confidence": 3, "type": "global"}]}
    checked = answer_of(OfflineAnalyzer(), reflection_job(refs, window, first))
    for name in ("reference_prompt", "analysis_prompt", "reflection_prompt", "background"):
        monkeypatch.setattr(prompts, name, lambda *args, **kw: "Reworded: say it in JSON.")
    monkeypatch.setattr(prompts, "SYSTEM", "Another system prompt.")
    assert answer_of(OfflineAnalyzer(), analysis_job(refs, window)) == before
    assert answer_of(OfflineAnalyzer(), reflection_job(refs, window, first)) == checked
    assert before["anomalies"], "the case must have something to find"


def test_confidence_steps():
    from lmad.series.offline_detection import confidence_of

    assert [confidence_of(r) for r in (1.0, 1.09, 1.1, 1.2, 1.25, 1.5, 1.6, 3.0)] == [
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
    ]
