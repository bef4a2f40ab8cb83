"""Unit tests of the JWS-signing ACME client: keys, JWS, thumbprints, nonces, pool, ARI."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from josepy.jwk import JWK
from josepy.jws import JWS

from pytest_certload.certctl import UniqueNames
from pytest_certload.certctl.acme import (
    ACCOUNT_ALGS,
    AccountKey,
    AccountPool,
    AcmeAccount,
    AcmeClient,
    AcmeDirectory,
    AcmeError,
    AcmeProblem,
    EnrollmentMetrics,
    PlainTransport,
    ari_cert_id,
    b64url,
    jwk_thumbprint,
    lease_problem,
    make_csr,
    pool_size,
    sign_jws,
)
from pytest_certload.double._jws import parse_jws, public_key_from_jwk, verify_signature
from pytest_certload.errors import ConfigError, TransportError
from pytest_certload.metrics import MetricStore, MetricType, TrendSink, tagset

BASE = "https://127.0.0.1:8443/acme/profile/prof-standard-tls"
PROBLEM = "application/problem+json"

#: RFC 7638 §3.1
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2"
    "QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6"
    "WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

#: RFC 9773 Appendix A, whose certificate id the RFC gives in §5 (the "replaces" example)
RFC9773_CERT = b"""-----BEGIN CERTIFICATE-----
MIIBQzCB66ADAgECAgUAh2VDITAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwpFeGFt
cGxlIENBMCIYDzAwMDEwMTAxMDAwMDAwWhgPMDAwMTAxMDEwMDAwMDBaMBYxFDAS
BgNVBAMTC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeBZu
7cbpAYNXZLbbh8rNIzuOoqOOtmxA1v7cRm//AwyMwWxyHz4zfwmBhcSrf47NUAFf
qzLQ2PPQxdTXREYEnKMjMCEwHwYDVR0jBBgwFoAUaYhba4dGQEHhs3uEe6CuLN4B
yNQwCgYIKoZIzj0EAwIDRwAwRAIge09+S5TZAlw5tgtiVvuERV6cT4mfutXIlwTb
+FYN/8oCIClDsqBklhB9KAelFiYt9+6FDj3z4KGVelYM5MdsO3pK
-----END CERTIFICATE-----
"""
RFC9773_CERT_ID = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _decode(body: bytes) -> tuple[dict[str, Any], Any]:
    jws = json.loads(body)
    protected = json.loads(_b64d(jws["protected"]))
    payload = json.loads(_b64d(jws["payload"])) if jws["payload"] else None
    return protected, payload


# -- keys, JWS, thumbprints --------------------------------------------------------------------


@pytest.mark.parametrize("alg", ACCOUNT_ALGS)
def test_jws_round_trip_verifies_with_the_server_side_verifier(alg: str) -> None:
    key = AccountKey.generate(alg)
    body = sign_jws(key, {"a": 1}, url=f"{BASE}/new-account", nonce="n1")
    parsed = parse_jws(body)  # the double's parser and verifier (go-jose's rules)
    assert parsed.protected == {
        "alg": alg,
        "nonce": "n1",
        "url": f"{BASE}/new-account",
        "jwk": dict(key.jwk),
    }
    assert parsed.payload_json() == {"a": 1}
    verify_signature(parsed, public_key_from_jwk(parsed.protected["jwk"]))


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_jws_round_trip_verifies_with_josepy(alg: str) -> None:
    key = AccountKey.generate(alg)
    body = sign_jws(key, {"identifiers": []}, url=f"{BASE}/new-order", nonce="n2")
    jws = JWS.json_loads(body)
    assert jws.verify()  # with the jwk of the protected header
    assert jws.signature.combined.alg is not None
    assert jws.signature.combined.alg.name == alg
    assert json.loads(jws.payload) == {"identifiers": []}


def test_eddsa_round_trip_verifies_with_cryptography() -> None:
    # josepy 2.2 has no OKP/EdDSA support: verify the raw signature with cryptography
    key = AccountKey.generate("EdDSA")
    body = json.loads(sign_jws(key, None, url=f"{BASE}/order/x", nonce="n3", kid="k"))
    public = ed25519.Ed25519PublicKey.from_public_bytes(_b64d(key.jwk["x"]))
    public.verify(_b64d(body["signature"]), f"{body['protected']}.".encode())
    assert len(_b64d(body["signature"])) == 64


def test_es256_signature_is_raw_r_s_of_64_bytes() -> None:
    key = AccountKey.generate("ES256")
    for _ in range(20):  # DER would be 70-72 bytes and vary
        assert len(key.sign(b"x")) == 64


def test_kid_requests_carry_kid_and_no_jwk_and_post_as_get_has_an_empty_payload() -> None:
    key = AccountKey.generate()
    protected, payload = _decode(
        sign_jws(key, None, url=f"{BASE}/cert/1", nonce="n", kid=f"{BASE}/account/a")
    )
    assert protected == {
        "alg": "ES256",
        "nonce": "n",
        "url": f"{BASE}/cert/1",
        "kid": f"{BASE}/account/a",
    }
    assert payload is None
    assert json.loads(sign_jws(key, None, url="u", nonce="n", kid="k"))["payload"] == ""


def test_thumbprint_of_the_rfc_7638_example() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_thumbprint_matches_josepy(alg: str) -> None:
    key = AccountKey.generate(alg)
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    expected = JWK.load(pem).public_key().thumbprint()
    assert key.thumbprint == b64url(expected)


def test_thumbprint_of_ed25519_matches_the_double_and_ignores_other_members() -> None:
    from pytest_certload.double._jws import jwk_thumbprint as server_thumbprint

    key = AccountKey.generate("EdDSA")
    assert key.thumbprint == server_thumbprint(dict(key.jwk))
    assert jwk_thumbprint({**key.jwk, "kid": "x", "use": "sig"}) == key.thumbprint


def test_ec_coordinates_are_padded_to_32_bytes() -> None:
    for _ in range(50):
        key = AccountKey.generate("ES256")
        assert len(_b64d(key.jwk["x"])) == 32
        assert len(_b64d(key.jwk["y"])) == 32


def test_unsupported_algorithms_and_keys_are_refused_with_what_is_valid() -> None:
    with pytest.raises(
        ConfigError,
        match=r"'ES384' is not a JWS algorithm certctl accepts; use one of ES256, RS256, EdDSA",
    ):
        AccountKey.generate("ES384")
    with pytest.raises(ConfigError, match="ES256 needs a P-256 key, not secp384r1"):
        AccountKey.from_private_key(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ConfigError, match="kty 'oct'"):
        jwk_thumbprint({"kty": "oct", "k": "x"})


# -- CSR and ARI ---------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048", "ed25519"])
def test_csr_names_are_lowercase_cn_and_sans_and_the_signature_verifies(key_type: str) -> None:
    der, key = make_csr(["A.Example.com", "b.example.com"], key_type=key_type)
    csr = x509.load_der_x509_csr(der)
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "a.example.com"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example.com", "b.example.com"]
    assert csr.public_key() == key.public_key()


def test_csr_needs_a_name_and_a_known_key_type() -> None:
    with pytest.raises(ConfigError, match="at least one DNS name"):
        make_csr([])
    with pytest.raises(ConfigError, match="'dsa' is not a CSR key type; use one of ec-p256"):
        make_csr(["a.example.com"], key_type="dsa")


def test_ari_id_of_the_rfc_9773_example_certificate() -> None:
    cert = x509.load_pem_x509_certificate(RFC9773_CERT)
    assert ari_cert_id(cert) == RFC9773_CERT_ID


def _issued(serial: int, aki: bytes | None = b"\x01\x02\x03") -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    )
    if aki is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(aki, None, None), critical=False
        )
    return builder.sign(key, hashes.SHA256())


@pytest.mark.parametrize(
    ("serial", "encoded"),
    [
        (0x01, "AQ"),  # no leading zero byte
        (0x7F, "fw"),
        (0x80, "AIA"),  # high bit set: the DER INTEGER has a leading 0x00
        (0x0102, "AQI"),
        (0x00FF01, "AP8B"),
    ],
)
def test_ari_id_serial_is_the_der_integer_value(serial: int, encoded: str) -> None:
    assert ari_cert_id(_issued(serial)) == f"AQID.{encoded}"


def test_ari_id_needs_an_authority_key_identifier() -> None:
    with pytest.raises(ConfigError, match="has no Authority Key Identifier; ARI cannot name it"):
        ari_cert_id(_issued(5, aki=None))


# -- a fake transport and ACME server --------------------------------------------------------


@dataclass
class Reply:
    status_code: int
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    error: str = ""


def problem(status: int, kind: str, detail: str = "d") -> Reply:
    body = {"type": f"urn:ietf:params:acme:error:{kind}", "detail": detail, "status": status}
    return Reply(status, {"Content-Type": PROBLEM}, json.dumps(body).encode())


@dataclass
class FakeAcme:
    """An in-memory certctl: single-use nonces consumed before anything else, no
    Replay-Nonce on errors, trust_authenticated orders, and scripted failures."""

    issued: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    script: dict[str, list[Reply]] = field(default_factory=dict)
    fail_nonce: bool = False
    poll_status: str = "valid"

    def nonce(self) -> str:
        value = f"nonce-{len(self.issued)}"
        self.issued.append(value)
        return value

    def ok(self, status: int, body: Any = b"", **headers: str) -> Reply:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Reply(status, {"Replay-Nonce": self.nonce(), **headers}, content)

    async def head(self, url: str, **kw: Any) -> Reply:
        self.calls.append(("HEAD", url, kw.get("name", "")))
        if self.fail_nonce:
            return Reply(0, error="connection refused")
        return Reply(200, {"Replay-Nonce": self.nonce()})

    async def get(self, url: str, **kw: Any) -> Reply:
        self.calls.append(("GET", url, kw.get("name", "")))
        if url.endswith("/directory"):
            return self.ok(200, _directory_json())
        if "/renewal-info/" in url:
            return Reply(
                200,
                {"Retry-After": "21600"},
                json.dumps(
                    {
                        "suggestedWindow": {
                            "start": "2026-03-01T00:00:00Z",
                            "end": "2026-03-15T00:00:00Z",
                        }
                    }
                ).encode(),
            )
        return Reply(404, {}, b"404 page not found\n")

    async def post(self, url: str, **kw: Any) -> Reply:
        self.calls.append(("POST", url, kw.get("name", "")))
        protected, payload = _decode(kw["content"])
        assert kw["headers"]["Content-Type"] == "application/jose+json"
        assert protected["url"] == url
        nonce = protected["nonce"]
        if nonce not in self.issued or nonce in self.used:
            return problem(400, "badNonce")
        self.used.add(nonce)
        if url.endswith("/finalize"):
            self.csr = x509.load_der_x509_csr(_b64d(payload["csr"]))
        for suffix, replies in self.script.items():
            if url.endswith(suffix) and replies:
                reply = replies.pop(0)
                if reply.status_code < 400 and reply.status_code:
                    return self.ok(reply.status_code, reply.content, **dict(reply.headers))
                return reply
        return self._route(url, protected, payload)

    def _route(self, url: str, protected: dict[str, Any], payload: Any) -> Reply:
        if url.endswith("/new-account"):
            assert "jwk" in protected
            assert "kid" not in protected
            return self.ok(
                201,
                {"status": "valid"},
                Location=f"{BASE}/account/{jwk_thumbprint(protected['jwk'])}",
            )
        assert protected["kid"].startswith(f"{BASE}/account/")
        if url.endswith("/new-order"):
            self.names = [i["value"] for i in payload["identifiers"]]
            return self.ok(201, _order("ready"), Location=f"{BASE}/order/o1")
        if "/authz/" in url:
            return self.ok(200, {"status": "valid", "identifier": {"type": "dns", "value": "x"}})
        if url.endswith("/finalize"):
            return self.ok(
                200, _order("valid", certificate=f"{BASE}/cert/c1"), Location=f"{BASE}/order/o1"
            )
        if url.endswith("/order/o1"):
            return self.ok(200, _order(self.poll_status, certificate=f"{BASE}/cert/c1"))
        if "/cert/" in url:
            return self.ok(
                200, _chain_for(self.csr), **{"Content-Type": "application/pem-certificate-chain"}
            )
        return problem(404, "malformed", "not found")

    def count(self, method: str) -> int:
        return sum(1 for c in self.calls if c[0] == method)


def _directory_json() -> dict[str, str]:
    return {
        "newNonce": f"{BASE}/new-nonce",
        "newAccount": f"{BASE}/new-account",
        "newOrder": f"{BASE}/new-order",
        "revokeCert": f"{BASE}/revoke-cert",
        "keyChange": f"{BASE}/key-change",
        "renewalInfo": f"{BASE}/renewal-info",
    }


def _order(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "identifiers": [],
        "authorizations": [f"{BASE}/authz/a1"],
        "finalize": f"{BASE}/order/o1/finalize",
        **extra,
    }


def _chain_for(csr: x509.CertificateSigningRequest) -> bytes:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake CA")])
    leaf = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_name)
        .public_key(csr.public_key())
        .serial_number(0x80A1)
        .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2026, 4, 1, tzinfo=dt.UTC))
        .add_extension(x509.AuthorityKeyIdentifier(b"\xaa\xbb", None, None), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return leaf.public_bytes(serialization.Encoding.PEM)


DIRECTORY = AcmeDirectory.from_json(f"{BASE}/directory", _directory_json())


def _client(server: FakeAcme, **kw: Any) -> AcmeClient:
    return AcmeClient(server, DIRECTORY, {"Authorization": "Bearer t"}, **kw)


def _run(fn: Callable[[], Any]) -> Any:
    return anyio.run(fn)


async def _account(client: AcmeClient) -> AcmeAccount:
    account = await client.new_account(AccountKey.generate())
    assert isinstance(account, AcmeAccount)
    return account


# -- nonces ----------------------------------------------------------------------------------


def test_the_replay_nonce_of_a_success_signs_the_next_request() -> None:
    server = FakeAcme()
    client = _client(server)

    async def go() -> None:
        account = await _account(client)
        await client.new_order(account, ["a.example.com"])
        await client.new_order(account, ["b.example.com"])

    _run(go)
    assert server.count("HEAD") == 1  # only before the very first POST
    assert server.count("POST") == 3
    assert client.nonce_fetches == 1
    assert client.bad_nonce_retries == 0


def test_after_an_error_the_client_fetches_a_fresh_nonce() -> None:
    server = FakeAcme(script={"/new-order": [problem(400, "rejectedIdentifier")]})
    client = _client(server)

    async def go() -> Any:
        account = await _account(client)
        first = await client.new_order(account, ["a.example.com"])
        second = await client.new_order(account, ["a.example.com"])
        return first, second

    first, second = _run(go)
    assert isinstance(first, AcmeProblem)
    assert first.short_type == "rejectedIdentifier"
    assert first.step == "new_order"
    assert first.status == 400
    assert not isinstance(second, AcmeProblem)
    # HEAD before new-account, POST new-account, POST new-order (error), HEAD, POST new-order
    assert [c[0] for c in server.calls] == ["HEAD", "POST", "POST", "HEAD", "POST"]
    assert server.calls[3][2] == "/acme/profile/{profile}/new-nonce"


def test_a_bad_nonce_is_retried_once_with_a_fresh_nonce() -> None:
    server = FakeAcme(script={"/new-order": [problem(400, "badNonce")]})
    client = _client(server)

    async def go() -> Any:
        account = await _account(client)
        return await client.new_order(account, ["a.example.com"])

    order = _run(go)
    assert not isinstance(order, AcmeProblem)
    assert client.bad_nonce_retries == 1
    assert [c[0] for c in server.calls] == ["HEAD", "POST", "POST", "HEAD", "POST"]


def test_a_second_bad_nonce_is_reported_not_retried_again() -> None:
    server = FakeAcme(script={"/new-order": [problem(400, "badNonce"), problem(400, "badNonce")]})
    client = _client(server)

    async def go() -> Any:
        account = await _account(client)
        return await client.new_order(account, ["a.example.com"])

    order = _run(go)
    assert isinstance(order, AcmeProblem)
    assert (order.step, order.status, order.type) == (
        "new_order",
        400,
        "urn:ietf:params:acme:error:badNonce",
    )
    assert server.count("POST") == 3  # new-account, new-order, one retry


def test_a_replayed_nonce_is_caught_by_the_server_and_healed_by_the_retry() -> None:
    server = FakeAcme()
    client = _client(server)

    async def go() -> Any:
        account = await _account(client)
        client._nonce = server.issued[0]  # already used by new-account
        return await client.new_order(account, ["a.example.com"])

    assert not isinstance(_run(go), AcmeProblem)
    assert client.bad_nonce_retries == 1


def test_no_answer_is_a_transport_problem_and_the_nonce_is_dropped() -> None:
    server = FakeAcme(script={"/new-order": [Reply(0, error="timed out after 60 s")]})
    client = _client(server)

    async def go() -> Any:
        account = await _account(client)
        first = await client.new_order(account, ["a.example.com"])
        await client.new_order(account, ["a.example.com"])
        return first

    first = _run(go)
    assert isinstance(first, AcmeProblem)
    assert (first.status, first.type, first.detail) == (
        0,
        "certload:transport",
        "timed out after 60 s",
    )
    assert server.count("HEAD") == 2


def test_a_failing_new_nonce_is_reported_for_the_step_that_needed_it() -> None:
    server = FakeAcme(fail_nonce=True)
    result = _run(lambda: _client(server).new_account(AccountKey.generate()))
    assert isinstance(result, AcmeProblem)
    assert (result.step, result.status, result.type) == ("new_account", 0, "certload:transport")


def test_certctl_429_is_recognised_and_a_text_429_is_not() -> None:
    limited = problem(429, "rateLimited", "too many concurrent orders for this account")
    p = AcmeProblem.from_response("new_order", limited)
    assert p.is_rate_limit_document
    assert p.retry_after == ""
    text = Reply(
        429,
        {"Content-Type": "text/plain; charset=utf-8", "Retry-After": "1"},
        b'{"error":"Rate limit exceeded"}\n',
    )
    q = AcmeProblem.from_response("new_order", text)
    assert not q.is_rate_limit_document
    assert q.type == "certload:notProblemDocument"
    assert q.retry_after == "1"
    assert q.detail == 'text/plain: {"error":"Rate limit exceeded"}'
    wrong_type = Reply(429, {"Content-Type": "application/json"}, limited.content)
    assert not AcmeProblem.from_response("new_order", wrong_type).is_rate_limit_document


# -- the whole enrollment ----------------------------------------------------------------------


def test_enroll_walks_every_step_and_names_each_request_by_template() -> None:
    server = FakeAcme()
    client = _client(server)

    async def go() -> Any:
        account = await _account(client)
        return await client.enroll(account, ["Host1.Example.com"])

    enrollment = _run(go)
    assert enrollment.ok, enrollment.problem
    assert enrollment.names == ("host1.example.com",)
    assert list(enrollment.timings) == [
        "new_order",
        "authz",
        "csr",
        "finalize",
        "certificate",
        "ari",
    ]
    assert all(ns > 0 for ns in enrollment.timings.values())
    assert enrollment.cert_id == "qrs.AICh"
    assert enrollment.window is not None
    assert enrollment.window.retry_after == "21600"
    assert not enrollment.order_outstanding
    assert server.names == ["host1.example.com"]
    assert [c[2] for c in server.calls[2:]] == [
        "/acme/profile/{profile}/new-order",
        "/acme/profile/{profile}/authz/{id}",
        "/acme/profile/{profile}/order/{id}/finalize",
        "/acme/profile/{profile}/cert/{id}",
        "/acme/profile/{profile}/renewal-info/{id}",
    ]
    leaf = enrollment.certificates()[0]
    assert leaf.public_key() == x509.load_der_x509_csr(enrollment.csr_der).public_key()


def test_a_failing_finalize_is_reported_with_step_status_and_type() -> None:
    server = FakeAcme(script={"/finalize": [problem(500, "serverInternal", "ACME server error")]})
    client = _client(server)

    async def go() -> Any:
        account = await _account(client)
        return await client.enroll(account, ["a.example.com"])

    enrollment = _run(go)
    assert enrollment.problem == AcmeProblem(
        "finalize",
        500,
        "urn:ietf:params:acme:error:serverInternal",
        "ACME server error",
        f"{BASE}/order/o1/finalize",
        PROBLEM,
        "",
        500,
    )
    assert enrollment.order_outstanding  # certctl may leave it processing: it still counts
    assert "certificate" not in enrollment.timings


def _processing() -> Reply:
    return Reply(200, {}, json.dumps(_order("processing")).encode())


def test_a_processing_order_is_polled_until_valid() -> None:
    server = FakeAcme(script={"/finalize": [_processing()]})
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    client = _client(server, sleep=pause, poll_interval_s=0.5)

    async def go() -> Any:
        return await client.enroll(await _account(client), ["a.example.com"])

    enrollment = _run(go)
    assert enrollment.ok, enrollment.problem
    assert pauses == [0.5]
    assert "/acme/profile/{profile}/order/{id}" in [c[2] for c in server.calls]


def test_an_order_still_processing_after_the_polls_is_reported_and_outstanding() -> None:
    server = FakeAcme(script={"/finalize": [_processing()]}, poll_status="processing")

    async def pause(seconds: float) -> None:
        return None

    client = _client(server, sleep=pause, poll_attempts=3)

    async def go() -> Any:
        return await client.enroll(await _account(client), ["a.example.com"])

    enrollment = _run(go)
    assert enrollment.problem is not None
    assert enrollment.problem.step == "finalize"
    assert "order is 'processing' after finalize" in enrollment.problem.detail
    assert enrollment.order_outstanding
    assert sum(1 for c in server.calls if c[2].endswith("/order/{id}")) == 3


def test_an_order_in_challenge_mode_stops_at_authz_with_advice() -> None:
    pending = {"status": "pending", "identifier": {"type": "dns", "value": "a"}}
    server = FakeAcme(script={"/authz/a1": [Reply(200, {}, json.dumps(pending).encode())]})
    client = _client(server)

    async def go() -> Any:
        return await client.enroll(await _account(client), ["a.example.com"])

    enrollment = _run(go)
    assert enrollment.problem is not None
    assert enrollment.problem.step == "authz"
    assert "challenge mode, which this client does not solve" in enrollment.problem.detail
    assert enrollment.order_outstanding


def test_open_reads_the_directory_and_refuses_html() -> None:
    server = FakeAcme()
    client = _run(
        lambda: AcmeClient.open(server, f"{BASE}/directory", {"Authorization": "Bearer t"})
    )
    assert client.directory == DIRECTORY
    assert server.calls[0][2] == "/acme/profile/{profile}/directory"
    with pytest.raises(
        AcmeError, match="is not a JSON object; a certctl started from a directory containing web/"
    ):
        AcmeDirectory.from_json(f"{BASE}/directory", b"<!doctype html>")


def test_directory_templates_for_a_profile_and_for_the_shorthand() -> None:
    assert DIRECTORY.name("order/{id}/finalize") == "/acme/profile/{profile}/order/{id}/finalize"
    shorthand = AcmeDirectory(
        "https://h/acme/directory",
        "https://h/acme/new-nonce",
        "https://h/acme/new-account",
        "https://h/acme/new-order",
    )
    assert shorthand.name("new-order") == "/acme/new-order"


def test_plain_transport_drops_recording_options_and_answers_status_0() -> None:
    class Client:
        def __init__(self) -> None:
            self.kwargs: dict[str, Any] = {}

        async def request(self, method: str, url: str, **kwargs: Any) -> Reply:
            self.kwargs = kwargs
            if url.endswith("/down"):
                raise TransportError("connection refused", url=url, kind="connect")
            return Reply(200)

    inner = Client()
    transport = PlainTransport(inner)
    ok = _run(
        lambda: transport.post("https://h/x", content=b"x", name="/x", expected=(200,), tags={})
    )
    assert ok.status_code == 200
    assert inner.kwargs == {"content": b"x"}
    down = _run(lambda: transport.get("https://h/down"))
    assert down.status_code == 0
    assert AcmeProblem.from_response("directory", down).detail == "connection refused"


# -- the account pool --------------------------------------------------------------------------


def _accounts(n: int) -> list[AcmeAccount]:
    key = AccountKey.generate()
    return [AcmeAccount(key, f"{BASE}/account/{i}") for i in range(n)]


def test_pool_hands_accounts_out_round_robin() -> None:
    pool = AccountPool(_accounts(3))
    got = [pool.lease() for _ in range(6)]
    assert [a.kid[-1] for a in got if a] == ["0", "1", "2", "0", "1", "2"]


def test_pool_never_exceeds_the_concurrent_order_cap() -> None:
    pool = AccountPool(_accounts(2), concurrent_orders=2)
    leased = [pool.lease() for _ in range(4)]
    assert all(leased)
    assert pool.lease() is None
    assert pool.refusals == 1
    pool.release(leased[0])  # type: ignore[arg-type]
    assert pool.lease() is leased[0]


def test_orders_left_outstanding_keep_counting_toward_the_cap() -> None:
    pool = AccountPool(_accounts(1), concurrent_orders=2)
    a = pool.lease()
    assert a is not None
    pool.release(a, order_outstanding=True)
    assert pool.lease() is a
    assert pool.lease() is None  # one in flight + one stuck = 2
    pool.release(a)
    assert a.stuck == 1
    assert a.in_flight == 0


def test_pool_follows_the_hourly_bucket_with_its_refill() -> None:
    now = [1000.0]
    pool = AccountPool(_accounts(1), orders_per_hour=3, concurrent_orders=0, clock=lambda: now[0])
    assert [pool.lease() is not None for _ in range(4)] == [True, True, True, False]
    now[0] += 1199.0  # 3/hour refills one token every 1200 s
    assert pool.lease() is None
    now[0] += 1.0
    assert pool.lease() is not None
    assert pool.lease() is None


def test_pool_size_covers_the_hourly_bucket_and_the_concurrent_cap() -> None:
    # the canonical figures: 10/s for 5 min -> 30 accounts for the bucket, 10 for the
    # cap at a 5 s enrollment, plus 20 % -> 36
    assert pool_size(10, 300) == 36
    assert pool_size(10, 3600) == 432
    assert pool_size(100, 10, enrollment_budget_s=5) == 120  # the cap dominates
    assert pool_size(0.1, 10) == 2
    with pytest.raises(ConfigError, match="a limit of 0 \\(disabled\\) needs no pool"):
        pool_size(10, 300, concurrent_orders=0)


def test_pool_create_makes_fresh_accounts_and_names_the_one_that_failed() -> None:
    server = FakeAcme()
    pool = _run(lambda: AccountPool.create(_client(server), 3, alg="EdDSA"))
    assert len(pool) == 3
    assert len({a.key.thumbprint for a in pool.accounts}) == 3
    assert all(a.key.alg == "EdDSA" for a in pool.accounts)
    broken = FakeAcme(
        script={
            "/new-account": [
                Reply(
                    401,
                    {"Content-Type": "text/plain; charset=utf-8"},
                    b'{"error":"Invalid API key"}\n',
                )
            ]
        }
    )
    with pytest.raises(
        AcmeError,
        match=(
            r"could not create ACME account 1 of 2 at .*/new-account: "
            r"new_account: 401 certload:notProblemDocument: text/plain"
        ),
    ):
        _run(lambda: AccountPool.create(_client(broken), 2))


# -- recording and reporting ------------------------------------------------------------------


class FakeVU:
    def __init__(self, store: MetricStore, lag_ns: int = 0) -> None:
        self.store = store
        self.current_lag_ns = lag_ns

    def _declare(self, name: str, kind: MetricType, time: bool = False) -> None:
        if self.store.type_of(name) is None:
            self.store.declare(name, kind, time=time)

    def trend(self, name: str, value_ns: int, tags: Mapping[str, str] | None = None) -> None:
        self._declare(name, MetricType.TREND, True)
        self.store.add_trend(name, value_ns, tagset(dict(tags or {})))

    def rate(self, name: str, ok: bool, tags: Mapping[str, str] | None = None) -> None:
        self._declare(name, MetricType.RATE)
        self.store.add_rate(name, ok, tagset(dict(tags or {})))

    def counter(self, name: str, value: float = 1, tags: Mapping[str, str] | None = None) -> None:
        self._declare(name, MetricType.COUNTER)
        self.store.add_counter(name, value, tagset(dict(tags or {})))


def test_metrics_record_steps_the_total_from_the_intended_start_and_problems() -> None:
    from pytest_certload.certctl.acme import Enrollment

    store = MetricStore()
    vu = FakeVU(store, lag_ns=5_000_000)
    metrics = EnrollmentMetrics()
    good = Enrollment(("a",), {"new_order": 1_000_000, "finalize": 2_000_000})
    metrics.record(vu, good)
    bad = Enrollment(("b",), {"new_order": 1_000_000})
    bad.problem = AcmeProblem(
        "finalize", 500, "urn:ietf:params:acme:error:serverInternal", "ACME server error"
    )
    metrics.record(vu, bad)
    total = store.select("acme_enroll_duration", {})
    assert isinstance(total, TrendSink)
    assert total.count == 1
    assert total.max() >= 8_000_000
    ok = store.select("acme_enroll_ok", {})
    assert (ok.trues, ok.total) == (1, 2)  # type: ignore[union-attr]
    assert metrics.tally(store) == [(1, "finalize", 500, "serverInternal")]
    assert set(metrics.metrics) >= {"acme_finalize_duration", "acme_enroll_ok", "acme_problems"}


def test_explain_names_step_status_and_type_and_certctls_finalize_pitfalls() -> None:
    store = MetricStore()
    vu = FakeVU(store)
    metrics = EnrollmentMetrics()
    finalize = AcmeProblem(
        "finalize", 500, "urn:ietf:params:acme:error:serverInternal", "ACME server error"
    )
    for _ in range(3):
        vu.rate(metrics.ok_name, False)
        metrics.record_problem(vu, finalize)
    for _ in range(7):
        vu.rate(metrics.ok_name, False)
        metrics.record_problem(vu, lease_problem())
    text = metrics.explain(store)
    lines = text.splitlines()
    assert lines[0] == "ACME enrollments failed:"
    assert lines[1] == (
        "  - 3 of 10 enrollments at step finalize: HTTP 500, serverInternal -- finalize: 500 "
        "urn:ietf:params:acme:error:serverInternal: ACME server error"
    )
    assert lines[2].startswith(
        "  - 7 of 10 enrollments at step lease: HTTP 0, accountPoolExhausted"
    )
    assert (
        "finalize answered 5xx: the known certctl defect acme-finalize-500 "
        "(internal/service/acme.go::FinalizeOrder)" in text
    )
    assert "empty ids" not in text  # never advice that changes a database
    assert "accountPoolExhausted: every account had 5 orders outstanding" in text
    assert EnrollmentMetrics().explain(MetricStore()) == ""


def test_unique_names_differ_within_and_between_runs() -> None:
    a = UniqueNames("e", domain="acme.certload.example.com")
    b = UniqueNames("e", domain="acme.certload.example.com")
    names = {a.next(), a.next(), b.next()}
    assert len(names) == 3
    assert all(n.endswith(".acme.certload.example.com") and n == n.lower() for n in names)
