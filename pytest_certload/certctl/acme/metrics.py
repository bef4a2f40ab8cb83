"""How enrollments are recorded on a VU and explained when they fail.

Imports no pytest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .models import ENROLL_STEPS, Enrollment
from .problems import POOL_EXHAUSTED, AcmeProblem

__all__ = ["EnrollmentMetrics"]


class _VULike(Protocol):
    current_lag_ns: int

    def trend(self, name: str, value_ns: int, tags: Mapping[str, str] | None = None) -> None: ...

    def rate(self, name: str, ok: bool, tags: Mapping[str, str] | None = None) -> None: ...

    def counter(
        self, name: str, value: float = 1, tags: Mapping[str, str] | None = None
    ) -> None: ...


@dataclass
class EnrollmentMetrics:
    """The custom metrics of an enrollment scenario and how one enrollment is recorded.

    * ``acme_<step>_duration`` (time Trends): the step's own time, from its first request
      to its last answer (a nonce fetch or a badNonce retry it needed included);
    * ``acme_enroll_duration``: the whole enrollment **from its intended start** (the
      schedule lag added, as ``http_req_duration`` does), recorded for successes only;
    * ``acme_enroll_ok`` (Rate): enrollments that got a certificate and an ARI window;
    * ``acme_problems`` (Counter) tagged ``step``, ``status`` and ``problem`` (the
      problem type's last segment): one series per problem type.

    :meth:`record` also remembers the first detail of each (step, status, type) so a
    failing test can say what the server answered (:meth:`explain`).
    """

    prefix: str = "acme"
    details: dict[tuple[str, int, str], str] = field(default_factory=dict)

    def trend_name(self, step: str) -> str:
        return f"{self.prefix}_{step}_duration"

    @property
    def ok_name(self) -> str:
        return f"{self.prefix}_enroll_ok"

    @property
    def problems_name(self) -> str:
        return f"{self.prefix}_problems"

    @property
    def total_name(self) -> str:
        return f"{self.prefix}_enroll_duration"

    @property
    def metrics(self) -> dict[str, str]:
        """Name -> kind, for ``Scenario(metrics=...)``."""
        out = {self.trend_name(step): "time" for step in ENROLL_STEPS}
        out[self.total_name] = "time"
        out[self.ok_name] = "rate"
        out[self.problems_name] = "counter"
        return out

    def record(self, vu: _VULike, enrollment: Enrollment) -> None:
        for step, ns in enrollment.timings.items():
            vu.trend(self.trend_name(step), ns)
        vu.rate(self.ok_name, enrollment.ok)
        if enrollment.problem is None:
            vu.trend(self.total_name, enrollment.total_ns + vu.current_lag_ns)
        else:
            self.record_problem(vu, enrollment.problem)

    def record_problem(self, vu: _VULike, problem: AcmeProblem) -> None:
        key = (problem.step, problem.status, problem.type)
        if key not in self.details and len(self.details) < 50:
            self.details[key] = str(problem)
        tags = {"step": problem.step, "status": str(problem.status), "problem": problem.short_type}
        vu.counter(self.problems_name, 1, tags)

    def tally(self, store: Any) -> list[tuple[int, str, int, str]]:
        """(count, step, status, problem) per series of the problems Counter, in the order
        of the enrollment's steps (a refused lease, usually a consequence, last)."""
        rows: list[tuple[int, str, int, str]] = []
        series = store.series(self.problems_name) if self.problems_name in store.names() else {}
        for tags, sink in series.items():
            t = dict(tags)
            status = t.get("status", "0")
            rows.append(
                (
                    int(sink.count),
                    t.get("step", "?"),
                    int(status) if status.isdigit() else 0,
                    t.get("problem", "?"),
                )
            )
        order = {step: i for i, step in enumerate((*ENROLL_STEPS, "lease"))}
        rows.sort(key=lambda r: (order.get(r[1], len(order)), -r[0]))
        return rows

    def _detail(self, step: str, status: int, short: str) -> str:
        for (s, st, ty), detail in self.details.items():
            if s == step and st == status and ty.rsplit(":", 1)[-1] == short:
                return detail
        return ""

    def explain(self, store: Any) -> str:
        """A message naming every failing step with its status, problem type and count
        (empty when no enrollment failed)."""
        rows = self.tally(store)
        if not rows:
            return ""
        ok = store.select(self.ok_name, {}) if self.ok_name in store.names() else None
        total = getattr(ok, "total", 0)
        of = f" of {total:,} enrollments" if total else ""
        lines = ["ACME enrollments failed:"]
        for count, step, status, short in rows:
            detail = self._detail(step, status, short)
            lines.append(
                f"  - {count:,}{of} at step {step}: HTTP {status}, {short}"
                + (f" -- {detail}" if detail else "")
            )
        if any(r[1] == "finalize" and r[2] >= 500 for r in rows):
            lines.append(
                "  finalize answered 5xx: the known certctl defect acme-finalize-500 "
                "(internal/service/acme.go::FinalizeOrder); the diagnoses below and "
                "docs/known-defects.md say what it is and what to watch for."
            )
        if any(r[3] == POOL_EXHAUSTED.rsplit(":", 1)[-1] for r in rows):
            lines.append(
                "  accountPoolExhausted: every account had 5 orders outstanding or no order "
                "token left; orders of failed enrollments stay ready/processing and count "
                "toward certctl's concurrent-order cap, so this usually follows another problem."
            )
        return "\n".join(lines)
