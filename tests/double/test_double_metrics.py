"""The double's ``GET /api/v1/metrics/prometheus`` against certctl's
(``internal/api/handler/metrics.go``; the counts as ``internal/service/stats.go`` makes
them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from double_support import ADMIN_KEY, USER_KEY, Double, Stack
from prometheus_client.parser import text_string_to_metric_families

PATH = "/api/v1/metrics/prometheus"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GAUGES = {"certctl_certificate_total", "certctl_agent_online", "certctl_job_pending"}


def scrape(client: httpx.Client) -> dict[str, float]:
    """One scrape, checked for status, media type and exposition syntax."""
    response = client.get(PATH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        assert family.type == "gauge", family
        assert family.documentation, family
        assert len(family.samples) == 1, family
        sample = family.samples[0]
        assert (sample.name, sample.labels) == (family.name, {})
        values[family.name] = sample.value
    assert set(values) == GAUGES
    return values


@pytest.fixture(scope="module")
def bare(stack: Stack) -> Iterator[Double]:
    """A double without the demo seed: no certificates, agents or jobs to start with,
    so every gauge is known exactly; one team and owner for creating certificates."""
    running = stack.start_double({"CERTCTL_DEMO_SEED": "false"})
    try:
        running.scalar("INSERT INTO teams (id, name) VALUES ('t-m', 'metrics') RETURNING id")
        running.scalar(
            "INSERT INTO owners (id, name, email, team_id)"
            " VALUES ('o-m', 'metrics', 'm@example.test', 't-m') RETURNING id"
        )
        yield running
    finally:
        running.stop()


@pytest.fixture
def bare_client(bare: Double) -> Iterator[httpx.Client]:
    with bare.client(ADMIN_KEY) as client:
        yield client


def create_cert(client: httpx.Client) -> str:
    cn = f"m-{uuid.uuid4().hex[:12]}.example.test"
    body: dict[str, Any] = {
        "name": cn,
        "common_name": cn,
        "owner_id": "o-m",
        "team_id": "t-m",
        "issuer_id": "iss-local",
        "renewal_policy_id": "rp-default",
        "environment": "production",
        "expires_at": "2099-01-01T00:00:00Z",
    }
    response = client.post("/api/v1/certificates", json=body)
    assert response.status_code == 201, response.text
    cert_id: str = response.json()["id"]
    return cert_id


# -- auth ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": f"Basic {ADMIN_KEY}"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong-key", "wrong-scheme", "no-token"],
)
def test_metrics_401_is_the_same_as_other_api_routes(
    double: Double, headers: dict[str, str]
) -> None:
    with double.client(None) as client:
        metrics = client.get(PATH, headers=headers)
        certificates = client.get("/api/v1/certificates", headers=headers)
    assert metrics.status_code == 401
    assert metrics.headers["content-type"] == "text/plain; charset=utf-8"
    assert metrics.text.startswith('{"error":"')
    assert metrics.text.endswith("}\n")
    assert (metrics.status_code, metrics.text, metrics.headers["content-type"]) == (
        certificates.status_code,
        certificates.text,
        certificates.headers["content-type"],
    )
    assert metrics.headers.get("www-authenticate") == certificates.headers.get("www-authenticate")
    assert "certctl_" not in metrics.text


@pytest.mark.parametrize("key", [ADMIN_KEY, USER_KEY])
def test_metrics_any_valid_key_gets_parsable_gauges(double: Double, key: str) -> None:
    with double.client(key) as client:
        scrape(client)


def test_head_on_metrics_is_405_json_without_body(admin: httpx.Client) -> None:
    response = admin.head(PATH)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/json"
    assert response.content == b""


# -- values on the demo seed -------------------------------------------------------------


def test_demo_seed_values_match_certctls_counting(admin: httpx.Client, double: Double) -> None:
    values = scrape(admin)
    assert values["certctl_certificate_total"] == double.scalar(
        "SELECT count(*) FROM managed_certificates"
    )
    assert values["certctl_certificate_total"] >= 32
    assert values["certctl_job_pending"] == double.scalar(
        "SELECT count(*) FROM jobs WHERE status IN"
        " ('Pending', 'AwaitingCSR', 'AwaitingApproval', 'Running')"
    )
    # the demo seed's lowercase 'pending'/'running' rows exist and are not counted
    assert double.scalar("SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')") > 0
    assert values["certctl_job_pending"] < double.scalar("SELECT count(*) FROM jobs")


# -- values that follow the database (a double of our own: exact numbers) ---------------


def test_certificate_total_follows_creates(bare_client: httpx.Client, bare: Double) -> None:
    start = scrape(bare_client)["certctl_certificate_total"]
    assert start == bare.scalar("SELECT count(*) FROM managed_certificates")
    create_cert(bare_client)
    create_cert(bare_client)
    assert scrape(bare_client)["certctl_certificate_total"] == start + 2
    # a rejected create (duplicate name is a DB error) changes nothing
    name = bare.scalar("SELECT name FROM managed_certificates LIMIT 1")
    duplicate = bare_client.post(
        "/api/v1/certificates",
        json={
            "name": name,
            "common_name": "dup.example.test",
            "owner_id": "o-m",
            "team_id": "t-m",
            "issuer_id": "iss-local",
            "renewal_policy_id": "rp-default",
        },
    )
    assert duplicate.status_code == 500
    assert scrape(bare_client)["certctl_certificate_total"] == start + 2


def test_job_pending_counts_waiting_and_running_jobs(
    bare_client: httpx.Client, bare: Double
) -> None:
    start = scrape(bare_client)["certctl_job_pending"]
    cert_id = create_cert(bare_client)
    # bulk-renew with agent keygen (the tests' setting) queues one AwaitingCSR job
    renew = bare_client.post("/api/v1/certificates/bulk-renew", json={"certificate_ids": [cert_id]})
    assert renew.status_code == 200, renew.text
    assert renew.json()["total_enqueued"] == 1
    assert scrape(bare_client)["certctl_job_pending"] == start + 1
    statuses = {
        "Pending": True,
        "AwaitingApproval": True,
        "Running": True,
        "pending": False,  # status checks are exact, as in certctl
        "Completed": False,
        "Failed": False,
        "Cancelled": False,
    }
    ids = [f"job-metrics-{uuid.uuid4().hex[:8]}" for _ in statuses]
    with bare.db() as conn:
        conn.execute(
            "INSERT INTO jobs (id, type, certificate_id, status)"
            " SELECT id, 'Renewal', %s, st FROM unnest(%s::text[], %s::text[]) AS j(id, st)",
            [cert_id, ids, list(statuses)],
        )
    counted = sum(statuses.values())
    assert scrape(bare_client)["certctl_job_pending"] == start + 1 + counted
    bare.scalar("DELETE FROM jobs WHERE id = ANY(%s) RETURNING 1", [ids])
    assert scrape(bare_client)["certctl_job_pending"] == start + 1


def test_agent_online_means_a_recent_heartbeat(bare_client: httpx.Client, bare: Double) -> None:
    start = scrape(bare_client)["certctl_agent_online"]
    response = bare_client.post(
        "/api/v1/agents", json={"name": f"m-{uuid.uuid4().hex[:8]}", "hostname": "m"}
    )
    assert response.status_code == 201, response.text
    agent_id = response.json()["id"]
    assert scrape(bare_client)["certctl_agent_online"] == start + 1
    # a stale heartbeat counts as offline even while the status column says Online
    bare.scalar(
        "UPDATE agents SET last_heartbeat_at = NOW() - INTERVAL '6 minutes'"
        " WHERE id = %s RETURNING status",
        [agent_id],
    )
    assert bare.scalar("SELECT status FROM agents WHERE id = %s", [agent_id]) == "Online"
    assert scrape(bare_client)["certctl_agent_online"] == start
    # a heartbeat brings it back
    beat = bare_client.post(f"/api/v1/agents/{agent_id}/heartbeat", json={})
    assert beat.status_code == 200, beat.text
    assert scrape(bare_client)["certctl_agent_online"] == start + 1
    # a status that is not Online does not matter, retirement does
    bare.scalar("UPDATE agents SET status = 'Offline' WHERE id = %s RETURNING 1", [agent_id])
    assert scrape(bare_client)["certctl_agent_online"] == start + 1
    bare.scalar("UPDATE agents SET retired_at = NOW() WHERE id = %s RETURNING 1", [agent_id])
    assert scrape(bare_client)["certctl_agent_online"] == start


def test_database_error_is_certctls_json_500(bare_client: httpx.Client, bare: Double) -> None:
    with bare.db() as conn:
        conn.execute("ALTER TABLE jobs RENAME TO jobs_hidden")
    try:
        response = bare_client.get(PATH)
    finally:
        with bare.db() as conn:
            conn.execute("ALTER TABLE jobs_hidden RENAME TO jobs")
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["message"] == "Failed to collect metrics"
    assert body["request_id"] == response.headers["x-request-id"]
    scrape(bare_client)
