"""Helpers of tests/double: launching doubles, clients, a minimal ACME client."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg

from pytest_certload.stack.helpers import free_port
from pytest_certload.stack.postgres import LocalPostgres
from pytest_certload.stack.tls import TLSMaterial

REPO = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"
ADMIN_KEY = "lt-admin-key"
USER_KEY = "lt-user-key"
ENCRYPTION_KEY = "loadtest-key-must-be-32-bytes-long-yes"


@dataclass
class Double:
    """A running double: its URL, credentials, database and process."""

    base_url: str
    dsn: str
    tls: TLSMaterial
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def ssl_context(self, **kwargs: Any) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.tls.ca_cert))
        for name, value in kwargs.items():
            setattr(ctx, name, value)
        return ctx

    def client(self, key: str | None = ADMIN_KEY, *, http2: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(
            base_url=self.base_url,
            verify=self.ssl_context(),
            http2=http2,
            headers=headers,
            timeout=20.0,
        )

    def db(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.dsn, autocommit=True)

    def scalar(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        with self.db() as conn:
            row = conn.execute(sql.encode(), params).fetchone()
        return None if row is None else row[0]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc)


def assert_problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """An ACME problem document: status, media type, no Replay-Nonce, the ACME type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert "replay-nonce" not in response.headers
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:ietf:params:acme:error:{kind}"
    assert body["status"] == status
    return body


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def double_env(
    dsn: str, tls: TLSMaterial, port: int, overrides: Mapping[str, str] = {}
) -> dict[str, str]:
    cert, key = tls.server_pair("certctl")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CERTCTL_", "CERTLOAD_"))}
    env.update(
        PYTHONPATH=str(REPO),
        CERTCTL_DATABASE_URL=dsn,
        CERTCTL_SERVER_HOST="127.0.0.1",
        CERTCTL_SERVER_PORT=str(port),
        CERTCTL_SERVER_TLS_CERT_PATH=str(cert),
        CERTCTL_SERVER_TLS_KEY_PATH=str(key),
        CERTCTL_AUTH_TYPE="api-key",
        CERTCTL_AUTH_SECRET="legacy-secret",
        CERTCTL_API_KEYS_NAMED=f"loadtest:{ADMIN_KEY}:admin,viewer:{USER_KEY}",
        CERTCTL_DEMO_SEED="true",
        CERTCTL_CONFIG_ENCRYPTION_KEY=ENCRYPTION_KEY,
        CERTCTL_KEYGEN_MODE="agent",
        CERTCTL_RATE_LIMIT_ENABLED="false",
        CERTCTL_LOG_LEVEL="warn",
        CERTCTL_CA_CERT_PATH=str(tls.ca_cert),
        CERTCTL_CA_KEY_PATH=str(tls.ca_key),
    )
    env.update(overrides)
    return env


def launch(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "pytest_certload.double"],
            env=env,
            cwd=str(REPO),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(double: Double, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(verify=double.ssl_context(), timeout=2.0) as client:
        while time.monotonic() < deadline:
            if double.proc.poll() is not None:
                raise RuntimeError(
                    f"the double exited with {double.proc.returncode} before /ready; log:\n"
                    f"{double.log_tail()}"
                )
            try:
                response = client.get(f"{double.base_url}/ready")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.1)
    double.stop()
    raise TimeoutError(
        f"the double at {double.base_url} was not ready within {timeout:.0f} s "
        f"(last: {last}); log:\n{double.log_tail()}"
    )


@dataclass
class Stack:
    workdir: Path
    postgres: LocalPostgres
    tls: TLSMaterial
    databases: int = 0

    def new_database(self) -> str:
        self.databases += 1
        name = f"double_{self.databases}"
        return anyio.run(self.postgres.create_database, name)

    def start_double(self, overrides: Mapping[str, str] = {}, *, dsn: str | None = None) -> Double:
        port = free_port()
        dsn = dsn or self.new_database()
        env = double_env(dsn, self.tls, port, overrides)
        log_path = self.workdir / f"double-{port}.log"
        proc = launch(env, log_path)
        double = Double(f"https://127.0.0.1:{port}", dsn, self.tls, proc, log_path, env)
        wait_ready(double)
        return double


# -- a minimal ACME client for the tests (the production client lives elsewhere) ----------

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

from pytest_certload.double._jws import b64u_encode  # noqa: E402

AcmeKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def jwk_of(key: AcmeKey) -> dict[str, str]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64u_encode(numbers.x.to_bytes(32, "big")),
            "y": b64u_encode(numbers.y.to_bytes(32, "big")),
        }
    if isinstance(key, rsa.RSAPrivateKey):
        rsa_numbers = key.public_key().public_numbers()
        n = rsa_numbers.n
        return {
            "kty": "RSA",
            "n": b64u_encode(n.to_bytes((n.bit_length() + 7) // 8, "big")),
            "e": b64u_encode(rsa_numbers.e.to_bytes(3, "big")),
        }
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64u_encode(raw)}


def sign(key: AcmeKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if isinstance(key, rsa.RSAPrivateKey):
        from cryptography.hazmat.primitives.asymmetric import padding

        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


ALG_OF = {ec.EllipticCurvePrivateKey: "ES256", rsa.RSAPrivateKey: "RS256"}


class AcmeTestClient:
    """Signs flattened JWS requests against the double's ACME server."""

    def __init__(self, http: httpx.Client, directory_url: str, key: AcmeKey | None = None):
        self.http = http
        self.key: AcmeKey = key or ec.generate_private_key(ec.SECP256R1())
        self.directory = http.get(directory_url).json()
        self.kid: str | None = None

    @property
    def alg(self) -> str:
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return "ES256"
        if isinstance(self.key, rsa.RSAPrivateKey):
            return "RS256"
        return "EdDSA"

    def nonce(self) -> str:
        response = self.http.head(self.directory["newNonce"])
        assert response.status_code == 200, response.text
        return response.headers["replay-nonce"]

    def jws(
        self,
        url: str,
        payload: Any,
        *,
        nonce: str | None = None,
        use_jwk: bool = False,
        alg: str | None = None,
        url_in_header: str | None = None,
        key: AcmeKey | None = None,
        signing_key: AcmeKey | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        import json

        protected: dict[str, Any] = {
            "alg": alg or self.alg,
            "nonce": nonce if nonce is not None else self.nonce(),
            "url": url_in_header if url_in_header is not None else url,
        }
        if use_jwk or self.kid is None:
            protected["jwk"] = jwk_of(key or self.key)
        else:
            protected["kid"] = self.kid
        if extra:
            protected.update(extra)
        protected_b64 = b64u_encode(json.dumps(protected).encode())
        payload_b64 = "" if payload is None else b64u_encode(json.dumps(payload).encode())
        signer = signing_key or key or self.key
        signature = sign(signer, f"{protected_b64}.{payload_b64}".encode())
        return {
            "protected": protected_b64,
            "payload": payload_b64,
            "signature": b64u_encode(signature),
        }

    def post(self, url: str, payload: Any, **kwargs: Any) -> httpx.Response:
        body = self.jws(url, payload, **kwargs)
        return self.http.post(url, json=body, headers={"Content-Type": "application/jose+json"})

    def new_account(self) -> httpx.Response:
        response = self.post(
            self.directory["newAccount"],
            {"termsOfServiceAgreed": True, "contact": ["mailto:ops@example.test"]},
            use_jwk=True,
        )
        if response.status_code in (200, 201):
            self.kid = response.headers["location"]
        return response


# -- ACME helpers shared by the ACME tests -------------------------------------------------

from cryptography import x509  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def b64u(data: bytes) -> str:
    return b64u_encode(data)


def make_csr(names: list[str]) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """A P-256 CSR whose CN is the first name and whose SANs are all of them."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER), key


def issue(acme: AcmeTestClient, name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """new-order, finalize and download for ``name``: the leaf and its key."""
    order = acme.post(
        acme.directory["newOrder"], {"identifiers": [{"type": "dns", "value": name}]}
    ).json()
    csr_der, leaf_key = make_csr([name])
    final = acme.post(order["finalize"], {"csr": b64u(csr_der)}).json()
    chain = acme.post(final["certificate"], None).content
    return x509.load_pem_x509_certificates(chain)[0], leaf_key
