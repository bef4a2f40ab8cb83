"""Generator health: could the load generator deliver the load it was asked for?

A threshold verdict is only worth something if the generator kept its schedule. After a
run each scenario is judged against :class:`HealthLimits`; any problem makes the run
*untrustworthy*, which is reported apart from (and before) server-side breaches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError
from ..units import format_ms, parse_duration_ns

__all__ = ["HEALTH_GRAMMAR", "HealthLimits", "ScenarioHealth"]

HEALTH_GRAMMAR = (
    "comma-separated key=value pairs from rate=<0..1>, dropped=<0..1>, "
    "lag_p99=<duration>, delay_p99=<duration>, errors=<0..1>, hiccup=<duration>, "
    "e.g. 'rate=0.95,lag_p99=50ms'"
)


@dataclass(frozen=True)
class HealthLimits:
    """Tolerances of the health verdict (all configurable).

    * ``min_rate_ratio``: open model; iterations started / iterations scheduled must be
      at least this (default 0.95).
    * ``max_dropped_ratio``: open model; dropped iterations (no free VU within
      ``max_vus``) / scheduled must not exceed this (default 0.001).
    * ``max_lag_p99_ns``: open model; p99 of schedule lag (actual minus intended start)
      must not exceed this (default 50 ms).
    * ``max_delay_p99_ns``: both models; p99 of the generator delay (how long responses
      waited for our own event loop after the kernel had them,
      ``http_req_generator_delay``) must not exceed this (default 50 ms, as the schedule
      lag: a delay this size is already most of a p99 latency contract of a few hundred
      ms, and an idle generator shows well under 1 ms). Judged only where the client
      measured it (the fast backend on Linux).
    * ``max_iteration_error_ratio``: iterations whose function raised / started must not
      exceed this (default 0.01).
    * ``unreachable_failures`` and ``unreachable_after_ns``: a scenario that got no HTTP
      answer at all, but at least this many requests that failed below HTTP (any
      transport-error kind: connect, tls, timeout, reset, protocol), this long after its
      start, finds its target unreachable; the run is stopped (default 10 failures and
      2 s).
    * ``max_hiccup_ns``: the longest the generator's event loop may be late (the hiccup
      meter) in an interval before that interval's figures are the generator's rather
      than the server's; a breach that falls only in such intervals makes the run
      untrustworthy instead of failed (default 50 ms).
    """

    min_rate_ratio: float = 0.95
    max_dropped_ratio: float = 0.001
    max_lag_p99_ns: int = 50_000_000
    max_delay_p99_ns: int = 50_000_000
    max_iteration_error_ratio: float = 0.01
    unreachable_failures: int = 10
    unreachable_after_ns: int = 2_000_000_000
    max_hiccup_ns: int = 50_000_000

    def spec(self) -> str:
        """These limits in :meth:`parse`'s grammar (the six that grammar names)."""
        return (
            f"rate={self.min_rate_ratio:g},dropped={self.max_dropped_ratio:g},"
            f"lag_p99={self.max_lag_p99_ns / 1e6:g}ms,"
            f"delay_p99={self.max_delay_p99_ns / 1e6:g}ms,"
            f"errors={self.max_iteration_error_ratio:g},hiccup={self.max_hiccup_ns / 1e6:g}ms"
        )

    def unreachable(self, *, answered: int, failures: int, elapsed_ns: int) -> bool:
        """Whether a scenario with these HTTP tallies so far finds its target unreachable:
        ``answered`` requests got an HTTP answer, ``failures`` failed below HTTP."""
        return (
            answered == 0
            and failures >= self.unreachable_failures
            and elapsed_ns >= self.unreachable_after_ns
        )

    @classmethod
    def parse(cls, spec: str, *, source: str = "") -> HealthLimits:
        """Parse ``"rate=0.95,dropped=0.001,lag_p99=50ms,delay_p99=50ms,errors=0.01,
        hiccup=50ms"`` (any subset)."""
        where = f" (from {source})" if source else ""
        grammar = HEALTH_GRAMMAR
        values: dict[str, Any] = {}
        keys = {
            "rate": "min_rate_ratio",
            "dropped": "max_dropped_ratio",
            "lag_p99": "max_lag_p99_ns",
            "delay_p99": "max_delay_p99_ns",
            "errors": "max_iteration_error_ratio",
            "hiccup": "max_hiccup_ns",
        }
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, raw = part.partition("=")
            key = key.strip()
            if not sep or key not in keys:
                raise ConfigError(f"{part!r} is not a valid health limit{where}; use {grammar}.")
            if key in ("lag_p99", "delay_p99", "hiccup"):
                values[keys[key]] = parse_duration_ns(raw.strip(), what=key, source=source)
                continue
            try:
                number = float(raw)
            except ValueError:
                number = -1.0
            if not 0 <= number <= 1:
                raise ConfigError(
                    f"{raw.strip()!r} is not a valid value for {key}{where}; "
                    f"use a fraction between 0 and 1; {grammar}."
                )
            values[keys[key]] = number
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthLimits:
        fields = dict(data)
        if "unreachable_connect_errors" in fields:  # run files written before the rename
            fields.setdefault("unreachable_failures", fields.pop("unreachable_connect_errors"))
        return cls(**fields)


@dataclass
class ScenarioHealth:
    """The generator's figures for one scenario and what was wrong with them."""

    scenario: str
    open_model: bool
    scheduled: int
    started: int
    dropped: int
    interrupted: int
    lag_p99_ns: int | None
    iteration_errors: int
    target_rate: float | None
    achieved_rate: float | None
    unreachable: str = ""
    #: p99 of ``http_req_generator_delay`` (None where no response had it measured)
    delay_p99_ns: int | None = None
    #: responses whose generator delay was not measured, and the first reason why
    delay_unmeasured: int = 0
    delay_unmeasured_why: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def trustworthy(self) -> bool:
        return not self.problems

    @property
    def delay_note(self) -> str:
        """ "" when every response's generator delay was measured, else what was not and
        why: ``generator delay not measured: <why>`` (for none of them) or ``generator
        delay not measured for 12 responses: <why>`` (for some)."""
        if not self.delay_unmeasured:
            return ""
        some = "" if self.delay_p99_ns is None else f" for {self.delay_unmeasured:,} responses"
        return f"generator delay not measured{some}: {self.delay_unmeasured_why}"

    def judge(self, limits: HealthLimits) -> None:
        self.problems.clear()
        if self.unreachable:
            # reported on its own by the caller: no request ever got an HTTP answer
            return
        if self.open_model and self.scheduled:
            ratio = self.started / self.scheduled
            if ratio < limits.min_rate_ratio:
                self.problems.append(
                    f"started {self.started:,} of {self.scheduled:,} scheduled iterations "
                    f"({ratio:.1%}; at least {limits.min_rate_ratio:.1%} required): achieved "
                    f"{self.achieved_rate or 0:.1f}/s of {self.target_rate or 0:.1f}/s"
                )
            dropped_ratio = self.dropped / self.scheduled
            if dropped_ratio > limits.max_dropped_ratio:
                self.problems.append(
                    f"{self.dropped:,} dropped iterations ({dropped_ratio:.2%} of scheduled; "
                    f"at most {limits.max_dropped_ratio:.2%} allowed): every VU up to max_vus "
                    "was busy; raise max_vus"
                )
            if self.lag_p99_ns is not None and self.lag_p99_ns > limits.max_lag_p99_ns:
                self.problems.append(
                    f"schedule lag p99 {self.lag_p99_ns / 1e6:.1f} ms (at most "
                    f"{limits.max_lag_p99_ns / 1e6:g} ms allowed): the generator could not "
                    "start iterations on time (CPU-bound? try the fast backend, fewer "
                    "scenarios per process, or --certload-tx)"
                )
        if self.delay_p99_ns is not None and self.delay_p99_ns > limits.max_delay_p99_ns:
            self.problems.append(
                f"generator delay p99 {format_ms(self.delay_p99_ns)} (at most "
                f"{limits.max_delay_p99_ns / 1e6:g} ms allowed): responses waited in the "
                "kernel for the event loop; fewer VUs per process, less CPU per iteration, "
                "or --certload-tx"
            )
        if self.started:
            err_ratio = self.iteration_errors / self.started
            if err_ratio > limits.max_iteration_error_ratio:
                self.problems.append(
                    f"{self.iteration_errors:,} of {self.started:,} iterations raised "
                    f"({err_ratio:.1%}; at most {limits.max_iteration_error_ratio:.1%} allowed)"
                )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["trustworthy"] = self.trustworthy
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioHealth:
        fields = dict(data)
        fields.pop("trustworthy", None)  # derived from problems
        fields["problems"] = list(fields.get("problems", ()))
        return cls(**fields)
