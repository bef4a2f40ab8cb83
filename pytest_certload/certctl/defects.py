"""certctl's known defects, each recognised in a run's evidence by its signature.

A :class:`KnownDefect` has an id (``acme-finalize-500``), what it is, certctl's file and
function, what to watch for, and a signature: a pure function of a
:class:`~pytest_certload.engine.RunResult` (the responses it counted by route and
status, the first bodies of each unexpected status) that returns the evidence
(:class:`DefectMatch`) or ``None``. :data:`KNOWN_DEFECTS` is the registry.

Some defects make a test fail whatever the harness does (certctl's ACME finalize):
:func:`excusing` says when a run's failure is that defect's, and the plugin then
reports the test as ``xfail`` (``--certload-known-defects xfail``, the default). Others
only hide the real cause (certctl answers 500, not 404, for ids it does not have: the
ids sent are still wrong): they are explained wherever the verdict is, never excused.
Advice that changes a database is only ever given for a throwaway one, and says so.

Imports no pytest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.causes import known_answer
from ..metrics import CounterSink

if TYPE_CHECKING:
    from ..engine import RunResult

__all__ = [
    "DOCS",
    "KNOWN_DEFECTS",
    "MODES",
    "DefectMatch",
    "KnownDefect",
    "excusing",
    "match_defects",
    "shown",
]

#: what ``--certload-known-defects`` takes: a matching failure becomes xfail, or stays
MODES = ("xfail", "fail")
#: where users read about them
DOCS = "docs/known-defects.md"
#: a route name (a URL template or a URL) of ACME finalize
_FINALIZE = re.compile(r"/order/[^/]+/finalize$")
_THROWAWAY = (
    "Never change a database that holds certificates you care about to get past it: "
    "placeholder rows or disabled issuers belong only in a throwaway database created "
    "for the load test and dropped afterwards."
)


@dataclass(frozen=True)
class DefectMatch:
    """The evidence of a known defect in one scenario of a run: ``count`` responses of
    ``of`` (the requests of the route it concerns) showed it, by status; ``variant``
    says what the answers' bodies revealed of the cause (empty: nothing more)."""

    defect: KnownDefect
    scenario: str
    count: int
    of: int
    statuses: Mapping[int, int]
    what: str
    variant: str = ""

    def evidence(self) -> str:
        """``acme_enroll: 150 of 150 finalize requests answered 500``."""
        by_status = ", ".join(
            f"{n:,} answered {s}" for s, n in sorted(self.statuses.items(), key=lambda kv: -kv[1])
        )
        of = f" of {self.of:,}" if self.of else ""
        return f"{self.scenario}: {self.count:,}{of} {self.what}: {by_status}" + (
            f"; {self.variant}" if self.variant else ""
        )

    def reason(self) -> str:
        """One line for an xfail reason: the defect, certctl's file and function, the
        evidence and where to read more."""
        d = self.defect
        return f"known certctl defect {d.id}: {d.title} ({d.source}); {self.evidence()}; see {DOCS}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.defect.id,
            "scenario": self.scenario,
            "count": self.count,
            "of": self.of,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "variant": self.variant,
        }


@dataclass(frozen=True)
class KnownDefect:
    """One known certctl defect: what it is, where in certctl, what to watch for, and
    its signature. ``excuses``: a failure that is this defect's is reported xfail (the
    defect fails the test whatever the harness does); otherwise it is explained only."""

    id: str
    title: str
    source: str
    description: str
    watch: str
    signature: Callable[[KnownDefect, RunResult], list[DefectMatch]] = field(repr=False)
    excuses: bool = True

    def find(self, result: RunResult) -> list[DefectMatch]:
        """This defect's evidence in ``result``, one match per scenario that shows it."""
        return self.signature(self, result)


def _route_counts(result: RunResult, scenario: str, route: re.Pattern[str]) -> dict[int, int]:
    """Responses (status -> count) of ``scenario``'s requests whose name matches ``route``."""
    out: dict[int, int] = {}
    for tags, sink in result.store.series("http_reqs").items():
        t = dict(tags)
        if t.get("scenario") != scenario or not isinstance(sink, CounterSink):
            continue
        if not route.search(t.get("name", "")):
            continue
        status = int(t.get("status", "0") or 0)
        out[status] = out.get(status, 0) + int(sink.count)
    return out


def _finalize_variant(bodies: Mapping[int, str]) -> str:
    text = " ".join(body for status, body in bodies.items() if status >= 500)
    if "certificate_versions_fingerprint_sha256_key" in text:
        return (
            "the answer names the duplicate certificate fingerprint "
            "(certificate_versions_fingerprint_sha256_key)"
        )
    if "violates foreign key constraint" in text or "foreign key" in text.lower():
        return (
            "the answer names a foreign-key violation (the certificate row with empty "
            "owner, team and renewal-policy ids)"
        )
    return ""


def _finalize_signature(defect: KnownDefect, result: RunResult) -> list[DefectMatch]:
    found = []
    for name, sc in result.scenarios.items():
        counts = _route_counts(result, name, _FINALIZE)
        failed = {s: n for s, n in counts.items() if s >= 500}
        if not failed:
            continue
        found.append(
            DefectMatch(
                defect,
                name,
                sum(failed.values()),
                sum(n for s, n in counts.items() if s),
                failed,
                "finalize requests",
                _finalize_variant(sc.request_errors.bodies),
            )
        )
    return found


def _answer_signature(
    fragment: str, *, exclude: re.Pattern[str] | None = None
) -> Callable[[KnownDefect, RunResult], list[DefectMatch]]:
    """A signature for one of certctl's misleading 500s (:data:`KNOWN_ANSWERS` of the
    engine): the scenario's 500 body carries ``fragment``; responses to routes matching
    ``exclude`` are another defect's."""

    def signature(defect: KnownDefect, result: RunResult) -> list[DefectMatch]:
        found = []
        for name, sc in result.scenarios.items():
            body = sc.request_errors.bodies.get(500, "")
            count = sc.request_errors.statuses.get(500, 0)
            if not count or fragment not in body or known_answer(500, body) is None:
                continue
            if exclude is not None:
                count -= _route_counts(result, name, exclude).get(500, 0)
            if count <= 0:
                continue
            requests = result.store.select("http_reqs", {"scenario": name})
            of = int(requests.count) if isinstance(requests, CounterSink) else 0
            found.append(DefectMatch(defect, name, count, of, {500: count}, "requests"))
        return found

    return signature


def _meaning(status: int, body: str) -> str:
    answer = known_answer(status, body)
    if answer is None:  # pragma: no cover - the engine's table and this one agree
        raise AssertionError(f"no known answer for {status} {body!r}")
    return answer.meaning


KNOWN_DEFECTS: Mapping[str, KnownDefect] = {
    d.id: d
    for d in (
        KnownDefect(
            "acme-finalize-500",
            "certctl's ACME finalize answers 500 serverInternal",
            "internal/service/acme.go::FinalizeOrder",
            "FinalizeOrder picks the issuer at random among every enabled issuer "
            "(firstAvailableIssuer returns the first entry of a Go map), and only iss-local "
            "can sign offline; it inserts the managed certificate with empty owner_id, "
            "team_id and renewal_policy_id, NOT NULL foreign keys no row satisfies; past "
            "both, its certificate_versions insert has been seen to fail on the unique "
            "fingerprint (PostgreSQL: duplicate key value violates unique constraint "
            '"certificate_versions_fingerprint_sha256_key"). Each is answered 500 '
            "serverInternal 'ACME server error', and the order is left processing or "
            "invalid, where it counts toward the account's 5 concurrent orders (later "
            "new-orders then get 429 rateLimited).",
            "certctl's log for the finalize error, and PostgreSQL's log for 'violates "
            "foreign key constraint' or 'certificate_versions_fingerprint_sha256_key'. A "
            "certctl whose finalize is fixed answers 200 with a valid order: a test marked "
            'known_defects=["acme-finalize-500"] then fails as XPASS(strict); remove the '
            "mark. " + _THROWAWAY + " There, leaving only iss-local enabled and inserting "
            "owner, team and renewal-policy rows whose id is the empty string clears the "
            "foreign-key error, not the duplicate fingerprint.",
            _finalize_signature,
        ),
        KnownDefect(
            "unknown-agent-500",
            "certctl answers 500, not 404, for an agent id it does not have",
            "internal/repository/postgres/agent.go::scanAgent",
            _meaning(500, "Failed to record heartbeat"),
            "the agent ids the scenario sends: the failure stands, because they do not "
            "exist in this certctl; certctl answering 404 'Agent not found' would be the fix.",
            _answer_signature("Failed to record heartbeat"),
            excuses=False,
        ),
        KnownDefect(
            "acme-unknown-id-500",
            "certctl answers 500 serverInternal, not 404, for an ACME id it does not have",
            "internal/repository/postgres/profile.go::scanProfile",
            _meaning(500, "acme:error:serverInternal ACME server error"),
            "the ACME profile (certload_acme_profile) and certificate ids the scenario "
            "uses: the failure stands, because they do not exist in this certctl.",
            _answer_signature("acme:error:serverInternal", exclude=_FINALIZE),
            excuses=False,
        ),
    )
}


def match_defects(result: RunResult) -> list[DefectMatch]:
    """Every known defect's evidence in ``result``, registry order, scenario by scenario."""
    return [m for d in KNOWN_DEFECTS.values() for m in d.find(result)]


def _failed_requests(result: RunResult) -> int:
    return sum(
        sum(sc.request_errors.statuses.values()) + sc.request_errors.transport_failures
        for sc in result.scenarios.values()
    )


def _latency_breached(result: RunResult) -> bool:
    """A latency threshold that was judged and breached (one left unjudged for want of
    samples is a consequence of the failed requests, not a latency)."""
    return any(
        not r.ok and r.observed is not None and result.store.is_time(r.threshold.metric)
        for r in result.thresholds
    )


def excusing(results: Iterable[RunResult]) -> list[DefectMatch]:
    """The matches that make a test's failure a known defect's, or ``[]``.

    A failure is a defect's when, in some run of the test, a defect that ``excuses``
    shows, no latency threshold breached (a latency it did not cause stays a failure),
    the run was trustworthy and reached its target, and the defect's answers are at
    least half of the run's failed requests (so a few of them beside another cause do
    not hide it).
    """
    found: list[DefectMatch] = []
    for result in results:
        if _latency_breached(result) or not result.trustworthy:
            continue
        matches = [m for m in match_defects(result) if m.defect.excuses]
        failed = _failed_requests(result)
        if matches and 2 * sum(m.count for m in matches) >= failed:
            found += matches
    return found


def shown(results: Sequence[RunResult], defect_id: str) -> bool:
    """Whether any of ``results`` shows the defect ``defect_id``."""
    defect = KNOWN_DEFECTS[defect_id]
    return any(defect.find(result) for result in results)
