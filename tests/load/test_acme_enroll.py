"""ACME tier, JWS-signed: whole enrollments under load, which certctl's k6 scripts cannot do.

``acme_enroll`` offers 10 enrollments/s for 5 minutes (open model). Each one is
new-order → authz (POST-as-GET) → finalize with a fresh P-256 CSR → certificate
download → ARI lookup of the new certificate, over a pool of accounts created before the
timed run and sized to stay inside certctl's per-account limits (100 new orders an hour,
5 outstanding). ``acme_order_limit`` breaks the concurrent-order limit on purpose and
checks that every 429 is certctl's RFC 7807 ``rateLimited`` document.

docs/acme-enrollment.md explains the figures; override ``certload_acme_profile`` to load
another (``trust_authenticated``) profile, or ``acme_issuing_ca`` to pin the CA.

Both iteration functions are module-level and their inputs plain data, so
``--certload-tx`` workers can run them. The account pool is never shipped: an
:class:`AccountPoolSpec` travels instead, and each process that sends load opens its own
pool from it before the timed run (the test's process in :func:`test_acme_enroll`, a
worker when the scenario arrives there, before it reports ready), so no account is used
by two processes and each stays inside certctl's per-account limits. Sampled
certificates are checked where they were issued, in the iteration, and the findings come
back as Counters (``acme_certificates_checked``, ``acme_certificate_problems`` tagged
with the problem, ``acme_chain_roots`` tagged with the root's fingerprint).
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

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
from pytest_certload.metrics import CounterSink, MetricStore, RateSink, TrendSink
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
#: certificates checked, in each process sending load: the first few, then every 25th,
#: at most 40
SAMPLE_EVERY = 25
SAMPLE_MAX = 40
#: what the sampled certificates' checks record
CHECKED = "acme_certificates_checked"
PROBLEMS = "acme_certificate_problems"
ISSUING_CA = "acme_chain_roots"

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


# -- the account pool: each process opens its own ------------------------------------------


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, one pool per copy
class AccountPoolSpec:
    """What an ACME account pool is made from; the pool itself never leaves its process.

    :meth:`open` reads the directory and creates ``size`` accounts in this process,
    before the timed run. A copy unpickled in a ``--certload-tx`` worker opens its own
    pool on arrival (before the worker reports ready), so every process has accounts of
    its own: two processes never share an account's order slots or hourly bucket.
    """

    directory_url: str
    headers: Mapping[str, str] = field(repr=False)
    size: int
    verify: bool | str
    alg: str = "ES256"

    def open(self) -> None:
        """Read the directory and create the accounts (blocking; not inside a run)."""

        async def setup() -> tuple[AcmeDirectory, AccountPool]:
            client = make_client("fast", verify=self.verify, timeout_ns=30_000_000_000)
            try:
                acme = await AcmeClient.open(
                    PlainTransport(client), self.directory_url, self.headers
                )
                pool = await AccountPool.create(
                    acme,
                    self.size,
                    alg=self.alg,
                    orders_per_hour=ORDERS_PER_HOUR,
                    concurrent_orders=CONCURRENT_ORDERS,
                )
                return acme.directory, pool
            finally:
                await client.aclose()

        _pools[self] = anyio.run(setup)

    def opened(self) -> tuple[AcmeDirectory, AccountPool]:
        """This process's directory and pool, opened by :meth:`open`."""
        try:
            return _pools[self]
        except KeyError:
            raise RuntimeError(
                f"the ACME account pool of {self.directory_url} was not opened in this "
                "process before the run: call spec.open() before certload.run() (a "
                "--certload-tx worker opens its copy when the scenario arrives)"
            ) from None

    def __reduce__(self) -> Any:
        return (_arrive, (self.directory_url, self.headers, self.size, self.verify, self.alg))


#: each process's open pools, by the spec they were opened from (never pickled)
_pools: weakref.WeakKeyDictionary[AccountPoolSpec, tuple[AcmeDirectory, AccountPool]] = (
    weakref.WeakKeyDictionary()
)


def _arrive(
    directory_url: str, headers: Mapping[str, str], size: int, verify: bool | str, alg: str
) -> AccountPoolSpec:
    """Unpickling an :class:`AccountPoolSpec` (in a worker) opens that process's pool."""
    spec = AccountPoolSpec(directory_url, headers, size, verify, alg)
    spec.open()
    return spec


def _pool_spec(
    certload: LoadTest, stack: StackInfo, headers: Mapping[str, str], profile: str, size: int
) -> AccountPoolSpec:
    """The pool spec of ``profile``, opened here unless ``--certload-tx`` workers send the
    load (each opens its own)."""
    spec = AccountPoolSpec(
        stack.certctl_url + acme_directory_path(profile),
        headers,
        size,
        certload.http_options().verify,
    )
    if not certload.settings.tx:
        spec.open()
    return spec


# -- acme_enroll ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Enrollments:
    """What ``acme_enroll`` needs: the pool spec, the metrics, the names, the pinned CA."""

    pool: AccountPoolSpec
    metrics: EnrollmentMetrics
    #: PEM of the CA every certificate must chain to (``None``: pin the chain's root)
    ca_pem: bytes | None = None
    prefix: str = "e"
    domain: str = "acme.certload.example.com"


@dataclass
class _Sampling:
    """One process's sampling of its issued certificates."""

    ca: x509.Certificate | None
    pinned: list[x509.Certificate] = field(default_factory=list)
    successes: int = 0
    checked: int = 0
    #: the first problems found in this process, in full
    messages: list[str] = field(default_factory=list)


#: each process's sampling state, by the inputs it samples for (never pickled)
_sampling: weakref.WeakKeyDictionary[Enrollments, _Sampling] = weakref.WeakKeyDictionary()


def _sampling_of(inputs: Enrollments) -> _Sampling:
    state = _sampling.get(inputs)
    if state is None:
        ca = x509.load_pem_x509_certificate(inputs.ca_pem) if inputs.ca_pem else None
        state = _sampling[inputs] = _Sampling(ca)
    return state


def _check_certificate(
    enrollment: Enrollment, pinned: list[x509.Certificate], ca: x509.Certificate | None
) -> list[tuple[str, str]]:
    """What is wrong with one issued certificate, as (kind, message) pairs (empty:
    nothing); the kind is a short fixed text, the message names the certificate."""
    where = f"certificate of {', '.join(enrollment.names)}"
    chain = enrollment.certificates()
    if len(chain) < 2 and ca is None:
        return [
            (
                "chain has no issuer",
                f"{where}: the chain has {len(chain)} certificate(s), no issuer to verify",
            )
        ]
    leaf = chain[0]
    issuer = ca if ca is not None else chain[-1]
    errors: list[tuple[str, str]] = []
    if ca is None:
        if issuer.subject != issuer.issuer:
            errors.append(
                (
                    "root not self-signed",
                    f"{where}: the chain's root {issuer.subject.rfc4514_string()} is not "
                    "self-signed",
                )
            )
        if not pinned:
            pinned.append(issuer)
        elif issuer != pinned[0]:
            errors.append(
                ("another CA", f"{where}: issued by another CA than this process's first sample")
            )
    try:
        leaf.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature) as exc:
        errors.append(
            (
                "does not verify",
                f"{where}: does not verify against {issuer.subject.rfc4514_string()}: {exc!r}",
            )
        )
    csr = x509.load_der_x509_csr(enrollment.csr_der)
    if leaf.public_key() != csr.public_key():
        errors.append(("not the CSR's key", f"{where}: its public key is not the CSR's"))
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = sorted(n.lower() for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        sans = []
    if sans != sorted(enrollment.names):
        errors.append(
            (
                "SANs differ from the CSR's",
                f"{where}: SANs {sans} differ from the CSR's {sorted(enrollment.names)}",
            )
        )
    now = dt.datetime.now(dt.UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        errors.append(
            (
                "not valid now",
                f"{where}: not valid now ({leaf.not_valid_before_utc} .. "
                f"{leaf.not_valid_after_utc})",
            )
        )
    window = enrollment.window
    if window is None:
        errors.append(("no ARI window", f"{where}: no ARI window"))
    elif not leaf.not_valid_before_utc <= window.start < window.end <= leaf.not_valid_after_utc:
        errors.append(
            (
                "ARI window outside validity",
                f"{where}: ARI window {window.start}..{window.end} is not inside its validity "
                f"{leaf.not_valid_before_utc}..{leaf.not_valid_after_utc}",
            )
        )
    return errors


def _sample(inputs: Enrollments, vu: VU, enrollment: Enrollment) -> None:
    """Check the first few, then every SAMPLE_EVERY-th certificate this process got, up
    to SAMPLE_MAX, after the enrollment was measured; record what was found."""
    state = _sampling_of(inputs)
    state.successes += 1
    keep = state.successes <= 3 or state.successes % SAMPLE_EVERY == 0
    if not keep or state.checked >= SAMPLE_MAX:
        return
    state.checked += 1
    vu.counter(CHECKED, 1)
    for kind, message in _check_certificate(enrollment, state.pinned, state.ca):
        vu.counter(PROBLEMS, 1, {"problem": kind})
        if len(state.messages) < 20:
            state.messages.append(message)
    chain = enrollment.certificates()
    if chain:
        root = state.ca if state.ca is not None else chain[-1]
        vu.counter(ISSUING_CA, 1, {"ca": root.fingerprint(hashes.SHA256()).hex()[:16]})


async def acme_enroll(inputs: Enrollments, vu: VU) -> None:
    directory, pool = inputs.pool.opened()
    metrics = inputs.metrics
    acme: AcmeClient | None = vu.state.get("acme")
    if acme is None:
        acme = vu.state["acme"] = AcmeClient(vu.http, directory, inputs.pool.headers)
    account = pool.lease()
    if account is None:
        vu.rate(metrics.ok_name, False)
        metrics.record_problem(vu, lease_problem())
        return
    names = UniqueNames.for_process(inputs.prefix, domain=inputs.domain)
    outstanding = True  # an interrupted enrollment may leave its order behind
    try:
        enrollment = await acme.enroll(account, [names.next()])
        outstanding = enrollment.order_outstanding
    finally:
        pool.release(account, order_outstanding=outstanding)
    metrics.record(vu, enrollment)
    if enrollment.ok:
        _sample(inputs, vu, enrollment)


def _prop(request: pytest.FixtureRequest, name: str, value: object) -> None:
    """A junit/JSON property, as the plugin records its own: ``user_properties`` are
    written as the testcase's ``<properties>`` under both junit families, while the
    ``record_property`` fixture warns under xunit2 (pytest's default since 6.0), and
    warnings are errors here."""
    request.node.user_properties.append((name, value))


def _count(store: MetricStore, name: str) -> int:
    sink = store.select(name, {})
    return int(sink.count) if isinstance(sink, CounterSink) else 0


def _tag_counts(store: MetricStore, name: str, tag: str) -> dict[str, int]:
    """``name``'s count by the value of ``tag`` (series without it left out)."""
    counts: dict[str, int] = {}
    for tags, sink in store.series(name).items():
        value = dict(tags).get(tag)
        if value is not None and isinstance(sink, CounterSink) and sink.count:
            counts[value] = counts.get(value, 0) + int(sink.count)
    return counts


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


def _certificate_problems(store: MetricStore, inputs: Enrollments) -> list[str]:
    """What the sampled certificates' checks found, from the run's (merged) Counters,
    with this process's first messages in full."""
    problems = [
        f"{count:,} sampled certificate(s): {kind}"
        for kind, count in sorted(_tag_counts(store, PROBLEMS, "problem").items())
    ]
    cas = _tag_counts(store, ISSUING_CA, "ca")
    if inputs.ca_pem is None and len(cas) > 1:
        seen = ", ".join(f"{fp}… ({n:,})" for fp, n in sorted(cas.items()))
        problems.append(f"the sampled certificates chain to {len(cas)} different CAs: {seen}")
    state = _sampling.get(inputs)  # none under --certload-tx: the workers checked them
    if problems and state is not None:
        problems += [f"e.g. {message}" for message in state.messages[:5]]
    return problems


@pytest.mark.certload(
    smoke_duration=SMOKE,
    tables=["acme_accounts", "acme_orders", "managed_certificates", "certificate_versions"],
)
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
    # beats ceil(10 * 5 / 5) = 10 for the concurrent cap, plus 20 %: 36 accounts, in
    # each process that sends load.
    duration_ns = certload.settings.duration_ns or 0
    size = pool_size(
        RATE,
        max(DURATION_S, duration_ns / 1e9),
        orders_per_hour=ORDERS_PER_HOUR,
        concurrent_orders=CONCURRENT_ORDERS,
        enrollment_budget_s=ENROLLMENT_BUDGET_S,
    )
    spec = _pool_spec(certload, certload_stack, certctl_headers, certload_acme_profile, size)
    _prop(request, "certload.acme_enroll.accounts", size)
    metrics = EnrollmentMetrics()
    ca_pem = acme_issuing_ca.public_bytes(Encoding.PEM) if acme_issuing_ca is not None else None
    inputs = Enrollments(spec, metrics, ca_pem)
    scenario = Scenario(
        "acme_enroll",
        partial(acme_enroll, inputs),
        ConstantArrivalRate(RATE, f"{DURATION_S}s", pre_allocated_vus=10, max_vus=50),
        graceful_stop="30s",
        metrics={**metrics.metrics, CHECKED: "counter", PROBLEMS: "counter", ISSUING_CA: "counter"},
    )
    try:
        result = certload_run(scenario, thresholds=THRESHOLDS)
    except AssertionError as breach:
        explained = metrics.explain(certload.results[-1].store) if certload.results else ""
        raise AssertionError(f"{explained}\n{breach}" if explained else str(breach)) from None
    for key, value in _step_properties(result, metrics):
        _prop(request, key, value)

    explained = metrics.explain(result.store)
    ok = result.store.select(metrics.ok_name, {})
    if explained and not (isinstance(ok, RateSink) and ok.trues):
        pytest.fail(explained, pytrace=False)
    checked = _count(result.store, CHECKED)
    assert checked, "no enrollment succeeded, so no certificate could be checked"
    _prop(request, "certload.acme_enroll.certificates_checked", checked)
    problems = _certificate_problems(result.store, inputs)
    assert not problems, f"problems in {checked} sampled certificates:\n" + "\n".join(
        f"  - {p}" for p in problems
    )


# -- acme_order_limit ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class OrderLimit:
    """What ``acme_order_limit`` needs: a one-account pool spec and the names."""

    pool: AccountPoolSpec
    prefix: str = "e"
    domain: str = "limit.certload.example.com"


async def acme_order_limit(inputs: OrderLimit, vu: VU) -> None:
    directory, pool = inputs.pool.opened()
    account = pool.accounts[0]
    acme: AcmeClient | None = vu.state.get("acme")
    if acme is None:
        acme = vu.state["acme"] = AcmeClient(vu.http, directory, inputs.pool.headers)
    names = UniqueNames.for_process(inputs.prefix, domain=inputs.domain)
    order = await acme.new_order(account, [names.next()], expected=(201, 429))
    if isinstance(order, AcmeProblem):
        if order.status == 429 and order.is_rate_limit_document:
            vu.counter("acme_429_shape_ok", 1)
            vu.counter("acme_429_shape_bad", 0)
        else:
            answer = f"{order.status} {order.media_type or '-'} {order.type}"
            vu.counter("acme_429_shape_ok", 0)
            vu.counter("acme_429_shape_bad", 1, {"answer": answer})
        if order.status == 429 and order.retry_after:
            vu.counter("acme_429_retry_after", 1)
    else:
        vu.counter("acme_orders_accepted", 1)
        # added every iteration (often 0), so the count thresholds always have samples
        vu.counter("acme_429_shape_ok", 0)
        vu.counter("acme_429_shape_bad", 0)


@pytest.mark.certload(smoke_duration="4s", tables=["acme_orders"])
def test_acme_order_limit(
    certload: LoadTest,
    certload_run: Callable[..., RunResult],
    certload_stack: StackInfo,
    certctl_headers: dict[str, str],
    certload_acme_profile: str,
    request: pytest.FixtureRequest,
) -> None:
    # One account per process, 20 new orders a second for 4 s, none finalized: the first
    # five fill certctl's concurrent-order cap (trust_authenticated orders stay "ready"),
    # and every later one must be refused with the RFC 7807 rateLimited document. 80
    # orders stay inside the hourly bucket (100), so only the concurrent cap is exercised.
    spec = _pool_spec(certload, certload_stack, certctl_headers, certload_acme_profile, 1)
    result = certload_run(
        Scenario(
            "acme_order_limit",
            partial(acme_order_limit, OrderLimit(spec)),
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
    n_accepted = _count(result.store, "acme_orders_accepted")
    n_limited = _count(result.store, "acme_429_shape_ok")
    _prop(request, "certload.acme_order_limit.accepted", n_accepted)
    _prop(request, "certload.acme_order_limit.rate_limited", n_limited)
    seen = _tag_counts(result.store, "acme_429_shape_bad", "answer")
    assert not seen, f"answers that are not certctl's ACME 429: {seen}"
    assert n_accepted >= CONCURRENT_ORDERS, (
        f"only {n_accepted} orders were accepted before the first 429; a fresh account "
        f"should get {CONCURRENT_ORDERS} (CERTCTL_ACME_SERVER_RATE_LIMIT_CONCURRENT_ORDERS)"
    )
