"""Why a run went wrong, the same words wherever its verdict is shown.

:func:`diagnose` reads one :class:`~pytest_certload.engine.RunResult` and returns its
:class:`Diagnosis` list, in this order:

* ``failed-requests``, per scenario whose requests failed: the per-status breakdown
  (``429: 915 of 2,000; 500: 12``) and why (``RunResult.causes()``' lines: each
  status with its first body and what certctl means by it, transport errors);
* ``rate-limit``, per scenario certctl's API limiter answered (every 429 of its shape,
  whatever the method): the share and the ``CERTCTL_RATE_LIMIT_*`` settings to change;
* one per known certctl defect the run shows (:mod:`pytest_certload.certctl.defects`):
  the defect, certctl's file and function, the evidence, what to watch for.

The failure message of a test, the terminal table, ``report.html``, ``summary.json``
(``tests[].diagnoses``) and the junit properties (``certload.diagnosis.*``) all print
these. Imports no pytest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..certctl.defects import DOCS, match_defects
from ..certctl.ratelimit import LIMITER_SETTINGS, limiter_tally
from ..engine import RunResult
from ..engine.causes import breakdown_text
from ..metrics import CounterSink

__all__ = ["Diagnosis", "diagnose", "diagnosis_lines"]


@dataclass(frozen=True)
class Diagnosis:
    """One explanation of a run: ``kind`` (``failed-requests``, ``rate-limit`` or
    ``known-defect``), ``id`` (the kind, or the defect's id), the scenario, a one-line
    ``summary``, further ``details`` lines, the per-status breakdown ``statuses`` (status
    or ``no answer (KIND)`` -> count) out of ``requests``; for a known defect certctl's
    ``source`` and whether it ``excuses`` a failure (reported xfail)."""

    kind: str
    id: str
    scenario: str
    summary: str
    details: tuple[str, ...] = ()
    statuses: Mapping[str, int] = field(default_factory=dict)
    requests: int = 0
    source: str = ""
    excuses: bool | None = None

    def lines(self) -> list[str]:
        return [self.summary, *(f"  {line}" for line in self.details)]

    def breakdown(self) -> str:
        """``429: 915 of 2,000; 500: 12``."""
        return breakdown_text(self.statuses, self.requests)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "id": self.id,
            "scenario": self.scenario,
            "summary": self.summary,
            "details": list(self.details),
            "statuses": dict(self.statuses),
            "requests": self.requests,
        }
        if self.source:
            out["source"] = self.source
        if self.excuses is not None:
            out["excuses"] = self.excuses
        return out


def _requests(result: RunResult, scenario: str) -> int:
    sink = result.store.select("http_reqs", {"scenario": scenario})
    return int(sink.count) if isinstance(sink, CounterSink) else 0


def diagnose(result: RunResult) -> list[Diagnosis]:
    """Every diagnosis of ``result`` (see the module docstring); empty for a clean run."""
    out: list[Diagnosis] = []
    defects = match_defects(result)
    for name, sc in result.scenarios.items():
        errors = sc.request_errors
        if not errors.failed:
            continue
        requests = _requests(result, name)
        # a status every answer of which a known defect explains needs no other meaning
        explained = {
            status
            for m in defects
            if m.scenario == name
            for status, n in m.statuses.items()
            if n >= errors.statuses.get(status, 0)
        }
        out.append(
            Diagnosis(
                "failed-requests",
                "failed-requests",
                name,
                f"{name}: {errors.failed:,} of {requests:,} requests failed: "
                f"{errors.breakdown(requests)}",
                tuple(errors.lines(name, requests, explained=explained)),
                errors.by_status(),
                requests,
            )
        )
    for tally in limiter_tally(result):
        out.append(
            Diagnosis(
                "rate-limit",
                "rate-limit",
                tally.scenario,
                f"{tally.scenario}: certctl's API rate limiter (429, Retry-After: 1) "
                f"answered {tally.text()}",
                (f"the limiter's answers measure the limiter, not certctl. {LIMITER_SETTINGS}",),
                {"429": tally.limited},
                tally.responses,
            )
        )
    for match in defects:
        d = match.defect
        verdict = (
            "with --certload-known-defects xfail (the default) a failure that is this "
            "defect's is reported xfail"
            if d.excuses
            else "explained, not excused: the failure stands"
        )
        out.append(
            Diagnosis(
                "known-defect",
                d.id,
                match.scenario,
                f"known certctl defect {d.id}: {d.title} ({d.source}): {match.evidence()}",
                (d.description, f"watch for: {d.watch}", f"{verdict}; see {DOCS}"),
                {str(s): n for s, n in match.statuses.items()},
                match.of,
                d.source,
                d.excuses,
            )
        )
    return out


def diagnosis_lines(result: RunResult) -> list[str]:
    """Every diagnosis of ``result`` as readable lines (a summary, then its details
    indented); empty for a clean run."""
    return [line for d in diagnose(result) for line in d.lines()]
