"""Trace logs: the SemAD CSV format, XES import, the process simulator, anomaly injection."""

from __future__ import annotations

import gzip
from collections import Counter

import numpy as np
import pytest

from lmad.errors import DataError
from lmad.traces.inject import (
    InjectionError,
    early,
    exclusive,
    inject,
    insert_events,
    late,
    rework,
    simulated_dataset,
    skip_sequence,
)
from lmad.traces.log_io import (
    KINDS,
    Trace,
    format_event_labels,
    parse_event_labels,
    read_traces,
    split_trace,
    trace_text,
    traces_to_csv,
    write_traces,
)
from lmad.traces.simulator import (
    MODELS,
    ProcessModel,
    accepts,
    loop,
    par,
    play_out,
    seq,
    simulate,
    xor,
)
from lmad.traces.xes import read_xes
from tests.conftest import SHARED_DATA, assert_user_error

TEST_CSV = (
    "trace,label,raw_cause,cause,evelabel\n"
    '"sort invoices , fill out and check invoice entry form",normal,,,[0 0]\n'
    "inform client,normal,,,[0]\n"
    '"photocopy the appliations , sort invoices , fill out and check invoice entry form",'
    "anomalous,Insert,The activity 'photocopy the appliations' should not be executed.,[1 0 0]\n"
    '"request for more stock , Verify contents, inspect quality, and/or store material , '
    "enter po information\",anomalous,SkipSequence,\"The activities 'a','b' and 'c' are "
    "skipped before 'Verify contents, inspect quality, and/or store material'.\",[0 1 0]\n"
)
TRAIN_CSV = (  # 40 labels wrap after 37 like numpy's print; the line break makes csv quote them
    'trace,label,cause,evelabel\n"step 0 , step 1",normal,,[0 0]\n'
    + f'"{" , ".join(f"step {i}" for i in range(40))}",normal,,"[{" ".join(["0"] * 37)}\n 0 0 0]"\n'
)


class ScriptedRng:
    """A stand-in for np.random.Generator that returns hand-picked values, checking the ranges."""

    def __init__(self, integers=(), randoms=(), choices=()):
        self._integers, self._randoms, self._choices = list(integers), list(randoms), list(choices)

    def integers(self, low, high=None):
        low, high = (0, low) if high is None else (low, high)
        value = self._integers.pop(0)
        assert low <= value < high, (value, low, high)
        return value

    def random(self):
        return self._randoms.pop(0)

    def choice(self, candidates, size, replace):
        picked = self._choices.pop(0)
        assert len(picked) == size and set(picked) <= set(candidates)
        return np.array(picked)


# --- the SemAD CSV format -----------------------------------------------------------------------


def test_round_trip_keeps_the_exact_bytes(tmp_path):
    for text, with_raw in ((TEST_CSV, True), (TRAIN_CSV, False)):
        source = tmp_path / "in.csv"
        source.write_text(text)
        traces = read_traces(source)
        out = write_traces(tmp_path / "out.csv", traces, with_raw_cause=with_raw)
        assert out.read_bytes() == text.encode()
    assert traces[0].events == ["step 0", "step 1"] and traces[1].raw_cause is None
    assert len(traces[1].events) == 40 and traces[1].event_labels == [0] * 40


def test_read_test_file_fields(tmp_path):
    (tmp_path / "t.csv").write_text(TEST_CSV)
    traces = read_traces(tmp_path / "t.csv")
    assert [t.label for t in traces] == ["normal", "normal", "anomalous", "anomalous"]
    assert traces[1].events == ["inform client"] and traces[1].raw_cause == ""
    assert traces[2].event_labels == [1, 0, 0] and traces[2].kind == "Insert"
    assert traces[2].cause == "The activity 'photocopy the appliations' should not be executed."
    assert traces[3].events[1] == "Verify contents, inspect quality, and/or store material"
    assert traces[3].kind == "SkipSequence" and traces[3].event_labels == [0, 1, 0]


def test_event_label_formats():
    assert parse_event_labels("[0 1 0]") == [0, 1, 0]
    assert parse_event_labels("[0, 1, 0]") == [0, 1, 0]
    assert parse_event_labels(" [0 1\n 0 1]") == [0, 1, 0, 1]
    assert parse_event_labels("[0. 1.]") == [0, 1]
    for bad in ("0 1", "[0 2]", "[0 ... 1]", "[a]"):
        with pytest.raises(ValueError):
            parse_event_labels(bad)
    rng = np.random.default_rng(0)
    for n in range(1, 120):
        labels = rng.integers(0, 2, n)
        assert format_event_labels(labels.tolist()) == str(labels)


def test_activity_names_with_commas(tmp_path):
    events = ["Restlessness, agitation, and/or anxiety", "a,b", ", leading", "x"]
    assert split_trace(trace_text(events)) == events
    assert split_trace("a,b , c") == ["a,b", "c"]
    path = write_traces(tmp_path / "c.csv", [Trace(events)], with_raw_cause=False)
    assert read_traces(path)[0].events == events
    for bad in ("x , y", "ends with ,"):
        with pytest.raises(DataError, match="cannot be written"):
            write_traces(tmp_path / "bad.csv", [Trace(["a", bad, "b"])], with_raw_cause=False)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("activity,label\na,normal\n", ["no 'trace' column", "activity, label"]),
        (
            'trace,label,cause,evelabel\n"a , b",normal,,[0 0]\n"a , b",normal,,[0]\n',
            ["row 2", "1 lab"],
        ),
        ("trace,label,cause,evelabel\na,normal,,[0]\n,normal,,[]\n", ["row 2", "empty"]),
        ('trace,label,cause,evelabel\n"a , ",normal,,[0 0]\n', ["row 1", "empty activity"]),
        ("trace,label,cause,evelabel\na,odd,,[0]\n", ["row 1", "'odd'"]),
        ("trace,label,cause,evelabel\na,normal,,[1]\n", ["row 1", "normal"]),
        ("trace,label,cause,evelabel\na,normal,,[0 ... 0]\n", ["row 1", "abbreviated"]),
        ("", ["no 'trace' column", "empty"]),
    ],
)
def test_bad_csv_is_a_data_error_naming_the_row(tmp_path, text, needles):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DataError) as info:
        read_traces(tmp_path / "bad.csv")
    for needle in needles:
        assert needle in str(info.value)


def test_missing_columns_have_defaults(tmp_path):
    (tmp_path / "t.csv").write_text('trace\n"a , b"\n')
    (trace,) = read_traces(tmp_path / "t.csv")
    assert trace.events == ["a", "b"] and trace.label == "normal" and trace.event_labels == [0, 0]
    with pytest.raises(DataError, match="not found"):
        read_traces(tmp_path / "missing.csv")


# --- XES ------------------------------------------------------------------------------------------

XES = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <global scope="event"><string key="concept:name" value="DEFAULT"/></global>
  <classifier name="Activity" keys="concept:name"/>
  <string key="concept:name" value="the log"/>
  <trace>
    <string key="concept:name" value="case 1"/>
    <event><string key="concept:name" value="pay"/>
      <date key="time:timestamp" value="2024-01-03T10:00:00.000+01:00"/></event>
    <event><string key="concept:name" value="register"/>
      <date key="time:timestamp" value="2024-01-01T10:00:00Z"/>
      <list key="tags"><string key="concept:name" value="nested"/></list></event>
    <event><string key="concept:name" value="check, then approve"/>
      <string key="lifecycle:transition" value="complete"/>
      <date key="time:timestamp" value="2024-01-02T10:00:00"/></event>
    <event><string key="concept:name" value="check, then approve"/>
      <string key="lifecycle:transition" value="start"/>
      <date key="time:timestamp" value="2024-01-02T09:00:00"/></event>
  </trace>
  <trace>
    <string key="concept:name" value="case 2"/>
    <string key="label" value="{'anomaly': 'SkipSequence'}"/>
    <event><string key="concept:name" value="b"/></event>
    <event><string key="concept:name" value="a"/><boolean key="anomaly" value="true"/>
      <date key="time:timestamp" value="2020-01-01T00:00:00Z"/></event>
  </trace>
  <trace><string key="concept:name" value="empty"/></trace>
  <trace>
    <event><string key="concept:name" value="x"/><string key="anomaly" value="1"/></event>
  </trace>
</log>
"""


def test_xes_import_orders_by_timestamp_and_reads_labels(tmp_path):
    (tmp_path / "log.xes").write_text(XES)
    plain = read_xes(tmp_path / "log.xes", None)
    with gzip.open(tmp_path / "log.xes.gz", "wt") as handle:
        handle.write(XES)
    assert read_xes(tmp_path / "log.xes.gz", None) == plain
    first, second, third = plain
    assert first.events == ["register", "check, then approve", "check, then approve", "pay"]
    assert first.label == "normal" and first.event_labels == [0, 0, 0, 0]
    assert second.events == ["b", "a"]  # one event without a timestamp: file order
    assert second.label == "anomalous" and second.raw_cause == "SkipSequence"
    assert second.event_labels == [0, 1]
    assert third.label == "anomalous" and third.event_labels == [1]  # from the event label
    complete = read_xes(tmp_path / "log.xes", lifecycle="complete")
    assert complete[0].events == ["register", "check, then approve", "pay"]


def test_xes_bad_input(tmp_path):
    (tmp_path / "broken.xes").write_text("<log><trace><event>")
    with pytest.raises(DataError, match="not a valid XES"):
        read_xes(tmp_path / "broken.xes", None)
    (tmp_path / "time.xes").write_text(
        '<log><trace><event><string key="concept:name" value="a"/>'
        '<date key="time:timestamp" value="yesterday"/></event></trace></log>'
    )
    with pytest.raises(DataError, match="ISO 8601"):
        read_xes(tmp_path / "time.xes", None)
    with pytest.raises(DataError, match="not found"):
        read_xes(tmp_path / "none.xes", None)


# --- simulator ------------------------------------------------------------------------------------


def test_simulation_is_deterministic_and_valid():
    first, again = simulate(MODELS, 400, seed=3), simulate(MODELS, 400, seed=3)
    assert first == again and simulate(MODELS, 400, seed=4) != first
    for trace in first:
        owners = [m for m in MODELS if accepts(m, trace.events)]
        assert len(owners) == 1 and trace.label == "normal" and not any(trace.event_labels)
    names = [name for model in MODELS for name in model.alphabet]
    assert len(names) == len(set(names)) and len(MODELS) >= 5
    assert 6 < np.mean([len(t.events) for t in first]) < 11


def test_parallel_branches_complete_and_loops_stay_bounded():
    model = ProcessModel("toy", seq("a", par(seq("b", "c"), "d"), loop("e", redo="f", p=0.9)))
    rng = np.random.default_rng(1)
    outs = {tuple(play_out(model, rng)) for _ in range(300)}
    for out in outs:
        assert accepts(model, out) and out[0] == "a" and out.count("e") <= 3
        assert out.index("b") < out.index("c") and {"b", "c", "d"} <= set(out)
    assert {out[1:4] for out in outs} == {("b", "c", "d"), ("b", "d", "c"), ("d", "b", "c")}
    assert ("a", "b", "c", "d", "e", "f", "e", "f", "e") in outs
    for wrong in (["a", "b", "d", "e"], ["a", "c", "b", "d", "e"], ["a", "b", "c", "d"]):
        assert not accepts(model, wrong)
    assert not accepts(model, ["a", "b", "c", "d", *["e", "f"] * 3, "e"])
    with pytest.raises(ValueError, match="parallel branches share"):
        ProcessModel("bad", par("a", seq("b", "a")))


# --- injection ------------------------------------------------------------------------------------

EVENTS = ["a", "b", "c", "d", "e"]


def test_insert_labels_each_inserted_event():
    rng = ScriptedRng(integers=[1, 1], choices=[["y"]])
    out, labels, sentence = insert_events(["a", "b", "c"], rng, ["x", "y", "a"])
    assert out == ["a", "y", "b", "c"] and labels == [0, 1, 0, 0]
    assert sentence == "The activity 'y' should not be executed."
    rng = ScriptedRng(integers=[2, 0, 4], choices=[["x", "y"]])
    out, labels, sentence = insert_events(["a", "b", "c"], rng, ["x", "y"])
    assert out == ["x", "a", "b", "c", "y"] and labels == [1, 0, 0, 0, 1]
    assert sentence == "The activities 'x' and 'y' should not be executed."


def test_skip_sequence_labels_the_event_after_the_gap():
    out, labels, sentence = skip_sequence(EVENTS, ScriptedRng(integers=[2, 1]))
    assert out == ["a", "d", "e"] and labels == [0, 1, 0]
    assert sentence == "The activities 'b' and 'c' are skipped before 'd'."
    out, labels, sentence = skip_sequence(EVENTS, ScriptedRng(integers=[3, 0]))
    assert out == ["d", "e"] and labels == [1, 0]
    assert sentence == "The activities 'a','b' and 'c' are skipped before 'd'."
    with pytest.raises(InjectionError):
        skip_sequence(["a"], ScriptedRng())


def test_rework_labels_the_repeated_copy():
    out, labels, sentence = rework(EVENTS, ScriptedRng(integers=[2, 1, 4]))
    assert out == ["a", "b", "c", "d", "b", "c", "e"] and labels == [0, 0, 0, 0, 1, 1, 0]
    assert sentence == "The activities 'b' and 'c' are reworked after 'd'."
    out, labels, _ = rework(EVENTS, ScriptedRng(integers=[3, 2, 5]))
    assert out == [*EVENTS, "c", "d", "e"] and labels == [0] * 5 + [1, 1, 1]


def test_early_labels_the_moved_block_and_its_former_follower():
    out, labels, sentence = early(EVENTS, ScriptedRng(integers=[1, 3, 1]))
    assert out == ["a", "d", "b", "c", "e"] and labels == [0, 1, 0, 0, 1]
    assert sentence == "The activity 'd' is executed too early, it should be executed after 'c'."
    out, labels, sentence = early(EVENTS, ScriptedRng(integers=[2, 2, 0]))
    assert out == ["c", "d", "a", "b", "e"] and labels == [1, 1, 0, 0, 1]
    assert sentence.startswith("The activities 'c' and 'd' are executed too early, they should")


def test_late_labels_the_moved_block_and_its_former_follower():
    out, labels, sentence = late(EVENTS, ScriptedRng(integers=[1, 0, 2]))
    assert out == ["b", "c", "a", "d", "e"] and labels == [1, 0, 1, 0, 0]
    assert sentence == "The activity 'a' is executed too late, it should be executed before 'b'."
    out, labels, _ = late(EVENTS, ScriptedRng(integers=[2, 1, 4]))
    assert out == ["a", "d", "e", "b", "c"] and labels == [0, 1, 0, 1, 1]


def test_exclusive_labels_both_branches():
    model = ProcessModel("toy", seq("start", xor(seq("approve", "pay"), "reject"), "end"))
    trace = ["start", "reject", "end"]
    out, labels, sentence = exclusive(trace, ScriptedRng(integers=[0], randoms=[0.0]), model)
    assert out == ["start", "reject", "approve", "pay", "end"] and labels == [0, 1, 1, 1, 0]
    assert sentence == (
        "The activities 'approve' and 'pay' are mutually exclusive with the activity 'reject', "
        "meaning they should not be executed within the same process instance."
    )
    out, labels, _ = exclusive(
        ["start", "approve", "pay", "end"], ScriptedRng(integers=[0], randoms=[0.9]), model
    )
    assert out == ["start", "reject", "approve", "pay", "end"] and labels == [0, 1, 1, 1, 0]
    with pytest.raises(InjectionError):
        inject(Trace(["q"]), "Exclusive", np.random.default_rng(0), [])


def test_inject_every_kind_into_simulated_traces():
    rng = np.random.default_rng(5)
    traces = simulate(MODELS, 150, seed=9)
    alphabet = {name for model in MODELS for name in model.alphabet}
    for kind in KINDS:
        done = 0
        for trace in traces:
            try:
                bad = inject(trace, kind, rng)
            except InjectionError:
                continue
            done += 1
            labels = bad.event_labels
            assert bad.label == "anomalous" and bad.raw_cause == kind == bad.kind
            assert len(labels) == len(bad.events) and sum(labels) >= 1
            assert not any(accepts(m, bad.events) for m in MODELS)
            marked = [e for e, label in zip(bad.events, labels) if label]
            if kind == "Insert":
                owner = next(m for m in MODELS if accepts(m, trace.events))
                assert 1 <= len(marked) <= 3 and not set(marked) & owner.alphabet
            elif kind == "SkipSequence":
                assert sum(labels) == 1 and len(bad.events) < len(trace.events)
            elif kind == "Rework":
                first, size = labels.index(1), sum(labels)
                assert 2 <= size <= 3 and labels[first : first + size] == [1] * size
                assert bad.events[:first] + bad.events[first + size :] == trace.events
            elif kind in ("Early", "Late"):
                assert sorted(bad.events) == sorted(trace.events) and 2 <= sum(labels) <= 4
            else:
                assert len(bad.events) > len(trace.events) and set(bad.events) <= alphabet
        assert done >= 100 if kind != "Exclusive" else done >= 50, (kind, done)


def test_simulated_dataset_shape():
    data = simulated_dataset(300, 200, 100, anomaly_ratio=0.5, seed=1, n_unseen=4)
    train, test, evaluation = data["training_data"], data["test_data"], data["eval_data"]
    assert len(train) == 300 and not any(t.is_anomalous for t in train)
    assert (
        sum(t.is_anomalous for t in test) == 100 and sum(t.is_anomalous for t in evaluation) == 50
    )
    seen, unseen = MODELS[:-4], MODELS[-4:]
    assert all(any(accepts(m, t.events) for m in seen) for t in train)
    from_unseen = [
        t for t in test if not t.is_anomalous if any(accepts(m, t.events) for m in unseen)
    ]
    assert len(from_unseen) > 0.6 * sum(not t.is_anomalous for t in test)
    assert set(Counter(t.kind for t in test if t.is_anomalous)) == set(KINDS)
    assert simulated_dataset(300, 200, 100, anomaly_ratio=0.5, seed=1, n_unseen=4) == data


# --- the script -----------------------------------------------------------------------------------


def test_process_logs_script_writes_three_files(tmp_path, script):
    args = ["--data_dir", str(tmp_path), "--n_train", "200", "--n_test", "100", "--n_eval", "60"]
    result = script("data_processing/process_logs.py", *args)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "process" / "simulated"
    train = read_traces(folder / "training_data.csv")
    test, evaluation = read_traces(folder / "test_data.csv"), read_traces(folder / "eval_data.csv")
    assert (len(train), len(test), len(evaluation)) == (200, 100, 60)
    assert train[0].raw_cause is None and test[0].raw_cause is not None
    assert sum(t.is_anomalous for t in test) == 50 and sum(t.is_anomalous for t in evaluation) == 30
    assert "test_data.csv: 100 rows, 50 anomalous (50.0%)" in result.stdout


def test_process_logs_script_imports_xes_and_copies_csv(tmp_path, script):
    cases = "".join(
        f'<trace><string key="concept:name" value="c{i}"/>'
        + "".join(f'<event><string key="concept:name" value="{a}"/></event>' for a in acts)
        + "</trace>"
        for i, acts in enumerate([["open", "check", "approve", "close"]] * 30 + [["open", "close"]])
    )
    (tmp_path / "my.xes").write_text(f"<log>{cases}</log>")
    base = ["--data_dir", str(tmp_path)]
    result = script("data_processing/process_logs.py", "--xes", str(tmp_path / "my.xes"), *base)
    assert result.returncode == 0, result.stderr
    assert "no test or eval data" in result.stdout
    result = script(
        "data_processing/process_logs.py", "--xes", str(tmp_path / "my.xes"), "--inject", *base
    )
    assert result.returncode == 0, result.stderr
    test = read_traces(tmp_path / "process" / "my" / "test_data.csv")
    assert len(test) == 6 and sum(t.is_anomalous for t in test) == 3
    assert len(read_traces(tmp_path / "process" / "my" / "training_data.csv")) == 19
    source = tmp_path / "src" / "test_data.csv"
    source.parent.mkdir()
    source.write_text(TEST_CSV)
    result = script("data_processing/process_logs.py", "--csv", str(source), *base)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "process" / "src" / "test_data.csv").read_text() == TEST_CSV


def test_process_logs_script_bad_input_is_one_line(tmp_path, script):
    bad = tmp_path / "bad.csv"
    bad.write_text('trace,label,cause,evelabel\n"a , b",normal,,[0 0]\n"a , b , c",normal,,[0 0]\n')
    result = script(
        "data_processing/process_logs.py", "--csv", str(bad), "--data_dir", str(tmp_path)
    )
    assert_user_error(result, "row 2", "evelabel")
    bad.write_text("activity\nx\n")
    result = script(
        "data_processing/process_logs.py", "--csv", str(bad), "--data_dir", str(tmp_path)
    )
    assert_user_error(result, "trace", "activity")
    result = script("data_processing/process_logs.py", "--xes", str(tmp_path / "no.xes"))
    assert_user_error(result, "not found")
    result = script("data_processing/process_logs.py", "--n_train", "0")
    assert_user_error(result, "--n_train")


# --- the real SemAD data ---------------------------------------------------------------------------


@pytest.mark.integration
def test_real_semad_files_and_their_labelling():
    folder = SHARED_DATA / "semad"
    if not (folder / "training_data.csv").is_file():
        pytest.skip(f"{folder} is absent")
    train = read_traces(folder / "training_data.csv")
    test = read_traces(folder / "test_data.csv")
    assert len(train) == 12446 and not any(t.is_anomalous for t in train)
    assert len(test) == 6325 and sum(t.is_anomalous for t in test) == 3034
    for trace in train + test:
        assert len(trace.event_labels) == len(trace.events)
    for name, traces, raw in (("training_data", train, False), ("test_data", test, True)):
        text = (folder / f"{name}.csv").read_bytes()
        assert traces_to_csv(traces, raw).encode() == text
    sums = {kind: Counter() for kind in KINDS}
    for trace in test:
        if trace.is_anomalous:
            sums[trace.kind][sum(trace.event_labels)] += 1
    assert set(sums["SkipSequence"]) == {1} and set(sums["Rework"]) == {2, 3}
    assert set(sums["Insert"]) == {1, 2, 3}
    assert set(sums["Early"]) == set(sums["Late"]) == {2, 3, 4}
