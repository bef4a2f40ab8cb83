"""Fault injection: latency, errors, drops, stalls; runtime endpoint is admin only."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from double_support import ADMIN_KEY, Double, Stack

FAULTS = "/api/v1/_double/faults"


@pytest.fixture
def faulty(admin: httpx.Client) -> Iterator[httpx.Client]:
    """The admin client; faults are cleared afterwards whatever the test did."""
    try:
        yield admin
    finally:
        assert admin.delete(FAULTS).status_code == 200


def timed_get(client: httpx.Client, path: str) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.get(path)
    return time.perf_counter() - start, response


def test_fault_endpoint_is_admin_only(viewer: httpx.Client, double: Double) -> None:
    response = viewer.post(FAULTS, json={"rules": []})
    assert response.status_code == 403
    assert viewer.get(FAULTS).status_code == 403
    with double.client(None) as anonymous:
        assert anonymous.get(FAULTS).status_code == 401


def test_fixed_latency_is_added_to_matching_routes_only(faulty: httpx.Client) -> None:
    spec = {
        "rules": [{"method": "GET", "path": "/health", "latency": {"dist": "fixed", "ms": 500}}]
    }
    applied = faulty.post(FAULTS, json=spec)
    assert applied.status_code == 200, applied.text
    assert applied.json()["rules"][0]["latency"] == {"dist": "fixed", "ms": 500}
    slow, response = timed_get(faulty, "/health")
    fast, _ = timed_get(faulty, "/api/v1/version")
    assert response.status_code == 200
    assert slow >= 0.5
    assert fast < 0.4


def test_uniform_latency_with_glob(faulty: httpx.Client) -> None:
    spec = {
        "rules": [
            {
                "method": "*",
                "path": "/api/v1/*/check",
                "latency": {"dist": "uniform", "min_ms": 100, "max_ms": 150},
            }
        ]
    }
    assert faulty.post(FAULTS, json=spec).status_code == 200
    elapsed, response = timed_get(faulty, "/api/v1/auth/check")
    assert response.status_code == 200
    assert elapsed >= 0.1


def test_error_rate_returns_certctl_shaped_errors(faulty: httpx.Client) -> None:
    spec = {"rules": [{"path": "/api/v1/version", "error_rate": 1.0, "error_status": 503}]}
    assert faulty.post(FAULTS, json=spec).status_code == 200
    response = faulty.get("/api/v1/version")
    assert response.status_code == 503
    body = response.json()
    assert body == {
        "error": "Service Unavailable",
        "message": "injected fault",
        "request_id": response.headers["x-request-id"],
    }
    half = {"rules": [{"path": "/api/v1/version", "error_rate": 0.5}]}
    assert faulty.post(FAULTS, json=half).status_code == 200
    statuses = [faulty.get("/api/v1/version").status_code for _ in range(200)]
    assert 50 < statuses.count(500) < 150
    assert statuses.count(500) + statuses.count(200) == 200


def test_an_acme_shaped_error_is_certctls_problem_document(faulty: httpx.Client) -> None:
    # certctl's finalize answers this 500 (the known defect acme-finalize-500)
    finalize = "/acme/profile/*/order/*/finalize"
    rule = {"path": finalize, "error_rate": 1.0, "error_shape": "acme"}
    applied = faulty.post(FAULTS, json={"rules": [rule]})
    assert applied.status_code == 200, applied.text
    assert applied.json()["rules"][0]["error_shape"] == "acme"
    response = faulty.post("/acme/profile/prof-standard-tls/order/o-1/finalize", content=b"{}")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.content == (
        b'{"type":"urn:ietf:params:acme:error:serverInternal","detail":"ACME server error",'
        b'"status":500}'
    )
    detail = 'duplicate key value violates unique constraint "x_key"'
    rule.update(error_status=400, error_detail=detail)
    assert faulty.post(FAULTS, json={"rules": [rule]}).status_code == 200
    body = faulty.post("/acme/profile/p/order/o-1/finalize", content=b"{}").json()
    assert body == {"type": "urn:ietf:params:acme:error:malformed", "detail": detail, "status": 400}
    bad = faulty.post(FAULTS, json={"rules": [{"path": "/x", "error_shape": "rfc7807"}]})
    assert bad.status_code == 400
    assert "error_shape='rfc7807' is unknown; use 'certctl' or 'acme'" in bad.json()["message"]


def test_drop_aborts_the_response(faulty: httpx.Client, double: Double) -> None:
    spec = {"rules": [{"path": "/api/v1/version", "drop_rate": 1.0}]}
    assert faulty.post(FAULTS, json=spec).status_code == 200
    for http2 in (True, False):
        with double.client(http2=http2) as client, pytest.raises(httpx.TransportError):
            client.get("/api/v1/version")
    assert faulty.get("/health").status_code == 200


def test_stall_holds_in_flight_and_new_responses(faulty: httpx.Client, double: Double) -> None:
    slow = {"rules": [{"path": "/api/v1/auth/check", "latency": 300}]}
    assert faulty.post(FAULTS, json=slow).status_code == 200
    results: dict[str, float] = {}

    def in_flight() -> None:
        with double.client() as client:
            start = time.perf_counter()
            client.get("/api/v1/auth/check")
            results["in_flight"] = time.perf_counter() - start

    thread = threading.Thread(target=in_flight)
    thread.start()
    time.sleep(0.1)
    stalled = faulty.post(FAULTS, json={"rules": [], "stall_s": 1.0})
    assert stalled.status_code == 200  # the control endpoint itself is never stalled
    assert stalled.json()["stall_remaining_s"] > 0.5
    elapsed, response = timed_get(faulty, "/health")
    thread.join()
    assert response.status_code == 200
    assert elapsed >= 0.5
    assert results["in_flight"] >= 1.0


def test_bad_fault_spec_is_400(faulty: httpx.Client) -> None:
    bad = {"rules": [{"path": "/x", "latency": {"dist": "pareto"}}]}
    response = faulty.post(FAULTS, json=bad)
    assert response.status_code == 400
    assert "pareto" in response.json()["message"]


def test_faults_from_environment(stack: Stack) -> None:
    spec = '{"rules": [{"method": "GET", "path": "/health", "error_rate": 1, "error_status": 502}]}'
    double = stack.start_double({"CERTLOAD_DOUBLE_FAULTS": spec})
    try:
        with double.client(ADMIN_KEY) as client:
            assert client.get("/health").status_code == 502
            assert client.get(FAULTS).json()["rules"][0]["error_status"] == 502
            assert client.delete(FAULTS).status_code == 200
            assert client.get("/health").status_code == 200
    finally:
        double.stop()
