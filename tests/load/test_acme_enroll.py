"""ACME tier, JWS-signed: whole enrollments under load, which certctl's k6 scripts cannot do.

``acme_enroll`` offers 10 enrollments/s for 5 minutes (open model). Each one is
new-order → authz (POST-as-GET) → finalize with a fresh P-256 CSR → certificate
download → ARI lookup of the new certificate, over a pool of accounts created before the
timed run and sized to stay inside certctl's per-account limits (100 new orders an hour,
5 outstanding). ``acme_order_limit`` breaks the concurrent-order limit on purpose and
checks that every 429 is certctl's RFC 7807 ``rateLimited`` document.

docs/acme-enrollment.md explains the figures; override ``certload_acme_profile`` to load
another (``trust_authenticated``) profile, or ``acme_issuing_ca`` to pin the CA.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import anyio
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from pytest_certload import LoadTest
from pytest_certload.certctl import UniqueNames, acme_directory_path
from pytest_certload.certctl.acme import (
    AccountPool,
    AcmeClient,
    AcmeDirectory,
    AcmeProblem,
    Enrollment,
    EnrollmentMetrics,
    PlainTransport,
    lease_problem,
    pool_size,
)
from pytest_certload.engine import VU, ConstantArrivalRate, RunResult, Scenario
from pytest_certload.http import make_client
from pytest_certload.metrics import CounterSink, TrendSink
from pytest_certload.stack import StackInfo

pytestmark = [pytest.mark.acme, pytest.mark.scale]

#: enrollments per second and how long; smoke keeps the rate and shortens the duration
RATE = 10
DURATION_S = 300
#: 10/s for 15 s: 150 enrollments, enough for p(99) (100 samples) on the whole enrollment
SMOKE = "15s"
#: certctl's per-account defaults (CERTCTL_ACME_SERVER_RATE_LIMIT_*)
ORDERS_PER_HOUR = 100
CONCURRENT_ORDERS = 5
#: the longest enrollment the pool is sized for (the p(99) limit below)
ENROLLMENT_BUDGET_S = 5.0
#: certificates checked after the run: the first few, then every 25th, at most 40
SAMPLE_EVERY = 25
SAMPLE_MAX = 40

THRESHOLDS = {
    "acme_new_order_duration": ["p(95)<500"],
    "acme_authz_duration": ["p(95)<500"],
    "acme_finalize_duration": ["p(95)<1000"],
    "acme_certificate_duration": ["p(95)<500"],
    "acme_ari_duration": ["p(95)<800"],
    "acme_enroll_duration": ["p(95)<3000", "p(99)<5000"],
    "acme_enroll_ok": ["rate>0.99"],
    "http_req_failed{scenario:acme_enroll}": ["rate<0.01"],
}


@pytest.fixture
def acme_issuing_ca() -> x509.Certificate | None:
    """The CA every ACME certificate must chain to; ``None`` (default): the root the
    server sends in the chain (the double's CA is ephemeral), pinned across samples.
    Override in a conftest.py to pin a known CA."""
    return None


def _open_pool(
    stack: StackInfo,
    directory_url: str,
    headers: dict[str, str],
    size: int,
    alg: str = "ES256",
) -> tuple[AcmeDirectory, AccountPool]:
    """Read the directory and create ``size`` accounts, before the timed run."""

    async def setup() -> tuple[AcmeDirectory, AccountPool]:
        client = make_client("fast", verify=stack.verify(), timeout_ns=30_000_000_000)
        try:
            acme = await AcmeClient.open(PlainTransport(client), directory_url, headers)
            pool = await AccountPool.create(
                acme,
                size,
                alg=alg,
                orders_per_hour=ORDERS_PER_HOUR,
                concurrent_orders=CONCURRENT_ORDERS,
            )
            return acme.directory, pool
        finally:
            await client.aclose()

    return anyio.run(setup)


def _check_certificate(
    enrollment: Enrollment, pinned: list[x509.Certificate], ca: x509.Certificate | None
) -> list[str]:
    """What is wrong with one issued certificate (empty: nothing)."""
    where = f"certificate of {', '.join(enrollment.names)}"
    chain = enrollment.certificates()
    if len(chain) < 2 and ca is None:
        return [f"{where}: the chain has {len(chain)} certificate(s), no issuer to verify"]
    leaf = chain[0]
    issuer = ca if ca is not None else chain[-1]
    errors: list[str] = []
    if ca is None:
        if issuer.subject != issuer.issuer:
            errors.append(
                f"{where}: the chain's root {issuer.subject.rfc4514_string()} is not self-signed"
            )
        if not pinned:
            pinned.append(issuer)
        elif issuer != pinned[0]:
            errors.append(f"{where}: issued by another CA than the first sample")
    try:
        leaf.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature) as exc:
        errors.append(
            f"{where}: does not verify against {issuer.subject.rfc4514_string()}: {exc!r}"
        )
    csr = x509.load_der_x509_csr(enrollment.csr_der)
    if leaf.public_key() != csr.public_key():
        errors.append(f"{where}: its public key is not the CSR's")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = sorted(n.lower() for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        sans = []
    if sans != sorted(enrollment.names):
        errors.append(f"{where}: SANs {sans} differ from the CSR's {sorted(enrollment.names)}")
    now = dt.datetime.now(dt.UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        errors.append(
            f"{where}: not valid now ({leaf.not_valid_before_utc} .. {leaf.not_valid_after_utc})"
        )
    window = enrollment.window
    if window is None:
        errors.append(f"{where}: no ARI window")
    elif not leaf.not_valid_before_utc <= window.start < window.end <= leaf.not_valid_after_utc:
        errors.append(
            f"{where}: ARI window {window.start}..{window.end} is not inside its validity "
            f"{leaf.not_valid_before_utc}..{leaf.not_valid_after_utc}"
        )
    return errors


def _prop(request: pytest.FixtureRequest, name: str, value: object) -> None:
    """A junit/JSON property, as the plugin records its own (``record_property`` would
    warn under junit_family xunit2, and warnings are errors here)."""
    request.node.user_properties.append((name, value))


def _step_properties(result: RunResult, metrics: EnrollmentMetrics) -> list[tuple[str, str]]:
    """p50/p95/p99 (ms) and sample count of each step, for junit and the JSON record."""
    props: list[tuple[str, str]] = []
    for name in sorted(m for m in metrics.metrics if m.endswith("_duration")):
        sink = result.store.select(name, {"scenario": "acme_enroll"})
        if not isinstance(sink, TrendSink) or not sink.count:
            continue
        q = sink.quantiles((50, 95, 99))
        figures = ", ".join(f"p{p}={q[p] / 1e6:.2f} ms" for p in (50, 95, 99))
        props.append((f"certload.acme_enroll.{name}", f"{figures}, n={sink.count}"))
    return props


@pytest.mark.certload(smoke_duration=SMOKE)
def test_acme_enroll(
    certload: LoadTest,
    certload_run: Callable[..., RunResult],
    certload_stack: StackInfo,
    certctl_headers: dict[str, str],
    certload_acme_profile: str,
    acme_issuing_ca: x509.Certificate | None,
    request: pytest.FixtureRequest,
) -> None:
    # Accounts are created before the timed run, sized for the canonical 5 minutes (or a
    # longer --certload-duration): ceil(10 * 300 / 100) = 30 for the hourly bucket, which
    # beats ceil(10 * 5 / 5) = 10 for the concurrent cap, plus 20 %: 36 accounts.
    duration_ns = certload.settings.duration_ns or 0
    size = pool_size(
        RATE,
        max(DURATION_S, duration_ns / 1e9),
        orders_per_hour=ORDERS_PER_HOUR,
        concurrent_orders=CONCURRENT_ORDERS,
        enrollment_budget_s=ENROLLMENT_BUDGET_S,
    )
    directory_url = certload_stack.certctl_url + acme_directory_path(certload_acme_profile)
    directory, pool = _open_pool(certload_stack, directory_url, certctl_headers, size)
    _prop(request, "certload.acme_enroll.accounts", len(pool))
    metrics = EnrollmentMetrics()
    names = UniqueNames("e", domain="acme.certload.example.com")
    samples: list[Enrollment] = []
    successes = [0]

    async def acme_enroll(vu: VU) -> None:
        acme: AcmeClient | None = vu.state.get("acme")
        if acme is None:
            acme = vu.state["acme"] = AcmeClient(vu.http, directory, certctl_headers)
        account = pool.lease()
        if account is None:
            vu.rate(metrics.ok_name, False)
            metrics.record_problem(vu, lease_problem())
            return
        outstanding = True  # an interrupted enrollment may leave its order behind
        try:
            enrollment = await acme.enroll(account, [names.next()])
            outstanding = enrollment.order_outstanding
        finally:
            pool.release(account, order_outstanding=outstanding)
        metrics.record(vu, enrollment)
        if enrollment.ok:
            successes[0] += 1
            keep = successes[0] <= 3 or successes[0] % SAMPLE_EVERY == 0
            if keep and len(samples) < SAMPLE_MAX:
                samples.append(enrollment)

    scenario = Scenario(
        "acme_enroll",
        acme_enroll,
        ConstantArrivalRate(RATE, f"{DURATION_S}s", pre_allocated_vus=10, max_vus=50),
        graceful_stop="30s",
        metrics=metrics.metrics,
    )
    try:
        result = certload_run(scenario, thresholds=THRESHOLDS)
    except AssertionError as breach:
        explained = metrics.explain(certload.results[-1].store) if certload.results else ""
        raise AssertionError(f"{explained}\n{breach}" if explained else str(breach)) from None
    for key, value in _step_properties(result, metrics):
        _prop(request, key, value)

    explained = metrics.explain(result.store)
    if explained and not successes[0]:
        pytest.fail(explained, pytrace=False)
    assert samples, "no enrollment succeeded, so no certificate could be checked"
    pinned: list[x509.Certificate] = []
    errors = [e for s in samples for e in _check_certificate(s, pinned, acme_issuing_ca)]
    _prop(request, "certload.acme_enroll.certificates_checked", len(samples))
    assert not errors, f"{len(errors)} problem(s) in {len(samples)} sampled certificates:\n" + (
        "\n".join(f"  - {e}" for e in errors[:20])
    )


@pytest.mark.certload(smoke_duration="4s")
def test_acme_order_limit(
    certload_run: Callable[..., RunResult],
    certload_stack: StackInfo,
    certctl_headers: dict[str, str],
    certload_acme_profile: str,
    request: pytest.FixtureRequest,
) -> None:
    # One account, 20 new orders a second for 4 s, none finalized: the first five fill
    # certctl's concurrent-order cap (trust_authenticated orders stay "ready"), and every
    # later one must be refused with the RFC 7807 rateLimited document. 80 orders stay
    # inside the hourly bucket (100), so only the concurrent cap is exercised.
    directory_url = certload_stack.certctl_url + acme_directory_path(certload_acme_profile)
    directory, pool = _open_pool(certload_stack, directory_url, certctl_headers, 1)
    account = pool.accounts[0]
    names = UniqueNames("e", domain="limit.certload.example.com")
    seen: dict[str, int] = {}

    async def acme_order_limit(vu: VU) -> None:
        acme: AcmeClient | None = vu.state.get("acme")
        if acme is None:
            acme = vu.state["acme"] = AcmeClient(vu.http, directory, certctl_headers)
        order = await acme.new_order(account, [names.next()], expected=(201, 429))
        ok = bad = 0
        if isinstance(order, AcmeProblem):
            if order.status == 429 and order.is_rate_limit_document:
                ok = 1
            else:
                bad = 1
                key = f"{order.status} {order.media_type or '-'} {order.type}"
                seen[key] = seen.get(key, 0) + 1
            if order.status == 429 and order.retry_after:
                vu.counter("acme_429_retry_after", 1)
        else:
            vu.counter("acme_orders_accepted", 1)
        # added every iteration (often 0), so the count thresholds always have samples
        vu.counter("acme_429_shape_ok", ok)
        vu.counter("acme_429_shape_bad", bad)

    result = certload_run(
        Scenario(
            "acme_order_limit",
            acme_order_limit,
            ConstantArrivalRate(20, "4s", pre_allocated_vus=10, max_vus=40),
            graceful_stop="10s",
            metrics={
                "acme_orders_accepted": "counter",
                "acme_429_shape_ok": "counter",
                "acme_429_shape_bad": "counter",
                "acme_429_retry_after": "counter",
            },
        ),
        thresholds={
            "acme_429_shape_ok": ["count>0"],
            "acme_429_shape_bad": ["count==0"],
            "http_req_failed{scenario:acme_order_limit}": ["rate==0"],
        },
    )
    accepted = result.store.select("acme_orders_accepted", {})
    limited = result.store.select("acme_429_shape_ok", {})
    n_accepted = int(accepted.count) if isinstance(accepted, CounterSink) else 0
    n_limited = int(limited.count) if isinstance(limited, CounterSink) else 0
    _prop(request, "certload.acme_order_limit.accepted", n_accepted)
    _prop(request, "certload.acme_order_limit.rate_limited", n_limited)
    assert not seen, f"answers that are not certctl's ACME 429: {seen}"
    assert n_accepted >= CONCURRENT_ORDERS, (
        f"only {n_accepted} orders were accepted before the first 429; a fresh account "
        f"should get {CONCURRENT_ORDERS} (CERTCTL_ACME_SERVER_RATE_LIMIT_CONCURRENT_ORDERS)"
    )
