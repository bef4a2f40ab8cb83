"""Each tier's verdict flips when the system under test gets slow.

One local stack (PostgreSQL and the certctl reference double) is booted for the module;
every case runs one scenario of ``tests/load`` in a pytester subprocess against it as an
external stack, first as it is, then with the double's fault injection adding latency
beyond one threshold. The faulty run must fail naming exactly that threshold while the
others still pass. The connector tier's targets (nginx, apache, haproxy) have no fault
injection, so its case points ``nginx`` at a controlled-latency TLS server instead; its
percentiles need 100 samples at 100/min, so it runs once (slow), not twice. A last
case boots a double with certctl's API rate limiter on and checks the failure names the
CERTCTL_RATE_LIMIT_* settings.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from pytest_certload.stack import StackInfo
from pytest_certload.stack.local import LocalStack
from tests.support.servers import LatencyServer, generate_tls, latency_server

ROOT = Path(__file__).resolve().parents[2]
FAULTS = "/api/v1/_double/faults"
#: the runs below measure verdicts, not the generator: tolerate a busy shared machine
HEALTH = "lag_p99=400ms"


@dataclass(frozen=True)
class Stack:
    info: StackInfo
    bundle: Path  # CA bundle for the double and the slow connector target
    slow_target: LatencyServer


@contextmanager
def _local_stack(work: Path, **env: str) -> Iterator[StackInfo]:
    """PostgreSQL and the reference double (no connector targets), torn down on exit."""
    with start_blocking_portal(backend="asyncio") as portal:
        local = LocalStack(targets=(), base_dir=work, certctl_env=env)
        try:
            yield portal.call(local.start)
        finally:
            portal.call(local.stop)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("faults")
    tls = generate_tls(work / "target-tls")
    with _local_stack(work / "stack") as info:
        assert info.ca is not None
        bundle = work / "bundle.pem"
        bundle.write_text(info.ca.read_text() + Path(tls.ca).read_text())
        with latency_server(delay_ms=1200, tls=tls) as slow:
            yield Stack(info, bundle, slow)


@pytest.fixture
def faults(stack: Stack) -> Iterator[Any]:
    """``faults(rule, ...)`` puts rules in force on the double; cleared after the test."""
    client = httpx.Client(
        base_url=stack.info.certctl_url,
        verify=stack.info.verify(),
        headers={"Authorization": f"Bearer {stack.info.admin_token}"},
        timeout=10,
    )

    def apply(*rules: dict[str, Any]) -> None:
        response = client.post(FAULTS, json={"rules": list(rules)})
        assert response.status_code == 200, response.text

    try:
        yield apply
    finally:
        client.delete(FAULTS)
        client.close()


@pytest.fixture
def load_suite(pytester: pytest.Pytester, stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``tests/load`` (copied) in a subprocess against the module's stack (or
    ``info``, with the CA bundle ``ca``). The token and DSN go through the environment,
    as the docs recommend: a command line is visible to every local user."""
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "__init__.py").write_text("")
    shutil.copytree(ROOT / "tests" / "load", pytester.path / "tests" / "load")
    shutil.copytree(ROOT / "fixtures" / "sql", pytester.path / "fixtures" / "sql")

    def run(
        scenario: str,
        duration: str,
        *extra: str,
        info: StackInfo = stack.info,
        ca: Path = stack.bundle,
    ) -> pytest.RunResult:
        monkeypatch.setenv("CERTLOAD_CERTCTL_TOKEN", info.token)
        monkeypatch.setenv("CERTLOAD_CERTCTL_DSN", info.dsn or "")
        return pytester.runpytest_subprocess(
            "tests/load",
            "-k",
            scenario,
            f"--certload-duration={duration}",
            f"--certload-health={HEALTH}",
            f"--certctl-url={info.certctl_url}",
            f"--certload-ca={ca}",
            "--certload-progress=off",
            "-p",
            "no:cacheprovider",
            *extra,
            timeout=150,
        )

    return run


def _flips(
    load_suite: Any,
    faults: Any,
    scenario: str,
    duration: str,
    rule: dict[str, Any],
    breached: str,
    kept: list[str],
) -> None:
    baseline = load_suite(scenario, duration)
    baseline.assert_outcomes(passed=1)
    baseline.stdout.fnmatch_lines([f"*✓ {breached}: observed*", *(f"*✓ {k}*" for k in kept)])
    faults(rule)
    faulty = load_suite(scenario, duration)
    faulty.assert_outcomes(failed=1)
    faulty.stdout.fnmatch_lines(
        ["*1 threshold(s) breached:*", f"*✗ {breached}: observed*", *(f"*✓ {k}*" for k in kept)]
    )


def test_api_tier_flips_on_slow_listing(load_suite: Any, faults: Any) -> None:
    _flips(
        load_suite,
        faults,
        "list_certificates",
        "5s",
        {"method": "GET", "path": "/api/v1/certificates", "latency": 1000},
        "http_req_duration{scenario:list_certificates} p(95)<800",
        ["http_req_duration{scenario:list_certificates} p(99)<2000", "http_req_failed rate<0.01"],
    )


def test_acme_tier_flips_on_a_slow_directory(load_suite: Any, faults: Any) -> None:
    _flips(
        load_suite,
        faults,
        "acme_flow",
        "5s",
        {"method": "GET", "path": "/acme/profile/*/directory", "latency": 700},
        "directory_duration p(95)<500",
        ["new_nonce_duration p(95)<300", "renewal_info_duration p(95)<800"],
    )


def test_scale_tier_flips_on_slow_heartbeats(load_suite: Any, faults: Any) -> None:
    _flips(
        load_suite,
        faults,
        "agent_storm",
        "5s",
        {"method": "POST", "path": "/api/v1/agents/*/heartbeat", "latency": 700},
        "http_req_duration{scenario:agent_storm} p(95)<500",
        ["http_req_duration{scenario:agent_storm} p(99)<1000"],
    )


def test_connector_tier_fails_on_a_slow_handshake_target(load_suite: Any, stack: Stack) -> None:
    # 100/min: p(99) needs 100 samples, so at least 60 s; the target answers in 1.2 s
    result = load_suite(
        "nginx_handshake", "65s", f"--certload-targets=nginx={stack.slow_target.url}"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 threshold(s) breached:*",
            "*✗ http_req_duration{target_type:nginx} p(95)<1000: observed*",
            "*✓ http_req_duration{target_type:nginx} p(99)<3000*",
            "*✓ http_req_failed rate<0.01*",
        ]
    )
    assert stack.slow_target.stats()["requests"] >= 100


def test_a_rate_limited_certctl_fails_naming_the_limiter_settings(
    load_suite: Any, tmp_path: Path
) -> None:
    # certctl's limiter at 10 requests/s (burst 10) against 50 requests/s
    limits = {
        "CERTCTL_RATE_LIMIT_ENABLED": "true",
        "CERTCTL_RATE_LIMIT_RPS": "10",
        "CERTCTL_RATE_LIMIT_BURST": "10",
    }
    with _local_stack(tmp_path / "limited", **limits) as info:
        assert info.ca is not None
        result = load_suite("issuance_acceptance", "3s", info=info, ca=info.ca)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: * of * responses (*%, limit 5%) were certctl's API rate limiter "
            "(429, Retry-After: 1)*Start certctl with CERTCTL_RATE_LIMIT_ENABLED=false, or raise "
            "CERTCTL_RATE_LIMIT_RPS and CERTCTL_RATE_LIMIT_BURST*",
            "*✗ http_req_failed rate<0.01: observed*",
        ]
    )
