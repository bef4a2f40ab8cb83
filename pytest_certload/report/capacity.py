"""Capacity searches in words and tables: what bounds an answer, how a rate is written,
and the measured capacity table of ``docs/operator/scale.md``.

:func:`render_table` renders, per capacity search a session ran (``--certload-capacity``),
one markdown row: scenario, contract rate, capacity, first failing rate (or where the
generator gave out, or the ceiling), why, and every step; then a caption line naming the
machine, the session's start and end, the target, the profile (``smoke (indicative)``),
PostgreSQL's settings when commits did not wait for the disk, and the pytest-certload
version. :func:`replace_table` puts it between :data:`START_MARKER` and
:data:`END_MARKER`. The command line is :mod:`.capacity_table`.

Reads a :class:`.SessionRecord`, never pytest objects; imports no pytest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..engine.capacity import CapacityResult, format_rate
from ..errors import ConfigError, RecordError
from ..record import SessionRecord
from .meta import capacity_steps_text, indicative

__all__ = [
    "END_MARKER",
    "HEADER",
    "START_MARKER",
    "CapacityRow",
    "capacity_rows",
    "caption",
    "render_table",
    "replace_table",
]

START_MARKER = "<!-- capacity-table:start -->"
END_MARKER = "<!-- capacity-table:end -->"
HEADER = ("Scenario", "Contract rate", "Capacity", "First fail", "Why", "Steps")
_TX_HINT = "add generator processes with --certload-tx"


@dataclass(frozen=True)
class CapacityRow:
    """One search as the table shows it (cells in :data:`HEADER`'s order)."""

    test: str
    scenario: str
    contract: str
    capacity: str
    first_fail: str
    why: str
    steps: str

    def cells(self) -> tuple[str, ...]:
        return (
            f"`{self.scenario}`",
            self.contract,
            self.capacity,
            self.first_fail,
            self.why,
            self.steps,
        )


def _row(test: str, found: CapacityResult) -> CapacityRow:
    cap = found.capacity
    kind, rate, reason = found.bound()
    if kind == "generator" and rate is not None:
        first = f"generator-bound at {format_rate(rate)}/s"
        why = f"{reason}; the server may hold more: {_TX_HINT}"
    elif kind == "fail" and rate is not None:
        first = f"{format_rate(rate)}/s"
        why = reason
    else:
        first = f"none up to {format_rate(max(s.rate for s in found.steps))}/s"
        why = reason or "no rate failed"
    return CapacityRow(
        test=test,
        scenario=found.scenario,
        contract=f"{format_rate(found.contract_rate)}/s",
        capacity=f"{format_rate(cap)}/s" if cap is not None else "none (the contract rate fails)",
        first_fail=first,
        why=why,
        steps=capacity_steps_text(found),
    )


def capacity_rows(session: SessionRecord) -> list[CapacityRow]:
    """One row per capacity search, in the order the session ran them."""
    return [
        _row(record.nodeid, found)
        for record in session.records
        for found in record.capacity
        if found.steps
    ]


def _machine_text(machine: Mapping[str, Any]) -> str:
    parts = [str(machine.get("hostname") or "unknown host")]
    if machine.get("cpus"):
        parts.append(f"{machine['cpus']} CPUs")
    if machine.get("platform"):
        parts.append(str(machine["platform"]))
    if machine.get("python"):
        parts.append(f"Python {machine['python']}")
    return ", ".join(parts)


def caption(session: SessionRecord) -> str:
    """Where, when and against what the table was measured, in one line."""
    when = session.started_at
    if session.finished_at:
        when += f" to {session.finished_at}"
    target = session.target_record.get("label") or "not recorded"
    profile = session.profile or "not recorded"
    if indicative(session.profile):
        profile += " (indicative)"
    database = ""
    if session.database is not None and session.database.not_durable:
        database = f"PostgreSQL with {', '.join(session.database.not_durable)} off; "
    text = (
        f"Measured on {_machine_text(session.machine)}; {when}; target: {target}; "
        f"profile {profile}; {database}pytest-certload {session.generator_version}."
    )
    if session.target_details.get("kind") == "double":
        text += " These are the certctl reference double's figures, not certctl's."
    return _cell(text)


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def render_table(session: SessionRecord, *, source: str = "the session") -> str:
    """The markdown table and its caption line; :class:`~.errors.RecordError` when the
    session ran no capacity search."""
    rows = capacity_rows(session)
    if not rows:
        raise RecordError(
            f"{source} ran no capacity search; run the tier with --certload-capacity, e.g. "
            "'pytest tests/load -m scale --certload-capacity' (see docs/operator/scale.md)."
        )
    names = [r.scenario for r in rows]
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        cells = list(row.cells())
        if names.count(row.scenario) > 1:  # the same scenario searched by several tests
            cells[0] += f" ({row.test})"
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join([*lines, "", caption(session)])


def replace_table(text: str, table: str, *, where: str) -> str:
    """``text`` with what lies between the markers replaced by ``table``."""
    starts = text.count(START_MARKER)
    ends = text.count(END_MARKER)
    if starts != 1 or ends != 1:
        raise ConfigError(
            f"{where} has {starts} {START_MARKER!r} and {ends} {END_MARKER!r} marker(s); it "
            "needs exactly one of each, on lines of their own, around the table to replace."
        )
    head, rest = text.split(START_MARKER)
    if END_MARKER not in rest:
        raise ConfigError(
            f"{where} has {END_MARKER!r} before {START_MARKER!r}; put the start marker first."
        )
    _, tail = rest.split(END_MARKER)
    return f"{head}{START_MARKER}\n{table}\n{END_MARKER}{tail}"
