"""What a run is asked to do: scenarios, HTTP options and run options (frozen, picklable).

These are plain data: a :class:`Scenario` travels to ``--certload-tx`` workers by pickle,
so everything here but the iteration function itself is data.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..http import DEFAULT_BACKEND
from ..metrics import MetricType
from ..units import DurationLike, as_ns, format_offset
from .executors import ConstantArrivalRate, Executor, RampingArrivalRate
from .health import HealthLimits

if TYPE_CHECKING:
    from ..http import Client
    from .results import Progress
    from .vu import VU

__all__ = [
    "METRIC_KINDS",
    "HTTPOptions",
    "IterationFn",
    "RunOptions",
    "Scenario",
    "StopRequest",
    "check_scenarios",
]

IterationFn = Callable[["VU"], Awaitable[None]]
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
#: the kinds a scenario's custom metric may be declared as: kind -> (type, is a time trend)
METRIC_KINDS: Mapping[str, tuple[MetricType, bool]] = {
    "trend": (MetricType.TREND, False),
    "time": (MetricType.TREND, True),
    "counter": (MetricType.COUNTER, False),
    "rate": (MetricType.RATE, False),
    "gauge": (MetricType.GAUGE, False),
}


@dataclass(frozen=True)
class HTTPOptions:
    """How VUs talk HTTP: backend, TLS verification, HTTP/2, connection reuse, timeout.

    ``verify`` is True (system trust store), False, or a CA bundle path; the SSL
    contexts are made by the HTTP backends following :mod:`pytest_certload.http.tls`.
    """

    backend: str = DEFAULT_BACKEND
    verify: bool | str = True
    http2: bool = False
    fresh_connection: bool = False
    timeout: DurationLike = "60s"

    def factory(self) -> Callable[[], Client]:
        """A function making one client per VU."""
        from ..http import make_client

        return partial(
            make_client,
            self.backend,
            verify=self.verify,
            http2=self.http2,
            fresh_connection=self.fresh_connection,
            timeout_ns=as_ns(self.timeout, "HTTP timeout"),
        )


@dataclass(frozen=True)
class Scenario:
    """A k6 scenario: an async iteration function driven by an executor.

    ``metrics`` declares custom metrics the iteration records, name -> kind, where kind is
    ``time`` (a Trend of nanosecond durations), ``trend``, ``counter``, ``rate`` or
    ``gauge``. ``http`` overrides the run's HTTP options for this scenario (e.g.
    ``fresh_connection=True`` for handshake probes). ``expected_statuses`` are the
    statuses that do not count as failed requests (default 200-399).
    """

    name: str
    exec: IterationFn
    executor: Executor
    start_time: DurationLike = 0
    graceful_stop: DurationLike = "30s"
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, str] = field(default_factory=dict)
    http: HTTPOptions | None = None
    expected_statuses: Collection[int] | None = None
    #: samples of the scenario's first ``warmup`` are recorded apart and not judged
    warmup: DurationLike = 0

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ConfigError(
                f"{self.name!r} is not a valid scenario name; use letters, digits, '_', '-' "
                "or '.', e.g. 'issuance_acceptance'."
            )
        if not callable(self.exec):
            raise ConfigError(f"exec of scenario {self.name!r} is {self.exec!r}, not a function.")
        as_ns(self.start_time, f"start_time of scenario {self.name!r}", allow_zero=True)
        as_ns(self.graceful_stop, f"graceful_stop of scenario {self.name!r}", allow_zero=True)
        warmup = as_ns(self.warmup, f"warmup of scenario {self.name!r}", allow_zero=True)
        if warmup >= self.executor.duration_ns:
            raise ConfigError(
                f"the warmup {format_offset(warmup)} of scenario {self.name!r} is not "
                f"shorter than its duration ({format_offset(self.executor.duration_ns)}), so "
                "nothing would be judged; shorten the warm-up or run longer."
            )
        for metric, kind in self.metrics.items():
            if kind not in METRIC_KINDS:
                raise ConfigError(
                    f"{kind!r} is not a metric kind (custom metric {metric!r} of scenario "
                    f"{self.name!r}); use one of {', '.join(METRIC_KINDS)}."
                )

    @property
    def start_time_ns(self) -> int:
        return as_ns(self.start_time, "start_time", allow_zero=True)

    @property
    def warmup_ns(self) -> int:
        return as_ns(self.warmup, "warmup", allow_zero=True)

    @property
    def graceful_stop_ns(self) -> int:
        return as_ns(self.graceful_stop, "graceful_stop", allow_zero=True)

    @property
    def open_model(self) -> bool:
        return isinstance(self.executor, ConstantArrivalRate | RampingArrivalRate)

    @property
    def end_ns(self) -> int:
        """Latest end of this scenario from the run start: start, duration, graceful stop."""
        return self.start_time_ns + self.executor.duration_ns + self.graceful_stop_ns

    def with_duration(self, duration_ns: int) -> Scenario:
        """The same scenario with its executor's duration replaced (stages scaled)."""
        return replace(self, executor=self.executor.with_duration(duration_ns))


class StopRequest:
    """A request, from any thread, to end a run early (SIGTERM, a lost controller).

    The run stops within one timeline interval of :meth:`set`, as an abort does: what it
    measured so far is kept and judged, and ``RunResult.aborted`` gives the reason. A
    distributed run also tells its workers at once (:meth:`add_callback`).
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[str], None]] = []
        self.reason = ""

    def set(self, reason: str) -> None:
        """Ask for the stop (the first reason wins); callbacks run in this thread."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()
            for callback in list(self._callbacks):
                callback(reason)

    def is_set(self) -> bool:
        return self._event.is_set()

    def add_callback(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` when the stop is set (now, if it already is).

        It runs in the thread that calls :meth:`set`, possibly a signal handler, so it
        must only hand the news on (``queue.SimpleQueue.put`` is safe there). It may
        exceptionally run twice when added while another thread sets the stop.
        """
        self._callbacks.append(callback)
        if self._event.is_set():
            callback(self.reason)

    def remove_callback(self, callback: Callable[[str], None]) -> None:
        """Forget ``callback`` (nothing happens if it was not added)."""
        with contextlib.suppress(ValueError):
            self._callbacks.remove(callback)


@dataclass(frozen=True)
class RunOptions:
    """Everything about a run that is not a scenario or a threshold."""

    http: HTTPOptions = field(default_factory=HTTPOptions)
    health: HealthLimits = field(default_factory=HealthLimits)
    min_tail_samples: int = 1
    interval: DurationLike = "1s"
    teardown_timeout: DurationLike = "5s"
    progress: Callable[[Progress], None] | None = None
    progress_every: DurationLike = "10s"
    uvloop: bool = True
    #: ``(index, count)``: run only this worker's share of every scenario (multi-process
    #: runs): open-model iteration k when ``k % count == index``, closed-model VU i when
    #: ``i % count == index``, and a matching share of ``pre_allocated_vus``/``max_vus``
    shard: tuple[int, int] | None = None
    #: when set, the run ends early (not shipped to ``--certload-tx`` workers)
    stop: StopRequest | None = None
    #: run the hiccup meter (:mod:`.hiccups`): a real clock only
    hiccups: bool = True

    def __post_init__(self) -> None:
        # checked here, not when the thresholds are judged after the load
        n = self.min_tail_samples
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(
                f"{n!r} is not a valid min_tail_samples (RunOptions); use a whole number of "
                "samples, 1 or more, e.g. 5."
            )


def check_scenarios(scenarios: Sequence[Scenario], caller: str) -> None:
    """A run needs at least one scenario, and scenario names must be unique in it."""
    if not scenarios:
        raise ConfigError(f"{caller} needs at least one scenario.")
    names = [sc.name for sc in scenarios]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"scenario names must be unique; repeated: {', '.join(dupes)}.")
