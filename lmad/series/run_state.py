"""What a run log says about the work a run should do: one source of truth for every count.

:class:`RunState` resolves a log against a :class:`Plan` (the references, windows and self-reflection
the run is expected to produce) and gives every item one status:

- a reference is ``answered``, ``failed`` or ``missing`` (never asked);
- a window's analysis is ``answered`` only when its record was conditioned on the reference that is
  answered now (its ``reference_hash``); while that reference has failed the window is ``blocked``;
  a window asked under an older reference, or never asked, is ``missing``;
- a self-reflection is expected for every answered analysis that found anomalies (when the run
  double-checks), and is ``answered`` only for the analysis answered now (its ``analysis_hash``).

``main_cli.py`` uses it to decide what to ask and what to report, ``evaluation.py`` to choose the
answers it scores and to count what is missing; both print the same numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lmad.series.records import complete_legacy, record_key

STAGE_ORDER = ("reference", "analysis", "reflection")


@dataclass(frozen=True)
class Plan:
    """The work of a run: reference channels, analysis windows, and whether it self-reflects."""

    references: tuple[tuple[str, int], ...]
    windows: tuple[tuple[str, int, int], ...]
    double_check: bool = True

    @property
    def uses_references(self) -> bool:
        return bool(self.references)


@dataclass
class StageCount:
    """How many answers a stage should have, and where each one stands."""

    expected: int = 0
    answered: int = 0
    failed: int = 0
    blocked: int = 0
    missing: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class ItemState:
    """One reference, analysis or reflection: its status and the record that decides it."""

    status: str
    record: dict[str, Any] | None = None


@dataclass
class RunState:
    """Every planned item of a run with its status, from the records of its log."""

    plan: Plan
    references: dict[tuple[str, int], ItemState] = field(default_factory=dict)
    analyses: dict[tuple[str, int, int], ItemState] = field(default_factory=dict)
    reflections: dict[tuple[str, int, int], ItemState] = field(default_factory=dict)

    @classmethod
    def resolve(cls, records: list[dict[str, Any]], plan: Plan) -> RunState:
        state = cls(plan)
        by_key: dict[tuple, list[dict]] = {}
        for record in complete_legacy(records):
            by_key.setdefault(record_key(record), []).append(record)
        for series, channel in plan.references:
            state.references[(series, channel)] = _pick(
                by_key.get((series, None, channel, "reference"), []), lambda r: True
            )
        for series, window, channel in plan.windows:
            reference = state.reference_of(series, channel)
            if plan.uses_references and reference.status != "answered":
                blocked = reference.status == "failed"
                state.analyses[(series, window, channel)] = ItemState(
                    "blocked" if blocked else "missing"
                )
                continue
            wanted = reference.record["request_hash"] if plan.uses_references else None
            analysis = _pick(
                by_key.get((series, window, channel, "analysis"), []),
                lambda r, h=wanted: not plan.uses_references or r.get("reference_hash") == h,
            )
            state.analyses[(series, window, channel)] = analysis
            found = analysis.status == "answered" and analysis.record["answer"]["anomalies"]
            if found and plan.double_check:
                first = analysis.record.get("request_hash")
                state.reflections[(series, window, channel)] = _pick(
                    by_key.get((series, window, channel, "reflection"), []),
                    lambda r, h=first: r.get("analysis_hash") == h,
                )
        return state

    def reference_of(self, series: str, channel: int) -> ItemState:
        """The reference a window of ``(series, channel)`` needs (answered when none is used)."""
        if not self.plan.uses_references:
            return ItemState("answered", None)
        return self.references.get((series, channel), ItemState("missing"))

    def stage_items(self, stage: str) -> dict[tuple, ItemState]:
        return {"reference": self.references, "analysis": self.analyses}.get(
            stage, self.reflections
        )

    def counts(self) -> dict[str, StageCount]:
        """Per stage: expected, answered, failed, blocked, missing."""
        out = {}
        for stage in STAGE_ORDER:
            tally = Counter(item.status for item in self.stage_items(stage).values())
            out[stage] = StageCount(
                expected=sum(tally.values()),
                answered=tally["answered"],
                failed=tally["failed"],
                blocked=tally["blocked"],
                missing=tally["missing"],
            )
        return out

    def keys_with(self, stage: str, *statuses: str) -> list[tuple]:
        """Keys of ``stage`` whose status is one of ``statuses``, in plan order."""
        return [key for key, item in self.stage_items(stage).items() if item.status in statuses]

    @property
    def complete(self) -> bool:
        """Every expected answer is there (nothing failed, blocked or never asked)."""
        return all(c.answered == c.expected for c in self.counts().values())

    def problems(self) -> list[str]:
        """``series/window/channel stage`` of every failed or blocked item (``-``: a reference)."""
        out = []
        for stage in STAGE_ORDER:
            for key, item in self.stage_items(stage).items():
                if item.status in ("failed", "blocked"):
                    suffix = " (blocked)" if item.status == "blocked" else ""
                    out.append(f"{item_name(stage, key)} {stage}{suffix}")
        return out

    def incomplete_line(self) -> str | None:
        """One line for the top of a table from an incomplete run, or None when it is complete."""
        counts = self.counts()
        failed = {stage: c.failed for stage, c in counts.items() if c.failed}
        expected = sum(c.expected for c in counts.values())
        parts = []
        if failed:
            total = sum(failed.values())
            detail = ", ".join(f"{n} {stage}" for stage, n in failed.items())
            parts.append(f"{total} of {expected} answers failed ({detail})")
        blocked = counts["analysis"].blocked
        if blocked:
            parts.append(f"{_plural(blocked, 'window')} blocked by a failed reference")
        missing = counts["analysis"].missing
        if missing:
            parts.append(f"{_plural(missing, 'window')} never asked")
        for stage in ("reference", "reflection"):
            if counts[stage].missing:
                parts.append(f"{_plural(counts[stage].missing, stage)} never asked")
        if not parts:
            return None
        return "incomplete: " + ", ".join(parts)


def item_name(stage: str, key: tuple) -> str:
    """``series/window/channel`` of a key; a reference has ``-`` for its window."""
    if stage == "reference":
        series, channel = key
        return f"{series}/-/{channel}"
    return "/".join(str(part) for part in key)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _pick(records: list[dict[str, Any]], valid) -> ItemState:
    """The status of one item from its records (in log order) that ``valid`` accepts.

    The latest answered record wins; otherwise a failed attempt makes it ``failed``; blocked
    records and nothing at all leave it ``missing`` (blocked is decided by the reference).
    """
    usable = [r for r in records if valid(r)]
    answered = [r for r in usable if r["status"] == "answered"]
    if answered:
        return ItemState("answered", answered[-1])
    failed = [r for r in usable if r["status"] == "failed"]
    if failed:
        return ItemState("failed", failed[-1])
    return ItemState("missing")


@dataclass
class RunSummary:
    """What a run did: counts per stage after it (from the log), and what was new."""

    log_path: Path
    counts: dict[str, StageCount] = field(default_factory=dict)
    new: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    incomplete: str | None = None

    @property
    def complete(self) -> bool:
        return self.incomplete is None

    def lines(self) -> list[str]:
        """One line per stage: ``analysis: 6 of 7 answered (6 new, 0 already done), 1 failed``."""
        out = []
        for stage, c in self.counts.items():
            if not c.expected:
                continue
            new = self.new[stage]
            text = f"{stage}: {c.answered} of {c.expected} answered ({new} new, "
            text += f"{c.answered - new} already done)"
            for status in ("failed", "blocked", "missing"):
                if getattr(c, status):
                    text += f", {getattr(c, status)} {status}"
            out.append(text)
        return out
