"""Known certctl defects by signature, the diagnoses every report prints, every 429
counted: the engine on a virtual clock against a scripted certctl (no network)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from pytest_certload.certctl.defects import KNOWN_DEFECTS, excusing, match_defects, shown
from pytest_certload.engine import (
    VU,
    ConstantArrivalRate,
    HTTPOptions,
    RunResult,
    Scenario,
    VirtualClock,
    run,
)
from pytest_certload.engine.causes import RequestErrors
from pytest_certload.errors import ConfigError
from pytest_certload.http import Headers
from pytest_certload.loadtest import validate_marker_kwargs
from pytest_certload.report.diagnoses import diagnose, diagnosis_lines

MS = 1_000_000
BASE = "https://certctl.invalid:8443/acme/profile/prof-standard-tls"
FINALIZE = "/acme/profile/{profile}/order/{id}/finalize"
NEW_ORDER = "/acme/profile/{profile}/new-order"
ACME_500 = (
    b'{"type":"urn:ietf:params:acme:error:serverInternal","detail":"ACME server error",'
    b'"status":500}'
)
PROBLEM = [("Content-Type", "application/problem+json")]


@dataclass
class Answer:
    status_code: int
    content: bytes = b"{}"
    headers: Headers = field(default_factory=lambda: Headers([]))
    timings: None = None


@dataclass
class Certctl:
    """A scripted certctl: each route name answers ``answers[name](n)`` for its n-th
    request, after ``delay_ms[name]`` on the virtual clock."""

    answers: dict[str, Callable[[int], Answer]]
    delay_ms: dict[str, float] = field(default_factory=dict)
    clock: VirtualClock | None = None
    sent: dict[str, int] = field(default_factory=dict)

    def client(self) -> Any:
        certctl = self

        class Client:
            async def request(self, method: str, url: str, **kwargs: Any) -> Answer:
                name = url.removeprefix(BASE)
                assert certctl.clock is not None
                await certctl.clock.sleep(round(certctl.delay_ms.get(name, 1) * MS))
                n = certctl.sent.get(name, 0)
                certctl.sent[name] = n + 1
                return certctl.answers[name](n)

            async def aclose(self) -> None:
                return None

        return Client


def _enroll(vu: VU) -> Any:
    async def iteration(vu: VU) -> None:
        order = await vu.http.post(BASE + NEW_ORDER, name=NEW_ORDER, expected=(201,))
        if order.status_code == 201:
            await vu.http.post(BASE + FINALIZE, name=FINALIZE, expected=(200,))

    return iteration(vu)


def _run(
    certctl: Certctl,
    monkeypatch: pytest.MonkeyPatch,
    thresholds: dict[str, list[str]] | None = None,
    iteration: Any = _enroll,
) -> RunResult:
    monkeypatch.setattr(HTTPOptions, "factory", lambda self: certctl.client())

    async def main() -> RunResult:
        clock = certctl.clock = VirtualClock()
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run)
            try:
                return await run(
                    [Scenario("acme_enroll", iteration, ConstantArrivalRate(20, "5s"))],
                    thresholds=thresholds or {"http_req_failed": ["rate<0.01"]},
                    clock=clock,
                )
            finally:
                clock.stop()

    return anyio.run(main)


def _order(n: int) -> Answer:
    return Answer(201)


def _finalize_500(n: int) -> Answer:
    return Answer(500, ACME_500, Headers(PROBLEM))


def _finalize_ok(n: int) -> Answer:
    return Answer(200, b'{"status":"valid"}')


def test_finalize_500s_are_the_known_defect_and_excuse_the_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    certctl = Certctl({NEW_ORDER: _order, FINALIZE: _finalize_500})
    result = _run(
        certctl,
        monkeypatch,
        {
            "http_req_failed": ["rate<0.01"],
            # what only a successful finalize would have measured
            'http_req_duration{name:"/acme/profile/{profile}/cert/{id}"}': ["p(95)<500"],
        },
    )
    assert result.verdict == "breached"
    (match,) = match_defects(result)
    assert match.defect.id == "acme-finalize-500"
    assert (match.scenario, match.count, match.of) == ("acme_enroll", 100, 100)
    assert match.statuses == {500: 100}
    assert match.variant == ""
    assert excusing([result]) == [match]
    assert shown([result], "acme-finalize-500")
    assert match.reason() == (
        "known certctl defect acme-finalize-500: certctl's ACME finalize answers 500 "
        "serverInternal (internal/service/acme.go::FinalizeOrder); acme_enroll: 100 of 100 "
        "finalize requests: 100 answered 500; see docs/known-defects.md"
    )
    # the threshold that had nothing to judge says why, not "check the tag filter"
    unjudged = result.thresholds[1]
    assert unjudged.observed is None
    assert unjudged.reason == (
        'no samples recorded for http_req_duration{name:"/acme/profile/{profile}/cert/{id}"}: '
        "requests failed (acme_enroll: 500: 100 of 200), so what it measures never "
        "completed; see why requests failed"
    )
    kinds = [(d.kind, d.id) for d in diagnose(result)]
    assert kinds == [("failed-requests", "failed-requests"), ("known-defect", "acme-finalize-500")]
    failed, defect = diagnose(result)
    assert failed.summary == "acme_enroll: 100 of 200 requests failed: 500: 100 of 200"
    assert failed.statuses == {"500": 100}
    assert defect.source == "internal/service/acme.go::FinalizeOrder"
    assert defect.excuses is True
    text = "\n".join(diagnosis_lines(result))
    assert "watch for: certctl's log for the finalize error" in text
    # advice that changes a database is given only for a throwaway one, and says so
    assert "only in a throwaway database created for the load test" in text


@pytest.mark.parametrize(
    ("detail", "variant"),
    [
        (
            "insert into managed_certificates: pq: insert or update on table "
            '"managed_certificates" violates foreign key constraint "fk_owner"',
            "the answer names a foreign-key violation",
        ),
        (
            "pq: duplicate key value violates unique constraint "
            '"certificate_versions_fingerprint_sha256_key"',
            "the answer names the duplicate certificate fingerprint",
        ),
    ],
    ids=["foreign-key", "fingerprint"],
)
def test_what_the_finalize_body_reveals_is_named(
    detail: str, variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (
        b'{"type":"urn:ietf:params:acme:error:serverInternal","detail":"'
        + detail.replace('"', '\\"').encode()
        + b'","status":500}'
    )
    certctl = Certctl({NEW_ORDER: _order, FINALIZE: lambda n: Answer(500, body, Headers(PROBLEM))})
    (match,) = match_defects(_run(certctl, monkeypatch))
    assert match.variant.startswith(variant)
    assert variant in match.reason()


def test_a_latency_breach_beside_the_defect_stays_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    certctl = Certctl({NEW_ORDER: _order, FINALIZE: _finalize_500}, delay_ms={NEW_ORDER: 900})
    result = _run(
        certctl,
        monkeypatch,
        {"http_req_failed": ["rate<0.01"], "http_req_duration": ["p(95)<500"]},
    )
    assert [r.ok for r in result.thresholds] == [False, False]
    assert match_defects(result)  # the defect shows...
    assert excusing([result]) == []  # ...but it did not make the latency


def test_a_defect_beside_a_bigger_cause_stays_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    # 10 finalize 500s, 90 new-orders refused 503: the 503s are the failure
    certctl = Certctl(
        {
            NEW_ORDER: lambda n: Answer(201) if n % 10 == 0 else Answer(503, b"busy"),
            FINALIZE: _finalize_500,
        }
    )
    result = _run(certctl, monkeypatch)
    (match,) = match_defects(result)
    assert (match.count, match.of) == (10, 10)
    assert excusing([result]) == []


def test_a_healthy_finalize_shows_no_defect(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(Certctl({NEW_ORDER: _order, FINALIZE: _finalize_ok}), monkeypatch)
    assert result.verdict == "passed"
    assert match_defects(result) == []
    assert not shown([result], "acme-finalize-500")
    assert diagnose(result) == []


def test_certctls_500_for_an_unknown_agent_is_explained_never_excused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    heartbeat = "/api/v1/agents/{id}/heartbeat"
    body = b'{"error":"Internal Server Error","message":"Failed to record heartbeat"}'

    async def beat(vu: VU) -> None:
        await vu.http.post(BASE + heartbeat, name=heartbeat, expected=(200,))

    certctl = Certctl({heartbeat: lambda n: Answer(500, body)})
    result = _run(certctl, monkeypatch, iteration=beat)
    (match,) = match_defects(result)
    assert match.defect.id == "unknown-agent-500"
    assert match.defect.excuses is False
    assert excusing([result]) == []
    (_, defect) = diagnose(result)
    assert defect.excuses is False
    assert "explained, not excused: the failure stands" in defect.details[-1]


def test_every_429_is_counted_whatever_the_method_and_whether_expected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nonce = "/acme/profile/{profile}/new-nonce"
    limiter = Headers([("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "1")])

    async def walk(vu: VU) -> None:
        await vu.http.head(BASE + nonce, name=nonce)  # a 429 to HEAD has no body
        await vu.http.post(BASE + NEW_ORDER, name=NEW_ORDER, expected=(201, 429))

    certctl = Certctl(
        {
            nonce: lambda n: Answer(429, b"", limiter),
            NEW_ORDER: lambda n: Answer(429, b'{"error":"Rate limit exceeded"}\n', limiter),
        }
    )
    result = _run(certctl, monkeypatch, iteration=walk)
    errors = result.scenarios["acme_enroll"].request_errors
    assert errors.throttled == {"text/plain, Retry-After: 1": 200}
    assert errors.statuses == {429: 100}  # only the HEADs were failures
    # the body kept is the first one that is not empty, whatever came first
    assert errors.bodies == {429: ""}
    failed, limited = diagnose(result)
    assert limited.kind == "rate-limit"
    assert limited.summary == (
        "acme_enroll: certctl's API rate limiter (429, Retry-After: 1) answered "
        "200 of 200 responses (100.0%; HEAD 100, POST 100)"
    )
    assert "CERTCTL_RATE_LIMIT_ENABLED=false" in limited.details[0]
    assert failed.summary == "acme_enroll: 100 of 200 requests failed: 429: 100 of 200"


def test_the_first_body_that_is_not_empty_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    nonce = "/acme/profile/{profile}/new-nonce"

    async def walk(vu: VU) -> None:
        await vu.http.head(BASE + nonce, name=nonce)
        await vu.http.get(BASE + nonce, name=nonce)

    certctl = Certctl(
        {nonce: lambda n: Answer(429, b"" if n % 2 == 0 else b'{"error":"Rate limit exceeded"}')}
    )
    errors = _run(certctl, monkeypatch, iteration=walk).scenarios["acme_enroll"].request_errors
    assert errors.bodies == {429: '{"error":"Rate limit exceeded"}'}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("acme-finalize-500", "'acme-finalize-500' is not a valid known_defects"),
        ([], "[] is not a valid known_defects"),
        (["acme-finalize-5OO"], "'acme-finalize-5OO' in known_defects of"),
        (["unknown-agent-500"], "'unknown-agent-500' in known_defects of"),
    ],
    ids=["a-string", "empty", "typo", "explained-only"],
)
def test_the_known_defects_marker_argument_is_checked(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_marker_kwargs((), {"known_defects": value}, "test_x.py::test_x")
    text = str(caught.value)
    assert text.startswith(message)
    assert "acme-finalize-500" in text
    assert "docs/known-defects.md" in text
    validate_marker_kwargs((), {"known_defects": ["acme-finalize-500"]}, "test_x.py::test_x")


def test_every_defect_names_certctls_source_and_what_to_watch() -> None:
    for defect in KNOWN_DEFECTS.values():
        assert defect.source.startswith("internal/")
        assert "::" in defect.source
        assert defect.title
        assert defect.description
        assert defect.watch
        text = f"{defect.description} {defect.watch}".lower()
        if "insert" in defect.watch.lower() or "disable" in text:
            assert "throwaway" in text, defect.id


def test_the_429_counts_merge_across_workers_and_old_run_files_read() -> None:
    a, b = RequestErrors(), RequestErrors()
    a.add_throttled("text/plain; charset=utf-8", "1")
    b.add_throttled("TEXT/PLAIN", " 1 ")
    b.add_throttled("application/problem+json", "")
    b.add_status(429, b"")
    a.merge(b)
    assert a.throttled == {
        "text/plain, Retry-After: 1": 2,
        "application/problem+json, no Retry-After": 1,
    }
    assert RequestErrors.from_dict(a.to_dict()) == a
    old = a.to_dict()
    del old["throttled"]  # a run file written before every 429 was counted
    assert RequestErrors.from_dict(old).throttled == {}
