"""Golden answers: what a real certctl build (demo seed) answered where the double used to
differ (issue 19), one test per case. Each asserts certctl's status, problem type or error
body and key set, or, where the double keeps a documented deviation, the deviation.

The causes are certctl's, cited by file and function in docs/double.md ("How the double
differs from certctl").
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from double_support import (
    ADMIN_KEY,
    AcmeTestClient,
    Double,
    assert_problem,
    b64u,
    issue,
    make_csr,
)

from pytest_certload.engine import (
    VU,
    ConstantArrivalRate,
    HTTPOptions,
    RunOptions,
    Scenario,
    run_sync,
)
from pytest_certload.engine.causes import KNOWN_ANSWERS

PROBLEM_KEYS = {"type", "detail", "status"}
SUBPROBLEM_KEYS = {"type", "detail", "status", "identifier"}
ERROR_KEYS = {"error", "message", "request_id"}
UNKNOWN_PROFILE = "prof-certctl-has-none"

#: certctl's demo-seed ids (migrations/seed_demo.sql) the double seeds too
CERTCTL_CERTIFICATES = [
    "mc-admin-prod", "mc-api-dev", "mc-api-prod", "mc-api-stg", "mc-auth-prod",
    "mc-blog-prod", "mc-cdn-prod", "mc-ci-prod", "mc-compromised", "mc-consul-prod",
    "mc-dash-prod", "mc-data-prod", "mc-docs-prod", "mc-edge-eu", "mc-grafana-prod",
    "mc-grpc-prod", "mc-k8s-ingress", "mc-legacy-prod", "mc-mail-prod", "mc-old-api",
    "mc-pay-prod", "mc-pay-stg", "mc-search-prod", "mc-shop-prod", "mc-smime-bob",
    "mc-status-prod", "mc-vault-prod", "mc-vpn-prod", "mc-web-prod", "mc-web-stg",
    "mc-wiki-prod", "mc-wildcard-prod",
]  # fmt: skip
CERTCTL_JOBS = [
    "job-approval-01", "job-approval-02",
    *(f"job-dep-{n}" for n in (
        "001", "010", "011", "020", "040", "041", "050", "060", "070", "075", "080", "085",
        "090", "091", "093", "100", "105", "110", "111", "130",
    )),
    *(f"job-iss-{n}" for n in ("001", "050", "085", "093", "160")),
    *(f"job-ren-{n}" for n in (
        "010", "020", "030", "040", "060", "070", "075", "080", "090", "095", "100", "105",
        "110", "130", "140", "150",
    )),
    "job-rev-120",
]  # fmt: skip


def assert_error(response: httpx.Response, status: int, message: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS
    assert body["message"] == message
    return body


def cert_body(**overrides: Any) -> dict[str, Any]:
    cn = f"golden-{uuid.uuid4().hex[:12]}.example.test"
    body: dict[str, Any] = {
        "name": cn,
        "common_name": cn,
        "owner_id": "o-alice",
        "team_id": "t-platform",
        "issuer_id": "iss-local",
        "renewal_policy_id": "rp-standard",
        "expires_at": "2099-01-01T00:00:00Z",
    }
    body.update(overrides)
    return body


def account(acme_factory: Any, profile: str = "prof-standard-tls") -> AcmeTestClient:
    acme: AcmeTestClient = acme_factory(profile)
    assert acme.new_account().status_code == 201
    return acme


# -- 1. unknown ids are 500, not 404 ------------------------------------------------------


def test_heartbeat_for_an_unknown_agent_is_500(admin: httpx.Client, double: Double) -> None:
    response = admin.post("/api/v1/agents/agent-certctl-has-none/heartbeat", json={})
    body = assert_error(response, 500, "Failed to record heartbeat")
    assert body["error"] == "Internal Server Error"
    assert double.scalar("SELECT count(*) FROM agents WHERE id = 'agent-certctl-has-none'") == 0


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", "directory"),
        ("GET", "new-nonce"),
        ("GET", "renewal-info/aaaa.bbbb"),
        ("GET", "renewal-info/not-an-ari-id"),  # the profile is resolved before the id
    ],
)
def test_an_unknown_acme_profile_is_500_server_internal(
    admin: httpx.Client, method: str, suffix: str
) -> None:
    response = admin.request(method, f"/acme/profile/{UNKNOWN_PROFILE}/{suffix}")
    body = assert_problem(response, 500, "serverInternal")
    assert set(body) == PROBLEM_KEYS
    assert body["detail"] == "ACME server error"


def test_head_new_nonce_of_an_unknown_profile_is_500(admin: httpx.Client) -> None:
    response = admin.head(f"/acme/profile/{UNKNOWN_PROFILE}/new-nonce")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "replay-nonce" not in response.headers
    assert response.content == b""


def test_new_account_on_an_unknown_profile_is_500(
    acme_factory: Any, admin: httpx.Client, double: Double
) -> None:
    acme: AcmeTestClient = acme_factory()
    url = f"{double.base_url}/acme/profile/{UNKNOWN_PROFILE}/new-account"
    body = acme.jws(url, {"termsOfServiceAgreed": True}, use_jwk=True)
    response = admin.post(url, json=body, headers={"Content-Type": "application/jose+json"})
    assert set(assert_problem(response, 500, "serverInternal")) == PROBLEM_KEYS


def test_downloading_an_unknown_certificate_is_500(acme_factory: Any) -> None:
    acme = account(acme_factory)
    url = acme.directory["newAccount"].replace("new-account", "cert/mc-certctl-has-none")
    assert set(assert_problem(acme.post(url, None), 500, "serverInternal")) == PROBLEM_KEYS


def test_deviation_downloading_another_accounts_certificate_is_403(acme_factory: Any) -> None:
    """Deviation: certctl's ownership check is a stub; the double refuses."""
    owner = account(acme_factory, "prof-internal-mtls")
    order = owner.post(
        owner.directory["newOrder"],
        {"identifiers": [{"type": "dns", "value": "owned.example.test"}]},
    ).json()
    csr, _ = make_csr(["owned.example.test"])
    final = owner.post(order["finalize"], {"csr": b64u(csr)}).json()
    other = account(acme_factory, "prof-internal-mtls")
    assert_problem(other.post(final["certificate"], None), 403, "unauthorized")


# -- 2. the JWS url is checked before the nonce is spent ----------------------------------


def test_a_wrong_url_is_401_and_leaves_the_nonce_usable(acme_factory: Any) -> None:
    acme: AcmeTestClient = acme_factory()
    nonce = acme.nonce()
    url = acme.directory["newAccount"]
    wrong = acme.post(url, {}, use_jwk=True, nonce=nonce, url_in_header=url + "/elsewhere")
    body = assert_problem(wrong, 401, "unauthorized")
    assert set(body) == PROBLEM_KEYS
    assert body["detail"] == "protected header `url` mismatch or missing"
    assert acme.post(url, {}, use_jwk=True, nonce=nonce).status_code == 201


def test_a_wrong_url_with_a_bogus_nonce_is_401_not_bad_nonce(acme_factory: Any) -> None:
    acme: AcmeTestClient = acme_factory()
    url = acme.directory["newAccount"]
    wrong = acme.post(url, {}, use_jwk=True, nonce="never-issued", url_in_header=url + "x")
    assert set(assert_problem(wrong, 401, "unauthorized")) == PROBLEM_KEYS


# -- 3. a signature that does not verify is 401 --------------------------------------------


@pytest.mark.parametrize("path", ["jwk", "kid"])
def test_a_bad_signature_is_401_unauthorized(acme_factory: Any, path: str) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    if path == "jwk":
        acme: AcmeTestClient = acme_factory()
        response = acme.post(acme.directory["newAccount"], {}, use_jwk=True, signing_key=other)
    else:
        acme = account(acme_factory)
        order = {"identifiers": [{"type": "dns", "value": "sig.example.test"}]}
        response = acme.post(acme.directory["newOrder"], order, signing_key=other)
    body = assert_problem(response, 401, "unauthorized")
    assert set(body) == PROBLEM_KEYS
    assert body["detail"] == "signature did not verify"


# -- 4. ACME shapes ----------------------------------------------------------------------


@pytest.mark.parametrize("payload", [{"identifiers": []}, {}])
def test_an_order_without_identifiers_is_rejected_identifier(
    acme_factory: Any, payload: dict[str, Any]
) -> None:
    acme = account(acme_factory)
    body = assert_problem(acme.post(acme.directory["newOrder"], payload), 400, "rejectedIdentifier")
    assert set(body) == PROBLEM_KEYS | {"subproblems"}
    assert body["subproblems"]
    assert all(set(sub) == SUBPROBLEM_KEYS for sub in body["subproblems"])


def test_every_subproblem_carries_its_status(acme_factory: Any) -> None:
    acme = account(acme_factory)
    identifiers = [{"type": "ip", "value": "192.0.2.1"}, {"type": "dns", "value": ""}]
    body = assert_problem(
        acme.post(acme.directory["newOrder"], {"identifiers": identifiers}),
        400,
        "rejectedIdentifier",
    )
    assert [set(sub) for sub in body["subproblems"]] == [SUBPROBLEM_KEYS] * 2
    assert [sub["status"] for sub in body["subproblems"]] == [400, 400]
    assert [sub["identifier"] for sub in body["subproblems"]] == identifiers


def test_a_new_account_without_contact_has_no_contact_key(acme_factory: Any) -> None:
    acme: AcmeTestClient = acme_factory()
    created = acme.post(acme.directory["newAccount"], {"termsOfServiceAgreed": True}, use_jwk=True)
    assert created.status_code == 201, created.text
    assert set(created.json()) == {"status", "orders"}
    with_contact: AcmeTestClient = acme_factory()
    assert set(with_contact.new_account().json()) == {"status", "contact", "orders"}


def test_another_accounts_url_is_401(acme_factory: Any) -> None:
    mine, theirs = account(acme_factory), account(acme_factory)
    assert theirs.kid is not None
    body = assert_problem(mine.post(theirs.kid, None), 401, "unauthorized")
    assert set(body) == PROBLEM_KEYS


def test_revoking_something_that_is_not_a_certificate_is_bad_csr(acme_factory: Any) -> None:
    acme = account(acme_factory, "prof-short-lived")
    payload = {"certificate": b64u(b"not a certificate"), "reason": 0}
    body = assert_problem(acme.post(acme.directory["revokeCert"], payload), 400, "badCSR")
    assert set(body) == PROBLEM_KEYS


def test_revoking_an_issued_certificate_still_works(acme_factory: Any) -> None:
    acme = account(acme_factory, "prof-short-lived")
    leaf, _ = issue(acme, "golden-revoke.example.test")
    payload = {"certificate": b64u(leaf.public_bytes(serialization.Encoding.DER))}
    assert acme.post(acme.directory["revokeCert"], payload).status_code == 200


# -- 5. HEAD on GET routes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/health", "text/plain; charset=utf-8"),
        ("/ready", "text/plain; charset=utf-8"),
        ("/api/v1/certificates", "application/json"),
        ("/api/v1/certificates/mc-api-prod", "application/json"),  # read from the source
        ("/api/v1/agents", "application/json"),  # read from the source
    ],
)
def test_head_on_a_get_route_is_405_with_no_body(
    admin: httpx.Client, path: str, content_type: str
) -> None:
    response = admin.head(path)
    assert response.status_code == 405
    assert response.headers["content-type"] == content_type
    assert response.content == b""


def test_head_on_auth_info_is_answered(admin: httpx.Client) -> None:
    """certctl's AuthInfo handler does not check the method (read from the source)."""
    response = admin.head("/api/v1/auth/info")
    assert (response.status_code, response.content) == (200, b"")


# -- 6. lenient parsing -------------------------------------------------------------------


def test_bytes_after_the_json_object_are_ignored(admin: httpx.Client) -> None:
    content = json.dumps(cert_body()).encode() + b"\n{trailing} garbage"
    response = admin.post("/api/v1/certificates", content=content)
    assert response.status_code == 201, response.text
    assert {"id", "name", "common_name"} <= set(response.json())


@pytest.mark.parametrize(
    ("value", "expected"), [("1_0", 50), (" 5", 50), ("5.0", 50), ("+5", 5), ("05", 5)]
)
def test_per_page_is_read_like_go_atoi(admin: httpx.Client, value: str, expected: int) -> None:
    listed = admin.get("/api/v1/certificates", params={"per_page": value}).json()
    assert listed["per_page"] == expected
    assert len(listed["data"]) == min(expected, listed["total"])


@pytest.mark.parametrize(
    ("missing", "overrides", "message"),
    [
        (("name", "common_name"), {}, "common_name is required"),
        (("name",), {"common_name": "bad host"}, "invalid hostname in common_name: bad host"),
        (("name", "owner_id"), {}, "owner_id is required"),
        (("name", "renewal_policy_id"), {}, "name is required"),
    ],
)
def test_create_checks_common_name_before_name(
    admin: httpx.Client, missing: tuple[str, ...], overrides: dict[str, str], message: str
) -> None:
    body = cert_body(**overrides)
    for field in missing:
        del body[field]
    assert_error(admin.post("/api/v1/certificates", json=body), 400, message)


# -- also observed ------------------------------------------------------------------------


def test_an_incoming_request_id_is_not_reused(admin: httpx.Client) -> None:
    """No difference: certctl does not reuse one either (docs/double.md used to list it)."""
    response = admin.get("/api/v1/auth/check", headers={"X-Request-ID": "mine-123"})
    assert response.headers["x-request-id"] != "mine-123"
    assert uuid.UUID(response.headers["x-request-id"])


def test_the_demo_seed_has_certctls_certificate_and_job_ids(
    admin: httpx.Client, double: Double
) -> None:
    certs = double.scalar(
        "SELECT count(*) FROM managed_certificates WHERE id = ANY(%s)", [CERTCTL_CERTIFICATES]
    )
    jobs = double.scalar("SELECT count(*) FROM jobs WHERE id = ANY(%s)", [CERTCTL_JOBS])
    assert (certs, jobs) == (32, 44)
    assert double.scalar("SELECT count(*) FROM jobs WHERE id LIKE 'job-demo-%%'") == 0
    assert admin.get("/api/v1/certificates/mc-old-api").status_code == 200
    assert admin.get("/api/v1/jobs/job-rev-120").status_code == 200


# -- the harness names the bug it measures ---------------------------------------------------


def test_a_run_heartbeating_unknown_agents_explains_certctls_500(double: Double) -> None:
    url = f"{double.base_url}/api/v1/agents/agent-certctl-has-none/heartbeat"

    async def beat(vu: VU) -> None:
        await vu.http.post(
            url,
            content=b"{}",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            name="/api/v1/agents/{id}/heartbeat",
        )

    scenario = Scenario("heartbeats", beat, ConstantArrivalRate(20, "1s", pre_allocated_vus=2))
    http = HTTPOptions(verify=str(double.tls.ca_cert))
    result = run_sync([scenario], options=RunOptions(http=http))
    causes = result.causes()
    assert causes[0].startswith("heartbeats: ")
    assert " requests answered 500 (body: " in causes[0]
    assert '"message":"Failed to record heartbeat"' in causes[0]
    assert causes[1] == f"heartbeats: what that 500 means: {KNOWN_ANSWERS[0].meaning}"
    assert "internal/repository/postgres/agent.go::scanAgent" in causes[1]
    assert "--certctl-dsn" in causes[1]
