"""Why requests failed: bounded error samples, their merge, ``RunResult.causes()`` and the
unreachable rule for every transport-error kind (virtual clock, fake clients)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from pytest_certload.engine import (
    VU,
    ConstantArrivalRate,
    HTTPOptions,
    RunOptions,
    RunResult,
    Scenario,
    VirtualClock,
    merge_results,
    run,
)
from pytest_certload.engine.causes import MAX_BODY_BYTES, RequestErrors, error_text
from pytest_certload.engine.health import HealthLimits
from pytest_certload.engine.vu import ScenarioContext
from pytest_certload.errors import TransportError
from pytest_certload.metrics import MetricStore, declare_builtins

S = 1_000_000_000
MS = 1_000_000
URL = "https://sut.invalid:8443/api/v1/certificates"
TLS_TEXT = (
    "TLS handshake with sut.invalid:8443 failed: [SSL: CERTIFICATE_VERIFY_FAILED] "
    "certificate verify failed: self-signed certificate in certificate chain (_ssl.c:1006)"
)


class Answer:
    """A response as the backends give it: status, body, no timings."""

    timings = None

    def __init__(self, status: int, content: bytes) -> None:
        self.status_code = status
        self.content = content


class ScriptedClient:
    """Answers from a script: an ``Answer`` or a ``TransportError`` per request, in turn."""

    def __init__(self, clock: VirtualClock, script: Sequence[Answer | TransportError]) -> None:
        self.clock = clock
        self.script = list(script)
        self.sent = 0

    async def request(self, method: str, url: str, **kwargs: Any) -> Answer:
        await self.clock.sleep(MS)
        step = self.script[self.sent % len(self.script)]
        self.sent += 1
        if isinstance(step, TransportError):
            raise step
        return step

    async def aclose(self) -> None:
        return None


def _context(clock: VirtualClock, client: ScriptedClient) -> ScenarioContext:
    store = MetricStore()
    declare_builtins(store)
    return ScenarioContext(
        name="issuance",
        tags={"scenario": "issuance"},
        store=store,
        client_factory=lambda: client,  # type: ignore[arg-type, return-value]
        open_model=True,
        clock=clock,
    )


def _requests(ctx: ScenarioContext, n: int) -> None:
    vu = VU(ctx, 1, 1)

    async def main() -> None:
        clock = ctx.clock
        assert isinstance(clock, VirtualClock)
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run)
            try:
                for _ in range(n):
                    await vu.http.post(URL, name="/api/v1/certificates")
            finally:
                clock.stop()

    anyio.run(main)


def _tls_error(url: str = URL) -> TransportError:
    return TransportError(f"{TLS_TEXT} ({url})", url=url, kind="tls")


# -- what the recording client keeps -------------------------------------------------------


def test_unexpected_statuses_are_counted_with_the_first_body_only() -> None:
    clock = VirtualClock()
    client = ScriptedClient(
        clock,
        [
            Answer(401, b'{"error":"Invalid API key"}\n'),
            Answer(201, b"{}"),
            Answer(401, b"another body, never read"),
            Answer(503, b"x" * 1000),
        ],
    )
    ctx = _context(clock, client)
    _requests(ctx, 8)
    errors = ctx.request_errors
    assert errors.statuses == {401: 4, 503: 2}
    assert errors.bodies[401] == '{"error":"Invalid API key"}'
    assert errors.bodies[503] == "x" * MAX_BODY_BYTES + " ..."
    assert errors.transport == {}
    assert ctx.http_ok == 8


def test_transport_errors_keep_kind_counts_and_the_first_five_texts() -> None:
    clock = VirtualClock()
    script: list[Answer | TransportError] = [
        _tls_error(f"{URL}/{i}")
        for i in range(3)  # one cause on three URLs: one sample
    ]
    script += [
        TransportError(f"POST {URL}: reset error: peer {i} closed", url=URL, kind="reset")
        for i in range(6)  # six distinct texts: only five are kept
    ]
    ctx = _context(clock, ScriptedClient(clock, script))
    _requests(ctx, len(script))
    errors = ctx.request_errors
    assert errors.transport == {"tls": 3, "reset": 6}
    assert errors.transport_failures == 9
    assert [(s.kind, s.count) for s in errors.samples] == [("tls", 3)] + [("reset", 1)] * 4
    first = errors.samples[0]
    assert first.text == TLS_TEXT
    assert first.url == f"{URL}/0"
    assert errors.samples[1].text == "peer 0 closed"
    assert ctx.first_transport_error == f"tls: {TLS_TEXT} (to {URL}/0)"
    assert ctx.http_ok == 0


def test_error_texts_lose_the_method_the_url_and_any_password() -> None:
    assert error_text(f"GET {URL}: tls error: bad cert", URL, "GET", "tls") == "bad cert"
    assert error_text(f"cannot connect to h:1: refused ({URL})", URL, "GET", "connect") == (
        "cannot connect to h:1: refused"
    )
    secret = "https://admin:s3cret@sut.invalid:8443/x"
    text = error_text(f"GET {secret}: connect error: to {secret} refused", secret, "GET", "connect")
    assert text == "to https://sut.invalid:8443/x refused"
    errors = RequestErrors()
    errors.add_transport("connect", text, secret)
    assert errors.samples[0].url == "https://sut.invalid:8443/x"
    assert "s3cret" not in json.dumps(errors.to_dict())
    long = error_text("y" * 1000, URL, "GET", "reset")
    assert len(long) == 300
    assert long.endswith(" ...")


# -- the readable causes ----------------------------------------------------------------------


def _result_with(errors: RequestErrors, requests: int) -> RunResult:
    async def idle(vu: VU) -> None:
        await vu.sleep(0.001)

    result = _run([Scenario("issuance", idle, ConstantArrivalRate(1, "1s"))])
    result.scenarios["issuance"].request_errors = errors
    from pytest_certload.metrics import tagset

    result.store.add_counter("http_reqs", requests, tagset({"scenario": "issuance"}))
    return result


def test_causes_name_the_status_the_body_and_the_transport_error() -> None:
    errors = RequestErrors()
    for _ in range(1204):
        errors.add_status(401, b'{"error":"Invalid API key"}')
    errors.add_status(500, b"")
    for i in range(57):
        errors.add_transport("tls", TLS_TEXT, f"{URL}/{i}")
    result = _result_with(errors, 1262)
    assert result.causes() == [
        'issuance: 1,204 of 1,262 requests answered 401 (body: {"error":"Invalid API key"})',
        "issuance: 1 of 1,262 request answered 500 (empty body)",
        f"issuance: 57 of 1,262 requests failed below HTTP: tls: {TLS_TEXT} (to {URL}/0)",
    ]


def test_a_plain_http_url_that_is_reset_hints_at_https() -> None:
    errors = RequestErrors()
    errors.add_transport("reset", "connection closed before a complete response", "http://h:8443/x")
    (line,) = errors.lines("s", 1)
    assert line == (
        "s: 1 of 1 request failed below HTTP: reset: connection closed before a complete "
        "response (to http://h:8443/x); if that port serves TLS, the URL must start with https://"
    )


def test_errors_beyond_the_samples_are_still_counted_by_kind() -> None:
    errors = RequestErrors()
    for i in range(7):
        errors.add_transport("reset", f"text {i}", URL)
    lines = errors.lines("s", 7)
    assert len(lines) == 6
    assert lines[-1] == (
        "s: 2 more requests failed below HTTP with other errors (all below HTTP, by kind: reset 7)"
    )


def test_a_run_without_failed_requests_has_no_causes() -> None:
    assert _result_with(RequestErrors(), 10).causes() == []


# -- one serialised form, and the exact merge ---------------------------------------------------


def _errors(status: int, statuses: int, body: bytes, texts: Sequence[str]) -> RequestErrors:
    errors = RequestErrors()
    for _ in range(statuses):
        errors.add_status(status, body)
    for text in texts:
        errors.add_transport("timeout", text, URL)
    return errors


def test_request_errors_round_trip_through_the_run_file_exactly() -> None:
    errors = _errors(401, 3, b"denied", ["a", "b", "a"])
    result = _result_with(errors, 6)
    data = json.loads(json.dumps(result.to_dict()))
    again = RunResult.from_dict(data)
    assert again.scenarios["issuance"].request_errors == errors
    assert again.to_dict() == data
    # a run file written before errors were recorded still reads, with none
    del data["scenarios"]["issuance"]["request_errors"]
    assert not RunResult.from_dict(data).scenarios["issuance"].request_errors


def test_workers_errors_merge_exactly() -> None:
    a = _result_with(_errors(401, 3, b"first", ["t1", "t2", "t3"]), 6)
    b = _result_with(_errors(401, 2, b"second", ["t3", "t4", "t5", "t6"]), 6)
    b.scenarios["issuance"].request_errors.add_status(503, b"busy")
    merged = merge_results(
        [RunResult.from_dict(r.to_dict()) for r in (a, b)], worker_names=["gw0", "gw1"]
    )
    errors = merged.scenarios["issuance"].request_errors
    assert errors.statuses == {401: 5, 503: 1}
    assert errors.bodies == {401: "first", 503: "busy"}  # the first worker's first body
    assert errors.transport == {"timeout": 7}
    assert [(s.text, s.count) for s in errors.samples] == [
        ("t1", 1),
        ("t2", 1),
        ("t3", 2),
        ("t4", 1),
        ("t5", 1),
    ]
    # the texts past the fifth are counted by kind, so no failure goes missing
    assert merged.causes()[-1].startswith("issuance: 1 more request failed below HTTP")


# -- every request failed below HTTP: unreachable -------------------------------------------------


def _run(scenarios: Sequence[Scenario], **kwargs: Any) -> RunResult:
    async def main() -> RunResult:
        clock = VirtualClock()
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run)
            try:
                return await run(scenarios, clock=clock, **kwargs)
            finally:
                clock.stop()

    return anyio.run(main)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("tls", f"{TLS_TEXT} ({URL})"),
        ("reset", f"POST {URL}: connection closed before a complete response"),
        ("timeout", f"POST {URL}: no complete response within 1s"),
        ("protocol", f"invalid HTTP response: Invalid method encountered ({URL})"),
    ],
)
def test_a_target_that_fails_every_request_below_http_is_unreachable_early(
    kind: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clocks: list[VirtualClock] = []

    class Failing:
        async def request(self, method: str, url: str, **kwargs: Any) -> Answer:
            await clocks[0].sleep(MS)
            raise TransportError(message, url=URL, kind=kind)

        async def aclose(self) -> None:
            return None

    monkeypatch.setattr(HTTPOptions, "factory", lambda self: Failing)

    async def post(vu: VU) -> None:
        await vu.http.post(URL)

    async def main() -> RunResult:
        clock = VirtualClock()
        clocks.append(clock)
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run)
            try:
                return await run(
                    [Scenario("issuance", post, ConstantArrivalRate(20, "60s"))],
                    clock=clock,
                    options=RunOptions(health=HealthLimits(unreachable_failures=10)),
                )
            finally:
                clock.stop()

    result = anyio.run(main)
    first = error_text(message, URL, "POST", kind)
    assert result.verdict == "unreachable"
    assert result.unreachable == [f"{kind}: {first} (to {URL})"]
    assert result.aborted == f"unreachable: {kind}: {first} (to {URL})"
    # stopped at the first tick past unreachable_after_ns (2 s), not after 60 s
    assert result.duration_ns == 2 * S
    started = result.scenarios["issuance"].health.started
    assert result.causes() == [
        f"issuance: {started:,} of {started:,} requests failed below HTTP: {kind}: {first} "
        f"(to {URL})"
    ]
