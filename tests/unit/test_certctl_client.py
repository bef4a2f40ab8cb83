"""Unit tests of pytest_certload.certctl's pure helpers: payloads, checks, 429 shapes."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType

import httpx
import pytest

import pytest_certload.certctl as certctl
from pytest_certload.certctl import (
    ACME_RATE_LIMITED,
    API_RATE_LIMITED,
    ARI_PROBE_ID,
    AcmeDirectory,
    AcmeError,
    CertctlError,
    CertctlSetup,
    Rotation,
    UniqueNames,
    batches,
    certificate_payload,
    classify_429,
    expand,
    heartbeat_body,
    parse_bulk_renew,
    rate_limit_storm,
)
from pytest_certload.engine import RunResult, ScenarioResult
from pytest_certload.engine.causes import RequestErrors
from pytest_certload.engine.health import HealthLimits, ScenarioHealth
from pytest_certload.errors import ConfigError
from pytest_certload.http import Headers
from pytest_certload.metrics import MetricStore, declare_builtins, tagset


@dataclass
class Reply:
    status_code: int
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""


API_429 = Reply(
    429,
    Headers([("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "1")]),
    b'{"error":"Rate limit exceeded"}\n',
)
ACME_429 = Reply(
    429,
    Headers([("Content-Type", "application/problem+json")]),
    json.dumps(
        {
            "type": "urn:ietf:params:acme:error:rateLimited",
            "detail": "request rate limit exceeded; retry later",
            "status": 429,
        }
    ).encode(),
)


#: the modules of pytest_certload.certctl whose exports the package re-exports in full
#: (of responses it exports the protocol only; the helpers are for certctl's modules)
MODULES = (
    certctl.names,
    certctl.payloads,
    certctl.ratelimit,
    certctl.rotation,
    certctl.routes,
    certctl.setup_client,
)


def test_all_is_exact() -> None:
    acme = certctl.acme

    def defined_in(name: str) -> str:
        return str(getattr(getattr(certctl, name), "__module__", ""))

    acme_exports = {n for n in certctl.__all__ if defined_in(n).startswith(f"{acme.__name__}.")}
    errors = {n for n in certctl.__all__ if defined_in(n) == "pytest_certload.errors"}
    exported = {n for m in MODULES for n in m.__all__}
    assert set(certctl.__all__) == exported | {"ResponseLike"} | acme_exports | errors
    assert acme_exports <= set(acme.__all__)
    # every constant a module defines is in its __all__
    for info in pkgutil.walk_packages(certctl.__path__, f"{certctl.__name__}."):
        module = importlib.import_module(info.name)
        tree = ast.parse(inspect.getsource(module))
        targets = [
            target
            for node in tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        ]
        constants = {
            t.id
            for t in targets
            if isinstance(t, ast.Name) and t.id.isupper() and not t.id.startswith("_")
        }
        assert constants - {"T"} <= set(module.__all__), module.__name__
    # the acme package's __all__ is exactly its public names
    acme_public = {
        n for n, v in vars(acme).items() if not n.startswith("_") and not isinstance(v, ModuleType)
    }
    assert set(acme.__all__) == acme_public


def test_certctl_429_is_told_apart_from_the_acme_429() -> None:
    assert classify_429(API_429) == API_RATE_LIMITED
    assert classify_429(ACME_429) == ACME_RATE_LIMITED
    assert classify_429(Reply(200)) is None


def test_the_limiters_429_to_head_has_no_body_and_still_counts() -> None:
    # HEAD new-nonce: Go's http.Error sets the headers, the server drops the body
    head = Reply(429, API_429.headers, b"")
    assert classify_429(head) == API_RATE_LIMITED
    store = MetricStore()
    vu = _CountingVU(store)
    assert certctl.count_rate_limit(vu, head) == API_RATE_LIMITED  # type: ignore[arg-type]
    assert certctl.count_rate_limit(vu, API_429) == API_RATE_LIMITED  # type: ignore[arg-type]
    assert vu.counted == 2


@pytest.mark.parametrize(
    "reply",
    [
        # JSON content type: not what Go's http.Error sends
        Reply(429, {"content-type": "application/json", "retry-after": "1"}, API_429.content),
        Reply(429, {"content-type": "text/plain"}, API_429.content),  # no Retry-After
        # an ACME 429 whose type is wrong, or whose status field is missing
        Reply(429, {"Content-Type": "application/problem+json"}, b'{"type":"x","status":429}'),
        Reply(
            429,
            {"Content-Type": "application/problem+json"},
            b'{"type":"urn:ietf:params:acme:error:rateLimited","detail":"d"}',
        ),
        Reply(429, {"Content-Type": "text/html"}, b"<html>"),
    ],
    ids=["json-api-429", "no-retry-after", "wrong-type", "no-status", "html"],
)
def test_a_429_of_any_other_shape_is_other(reply: Reply) -> None:
    assert classify_429(reply) == "other"


def test_unique_names_never_repeat_and_make_valid_hostnames() -> None:
    a, b = UniqueNames("loadtest-issuance"), UniqueNames("loadtest-issuance")
    names = {a.next() for _ in range(1000)} | {b.next() for _ in range(1000)}
    assert len(names) == 2000
    payload = certificate_payload(a.next())
    labels = payload["common_name"].split(".")
    assert all(label and not label.startswith("-") and not label.endswith("-") for label in labels)


def test_unique_names_refuse_a_prefix_that_is_not_a_hostname_label() -> None:
    with pytest.raises(ConfigError, match=r"'bad_prefix' is not a valid certificate name prefix"):
        UniqueNames("bad_prefix")


def test_certificate_payload_has_far_future_expiry_and_demo_foreign_keys() -> None:
    payload = certificate_payload("loadtest-x-1")
    assert payload["expires_at"].startswith("2099-")
    assert {k: payload[k] for k in ("issuer_id", "owner_id", "team_id", "renewal_policy_id")} == {
        "issuer_id": "iss-local",
        "owner_id": "o-alice",
        "team_id": "t-platform",
        "renewal_policy_id": "rp-standard",
    }
    assert payload["sans"] == [payload["common_name"]] == ["loadtest-x-1.example.test"]
    assert payload["environment"] == "production"


def test_parse_bulk_renew_reads_the_counters() -> None:
    body = {
        "total_matched": 3,
        "total_enqueued": 2,
        "total_skipped": 1,
        "total_failed": 0,
        "enqueued_jobs": [{"certificate_id": "a", "job_id": "j1"}, {"certificate_id": "b"}],
    }
    result = parse_bulk_renew(json.dumps(body).encode())
    assert (result.total_matched, result.total_enqueued, result.total_skipped) == (3, 2, 1)
    assert result.consistent
    assert not parse_bulk_renew({**body, "total_skipped": 0}).consistent


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>", "not a JSON object"),
        (b'{"total_matched": 1}', "total_enqueued=None; expected a count"),
        (b'{"total_matched":-1,"total_enqueued":0,"total_skipped":0,"total_failed":0}', "-1"),
    ],
)
def test_parse_bulk_renew_names_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_bulk_renew(body)


def test_parse_bulk_renew_keeps_errors() -> None:
    result = parse_bulk_renew(
        {
            "total_matched": 1,
            "total_enqueued": 0,
            "total_skipped": 0,
            "total_failed": 1,
            "errors": [{"certificate_id": "mc-1", "error": "boom"}],
        }
    )
    assert result.errors == ("mc-1: boom",)
    assert result.consistent


def test_acme_directory_from_json_and_the_probe_url() -> None:
    body = (
        b'{"newNonce":"https://h/acme/profile/p/new-nonce","newAccount":"https://h/a",'
        b'"newOrder":"https://h/o","renewalInfo":"https://h/r/"}'
    )
    directory = AcmeDirectory.from_json("https://h/acme/profile/p/directory", body)
    assert directory.new_nonce == "https://h/acme/profile/p/new-nonce"
    assert directory.renewal_info_url(ARI_PROBE_ID) == "https://h/r/aaaa.bbbb"


def test_acme_directory_explains_the_dashboard_trap() -> None:
    html = httpx.MockTransport(lambda request: httpx.Response(200, content=b"<!doctype html>"))
    # the setup client raises CertctlError, as for every other answer it cannot use
    with (
        _setup(html) as setup,
        pytest.raises(CertctlError, match="start it from a directory without web/"),
    ):
        setup.acme_directory("p")
    with pytest.raises(AcmeError, match="start it from a directory without web/"):
        AcmeDirectory.from_json("https://h/d", b"<!doctype html><html>")
    no_ari = AcmeDirectory("https://h/d", "https://h/n", "https://h/a", "https://h/o")
    with pytest.raises(AcmeError, match="CERTCTL_ACME_SERVER_ARI_ENABLED"):
        no_ari.renewal_info_url(ARI_PROBE_ID)


def test_expand_quotes_values_and_names_a_missing_parameter() -> None:
    assert expand(certctl.AGENT_HEARTBEAT, id="a/b c") == "/api/v1/agents/a%2Fb%20c/heartbeat"
    with pytest.raises(ConfigError, match="needs the parameter 'id'; got none"):
        expand(certctl.AGENT_HEARTBEAT)


def test_rotation_starts_over_and_counts_laps() -> None:
    rotation = Rotation(batches(["a", "b", "c", "d", "e"], 2))
    got = [rotation.next() for _ in range(4)]
    assert got == [("a", "b"), ("c", "d"), ("e",), ("a", "b")]
    assert rotation.laps == 1
    with pytest.raises(ConfigError, match="no seeded agents were found"):
        Rotation([], what="seeded agents")


def test_heartbeat_body_echoes_the_agent_metadata() -> None:
    body = json.loads(heartbeat_body({"id": "x", "os": "linux", "version": "2.0.9"}))
    assert body == {
        "version": "2.0.9",
        "hostname": "",
        "os": "linux",
        "architecture": "",
        "ip_address": "",
    }


def _setup(handler: httpx.MockTransport) -> CertctlSetup:
    return CertctlSetup("https://certctl", "k", client=httpx.Client(transport=handler))


def test_setup_pages_until_total_and_filters_by_prefix() -> None:
    rows = [{"id": f"mc-{i}", "name": f"loadtest-bulk-{i:03d}"} for i in range(7)]
    rows.insert(3, {"id": "mc-demo", "name": "mc-api-prod"})
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer k"
        params = dict(request.url.params)
        seen.append(params)
        page, per_page = int(params["page"]), int(params["per_page"])
        data = rows[(page - 1) * per_page : page * per_page]
        return httpx.Response(200, json={"data": data, "total": len(rows), "page": page})

    with _setup(httpx.MockTransport(handler)) as setup:
        # per_page is certctl's: 500 at most
        setup_ids = list(setup.paged("/api/v1/certificates", per_page=3))
        assert len(setup_ids) == 8
        assert len(seen) == 3
        ids = setup.certificate_ids("loadtest-bulk-")
    assert ids == [f"mc-{i}" for i in range(7)]
    assert seen[-1]["status"] == "Active"
    assert seen[-1]["sort"] == "name"


def test_setup_explains_a_missing_acme_profile_and_a_rate_limit() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/acme/"):
            return httpx.Response(
                404, json={"type": "urn:ietf:params:acme:error:userActionRequired"}
            )
        return httpx.Response(
            429,
            headers={"content-type": "text/plain; charset=utf-8", "retry-after": "1"},
            content=API_429.content,
        )

    with _setup(httpx.MockTransport(handler)) as setup:
        with pytest.raises(CertctlError, match="certctl has no ACME profile 'prof-test'"):
            setup.acme_directory("prof-test")
        with pytest.raises(CertctlError, match="CERTCTL_RATE_LIMIT_ENABLED=false"):
            setup.get("/api/v1/agents")
    with pytest.raises(ConfigError, match="per_page=501 would silently become 50"):
        next(CertctlSetup("https://c", "k").paged("/x", per_page=501))


class _CountingVU:
    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self.counted = 0

    def counter(self, name: str, value: float = 1, tags: object = None) -> None:
        assert name == certctl.RATE_LIMITED_COUNTER
        self.counted += 1


def _run(requests: int, limited: dict[str, int], head: int = 0) -> RunResult:
    """A run of one scenario ``s``: ``requests`` responses, ``limited`` of them 429s by
    shape, the first ``head`` of the 429s answered to HEAD (the rest to GET)."""
    store = MetricStore()
    declare_builtins(store)
    n429 = sum(limited.values())
    for status, method, n in (
        ("200", "GET", requests - n429),
        ("429", "HEAD", head),
        ("429", "GET", n429 - head),
    ):
        tags = tagset({"scenario": "s", "status": status, "method": method, "name": "/x"})
        for _ in range(n):
            store.add_counter("http_reqs", 1, tags)
    errors = RequestErrors()
    for shape, n in limited.items():
        media, _, retry = shape.partition("|")
        for _ in range(n):
            errors.add_throttled(media, retry)
    health = ScenarioHealth("s", True, 1, 1, 0, 0, None, 0, None, None)
    scenario = ScenarioResult("s", {}, {}, 0, 0, health, [], {}, request_errors=errors)
    return RunResult(store, {"s": scenario}, [], "", 0, HealthLimits())


def test_a_429_storm_names_the_settings_to_change() -> None:
    # every API-limiter 429 counts, whatever the method: 40 of 100, 15 of them to HEAD
    message = rate_limit_storm(_run(100, {"text/plain; charset=utf-8|1": 40}, head=15))
    assert message is not None
    assert message.startswith(
        "40 of 100 responses (40.0%, limit 5%; GET 25, HEAD 15) were certctl's API rate"
    )
    assert "CERTCTL_RATE_LIMIT_ENABLED=false" in message
    assert "CERTCTL_RATE_LIMIT_RPS and CERTCTL_RATE_LIMIT_BURST" in message
    (tally,) = certctl.limiter_tally(_run(100, {"text/plain|1": 40}, head=15))
    assert tally.text() == "40 of 100 responses (40.0%; GET 25, HEAD 15)"


def test_a_few_429s_are_not_a_storm() -> None:
    assert rate_limit_storm(_run(100, {"text/plain|1": 5})) is None
    assert rate_limit_storm(_run(100, {})) is None
    # certctl's ACME limiter is another matter (its own settings, its own checks)
    assert rate_limit_storm(_run(100, {"application/problem+json|": 40})) is None
