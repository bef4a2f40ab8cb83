"""The double's REST API against certctl's (``internal/api/handler/health.go``,
``internal/api/handler/*.go``, ``internal/api/router/router.go``)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest
from double_support import ADMIN_KEY, Double

CERT_KEYS = {
    "id",
    "name",
    "common_name",
    "sans",
    "environment",
    "owner_id",
    "team_id",
    "issuer_id",
    "target_ids",
    "renewal_policy_id",
    "status",
    "expires_at",
    "tags",
    "created_at",
    "updated_at",
}


def cert_body(**overrides: Any) -> dict[str, Any]:
    cn = f"lt-{uuid.uuid4().hex[:12]}.example.test"
    body: dict[str, Any] = {
        "name": cn,
        "common_name": cn,
        "owner_id": "o-alice",
        "team_id": "t-platform",
        "issuer_id": "iss-local",
        "renewal_policy_id": "rp-standard",
        "environment": "production",
        "sans": [cn],
        "expires_at": "2099-01-01T00:00:00Z",
    }
    body.update(overrides)
    return body


def assert_error(response: httpx.Response, status: int, message: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "message", "request_id"}
    assert body["request_id"] == response.headers["x-request-id"]
    if message is not None:
        assert body["message"] == message


# -- health, auth, version -----------------------------------------------------------


def test_health_and_ready_need_no_auth(double: Double) -> None:
    with double.client(None) as client:
        health = client.get("/health")
        ready = client.get("/ready")
        info = client.get("/api/v1/auth/info")
        version = client.get("/api/v1/version")
    assert (health.status_code, health.json()) == (200, {"status": "healthy"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "db": "reachable"})
    assert info.json() == {"auth_type": "api-key", "required": True}
    assert version.json()["version"].startswith("double-")
    assert set(version.json()) == {"version", "commit", "modified", "build_time", "go_version"}
    assert uuid.UUID(health.headers["x-request-id"])


def test_auth_check_reports_key_name_and_admin_flag(
    admin: httpx.Client, viewer: httpx.Client
) -> None:
    assert admin.get("/api/v1/auth/check").json() == {
        "status": "authenticated",
        "user": "loadtest",
        "admin": True,
    }
    assert viewer.get("/api/v1/auth/check").json()["admin"] is False


@pytest.mark.parametrize(
    ("header", "error", "www_authenticate"),
    [
        (None, "Authorization header required", True),
        ("Token abc", "Invalid Authorization header format, expected: Bearer <token>", False),
        ("Bearer nope", "Invalid API key", False),
        ("Bearer legacy-secret", "Invalid API key", False),  # named keys replace the secret
    ],
)
def test_401_bodies_are_json_looking_text(
    double: Double, header: str | None, error: str, www_authenticate: bool
) -> None:
    with double.client(None) as client:
        headers = {"Authorization": header} if header else {}
        response = client.get("/api/v1/certificates", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == f'{{"error":"{error}"}}\n'
    assert ("www-authenticate" in response.headers) is www_authenticate


def test_unknown_route_and_wrong_method_are_go_plain_text(admin: httpx.Client) -> None:
    missing = admin.get("/api/v1/nope")
    wrong = admin.delete("/api/v1/certificates")
    assert (missing.status_code, missing.text) == (404, "404 page not found\n")
    assert (wrong.status_code, wrong.text) == (405, "Method Not Allowed\n")
    assert "GET" in wrong.headers["allow"]
    for _ in range(3):  # headers must not pile up across requests
        again = admin.get("/api/v1/nope")
        assert again.headers.get_list("x-frame-options") == ["DENY"]


def test_audit_row_written_per_authenticated_request(admin: httpx.Client, double: Double) -> None:
    marker = f"/api/v1/certificates/audit-{uuid.uuid4().hex}"
    assert admin.get(marker).status_code == 404
    import time

    deadline = time.monotonic() + 5
    count = 0
    while time.monotonic() < deadline and count == 0:
        count = double.scalar(
            "SELECT count(*) FROM audit_events WHERE resource_id = %s AND action = 'api_get'"
            " AND actor = 'loadtest' AND resource_type = 'api'",
            [marker],
        )
        time.sleep(0.05)
    assert count == 1
    with pytest.raises(psycopg.Error, match=r"append-only|permission denied"):
        double.scalar("DELETE FROM audit_events WHERE resource_id = %s", [marker])


def test_demo_seed_has_the_rows_scenarios_name(double: Double) -> None:
    expected = {
        "teams": ["t-platform", "t-security", "t-payments", "t-frontend", "t-data", "t-devops"],
        "owners": ["o-alice", "o-bob", "o-carol", "o-dave", "o-eve", "o-frank"],
        "renewal_policies": ["rp-default", "rp-standard", "rp-urgent", "rp-manual"],
        "certificate_profiles": [
            "prof-standard-tls",
            "prof-internal-mtls",
            "prof-short-lived",
            "prof-high-security",
            "prof-smime",
        ],
        "agents": ["server-scanner", "cloud-aws-sm", "cloud-azure-kv", "cloud-gcp-sm"],
        "issuers": ["iss-local"],
    }
    for table, ids in expected.items():
        found = double.scalar(f"SELECT count(*) FROM {table} WHERE id = ANY(%s)", [ids])
        assert found == len(ids), table
    assert (
        double.scalar("SELECT count(*) FROM owners WHERE id = 'o-alice' AND team_id = 't-platform'")
        == 1
    )
    assert double.scalar("SELECT count(*) FROM issuers WHERE enabled") == 7
    assert double.scalar("SELECT count(*) FROM managed_certificates WHERE id LIKE 'mc-%%'") >= 32
    assert (
        double.scalar(
            "SELECT count(*) FROM managed_certificates WHERE id LIKE 'mc-%%' AND expires_at IS NULL"
        )
        == 0
    )
    assert (
        double.scalar(
            "SELECT count(*) FROM certificate_profiles"
            " WHERE acme_auth_mode <> 'trust_authenticated'"
        )
        == 0
    )


# -- certificates --------------------------------------------------------------------


def test_create_certificate_returns_201_with_certctl_keys(admin: httpx.Client) -> None:
    body = cert_body(tags={"team": "load"}, target_ids=["tgt-nginx-prod"])
    response = admin.post("/api/v1/certificates", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) >= CERT_KEYS
    assert created["id"].startswith("cert-")
    assert created["status"] == "Pending"
    assert created["target_ids"] is None  # accepted but not persisted
    assert created["expires_at"] == "2099-01-01T00:00:00Z"
    assert "certificate_profile_id" not in created
    assert "source" not in created
    fetched = admin.get(f"/api/v1/certificates/{created['id']}").json()
    assert fetched["target_ids"] == []
    assert fetched["tags"] == {"team": "load"}


def test_create_without_expires_at_stores_zero_time(admin: httpx.Client) -> None:
    body = cert_body()
    del body["expires_at"]
    created = admin.post("/api/v1/certificates", json=body).json()
    assert created["expires_at"] == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "field",
    ["name", "common_name", "owner_id", "team_id", "issuer_id", "renewal_policy_id"],
)
def test_create_missing_required_field_is_400(
    admin: httpx.Client, double: Double, field: str
) -> None:
    body = cert_body()
    del body[field]
    assert_error(admin.post("/api/v1/certificates", json=body), 400, f"{field} is required")


@pytest.mark.parametrize(
    "common_name", ["bad host.example", "-lead.example", "a..b", "x" * 254, "under_ok?.x"]
)
def test_create_bad_common_name_is_400(admin: httpx.Client, common_name: str) -> None:
    response = admin.post("/api/v1/certificates", json=cert_body(common_name=common_name))
    assert_error(response, 400)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"name": 5}', b'{"expires_at": "tomorrow"}', b'{"sans": "x"}'],
)
def test_create_bad_json_is_400_invalid_body(admin: httpx.Client, content: bytes) -> None:
    response = admin.post("/api/v1/certificates", content=content)
    assert_error(response, 400, "Invalid request body")


def test_oversized_body_is_400_not_413(double: Double, stack: Any) -> None:
    small = stack.start_double({"CERTCTL_MAX_BODY_SIZE": "2048"})
    try:
        with small.client(ADMIN_KEY) as client:
            body = cert_body(tags={"pad": "x" * 4096})
            response = client.post("/api/v1/certificates", json=body)
            assert_error(response, 400, "Invalid request body")
            assert client.post("/api/v1/certificates", json=cert_body()).status_code == 201
        assert small.scalar("SELECT count(*) FROM managed_certificates WHERE tags ? 'pad'") == 0
    finally:
        small.stop()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("owner_id", "o-nobody"),
        ("team_id", "t-nobody"),
        ("issuer_id", "iss-nobody"),
        ("renewal_policy_id", "rp-nobody"),
        ("certificate_profile_id", "prof-nobody"),
        ("environment", "e" * 51),
    ],
)
def test_create_db_rejection_is_500_and_writes_nothing(
    admin: httpx.Client, double: Double, field: str, value: str
) -> None:
    body = cert_body(**{field: value})
    response = admin.post("/api/v1/certificates", json=body)
    assert_error(response, 500, "Failed to create certificate")
    assert (
        double.scalar("SELECT count(*) FROM managed_certificates WHERE name = %s", [body["name"]])
        == 0
    )


def test_duplicate_name_is_500(admin: httpx.Client) -> None:
    body = cert_body()
    assert admin.post("/api/v1/certificates", json=body).status_code == 201
    again = admin.post("/api/v1/certificates", json=dict(body, common_name="other.example.test"))
    assert_error(again, 500, "Failed to create certificate")


def test_list_pages_filters_and_falls_back_to_50(admin: httpx.Client) -> None:
    listed = admin.get("/api/v1/certificates", params={"per_page": 5, "page": 2}).json()
    assert set(listed) == {"data", "total", "page", "per_page"}
    assert (listed["page"], listed["per_page"], len(listed["data"])) == (2, 5, 5)
    assert listed["total"] >= 32
    assert set(listed["data"][0]) >= CERT_KEYS
    for bad in ("501", "0", "abc"):
        assert admin.get("/api/v1/certificates", params={"per_page": bad}).json()["per_page"] == 50
    active = admin.get(
        "/api/v1/certificates", params={"status": "Active", "team_id": "t-platform"}
    ).json()
    assert active["data"]
    assert all(c["status"] == "Active" and c["team_id"] == "t-platform" for c in active["data"])
    assert admin.get("/api/v1/certificates", params={"status": "active"}).json()["total"] == 0
    by_name = admin.get("/api/v1/certificates", params={"sort": "-name", "per_page": 500}).json()
    names = [c["name"] for c in by_name["data"]]
    assert names == sorted(names, reverse=True)
    only = admin.get("/api/v1/certificates", params={"fields": "id,status"}).json()
    assert set(only["data"][0]) == {"id", "status"}


def test_cursor_paging_terminates(admin: httpx.Client) -> None:
    seen: list[str] = []
    cursor = "start"
    for _ in range(100):
        page = admin.get("/api/v1/certificates", params={"cursor": cursor, "page_size": 10}).json()
        assert set(page) == {"data", "total", "next_cursor", "page_size"}
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert not cursor
    assert len(seen) == len(set(seen)) == page["total"]


def test_get_unknown_certificate_is_404(admin: httpx.Client) -> None:
    assert_error(admin.get("/api/v1/certificates/mc-nope"), 404, "Certificate not found")


# -- bulk renew / revoke -------------------------------------------------------------


def test_bulk_renew_ids_mode_flips_status_and_queues_awaiting_csr_jobs(
    admin: httpx.Client, double: Double
) -> None:
    first = admin.post("/api/v1/certificates", json=cert_body()).json()
    zero = cert_body()
    del zero["expires_at"]
    second = admin.post("/api/v1/certificates", json=zero).json()
    ids = [first["id"], second["id"], "mc-does-not-exist"]
    result = admin.post("/api/v1/certificates/bulk-renew", json={"certificate_ids": ids})
    assert result.status_code == 200, result.text
    body = result.json()
    assert {k: body[k] for k in body if k.startswith("total_")} == {
        "total_matched": 2,
        "total_enqueued": 2,
        "total_skipped": 0,
        "total_failed": 0,
    }
    assert "errors" not in body
    jobs = {j["certificate_id"]: j["job_id"] for j in body["enqueued_jobs"]}
    job = admin.get(f"/api/v1/jobs/{jobs[first['id']]}").json()
    assert (job["type"], job["status"], job["max_attempts"]) == ("Renewal", "AwaitingCSR", 3)
    assert admin.get(f"/api/v1/jobs/{jobs[second['id']]}").json()["type"] == "Issuance"
    status = admin.get(f"/api/v1/certificates/{first['id']}").json()["status"]
    assert status == "RenewalInProgress"
    again = admin.post("/api/v1/certificates/bulk-renew", json={"certificate_ids": ids}).json()
    assert (again["total_matched"], again["total_skipped"], again["total_enqueued"]) == (2, 2, 0)
    assert "enqueued_jobs" not in again


def test_bulk_renew_criteria_mode_caps_at_50(admin: httpx.Client, double: Double) -> None:
    team = f"t-bulk-{uuid.uuid4().hex[:8]}"
    with double.db() as conn:
        conn.execute("INSERT INTO teams (id, name) VALUES (%s, %s)", [team, team])
        conn.execute(
            "INSERT INTO managed_certificates (id, name, common_name, environment, owner_id,"
            " team_id, issuer_id, renewal_policy_id, status, expires_at, created_at)"
            " SELECT %s || '-' || g, %s || '-' || g, 'bulk.example.test', 'production',"
            " 'o-alice', %s, 'iss-local', 'rp-standard', 'Active', NOW() + INTERVAL '90 days',"
            " NOW() - g * INTERVAL '1 second' FROM generate_series(1, 60) g",
            [team, team, team],
        )
    body = admin.post("/api/v1/certificates/bulk-renew", json={"team_id": team}).json()
    assert (body["total_matched"], body["total_enqueued"]) == (50, 50)
    renewed = {j["certificate_id"] for j in body["enqueued_jobs"]}
    assert renewed == {f"{team}-{g}" for g in range(11, 61)}  # the 50 oldest


def test_bulk_renew_needs_a_criterion(admin: httpx.Client) -> None:
    response = admin.post("/api/v1/certificates/bulk-renew", json={"filter": {"team_id": "x"}})
    assert_error(response, 400)
    assert response.json()["message"].startswith("At least one filter criterion is required")


def test_bulk_revoke_is_admin_only_before_parsing(viewer: httpx.Client) -> None:
    response = viewer.post("/api/v1/certificates/bulk-revoke", content=b"{broken")
    assert_error(response, 403, "Bulk revocation requires admin privileges")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"certificate_ids": ["mc-api-prod"]}, "reason is required"),
        ({"certificate_ids": ["mc-api-prod"], "reason": "KeyCompromise"}, None),
        ({"reason": "superseded"}, None),
    ],
)
def test_bulk_revoke_rejects_bad_bodies(
    admin: httpx.Client, payload: dict[str, Any], message: str | None
) -> None:
    assert_error(admin.post("/api/v1/certificates/bulk-revoke", json=payload), 400, message)


def test_bulk_revoke_needs_certificate_versions(admin: httpx.Client, double: Double) -> None:
    fresh = admin.post("/api/v1/certificates", json=cert_body()).json()
    ids = [fresh["id"], "mc-edge-eu", "mc-compromised"]
    response = admin.post(
        "/api/v1/certificates/bulk-revoke", json={"certificate_ids": ids, "reason": "superseded"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in body if k != "errors"} == {
        "total_matched": 3,
        "total_revoked": 1,
        "total_skipped": 1,
        "total_failed": 1,
    }
    assert body["errors"][0]["certificate_id"] == fresh["id"]
    assert body["errors"][0]["error"].startswith("failed to get certificate version")
    revoked = admin.get("/api/v1/certificates/mc-edge-eu").json()
    assert (revoked["status"], revoked["revocation_reason"]) == ("Revoked", "superseded")
    assert "revoked_at" in revoked
    assert (
        double.scalar(
            "SELECT count(*) FROM certificate_revocations WHERE certificate_id = 'mc-edge-eu'"
        )
        == 1
    )
    assert admin.get(f"/api/v1/certificates/{fresh['id']}").json()["status"] == "Pending"


# -- agents and jobs -----------------------------------------------------------------


def test_register_agent_ignores_client_id(admin: httpx.Client, double: Double) -> None:
    name = f"agent-{uuid.uuid4().hex[:8]}"
    response = admin.post(
        "/api/v1/agents",
        json={"id": "mine", "name": name, "hostname": "h1", "os": "linux", "version": "1.0"},
    )
    assert response.status_code == 201, response.text
    agent = response.json()
    assert agent["id"].startswith("agent-")
    assert agent["id"] != "mine"
    assert set(agent) == {
        "id",
        "name",
        "hostname",
        "status",
        "last_heartbeat_at",
        "registered_at",
        "os",
        "architecture",
        "ip_address",
        "version",
    }
    assert agent["status"] == "Online"
    duplicate = admin.post("/api/v1/agents", json={"name": name, "hostname": "h2"})
    assert_error(duplicate, 409, "Agent with this name already exists")
    assert double.scalar("SELECT count(*) FROM agents WHERE name = %s", [name]) == 1
    listed = admin.get("/api/v1/agents", params={"per_page": 500}).json()
    assert listed["data"][0]["id"] == agent["id"]  # newest registered first


@pytest.mark.parametrize(
    "payload", [{"hostname": "h"}, {"name": "n"}, {"name": "x" * 129, "hostname": "h"}]
)
def test_register_agent_validation(admin: httpx.Client, payload: dict[str, str]) -> None:
    assert_error(admin.post("/api/v1/agents", json=payload), 400)


def test_heartbeat_updates_metadata_only_when_non_empty(
    admin: httpx.Client, double: Double
) -> None:
    name = f"agent-{uuid.uuid4().hex[:8]}"
    agent = admin.post(
        "/api/v1/agents", json={"name": name, "hostname": "h1", "version": "1.0", "os": "linux"}
    ).json()
    url = f"/api/v1/agents/{agent['id']}/heartbeat"
    with double.db() as conn:
        conn.execute("UPDATE agents SET status = 'Offline' WHERE id = %s", [agent["id"]])
    response = admin.post(url, json={"version": "2.0", "os": ""})
    assert (response.status_code, response.json()) == (200, {"status": "heartbeat_recorded"})
    assert admin.post(url, content=b"not json").status_code == 200
    fetched = admin.get(f"/api/v1/agents/{agent['id']}").json()
    assert (fetched["version"], fetched["os"], fetched["status"]) == ("2.0", "linux", "Online")


def test_heartbeat_retired_is_410(admin: httpx.Client, double: Double) -> None:
    name = f"agent-{uuid.uuid4().hex[:8]}"
    agent = admin.post("/api/v1/agents", json={"name": name, "hostname": "h"}).json()
    with double.db() as conn:
        conn.execute("UPDATE agents SET retired_at = NOW() WHERE id = %s", [agent["id"]])
    assert_error(admin.post(f"/api/v1/agents/{agent['id']}/heartbeat"), 410)


def test_jobs_list_filters_and_omits_empty_keys(admin: httpx.Client) -> None:
    listed = admin.get("/api/v1/jobs", params={"status": "completed", "per_page": 500}).json()
    assert set(listed) == {"data", "total", "page", "per_page"}
    assert listed["data"]
    assert all(j["status"] == "completed" for j in listed["data"])
    job = admin.get("/api/v1/jobs/job-ren-150").json()
    assert "agent_id" not in job
    assert "completed_at" not in job
    assert {"id", "type", "certificate_id", "status", "attempts", "max_attempts"} <= set(job)
    assert_error(admin.get("/api/v1/jobs/job-nope"), 404, "Job not found")
