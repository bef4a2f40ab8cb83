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
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..http import BACKENDS, DEFAULT_BACKEND, DEFAULT_HTTP_VERSION, check_http_version
from ..metrics import MetricType
from ..units import DurationLike, as_ns, format_offset, parse_duration_ns
from .executors import (
    K6_SCENARIO_KEYS,
    ConstantArrivalRate,
    Executor,
    RampingArrivalRate,
    executor_from_dict,
)
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
    "scenario_from_k6",
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
    """How VUs talk HTTP: backend, HTTP version, TLS verification, connection reuse,
    timeout.

    ``backend`` is ``"fast"`` (the default; unset, ``None``, means it) or ``"httpx"``.
    ``http_version`` is ``"auto"`` (the default: TLS ALPN offers ``h2`` and
    ``http/1.1`` and the server picks, as k6 does; plain ``http://`` is HTTP/1.1),
    ``"1.1"`` or ``"2"`` (HTTP/2 only: over TLS the server must pick ``h2``; on
    ``http://`` it is spoken with prior knowledge). ``http2=True`` is the older way to
    ask for HTTP/2: beside ``"auto"`` or ``"2"`` it changes nothing, beside ``"1.1"`` it
    is refused. ``verify`` is True (system trust store), False, or a CA bundle path; the
    SSL contexts are made by the HTTP backends following
    :mod:`pytest_certload.http.tls`. ``fresh_connection=True`` opens a new TCP (+TLS)
    connection for every request (k6's ``noConnectionReuse``). ``timeout`` bounds each
    whole request: a duration string (``"60s"``, ``"500ms"``) or integer **nanoseconds**
    (a bare ``int`` is nanoseconds, so ``timeout=30`` is refused as a likely slip for
    ``"30s"``; a request's own ``timeout=`` argument is in seconds, as in httpx).
    """

    backend: str | None = None
    verify: bool | str = True
    http2: bool = False
    fresh_connection: bool = False
    timeout: DurationLike = "60s"
    http_version: str = DEFAULT_HTTP_VERSION

    def __post_init__(self) -> None:
        if self.backend is not None and self.backend not in BACKENDS:
            raise ConfigError(
                f"{self.backend!r} is not an HTTP backend (HTTPOptions(backend=...)); use "
                f"one of {', '.join(repr(b) for b in BACKENDS)}, or leave it unset."
            )
        check_http_version(self.http_version, self.http2, "HTTPOptions")
        as_ns(self.timeout, "timeout of HTTPOptions")

    @property
    def effective_backend(self) -> str:
        """The backend the VUs use: ``backend``, else the default (``"fast"``)."""
        return self.backend if self.backend is not None else DEFAULT_BACKEND

    def factory(self) -> Callable[[], Client]:
        """A function making one client per VU."""
        from ..http import make_client

        return partial(
            make_client,
            self.effective_backend,
            verify=self.verify,
            fresh_connection=self.fresh_connection,
            timeout_ns=as_ns(self.timeout, "HTTP timeout"),
            http_version=self.http_version,
        )


@dataclass(frozen=True)
class Scenario:
    """A k6 scenario: an async iteration function driven by an executor.

    Every duration here (``start_time``, ``graceful_stop``, ``warmup``) is a string with a
    unit (``"5s"``, ``"250ms"``) or integer **nanoseconds**; a bare int under 1 ms is
    refused as a number of seconds written without its unit. ``start_time`` offsets the
    scenario from the run's start (k6's ``startTime``, default 0); in-flight iterations
    get ``graceful_stop`` after the executor's duration (k6's ``gracefulStop``, default
    ``"30s"``); samples of the first ``warmup`` are recorded apart and not judged
    (default 0). ``tags`` are added to every sample of the scenario.

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


#: a k6 scenario's own keys that have no equivalent here, and what to do instead
_K6_UNSUPPORTED = {
    "env": "k6's per-scenario environment variables have no equivalent here; bind the "
    "values to the iteration function with functools.partial(fn, values)",
    "options": "k6's per-scenario browser options have no equivalent here (no browser "
    "module); drop the key",
}


def scenario_from_k6(
    name: str,
    options: Mapping[str, Any],
    fn: IterationFn,
    *,
    source: str = "",
    metrics: Mapping[str, str] | None = None,
    http: HTTPOptions | None = None,
    expected_statuses: Collection[int] | None = None,
    warmup: DurationLike = 0,
) -> Scenario:
    """A :class:`Scenario` from a k6 scenario object as written in k6's
    ``options.scenarios`` (``name`` is its key there, ``fn`` the iteration function).

    The object holds the executor and its options (:func:`executor_from_dict`: k6's
    camelCase or our snake_case) and the scenario's own keys: ``startTime`` and
    ``gracefulStop`` (duration strings, ``"10s"``; k6's defaults ``0s`` and ``30s``),
    ``tags`` (string values) and ``exec`` (the name of k6's JavaScript function: kept for
    copy-paste and not used, ``fn`` is the function that runs). ``env`` and ``options``
    (k6 browser) have no equivalent and are refused, as is any other unknown key.
    ``source`` says where the object came from in error messages (e.g. a file name).
    """
    where = f" (at {source})" if source else ""
    if not isinstance(options, Mapping):
        raise ConfigError(
            f"the k6 scenario {name!r}{where} is {options!r}, not an object; give a mapping "
            "such as {'executor': 'constant-vus', 'vus': 10, 'duration': '30s'}."
        )
    for key, why in _K6_UNSUPPORTED.items():
        if key in options:
            raise ConfigError(f"{key!r} of the k6 scenario {name!r}{where}: {why}.")
    own = {k: options[k] for k in K6_SCENARIO_KEYS if k in options}
    executor = executor_from_dict(
        {k: v for k, v in options.items() if k not in own},
        source=f"the k6 scenario {name!r}" + (f" at {source}" if source else ""),
    )
    exec_name = own.get("exec", "default")
    if not isinstance(exec_name, str):
        raise ConfigError(
            f"exec of the k6 scenario {name!r}{where} is {exec_name!r}; in k6 it names a "
            "JavaScript function (a string). Here the function is the fn argument: pass "
            "the Python iteration function there and drop exec or keep it as a string."
        )
    tags = own.get("tags", {})
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise ConfigError(
            f"tags of the k6 scenario {name!r}{where} is {tags!r}; use a mapping of strings "
            "to strings, e.g. {'target_type': 'nginx'}."
        )
    for key in ("startTime", "gracefulStop"):
        if key in own:
            what = f"{key} of the k6 scenario {name!r}{where}"
            if isinstance(own[key], str):
                parse_duration_ns(own[key], what=what)
            else:
                as_ns(own[key], what, allow_zero=True)
    return Scenario(
        name,
        fn,
        executor,
        start_time=own.get("startTime", 0),
        graceful_stop=own.get("gracefulStop", "30s"),
        tags=dict(tags),
        metrics=dict(metrics or {}),
        http=http,
        expected_statuses=expected_statuses,
        warmup=warmup,
    )


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
    """Everything about a run that is not a scenario or a threshold.

    ``interval`` (timeline and per-interval records, default ``"1s"``), ``teardown_timeout``
    (``"5s"``) and ``progress_every`` (``"10s"``) are strings with a unit or integer
    nanoseconds. ``min_tail_samples`` is a count of samples.
    """

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
