"""ACME server of the double: directory, nonces, JWS rules, the full flow, ARI, limits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from double_support import (
    ADMIN_KEY,
    AcmeTestClient,
    Double,
    Stack,
    assert_problem,
    b64u,
    issue,
    make_csr,
)


def test_directory_and_nonce(admin: httpx.Client, double: Double) -> None:
    prefix = f"{double.base_url}/acme/profile/prof-standard-tls"
    directory = admin.get(f"{prefix}/directory")
    assert directory.status_code == 200
    assert directory.headers["cache-control"] == "public, max-age=0, no-cache"
    assert directory.headers["replay-nonce"]
    assert directory.json() == {
        "newNonce": f"{prefix}/new-nonce",
        "newAccount": f"{prefix}/new-account",
        "newOrder": f"{prefix}/new-order",
        "revokeCert": f"{prefix}/revoke-cert",
        "keyChange": f"{prefix}/key-change",
        "renewalInfo": f"{prefix}/renewal-info",
    }
    head = admin.head(f"{prefix}/new-nonce")
    get = admin.get(f"{prefix}/new-nonce")
    assert (head.status_code, get.status_code) == (200, 204)
    assert head.headers["cache-control"] == "no-store"
    assert head.headers["replay-nonce"] != get.headers["replay-nonce"]


def test_acme_routes_go_through_the_authenticated_chain(double: Double) -> None:
    with double.client(None) as client:
        response = client.get("/acme/profile/prof-standard-tls/directory")
    assert response.status_code == 401
    assert response.text == '{"error":"Authorization header required"}\n'


def test_missing_default_profile_is_user_action_required(admin: httpx.Client) -> None:
    assert_problem(admin.get("/acme/directory"), 403, "userActionRequired")


def test_end_to_end_es256_issuance_and_ari(
    acme_factory: Any, admin: httpx.Client, double: Double
) -> None:
    acme: AcmeTestClient = acme_factory()
    created = acme.new_account()
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "valid"
    assert acme.kid is not None
    assert acme.kid.startswith(
        f"{double.base_url}/acme/profile/prof-standard-tls/account/acme-acc-"
    )
    assert created.headers["replay-nonce"]
    again = acme.new_account()
    assert again.status_code == 200
    assert again.headers["location"] == acme.kid

    names = ["app.example.test", "www.app.example.test"]
    order = acme.post(
        acme.directory["newOrder"], {"identifiers": [{"type": "dns", "value": n} for n in names]}
    )
    assert order.status_code == 201, order.text
    order_url = order.headers["location"]
    order_body = order.json()
    assert order_body["status"] == "ready"
    assert {i["value"] for i in order_body["identifiers"]} == set(names)
    assert len(order_body["authorizations"]) == 2

    authz = acme.post(order_body["authorizations"][0], None)
    assert authz.status_code == 200, authz.text
    authz_body = authz.json()
    assert authz_body["status"] == "valid"
    (chall,) = authz_body["challenges"]
    assert (chall["type"], chall["status"]) == ("http-01", "valid")
    assert "validated" in chall
    assert acme.post(chall["url"], {}).json()["status"] == "valid"

    csr_der, leaf_key = make_csr(names)
    finalized = acme.post(order_body["finalize"], {"csr": b64u(csr_der)})
    assert finalized.status_code == 200, finalized.text
    assert finalized.headers["location"] == order_url
    final_body = finalized.json()
    assert final_body["status"] == "valid"
    assert acme.post(order_url, None).json()["status"] == "valid"

    download = acme.post(final_body["certificate"], None)
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "application/pem-certificate-chain"
    chain = x509.load_pem_x509_certificates(download.content)
    leaf, issuer = chain[0], chain[1]
    ca = x509.load_pem_x509_certificate(double.tls.ca_cert.read_bytes())
    assert issuer == ca
    leaf.verify_directly_issued_by(ca)
    assert leaf.public_key() == leaf_key.public_key()
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(names)

    cert_id = final_body["certificate"].rsplit("/", 1)[1]
    managed = admin.get(f"/api/v1/certificates/{cert_id}").json()
    assert (managed["status"], managed["source"]) == ("Active", "ACME")
    assert (
        double.scalar(
            "SELECT count(*) FROM certificate_versions WHERE certificate_id = %s", [cert_id]
        )
        == 1
    )

    refinalize = acme.post(order_body["finalize"], {"csr": b64u(csr_der)})
    assert_problem(refinalize, 403, "orderNotReady")

    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    serial = leaf.serial_number
    serial_der = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
    ari_id = f"{b64u(aki.key_identifier or b'')}.{b64u(serial_der)}"
    ari = admin.get(f"{acme.directory['renewalInfo']}/{ari_id}")
    assert ari.status_code == 200, ari.text
    assert ari.headers["retry-after"] == "21600"
    window = ari.json()["suggestedWindow"]
    start = dt.datetime.fromisoformat(window["start"])
    end = dt.datetime.fromisoformat(window["end"])
    assert leaf.not_valid_before_utc < start < end < leaf.not_valid_after_utc


def test_ari_malformed_and_unknown(admin: httpx.Client) -> None:
    base = "/acme/profile/prof-standard-tls/renewal-info"
    assert_problem(admin.get(f"{base}/aaaa.bbbb"), 404, "malformed")
    assert_problem(admin.get(f"{base}/no-dot-here"), 400, "malformed")
    assert_problem(admin.get(f"{base}/a$$.b"), 400, "malformed")


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_rs256_and_eddsa_accounts(acme_factory: Any, kind: str) -> None:
    key = (
        rsa.generate_private_key(65537, 2048)
        if kind == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    acme: AcmeTestClient = acme_factory("prof-internal-mtls", key)
    assert acme.new_account().status_code == 201


def test_unsupported_alg_is_malformed(acme_factory: Any) -> None:
    acme: AcmeTestClient = acme_factory()
    response = acme.post(acme.directory["newAccount"], {}, use_jwk=True, alg="ES384")
    assert_problem(response, 400, "malformed")


def test_reused_nonce_is_bad_nonce(acme_factory: Any) -> None:
    acme: AcmeTestClient = acme_factory()
    nonce = acme.nonce()
    first = acme.post(acme.directory["newAccount"], {}, use_jwk=True, nonce=nonce)
    assert first.status_code == 201
    replay = acme.post(acme.directory["newAccount"], {}, use_jwk=True, nonce=nonce)
    assert_problem(replay, 400, "badNonce")
    assert_problem(
        acme.post(acme.directory["newAccount"], {}, use_jwk=True, nonce="never-issued"),
        400,
        "badNonce",
    )


def test_bad_signature_consumes_nonce_and_creates_nothing(
    acme_factory: Any, double: Double
) -> None:
    acme: AcmeTestClient = acme_factory()
    other = ec.generate_private_key(ec.SECP256R1())
    before = double.scalar("SELECT count(*) FROM acme_accounts")
    nonce = acme.nonce()
    response = acme.post(
        acme.directory["newAccount"], {}, use_jwk=True, signing_key=other, nonce=nonce
    )
    assert_problem(response, 401, "unauthorized")
    assert double.scalar("SELECT count(*) FROM acme_accounts") == before
    retry = acme.post(acme.directory["newAccount"], {}, use_jwk=True, nonce=nonce)
    assert_problem(retry, 400, "badNonce")


def test_garbage_bodies_are_malformed(admin: httpx.Client, acme_factory: Any) -> None:
    acme: AcmeTestClient = acme_factory()
    url = acme.directory["newAccount"]
    for content in (b"", b"{", b'{"protected":"!!","payload":"","signature":""}', b"a.b"):
        assert_problem(admin.post(url, content=content), 400, "malformed")


def test_kid_must_match_an_account_and_jwk_is_refused_for_orders(acme_factory: Any) -> None:
    acme: AcmeTestClient = acme_factory()
    assert acme.new_account().status_code == 201
    order = {"identifiers": [{"type": "dns", "value": "x.example.test"}]}
    assert_problem(acme.post(acme.directory["newOrder"], order, use_jwk=True), 400, "malformed")
    acme.kid = acme.kid.replace("/account/", "/account/x") if acme.kid else None
    assert_problem(acme.post(acme.directory["newOrder"], order), 400, "accountDoesNotExist")


def test_rejected_identifier_and_csr_mismatch(acme_factory: Any, double: Double) -> None:
    acme: AcmeTestClient = acme_factory()
    acme.new_account()
    bad = acme.post(
        acme.directory["newOrder"], {"identifiers": [{"type": "ip", "value": "1.2.3.4"}]}
    )
    assert assert_problem(bad, 400, "rejectedIdentifier")["subproblems"]
    order = acme.post(
        acme.directory["newOrder"], {"identifiers": [{"type": "dns", "value": "a.example.test"}]}
    ).json()
    csr_der, _ = make_csr(["b.example.test"])
    before = double.scalar("SELECT count(*) FROM managed_certificates")
    mismatch = acme.post(order["finalize"], {"csr": b64u(csr_der)})
    assert_problem(mismatch, 400, "badCSR")
    assert_problem(acme.post(order["finalize"], {"csr": "not base64!"}), 400, "badCSR")
    assert double.scalar("SELECT count(*) FROM managed_certificates") == before


def test_sixth_concurrent_order_is_rate_limited(acme_factory: Any) -> None:
    acme: AcmeTestClient = acme_factory("prof-high-security")
    acme.new_account()
    payload = {"identifiers": [{"type": "dns", "value": "c.example.test"}]}
    for _ in range(5):
        assert acme.post(acme.directory["newOrder"], payload).status_code == 201
    limited = acme.post(acme.directory["newOrder"], payload)
    body = assert_problem(limited, 429, "rateLimited")
    assert "concurrent" in body["detail"]
    assert "retry-after" not in limited.headers


def test_orders_per_hour_bucket(stack: Stack) -> None:
    double = stack.start_double({"CERTCTL_ACME_SERVER_RATE_LIMIT_ORDERS_PER_HOUR": "2"})
    try:
        with double.client(ADMIN_KEY) as http:
            acme = AcmeTestClient(
                http, f"{double.base_url}/acme/profile/prof-standard-tls/directory"
            )
            acme.new_account()
            payload = {"identifiers": [{"type": "dns", "value": "d.example.test"}]}
            assert acme.post(acme.directory["newOrder"], payload).status_code == 201
            assert acme.post(acme.directory["newOrder"], payload).status_code == 201
            limited = acme.post(acme.directory["newOrder"], payload)
            body = assert_problem(limited, 429, "rateLimited")
            assert body["detail"] == "request rate limit exceeded; retry later"
    finally:
        double.stop()


@pytest.mark.parametrize("with_cert_key", [False, True])
def test_revoke_cert(
    acme_factory: Any, admin: httpx.Client, double: Double, with_cert_key: bool
) -> None:
    acme: AcmeTestClient = acme_factory("prof-short-lived")
    acme.new_account()
    leaf, leaf_key = issue(acme, f"revoke-{int(with_cert_key)}.example.test")
    payload = {"certificate": b64u(leaf.public_bytes(serialization.Encoding.DER)), "reason": 4}
    url = acme.directory["revokeCert"]
    if with_cert_key:
        # a jwk that is not the certificate's key (here: the account's) is refused
        assert_problem(acme.post(url, payload, use_jwk=True), 403, "unauthorized")
        response = acme.post(url, payload, use_jwk=True, key=leaf_key)
    else:
        response = acme.post(url, payload)
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert response.headers["replay-nonce"]
    serial = f"{leaf.serial_number:040x}"
    assert (
        double.scalar(
            "SELECT reason FROM certificate_revocations WHERE serial_number = %s", [serial]
        )
        == "superseded"
    )
    assert_problem(acme.post(url, payload), 400, "alreadyRevoked")


def test_ari_finds_serials_with_a_leading_zero_nibble(admin: httpx.Client, double: Double) -> None:
    serial = 0x0ABCDEF0123456789ABCDEF0123456789ABCDE  # 39 hex digits: stored as 0abc...
    with double.db() as conn:
        conn.execute(
            "INSERT INTO certificate_versions (id, certificate_id, serial_number, not_before,"
            " not_after, fingerprint_sha256, pem_chain) VALUES ('cv-ari-zero', 'mc-web-prod',"
            " %s, NOW(), NOW() + INTERVAL '90 days', 'fp-ari-zero', 'pem')",
            [f"{serial:040x}"],
        )
    serial_bytes = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
    ari = admin.get(f"/acme/profile/prof-standard-tls/renewal-info/AAAA.{b64u(serial_bytes)}")
    assert ari.status_code == 200, ari.text
    assert set(ari.json()["suggestedWindow"]) == {"start", "end"}
