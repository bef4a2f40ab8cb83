"""Virtual users and the recording HTTP client they hand to iteration functions."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import ConfigError, TransportError
from ..http import proto_tag
from ..metrics import MetricStore, MetricType, TagSet, tagset
from ..units import parse_duration_ns
from .causes import RequestErrors, error_text

if TYPE_CHECKING:
    from ..http import Client, Response
    from .clock import Clock
    from .timeline import Timeline

__all__ = ["VU", "FailedResponse", "RecordingClient", "ScenarioContext"]

#: more distinct ``name`` tags than this in one scenario fold into ``name=(other)``
MAX_NAMES_PER_SCENARIO = 100
DEFAULT_EXPECTED = range(200, 400)


class FailedResponse:
    """What a request that failed below HTTP returns to the iteration (status 0, like k6)."""

    status_code = 0
    http_version = ""
    content = b""
    text = ""

    def __init__(self, url: str, error: str, kind: str) -> None:
        self.url = url
        self.error = error
        self.error_kind = kind
        self.headers: dict[str, str] = {}
        self.timings = None

    def json(self) -> Any:
        raise ValueError(f"no response body: the request to {self.url} failed ({self.error})")

    def raise_for_status(self) -> None:
        raise TransportError(self.error, url=self.url, kind=self.error_kind)

    def __repr__(self) -> str:
        return f"<FailedResponse {self.url} {self.error_kind}: {self.error}>"


@dataclass
class ScenarioContext:
    """What every VU of one scenario shares: its name, tags, store and client factory."""

    name: str
    tags: dict[str, str]
    store: MetricStore
    client_factory: Callable[[], Client]
    open_model: bool
    clock: Clock
    timeline: Timeline | None = None
    expected_statuses: Collection[int] = DEFAULT_EXPECTED
    iterations_started: int = 0
    #: requests that got an HTTP answer, whatever its status (the unreachable rule)
    http_ok: int = 0
    iteration_errors: int = 0
    #: responses whose generator delay the client could not measure, and the first why
    delay_unmeasured: int = 0
    delay_unmeasured_why: str = ""

    def __post_init__(self) -> None:
        self._names: set[str] = set()
        self._tag_cache: dict[tuple[Any, ...], TagSet] = {}
        #: bounded sample of iteration exceptions (message -> count)
        self.error_samples: dict[str, int] = {}
        #: why requests failed: unexpected statuses and transport errors, bounded
        self.request_errors = RequestErrors()
        self.folded_names = 0

    @property
    def transport_failures(self) -> int:
        """Requests that failed below HTTP (any kind) so far."""
        return self.request_errors.transport_failures

    @property
    def first_transport_error(self) -> str:
        """``kind: text (to URL)`` of the first request that failed below HTTP, or ""."""
        first = self.request_errors.first_transport
        return first.describe() if first is not None else ""

    def request_tags(
        self,
        name: str,
        method: str,
        status: int,
        expected: bool,
        extra: Mapping[str, str] | None,
        proto: str = "",
    ) -> TagSet:
        """The tags of one request's samples, as k6 tags them: ``name``, ``method``,
        ``status``, ``expected_response`` and, when a response came, ``proto`` (the HTTP
        version actually spoken: ``HTTP/1.1`` or ``HTTP/2.0``)."""
        if name not in self._names:
            if len(self._names) >= MAX_NAMES_PER_SCENARIO:
                self.folded_names += 1
                name = "(other)"
            else:
                self._names.add(name)
        key = (
            name,
            method,
            status,
            expected,
            proto,
            tuple(sorted(extra.items())) if extra else None,
        )
        cached = self._tag_cache.get(key)
        if cached is None:
            tags = dict(self.tags)
            tags.update(
                name=name,
                method=method,
                status=str(status),
                expected_response="true" if expected else "false",
            )
            if proto:
                tags["proto"] = proto
            if extra:
                tags.update(extra)
            cached = self._tag_cache[key] = tagset(tags)
        return cached

    def note_unmeasured(self, why: str) -> None:
        """A response came without its generator delay (``why``: the client's reason)."""
        self.delay_unmeasured += 1
        if not self.delay_unmeasured_why:
            self.delay_unmeasured_why = why or "the HTTP client gave no kernel receive timestamp"

    def note_error(self, message: str) -> None:
        self.iteration_errors += 1
        if message in self.error_samples or len(self.error_samples) < 20:
            self.error_samples[message] = self.error_samples.get(message, 0) + 1


class RecordingClient:
    """An httpx-shaped client that records k6's HTTP metrics for every request.

    Beside k6's metrics it records ``http_req_service_time`` (from the actual send) and,
    where the client measured them from the kernel's receive timestamps (the fast
    backend on Linux), ``http_req_server_time`` and ``http_req_generator_delay`` (see
    :class:`~pytest_certload.http.Timings`); a response without them is counted on the
    scenario (its health then says the delay was not measured, and why), never
    estimated.

    Transport failures do not raise: they return a :class:`FailedResponse` (status 0) and
    count as failed requests, as in k6. ``name=`` sets the ``name`` tag (use a URL
    template such as ``/api/v1/agents/{id}/heartbeat``; it defaults to the URL without its
    query string); ``expected=`` lists the statuses that are not failures (default
    200-399); ``tags=`` adds tags to this request's samples. ``timeout=`` bounds this one
    request in **seconds** (a float, as in httpx; default: the scenario's
    ``HTTPOptions.timeout``, 60 s). Every recorded time is integer nanoseconds.
    """

    def __init__(self, vu: VU) -> None:
        self._vu = vu
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._vu.context.client_factory()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        expected: Collection[int] | None = None,
        **kwargs: Any,
    ) -> Response | FailedResponse:
        ctx = self._vu.context
        store = ctx.store
        method = method.upper()
        now = ctx.clock.now_ns
        t_send = now()
        response: Response | FailedResponse
        try:
            response = await self.client.request(method, url, **kwargs)
        except TransportError as exc:
            target = exc.url or url
            message = str(exc)
            response = FailedResponse(target, message, exc.kind)
            ctx.request_errors.add_transport(
                exc.kind, error_text(message, target, method, exc.kind), target
            )
        service = now() - t_send
        status = response.status_code
        ok_statuses = ctx.expected_statuses if expected is None else expected
        is_expected = status != 0 and status in ok_statuses
        if status:
            ctx.http_ok += 1
            if not is_expected:
                ctx.request_errors.add_status(status, response.content)
            if status == 429:  # every one, expected or not, whatever the method
                headers = response.headers
                ctx.request_errors.add_throttled(
                    headers.get("content-type") or "", headers.get("retry-after") or ""
                )
        label = name if name is not None else url.split("?", 1)[0]
        proto = proto_tag(getattr(response, "http_version", "")) if status else ""
        ts = ctx.request_tags(label, method, status, is_expected, tags, proto)
        lag = self._vu.current_lag_ns
        latency = service + lag
        store.add_counter("http_reqs", 1, ts)
        store.add_trend("http_req_duration", latency, ts)
        store.add_trend("http_req_service_time", service, ts)
        store.add_rate("http_req_failed", not is_expected, ts)
        timings = response.timings
        if timings is not None:
            for metric, value in (
                ("http_req_blocked", timings.blocked),
                ("http_req_connecting", timings.connecting),
                ("http_req_tls_handshaking", timings.tls_handshaking),
                ("http_req_sending", timings.sending),
                ("http_req_waiting", timings.waiting),
                ("http_req_receiving", timings.receiving),
            ):
                if value is not None:
                    store.add_trend(metric, value, ts)
            if timings.duration is not None:
                # what k6 calls http_req_duration: sending + waiting + receiving, without
                # blocked, connecting and TLS time (grafana/k6 #2692) nor schedule lag
                store.add_trend("k6_http_req_duration", timings.duration, ts)
            # the server's part and our own delay, where the kernel stamped the bytes
            delay = timings.generator_delay
            if delay is not None:
                store.add_trend("http_req_generator_delay", delay, ts)
                server = timings.server_time
                if server is not None:
                    store.add_trend("http_req_server_time", server, ts)
            else:
                ctx.note_unmeasured(timings.delay_unmeasured)
        if response.content:
            store.add_counter("data_received", len(response.content), ts)
        if ctx.timeline is not None:
            ctx.timeline.record_request(latency, not is_expected)
        return response

    async def batch(
        self, requests: Iterable[tuple[str, str] | tuple[str, str, Mapping[str, Any]]]
    ) -> list[Response | FailedResponse]:
        """Send ``requests`` all at once and return their responses in order (k6's
        ``http.batch``). Each item is ``(method, url)`` or ``(method, url, kwargs)``,
        ``kwargs`` being :meth:`request`'s keyword arguments (``name=``, ``json=``,
        ``headers=``, ...); each request is recorded as if sent alone.

        Over HTTP/2 they are concurrent streams on the VU's one connection (as many at
        once as the server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` allows; the rest wait,
        in ``http_req_blocked``). Over HTTP/1.1 every request in flight needs a
        connection of its own, so the client opens more (k6 caps them with
        ``batchPerHost``; here the batch's size is the cap).
        """
        items: list[tuple[str, str, Mapping[str, Any]]] = []
        for item in requests:
            if (
                not isinstance(item, tuple)
                or len(item) not in (2, 3)
                or not all(isinstance(part, str) for part in item[:2])
                or (len(item) == 3 and not isinstance(item[2], Mapping))
            ):
                raise ConfigError(
                    f"{item!r} is not a request for vu.http.batch; give (method, url) or "
                    "(method, url, {keyword arguments}), e.g. ('GET', url, {'name': '/x'})."
                )
            items.append((item[0], item[1], item[2] if len(item) == 3 else {}))
        responses: list[Response | FailedResponse | None] = [None] * len(items)

        async def one(index: int, method: str, url: str, kwargs: Mapping[str, Any]) -> None:
            responses[index] = await self.request(method, url, **kwargs)

        async with anyio.create_task_group() as tg:
            for index, (method, url, kwargs) in enumerate(items):
                tg.start_soon(one, index, method, url, kwargs)
        return [r for r in responses if r is not None]

    async def get(self, url: str, **kwargs: Any) -> Response | FailedResponse:
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> Response | FailedResponse:
        return await self.request("HEAD", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Response | FailedResponse:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> Response | FailedResponse:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> Response | FailedResponse:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> Response | FailedResponse:
        return await self.request("DELETE", url, **kwargs)


class VU:
    """One virtual user: the argument of a scenario's iteration function.

    Attributes: ``id`` (unique in the run, from 1), ``id_in_scenario`` (from 1),
    ``iteration`` (this VU's iteration count, from 0), ``scenario`` (its name),
    ``http`` (a :class:`RecordingClient` with its own connection), ``state`` (a dict the
    iteration function may keep things in across iterations).
    """

    def __init__(self, context: ScenarioContext, vu_id: int, id_in_scenario: int) -> None:
        self.context = context
        self.id = vu_id
        self.id_in_scenario = id_in_scenario
        self.iteration = 0
        self.state: dict[str, Any] = {}
        self.http = RecordingClient(self)
        self.current_lag_ns = 0
        self.intended_start_ns: int | None = None

    @property
    def scenario(self) -> str:
        return self.context.name

    @property
    def tags(self) -> dict[str, str]:
        return self.context.tags

    def _tags(self, extra: Mapping[str, str] | None) -> TagSet:
        if not extra:
            return tagset(self.context.tags)
        merged = dict(self.context.tags)
        merged.update(extra)
        return tagset(merged)

    async def sleep(self, duration: float | str) -> None:
        """Pause this VU (k6's ``sleep``) on the run's clock: a number is **seconds**, as
        in k6 (``await vu.sleep(1)``, ``vu.sleep(0.25)``), or a duration string
        (``"250ms"``)."""
        if isinstance(duration, str):
            ns = parse_duration_ns(duration, what="sleep duration")
        else:
            ns = round(duration * 1e9)
        await self.context.clock.sleep(ns)

    def check(self, name: str, ok: bool, tags: Mapping[str, str] | None = None) -> bool:
        """Record a k6-style check (Rate ``checks`` tagged ``check:<name>``); returns ``ok``."""
        extra = dict(tags or {})
        extra["check"] = name
        self.context.store.add_rate("checks", bool(ok), self._tags(extra))
        return bool(ok)

    def _declared(self, name: str, mtype: MetricType, time: bool = False) -> MetricStore:
        store = self.context.store
        if store.type_of(name) is None:
            store.declare(name, mtype, time=time)
        return store

    def counter(self, name: str, value: float = 1, tags: Mapping[str, str] | None = None) -> None:
        """Add to a Counter (declared on first use if the scenario did not declare it)."""
        self._declared(name, MetricType.COUNTER).add_counter(name, value, self._tags(tags))

    def rate(self, name: str, ok: bool, tags: Mapping[str, str] | None = None) -> None:
        """Record one sample of a Rate (share of true samples)."""
        self._declared(name, MetricType.RATE).add_rate(name, ok, self._tags(tags))

    def trend(self, name: str, value_ns: int, tags: Mapping[str, str] | None = None) -> None:
        """Record a duration in integer nanoseconds into a time Trend."""
        self._declared(name, MetricType.TREND, True).add_trend(name, value_ns, self._tags(tags))

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        """Set a Gauge's current value."""
        self._declared(name, MetricType.GAUGE).set_gauge(name, value, self._tags(tags))
