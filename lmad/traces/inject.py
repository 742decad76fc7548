"""Anomaly injection of the six SemAD kinds, with per-event labels and a cause sentence.

Every injected trace gets ``label="anomalous"``, ``raw_cause`` = the kind and ``cause`` = a
sentence worded like SemAD's test data. The labelling follows what SemAD's ``test_data.csv``
does (checked on all 3,034 anomalous rows; each function says what it mirrors):

- Insert: 1-3 foreign activities at random positions; each inserted event is labelled.
- SkipSequence: 1-3 consecutive events dropped, never at the end; only the event right after
  the gap is labelled.
- Rework: a block of 2-3 consecutive events repeated later; the repeated copy is labelled.
- Early / Late: a block of 1-3 events moved earlier / later; the moved block and the event that
  followed it before the move are labelled.
- Exclusive: a second branch of an exclusive choice executed as well; the first occurrence of
  every activity of both branches is labelled.

When the trace's process model is known (:data:`lmad.traces.simulator.MODELS`), an injection
is retried until the result is *not* a valid play-out of the model, so that every anomaly is real.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence

import numpy as np

from lmad.errors import DataError
from lmad.traces.log_io import KINDS, Trace
from lmad.traces.simulator import (
    MODELS,
    ProcessModel,
    accepts,
    exclusive_choices,
    find_model,
    play_out,
    simulate,
)

log = logging.getLogger(__name__)

UNRELATED_ACTIVITIES: tuple[str, ...] = (
    "water the office plants", "renew parking permit", "order printer toner",
    "update intranet newsletter", "calibrate laboratory scale", "feed the aquarium fish",
    "repaint meeting room", "translate user manual", "schedule fire drill",
    "defrost staff fridge", "assemble bicycle", "tune piano", "plan team offsite",
    "replace light bulbs", "photocopy the applications", "vote in board election",
)  # fmt: skip
"""Activities of no process at all; Insert draws from these and from other processes."""

Change = tuple[list[str], list[int], str]
"""What one injection returns: new events, their 0/1 labels, the cause sentence."""


class InjectionError(ValueError):
    """The anomaly kind cannot be applied to this trace (too short, no eligible choice, ...)."""


def quote(names: Sequence[str]) -> str:
    """SemAD's list of names: ``'a'``, ``'a' and 'b'``, ``'a','b' and 'c'``."""
    quoted = [f"'{name}'" for name in names]
    return quoted[0] if len(quoted) == 1 else ",".join(quoted[:-1]) + " and " + quoted[-1]


def _named(names: Sequence[str]) -> str:
    """``The activity 'a'`` or ``The activities 'a' and 'b'``."""
    return f"The {'activity' if len(names) == 1 else 'activities'} {quote(names)}"


def _subject(names: Sequence[str]) -> str:
    return f"{_named(names)} {'is' if len(names) == 1 else 'are'}"


def _int(rng: np.random.Generator, low: int, high: int) -> int:
    """A uniform integer in [low, high] (both included)."""
    return int(rng.integers(low, high + 1))


def insert_events(events: Sequence[str], rng: np.random.Generator, pool: Sequence[str]) -> Change:
    """Insert 1-3 distinct activities from ``pool`` at random positions; label each inserted one.

    Mirrors SemAD: "The activities 'x' and 'y' should not be executed." (names in trace order).
    """
    candidates = sorted(set(pool) - set(events))
    if not candidates:
        raise InjectionError("no activity left to insert")
    chosen = rng.choice(candidates, size=_int(rng, 1, min(3, len(candidates))), replace=False)
    out, labels = list(events), [0] * len(events)
    for name in chosen:
        position = _int(rng, 0, len(out))
        out.insert(position, str(name))
        labels.insert(position, 1)
    inserted = [e for e, label in zip(out, labels) if label]
    return out, labels, f"{_named(inserted)} should not be executed."


def skip_sequence(events: Sequence[str], rng: np.random.Generator) -> Change:
    """Drop 1-3 consecutive events; label only the event right after the gap.

    Mirrors SemAD: exactly one label per trace, on the activity named in "... are skipped
    before 'y'."; the gap may be at the start but is always followed by an event.
    """
    if len(events) < 2:
        raise InjectionError("SkipSequence needs at least two events")
    size = _int(rng, 1, min(3, len(events) - 1))
    start = _int(rng, 0, len(events) - size - 1)
    out = list(events[:start]) + list(events[start + size :])
    labels = [0] * len(out)
    labels[start] = 1
    skipped = list(events[start : start + size])
    return out, labels, f"{_subject(skipped)} skipped before '{out[start]}'."


def rework(events: Sequence[str], rng: np.random.Generator) -> Change:
    """Repeat a block of 2-3 consecutive events later in the trace; label the repeated copy.

    Mirrors SemAD: the copy (2 or 3 events; SemAD never reworks a single one, a one-event trace
    is the only case with a block of 1 here) starts right after the block or later, and the
    sentence names the event just before the copy: "... are reworked after 'c'." (SemAD's own
    sentences for two-event blocks end in a stray backslash, ``'c\\.``; ours do not).
    """
    size = 1 if len(events) == 1 else _int(rng, 2, min(3, len(events)))
    start = _int(rng, 0, len(events) - size)
    block = list(events[start : start + size])
    position = _int(rng, start + size, len(events))
    out = list(events[:position]) + block + list(events[position:])
    labels = [0] * position + [1] * size + [0] * (len(events) - position)
    return out, labels, f"{_subject(block)} reworked after '{out[position - 1]}'."


def _block(events: Sequence[str], rng: np.random.Generator, first: int) -> tuple[int, int]:
    """A block [start, start + size) of 1-3 events with start >= first and a follower."""
    if len(events) < first + 2:
        raise InjectionError("the trace is too short to move events")
    size = _int(rng, 1, min(3, len(events) - first - 1))
    return _int(rng, first, len(events) - size - 1), size


def early(events: Sequence[str], rng: np.random.Generator) -> Change:
    """Move a block of 1-3 events earlier; label the block and the event that followed it.

    Mirrors SemAD: labels = the moved events + one more, the event that came right after the
    block before the move (it now follows the gap); the sentence names the block's former
    predecessor: "... are executed too early, they should be executed after 'a'."
    """
    start, size = _block(events, rng, 1)
    target = _int(rng, 0, start - 1)
    block = list(events[start : start + size])
    out = list(events[:target]) + block + list(events[target:start]) + list(events[start + size :])
    labels = [0] * len(out)
    for index in [*range(target, target + size), start + size]:
        labels[index] = 1
    pronoun = "it" if size == 1 else "they"
    anchor = events[start - 1]
    sentence = (
        f"{_subject(block)} executed too early, {pronoun} should be executed after '{anchor}'."
    )
    return out, labels, sentence


def late(events: Sequence[str], rng: np.random.Generator) -> Change:
    """Move a block of 1-3 events later; label the block and the event that followed it.

    Mirrors SemAD: labels = the moved events + the event that came right after the block before
    the move (it now stands where the block was), which the sentence names: "... are executed
    too late, they should be executed before 'f'."
    """
    start, size = _block(events, rng, 0)
    after = _int(rng, start + size, len(events) - 1)  # the block goes right after this event
    block = list(events[start : start + size])
    rest = list(events[:start]) + list(events[start + size : after + 1])
    out = rest + block + list(events[after + 1 :])
    labels = [0] * len(out)
    for index in [start, *range(len(rest), len(rest) + size)]:
        labels[index] = 1
    pronoun = "it" if size == 1 else "they"
    follower = events[start + size]
    sentence = (
        f"{_subject(block)} executed too late, {pronoun} should be executed before '{follower}'."
    )
    return out, labels, sentence


def exclusive(events: Sequence[str], rng: np.random.Generator, model: ProcessModel) -> Change:
    """Execute a second branch of an exclusive choice the trace already took; label both sides.

    The other branch is played out and placed right before or after the taken branch's events.
    Mirrors SemAD: the first occurrence of every activity named in the sentence is labelled, on
    both sides: "The activity 'x' is mutually exclusive with the activities 'y' and 'z', meaning
    they should not be executed within the same process instance." (inserted branch first).
    """
    options = []
    for choice in exclusive_choices(model):
        alphabets = [model.alphabet_of(child) for child in choice.children]
        taken = [i for i, names in enumerate(alphabets) if names & set(events)]
        if len(taken) == 1:
            others = [i for i, names in enumerate(alphabets) if names and i != taken[0]]
            options.extend((choice, taken[0], other) for other in others)
    if not options:
        raise InjectionError("the trace took no exclusive choice with another non-empty branch")
    choice, taken, other = options[int(rng.integers(len(options)))]
    names = model.alphabet_of(choice.children[taken])
    positions = [i for i, event in enumerate(events) if event in names]
    extra = play_out(choice.children[other], rng)
    at = positions[-1] + 1 if rng.random() < 0.5 else positions[0]
    out = list(events[:at]) + extra + list(events[at:])
    is_new = [False] * at + [True] * len(extra) + [False] * (len(events) - at)
    labels, seen = [0] * len(out), set()
    for index, event in enumerate(out):
        if (is_new[index] or event in names) and event not in seen:
            labels[index] = 1
            seen.add(event)
    new_names = list(dict.fromkeys(extra))
    old_names = list(dict.fromkeys(e for e in events if e in names))
    noun = "activity" if len(old_names) == 1 else "activities"
    sentence = (
        f"{_subject(new_names)} mutually exclusive with the {noun} {quote(old_names)}, "
        "meaning they should not be executed within the same process instance."
    )
    return out, labels, sentence


def inject(
    trace: Trace,
    kind: str,
    rng: np.random.Generator,
    models: Iterable[ProcessModel] = MODELS,
    *,
    pool: Sequence[str] | None = None,
    normal_variants: Collection[tuple[str, ...]] | None = None,
    max_tries: int = 20,
) -> Trace:
    """An anomalous copy of the normal ``trace`` with one anomaly of ``kind`` (see :data:`KINDS`).

    The trace's model is the first of ``models`` that accepts it; when there is one, results that
    are still valid play-outs are retried (up to ``max_tries``); so are results found in
    ``normal_variants``. Insert draws from ``pool`` (default: the activities of the other models
    and :data:`UNRELATED_ACTIVITIES`). Exclusive needs a model. Raises :class:`InjectionError`
    when the kind does not apply.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown anomaly kind {kind!r}; choose from {', '.join(KINDS)}")
    if trace.is_anomalous:
        raise InjectionError("inject into normal traces only")
    models = list(models)
    model = find_model(trace.events, models)
    if pool is None:
        names = set(UNRELATED_ACTIVITIES).union(*(m.alphabet for m in models))
        pool = sorted(names - (model.alphabet if model else set()))
    if kind == "Exclusive" and model is None:
        raise InjectionError("Exclusive needs the trace's process model")
    makers: dict[str, Callable[[], Change]] = {
        "Insert": lambda: insert_events(trace.events, rng, pool),
        "SkipSequence": lambda: skip_sequence(trace.events, rng),
        "Rework": lambda: rework(trace.events, rng),
        "Early": lambda: early(trace.events, rng),
        "Late": lambda: late(trace.events, rng),
        "Exclusive": lambda: exclusive(trace.events, rng, model),
    }
    for _ in range(max_tries):
        events, labels, sentence = makers[kind]()
        if model is not None and accepts(model, events):
            continue
        if normal_variants is not None and tuple(events) in normal_variants:
            continue
        return Trace(events, "anomalous", sentence, labels, kind)
    raise InjectionError(f"every {kind} change of this trace was still a normal trace")


def inject_anomalies(
    traces: Sequence[Trace],
    ratio: float,
    rng: np.random.Generator,
    models: Iterable[ProcessModel] = MODELS,
    kinds: Sequence[str] = KINDS,
    **options,
) -> list[Trace]:
    """A copy of ``traces`` where ``round(ratio * len)`` traces are replaced by anomalous ones.

    Each chosen trace gets a kind drawn uniformly from ``kinds``; when that kind does not apply,
    the other kinds are tried in random order, then another trace. ``options`` go to
    :func:`inject`. Test and eval files are written in this order (no further shuffling).
    """
    if not 0 <= ratio <= 1:
        raise DataError(f"anomaly ratio {ratio} must be between 0 and 1")
    models, out = list(models), list(traces)
    wanted, done = round(ratio * len(out)), 0
    for index in rng.permutation(len(out)):
        if done == wanted:
            break
        for kind in rng.permutation(list(kinds)):
            try:
                out[index] = inject(out[index], str(kind), rng, models, **options)
            except InjectionError:
                continue
            done += 1
            break
    if done < wanted:
        log.warning("only %d of %d traces could be made anomalous", done, wanted)
    return out


def simulated_dataset(
    n_train: int,
    n_test: int,
    n_eval: int,
    anomaly_ratio: float,
    seed: int,
    n_unseen: int,
    models: Sequence[ProcessModel] = MODELS,
    unseen_share: float = 0.75,
) -> dict[str, list[Trace]]:
    """Training, test and eval traces simulated from ``models``, shaped like SemAD's data.

    The last ``n_unseen`` models never appear in training. Training: normal traces of the seen
    models. Test: ``unseen_share`` of the traces from unseen models, the rest from seen ones.
    Eval: seen models only. Test and eval carry ``anomaly_ratio`` anomalous traces.
    """
    if not 0 < n_unseen < len(models):
        raise DataError(f"n_unseen must be between 1 and {len(models) - 1}, got {n_unseen}")
    seen, unseen = list(models[:-n_unseen]), list(models[-n_unseen:])
    seeds = np.random.SeedSequence(seed).spawn(6)
    rng = [np.random.default_rng(s) for s in seeds]
    n_new = round(unseen_share * n_test)
    test = simulate(unseen, n_new, int(rng[0].integers(2**31))) + simulate(
        seen, n_test - n_new, int(rng[1].integers(2**31))
    )
    test = [test[i] for i in rng[2].permutation(len(test))]
    evaluation = simulate(seen, n_eval, int(rng[3].integers(2**31)))
    return {
        "training_data": simulate(seen, n_train, seed),
        "test_data": inject_anomalies(test, anomaly_ratio, rng[4], models),
        "eval_data": inject_anomalies(evaluation, anomaly_ratio, rng[5], models),
    }


def log_dataset(
    traces: Sequence[Trace],
    inject_ratio: float | None,
    seed: int,
    holdout: float,
) -> dict[str, list[Trace]]:
    """Split an imported log into training (normal traces) and, when needed, test and eval.

    Without ``inject_ratio`` and without anomalous traces in the log, every trace goes to
    training. Otherwise ``holdout`` of the normal traces goes to test and as many to eval, with
    ``inject_ratio`` of them made anomalous (never into an existing normal variant; no Exclusive,
    which needs a process model), and the log's own anomalous traces are split between the two.
    """
    normal = [t for t in traces if not t.is_anomalous]
    labelled = [t for t in traces if t.is_anomalous]
    if not normal:
        raise DataError("the log has no normal traces to train on")
    if inject_ratio is None and not labelled:
        return {"training_data": normal}
    rng = np.random.default_rng(seed)
    normal = [normal[i] for i in rng.permutation(len(normal))]
    hold = round(holdout * len(normal))
    if hold < 1 or len(normal) - 2 * hold < 1:
        raise DataError(f"{len(normal)} normal traces are too few to hold out {holdout:.0%} twice")
    test, evaluation, train = normal[:hold], normal[hold : 2 * hold], normal[2 * hold :]
    if inject_ratio is not None:
        variants = {tuple(t.events) for t in normal}
        alphabet = {e for t in traces for e in t.events}
        pool = sorted(set(UNRELATED_ACTIVITIES).union(*(m.alphabet for m in MODELS)) - alphabet)
        options = {"normal_variants": variants, "pool": pool}
        test = inject_anomalies(test, inject_ratio, rng, (), **options)
        evaluation = inject_anomalies(evaluation, inject_ratio, rng, (), **options)
    half = (len(labelled) + 1) // 2
    test, evaluation = test + labelled[:half], evaluation + labelled[half:]
    test = [test[i] for i in rng.permutation(len(test))]
    evaluation = [evaluation[i] for i in rng.permutation(len(evaluation))]
    return {"training_data": train, "test_data": test, "eval_data": evaluation}


def describe(traces: Sequence[Trace]) -> dict:
    """Rows, anomalous share and anomaly kinds of a list of traces."""
    anomalous = [t for t in traces if t.is_anomalous]
    return {
        "rows": len(traces),
        "anomalous": len(anomalous),
        "share": len(anomalous) / len(traces) if traces else 0.0,
        "kinds": dict(Counter(t.kind or "unknown" for t in anomalous).most_common()),
    }
