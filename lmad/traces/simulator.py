"""Hand-written business processes as small process trees, played out into normal traces.

The grammar has five node kinds, each a frozen dataclass: :class:`Activity` (a leaf),
:class:`Sequence` (children in order; no children = a silent step), :class:`Choice` (exactly one
child, optionally weighted), :class:`Parallel` (every child, their events interleaved at random)
and :class:`Loop` (the body once, then up to ``max_repeats - 1`` more times, each repetition
preceded by the optional ``redo`` part). The helpers :func:`seq`, :func:`xor`, :func:`par`,
:func:`loop` and :func:`opt` accept plain strings for activities.

:data:`MODELS` holds twelve processes whose activity names carry meaning (order to cash, purchase
to pay, claim handling, loan application, hiring, ...); no activity name occurs in two processes.
:func:`accepts` decides whether a trace is a valid play-out of a model, which the anomaly injection
uses to make sure an injected trace is really outside the model's language.
"""

from __future__ import annotations

from collections import abc
from dataclasses import dataclass, field

import numpy as np

from lmad.traces.log_io import SEPARATOR, Trace


@dataclass(frozen=True)
class Activity:
    """One step of a process, recorded as one event."""

    name: str


@dataclass(frozen=True)
class Sequence:
    """Children executed one after the other; an empty sequence is a silent (invisible) step."""

    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Choice:
    """Exactly one child is executed (exclusive choice), with optional relative weights."""

    children: tuple[Node, ...]
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Parallel:
    """Every child is executed; their events interleave (each child keeps its own order)."""

    children: tuple[Node, ...]


@dataclass(frozen=True)
class Loop:
    """``body`` once, then with probability ``p_repeat`` again (``redo`` first), at most
    ``max_repeats`` executions of ``body`` in total."""

    body: Node
    redo: Node | None = None
    max_repeats: int = 3
    p_repeat: float = 0.3


Node = Activity | Sequence | Choice | Parallel | Loop


def _node(item: Node | str) -> Node:
    return Activity(item) if isinstance(item, str) else item


def seq(*items: Node | str) -> Sequence:
    """A sequence of activities or sub-trees."""
    return Sequence(tuple(_node(item) for item in items))


def xor(*items: Node | str, weights: abc.Sequence[float] | None = None) -> Choice:
    """An exclusive choice between the items."""
    return Choice(tuple(_node(item) for item in items), None if weights is None else tuple(weights))


def par(*items: Node | str) -> Parallel:
    """Items executed in parallel (interleaved)."""
    return Parallel(tuple(_node(item) for item in items))


def loop(body: Node | str, redo: Node | str | None = None, max_repeats: int = 3, p: float = 0.3):
    """A bounded loop over ``body``."""
    return Loop(_node(body), None if redo is None else _node(redo), max_repeats, p)


def opt(item: Node | str, p: float = 0.3) -> Choice:
    """``item`` with probability ``p``, else nothing."""
    return Choice((_node(item), Sequence()), (p, 1.0 - p))


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-trees of ``node``."""
    if isinstance(node, Sequence | Choice | Parallel):
        return node.children
    if isinstance(node, Loop):
        return (node.body,) if node.redo is None else (node.body, node.redo)
    return ()


@dataclass
class ProcessModel:
    """A named process tree; the constructor checks that the tree is well formed."""

    name: str
    tree: Node
    description: str = ""
    _alphabets: dict[int, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check(self.tree)
        if _min_length(self.tree) < 1:
            raise ValueError(f"model {self.name}: every play-out must have at least one event")

    @property
    def alphabet(self) -> frozenset[str]:
        """Every activity name of the model."""
        return self.alphabet_of(self.tree)

    def alphabet_of(self, node: Node) -> frozenset[str]:
        """Every activity name inside ``node`` (cached per node object)."""
        key = id(node)
        if key not in self._alphabets:
            if isinstance(node, Activity):
                names = frozenset([node.name])
            else:
                names = frozenset().union(*(self.alphabet_of(c) for c in children(node)))
            self._alphabets[key] = names
        return self._alphabets[key]

    def _check(self, node: Node) -> None:
        where = f"model {self.name}"
        if isinstance(node, Activity):
            name = node.name
            if not name.strip() or SEPARATOR in name or name.endswith(" ,"):
                raise ValueError(f"{where}: activity {name!r} cannot be written as a trace event")
            return
        if isinstance(node, Choice):
            if len(node.children) < 2:
                raise ValueError(f"{where}: a choice needs at least two branches")
            if node.weights is not None and (
                len(node.weights) != len(node.children) or min(node.weights) < 0
            ):
                raise ValueError(f"{where}: choice weights must be one non-negative per branch")
        if isinstance(node, Parallel):
            seen: set[str] = set()
            for child in node.children:
                names = self.alphabet_of(child)
                if seen & names:
                    raise ValueError(f"{where}: parallel branches share {sorted(seen & names)}")
                seen |= names
        if isinstance(node, Loop) and (node.max_repeats < 1 or not 0 <= node.p_repeat < 1):
            raise ValueError(f"{where}: a loop needs max_repeats >= 1 and 0 <= p_repeat < 1")
        for child in children(node):
            self._check(child)


def _min_length(node: Node) -> int:
    if isinstance(node, Activity):
        return 1
    if isinstance(node, Choice):
        return min(_min_length(c) for c in node.children)
    if isinstance(node, Loop):
        return _min_length(node.body)
    return sum(_min_length(c) for c in children(node))


def play_out(model: ProcessModel | Node, rng: np.random.Generator) -> list[str]:
    """One random normal trace of ``model``: a list of activity names."""
    out: list[str] = []
    _play(model.tree if isinstance(model, ProcessModel) else model, rng, out)
    return out


def _play(node: Node, rng: np.random.Generator, out: list[str]) -> None:
    if isinstance(node, Activity):
        out.append(node.name)
    elif isinstance(node, Sequence):
        for child in node.children:
            _play(child, rng, out)
    elif isinstance(node, Choice):
        weights = np.asarray(node.weights or [1.0] * len(node.children), dtype=float)
        _play(node.children[int(rng.choice(len(weights), p=weights / weights.sum()))], rng, out)
    elif isinstance(node, Parallel):
        parts = [play_out(child, rng)[::-1] for child in node.children]
        while any(parts):
            sizes = np.array([len(part) for part in parts], dtype=float)
            out.append(parts[int(rng.choice(len(parts), p=sizes / sizes.sum()))].pop())
    elif isinstance(node, Loop):
        _play(node.body, rng, out)
        done = 1
        while done < node.max_repeats and rng.random() < node.p_repeat:
            if node.redo is not None:
                _play(node.redo, rng, out)
            _play(node.body, rng, out)
            done += 1


def accepts(model: ProcessModel, events: abc.Sequence[str]) -> bool:
    """Whether ``events`` is a play-out of ``model`` (parallel branches complete, loops bounded)."""
    events = tuple(events)
    return len(events) in _ends(model, model.tree, events, 0, {})


def _ends(model: ProcessModel, node: Node, events: tuple, start: int, memo: dict) -> set[int]:
    """Every ``end`` such that ``events[start:end]`` is a play-out of ``node``."""
    key = (id(node), start)
    if key in memo:
        return memo[key]
    if isinstance(node, Activity):
        result = {start + 1} if start < len(events) and events[start] == node.name else set()
    elif isinstance(node, Sequence):
        result = {start}
        for child in node.children:
            result = set().union(*(_ends(model, child, events, p, memo) for p in result))
    elif isinstance(node, Choice):
        result = set().union(*(_ends(model, c, events, start, memo) for c in node.children))
    elif isinstance(node, Loop):
        frontier = _ends(model, node.body, events, start, memo)
        result = set(frontier)
        for _ in range(node.max_repeats - 1):
            if node.redo is not None:
                frontier = set().union(
                    *(_ends(model, node.redo, events, p, memo) for p in frontier)
                )
            frontier = set().union(*(_ends(model, node.body, events, p, memo) for p in frontier))
            result |= frontier
    else:  # Parallel: branches have disjoint alphabets, so each branch sees its own projection
        result = set()
        alphabets = [model.alphabet_of(child) for child in node.children]
        union = frozenset().union(*alphabets)
        end = start
        while True:
            segment = events[start:end]
            if all(
                len(part) in _ends(model, child, part, 0, {})
                for child, names in zip(node.children, alphabets)
                for part in [tuple(e for e in segment if e in names)]
            ):
                result.add(end)
            if end >= len(events) or events[end] not in union:
                break
            end += 1
    memo[key] = result
    return result


def exclusive_choices(model: ProcessModel) -> list[Choice]:
    """Choices outside every loop whose branches have disjoint, non-empty activity sets.

    Executing two branches of such a choice in one trace is never a valid play-out (an Exclusive
    anomaly); inside a loop different iterations may legitimately take different branches.
    """
    found: list[Choice] = []

    def walk(node: Node, in_loop: bool) -> None:
        if isinstance(node, Choice) and not in_loop:
            alphabets = [model.alphabet_of(child) for child in node.children]
            sizes = sum(len(names) for names in alphabets)
            if len([a for a in alphabets if a]) >= 2 and sizes == len(
                frozenset().union(*alphabets)
            ):
                found.append(node)
        for child in children(node):
            walk(child, in_loop or isinstance(node, Loop))

    walk(model.tree, False)
    return found


def simulate(models: abc.Sequence[ProcessModel], n_traces: int, seed: int) -> list[Trace]:
    """``n_traces`` normal traces, each of a model drawn uniformly from ``models``."""
    if not models:
        raise ValueError("simulate needs at least one process model")
    rng = np.random.default_rng(seed)
    traces = []
    for _ in range(n_traces):
        model = models[int(rng.integers(len(models)))]
        traces.append(Trace(play_out(model, rng)))
    return traces


def find_model(
    events: abc.Sequence[str], models: abc.Iterable[ProcessModel]
) -> ProcessModel | None:
    """The first model that accepts ``events``, or None."""
    return next((model for model in models if accepts(model, events)), None)


# fmt: off
MODELS: list[ProcessModel] = [
    ProcessModel("order_to_cash", seq(
        "receive sales order", "check customer credit",
        xor(seq("confirm sales order",
                par(seq("pick goods from warehouse", "pack goods, attach delivery note"),
                    "create customer invoice"),
                "ship goods to customer", loop("send payment reminder", max_repeats=3, p=0.2),
                "receive customer payment"),
            seq("reject sales order", "inform customer about rejection"), weights=(0.85, 0.15)),
        "close sales order")),
    ProcessModel("purchase_to_pay", seq(
        "create purchase requisition", "approve purchase requisition", "select supplier",
        "send purchase order", par("receive ordered goods", "receive supplier invoice"),
        "match invoice with purchase order",
        xor("approve invoice for payment",
            seq("dispute invoice with supplier", "receive corrected invoice"), weights=(0.8, 0.2)),
        "pay supplier", "archive purchase documents")),
    ProcessModel("claim_handling", seq(
        "register insurance claim", "check policy coverage",
        xor(seq(par("assess damage on site", "check claim history"),
                opt(loop("request missing documents", max_repeats=2)),
                "calculate compensation", "pay compensation"),
            seq("reject claim", "send rejection letter"), weights=(0.75, 0.25)),
        "close claim")),
    ProcessModel("loan_application", seq(
        "submit loan application",
        loop("check application completeness", redo="request missing information", p=0.25),
        par("check credit score", "appraise collateral"), "assess loan eligibility",
        xor(seq("prepare loan offer", "send loan offer to applicant",
                "receive signed loan contract", "disburse loan amount"),
            seq("decline loan application", "notify applicant of decision")),
        "archive loan file")),
    ProcessModel("hiring", seq(
        "publish job posting", "collect applications", "screen CVs",
        loop("interview candidate", max_repeats=3, p=0.4),
        xor(seq("make job offer",
                xor(seq("candidate accepts offer", "sign employment contract",
                        par("prepare workplace", "create IT accounts"), "welcome new employee"),
                    "candidate declines offer", weights=(0.8, 0.2))),
            "send rejections to candidates", weights=(0.7, 0.3)),
        "close job posting")),
    ProcessModel("emergency_care", seq(
        "register patient at emergency desk", "triage patient",
        par("take blood sample", opt("perform x-ray", p=0.5), "measure vital signs"),
        "examine patient",
        xor(seq("admit patient to ward", "assign ward bed"),
            seq("write prescription", "discharge patient")),
        "update patient record")),
    ProcessModel("incident_management", seq(
        "log incident ticket", "classify incident",
        xor("resolve at first level",
            seq("escalate to second level", "investigate root cause",
                loop("implement fix", redo="reopen after failed test", p=0.3))),
        "confirm resolution with user", "close incident ticket")),
    ProcessModel("travel_expenses", seq(
        "submit expense report", "attach receipts", "check expense policy",
        xor("approve expense report", seq("return report for correction", "resubmit report"),
            weights=(0.8, 0.2)),
        "reimburse employee", "book expenses in ledger")),
    ProcessModel("software_release", seq(
        "create release branch",
        par("run unit tests", "run integration tests", "update release notes"),
        "review release candidate", opt(loop("fix release blocker", max_repeats=2)),
        xor(seq("deploy to production", "announce release"), "postpone release"))),
    ProcessModel("customer_return", seq(
        "receive return request", "issue return label", "receive returned parcel",
        "inspect goods, count items",
        xor("refund customer", "send replacement item",
            seq("reject return", "send goods back to customer")),
        "close return case")),
    ProcessModel("building_permit", seq(
        "submit permit application", "check application documents",
        par("review zoning rules", "review fire safety", "notify neighbours"),
        xor(seq("grant building permit", "collect permit fee"),
            seq("refuse building permit", opt("file appeal against refusal", p=0.4))),
        "archive permit file")),
    ProcessModel("hotel_booking", seq(
        "search available rooms", "reserve room", "enter guest details",
        xor("pay by credit card", "pay by bank transfer"), "send booking confirmation",
        opt("modify booking"),
        xor(seq("check in guest", "check out guest", "settle final bill"), "cancel booking",
            weights=(0.85, 0.15)))),
]
# fmt: on
"""The built-in processes; :func:`lmad.traces.inject.simulated_dataset` trains on the first ones
and tests mostly on the last ones (unseen in training)."""
