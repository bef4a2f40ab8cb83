"""Each tier's verdict flips when the system under test gets slow.

One local stack (PostgreSQL, the certctl reference double and the four connector
targets) is booted for the module; every case runs scenarios of ``tests/load`` in a
pytester subprocess against it as an external stack, first as it is, then with the
double's fault injection adding latency beyond one threshold. The faulty run must fail
naming exactly that threshold while the others still pass. The connector tier's targets
(nginx, apache, haproxy) have no fault injection, so its case points ``nginx`` at a
controlled-latency TLS server instead; its percentiles need 100 samples at 100/min, so
it runs once (slow), not twice. A case boots a double with certctl's API rate limiter on
and checks the failure names the CERTCTL_RATE_LIMIT_* settings.

The shared run ``k6`` (certctl's k6.js: the API pair and the four handshakes at once)
is checked here too: split over two ``--certload-tx`` workers with the listing slowed,
only ``test_list_certificates`` fails; the API pair overlaps in time; ``-k`` of one
scenario runs that one alone; and every other shipped scenario runs on two workers.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from pytest_certload.stack import TARGET_TYPES, StackInfo
from pytest_certload.stack.local import LocalStack
from tests.support.servers import LatencyServer, generate_tls, latency_server

ROOT = Path(__file__).resolve().parents[2]
FAULTS = "/api/v1/_double/faults"
#: the runs below measure verdicts, not the generator: tolerate a busy shared machine
HEALTH = "lag_p99=400ms,delay_p99=400ms"


@dataclass(frozen=True)
class Stack:
    info: StackInfo
    bundle: Path  # CA bundle for the double and the slow connector target
    slow_target: LatencyServer


@contextmanager
def _local_stack(work: Path, targets: Sequence[str] = (), **env: str) -> Iterator[StackInfo]:
    """PostgreSQL, the reference double and ``targets``, torn down on exit."""
    with start_blocking_portal(backend="asyncio") as portal:
        local = LocalStack(targets=tuple(targets), base_dir=work, certctl_env=env)
        try:
            yield portal.call(local.start)
        finally:
            portal.call(local.stop)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("faults")
    tls = generate_tls(work / "target-tls")
    with _local_stack(work / "stack", TARGET_TYPES) as info:
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
    ``info``, with the CA bundle ``ca``), selecting ``args`` (``-k``, ``-m``, options).
    The token and DSN go through the environment, as the docs recommend: a command line
    is visible to every local user."""
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "__init__.py").write_text("")
    shutil.copytree(ROOT / "tests" / "load", pytester.path / "tests" / "load")
    shutil.copytree(ROOT / "fixtures" / "sql", pytester.path / "fixtures" / "sql")

    def run(
        *args: str,
        info: StackInfo = stack.info,
        ca: Path = stack.bundle,
        timeout: float = 150,
    ) -> pytest.RunResult:
        monkeypatch.setenv("CERTLOAD_CERTCTL_TOKEN", info.token)
        monkeypatch.setenv("CERTLOAD_CERTCTL_DSN", info.dsn or "")
        return pytester.runpytest_subprocess(
            "tests/load",
            *args,
            f"--certload-health={HEALTH}",
            f"--certctl-url={info.certctl_url}",
            f"--certload-ca={ca}",
            "--certload-progress=off",
            "-p",
            "no:cacheprovider",
            timeout=timeout,
        )

    return run


def _one(load_suite: Any, scenario: str, duration: str, *extra: str, **kwargs: Any) -> Any:
    """One scenario of ``tests/load`` (``-k``) for ``duration``."""
    return load_suite("-k", scenario, f"--certload-duration={duration}", *extra, **kwargs)


def _targets(stack: Stack) -> str:
    """``--certload-targets`` for the module stack's four connector targets."""
    return "--certload-targets=" + ",".join(f"{t}={u}" for t, u in stack.info.targets.items())


def _flips(
    load_suite: Any,
    faults: Any,
    scenario: str,
    duration: str,
    rule: dict[str, Any],
    breached: str,
    kept: list[str],
) -> None:
    baseline = _one(load_suite, scenario, duration)
    baseline.assert_outcomes(passed=1)
    baseline.stdout.fnmatch_lines([f"*✓ {breached}: observed*", *(f"*✓ {k}*" for k in kept)])
    faults(rule)
    faulty = _one(load_suite, scenario, duration)
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
    result = _one(
        load_suite, "nginx_handshake", "65s", f"--certload-targets=nginx={stack.slow_target.url}"
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
        result = _one(load_suite, "issuance_acceptance", "3s", info=info, ca=info.ca)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: * of * responses (*%, limit 5%; POST *) were certctl's API rate "
            "limiter "
            "(429, Retry-After: 1)*Start certctl with CERTCTL_RATE_LIMIT_ENABLED=false, or raise "
            "CERTCTL_RATE_LIMIT_RPS and CERTCTL_RATE_LIMIT_BURST*",
            "*✗ http_req_failed rate<0.01: observed*",
        ]
    )


def _summary(pytester: pytest.Pytester, out: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / out / "summary.json").read_text())
    return data


def _run_file(pytester: pytest.Pytester, out: str, test: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / out / test["run_file"]).read_text())
    return data


K6_TESTS = {
    "issuance_acceptance": "tests/load/test_api.py::test_issuance_acceptance",
    "list_certificates": "tests/load/test_api.py::test_list_certificates",
    **{
        f"{t}_handshake": f"tests/load/test_connector.py::test_handshake[{t}_handshake]"
        for t in ("nginx", "apache", "haproxy", "f5")
    },
}


def test_k6_run_on_two_workers_fails_only_the_slowed_scenario(
    load_suite: Any, faults: Any, stack: Stack, pytester: pytest.Pytester
) -> None:
    # certctl's k6.js as one shared run, split over two workers, the listing slowed
    # beyond its p(95)<800: one verdict per test, and only the listing's test fails
    faults({"method": "GET", "path": "/api/v1/certificates", "latency": 1000})
    result = load_suite(
        "-m",
        "api or connector",
        "--certload-profile=smoke",
        "--certload-tx=2*popen",
        _targets(stack),
        "--certload-output-dir=k6-out",
        "--junitxml=k6.xml",
        timeout=300,
    )
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 threshold(s) breached:*",
            "*✗ http_req_duration{scenario:list_certificates} p(95)<800: observed*",
        ]
    )
    cases = ET.parse(pytester.path / "k6.xml").getroot().iter("testcase")
    outcomes = {
        f"{c.get('classname', '').replace('.', '/')}.py::{c.get('name')}": (
            "failed" if c.find("failure") is not None or c.find("error") is not None else "passed"
        )
        for c in cases
    }
    assert outcomes == {
        nodeid: "failed" if name == "list_certificates" else "passed"
        for name, nodeid in K6_TESTS.items()
    }
    tests = {t["nodeid"]: t for t in _summary(pytester, "k6-out")["tests"]}
    assert set(tests) == set(K6_TESTS.values())
    for name, nodeid in K6_TESTS.items():
        test = tests[nodeid]
        assert test["group"] == "k6"
        assert sorted(test["ran_with"]) == sorted(set(K6_TESTS) - {name})
        assert list(test["scenarios"]) == [name]  # its own share, judged on its own
        figures = test["scenarios"][name]
        shares = figures["workers"]
        assert set(shares) == {"tx0", "tx1"}, (name, shares)
        assert all(shares.values()), (name, shares)
        assert figures["requests"] == sum(shares.values()), (name, figures)
        verdict = "breached" if name == "list_certificates" else "passed"
        assert test["verdict"] == verdict, (name, test["verdict"], test["thresholds"])


def test_the_api_pair_overlaps_and_k_runs_one_scenario(
    load_suite: Any, pytester: pytest.Pytester
) -> None:
    # 8 s each: issuance_acceptance runs 0-8 s, list_certificates 5-13 s (k6's stagger)
    pair = load_suite("-m", "api", "--certload-duration=8s", "--certload-output-dir=pair")
    pair.assert_outcomes(passed=2)
    tests = {t["nodeid"]: t for t in _summary(pytester, "pair")["tests"]}
    issuance = _run_file(pytester, "pair", tests[K6_TESTS["issuance_acceptance"]])
    listing = _run_file(pytester, "pair", tests[K6_TESTS["list_certificates"]])
    assert issuance["ran_with"] == ["list_certificates"]
    assert listing["ran_with"] == ["issuance_acceptance"]
    assert issuance["result"]["started_at"] == listing["result"]["started_at"]  # one run
    first = issuance["result"]["scenarios"]["issuance_acceptance"]
    second = listing["result"]["scenarios"]["list_certificates"]
    assert first["start_offset_ns"] < second["start_offset_ns"]
    overlap_ns = first["start_offset_ns"] + first["elapsed_ns"] - second["start_offset_ns"]
    assert overlap_ns >= 2_000_000_000, (first, second)  # 3 s planned

    alone = _one(load_suite, "list_certificates", "5s", "--certload-output-dir=alone")
    alone.assert_outcomes(passed=1)
    (test,) = _summary(pytester, "alone")["tests"]
    run = _run_file(pytester, "alone", test)
    assert test["nodeid"] == K6_TESTS["list_certificates"]
    assert list(run["result"]["scenarios"]) == ["list_certificates"]
    assert run["ran_with"] == []
    assert run["group"] == "k6"


def test_every_other_shipped_scenario_runs_on_two_workers(
    load_suite: Any, pytester: pytest.Pytester
) -> None:
    # the iteration functions are imported by name on each worker and their inputs
    # arrive as data; 1 s is too short for most percentiles, so only the split is checked
    result = load_suite(
        "-m",
        "acme or scale",
        "--certload-duration=1s",
        "--certload-tx=2*popen",
        "--certload-output-dir=shipped",
        timeout=240,
    )
    result.stdout.no_fnmatch_line("*cannot be shipped*")
    tests = {t["nodeid"].rsplit("::", 1)[1]: t for t in _summary(pytester, "shipped")["tests"]}
    scenarios = {
        "test_acme_flow": "acme_flow",
        "test_acme_enroll": "acme_enroll",
        "test_acme_order_limit": "acme_order_limit",
        "test_bulk_renewal": "bulk_renewal",
        "test_acme_burst": "acme_burst",
        "test_agent_storm": "agent_storm",
    }
    assert set(tests) == set(scenarios)
    for test, name in scenarios.items():
        shares = tests[test]["scenarios"][name]["workers"]
        assert set(shares) == {"tx0", "tx1"}, (test, shares)
        assert all(shares.values()), (test, shares)
