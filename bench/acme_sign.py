"""Generator-side CPU cost of one ACME enrollment, per account-key algorithm.

What the load generator computes for each enrollment of ``tests/load/test_acme_enroll.py``
besides HTTP: four JWS signatures with the account key (new-order, authz, finalize,
certificate), a fresh certificate key and its CSR, and parsing the downloaded chain for
the ARI id. The script times each primitive, then the whole ``AcmeClient.enroll`` driven
by an in-memory transport that answers instantly (so it is the client's own Python and
crypto, no network, no server), and prints CPU microseconds per enrollment and the
enrollments per second one core can drive (1e6 / µs). The HTTP client's own cost is not
included: add ``cpu_us_per_req`` of ``bench/ceiling.py --tls`` (about 30-60 µs) per
request, five requests per enrollment.

    python bench/acme_sign.py                     # every algorithm, 2 s per measurement
    python bench/acme_sign.py --seconds 5 --cpu 1 # longer, pinned to CPU 1

CPU time is ``time.thread_time_ns`` (this thread only), so other load on the machine
slows the wall clock but not the figures. Never passes or fails on time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pytest_certload.certctl.acme import (
    AccountKey,
    AcmeAccount,
    AcmeClient,
    AcmeDirectory,
    ari_cert_id,
    make_csr,
    sign_jws,
)

BASE = "https://127.0.0.1:8443/acme/profile/prof-standard-tls"
#: account algorithm -> the certificate key of the same family
SAME_FAMILY = {"ES256": "ec-p256", "RS256": "rsa-2048", "EdDSA": "ed25519"}
JWS_PER_ENROLLMENT = 4


def cpu_us_per_op(fn: Callable[[], Any], seconds: float) -> tuple[float, int]:
    """Run ``fn`` for about ``seconds`` of CPU; (CPU µs per call, calls)."""
    fn()  # warm-up
    calls = 0
    start = time.thread_time_ns()
    deadline = start + int(seconds * 1e9)
    now = start
    while now < deadline:
        fn()
        calls += 1
        now = time.thread_time_ns()
    return (now - start) / calls / 1000, calls


def _sample_chain() -> bytes:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    now = dt.datetime.now(dt.UTC)

    def cert(subject: x509.Name, key: Any, serial: int, *, leaf: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.AuthorityKeyIdentifier(ski.digest, None, None), critical=False)
        )
        if leaf:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName("e1.bench.example.com")]),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256())

    leaf = cert(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e1.bench.example.com")]),
        leaf_key,
        x509.random_serial_number(),
        leaf=True,
    )
    root = cert(ca_name, ca_key, 1, leaf=False)
    return leaf.public_bytes(serialization.Encoding.PEM) + root.public_bytes(
        serialization.Encoding.PEM
    )


@dataclass
class _Reply:
    status_code: int
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class InstantServer:
    """Canned certctl answers with no checks: only the client's work is measured."""

    def __init__(self, chain: bytes) -> None:
        self.n = 0
        order = {
            "status": "ready",
            "identifiers": [{"type": "dns", "value": "x"}],
            "authorizations": [f"{BASE}/authz/a1"],
            "finalize": f"{BASE}/order/o1/finalize",
        }
        valid = {**order, "status": "valid", "certificate": f"{BASE}/cert/c1"}
        window = {
            "suggestedWindow": {"start": "2026-03-01T00:00:00Z", "end": "2026-03-15T00:00:00Z"}
        }
        self.bodies = {
            "new-order": (201, json.dumps(order).encode(), {"Location": f"{BASE}/order/o1"}),
            "a1": (200, json.dumps({"status": "valid"}).encode(), {}),
            "finalize": (200, json.dumps(valid).encode(), {}),
            "c1": (200, chain, {"Content-Type": "application/pem-certificate-chain"}),
        }
        self.window = json.dumps(window).encode()

    def _nonce(self) -> str:
        self.n += 1
        return f"n{self.n}"

    async def head(self, url: str, **kw: Any) -> _Reply:
        return _Reply(200, b"", {"Replay-Nonce": self._nonce()})

    async def get(self, url: str, **kw: Any) -> _Reply:
        return _Reply(200, self.window, {"Retry-After": "21600"})

    async def post(self, url: str, **kw: Any) -> _Reply:
        status, body, headers = self.bodies[url.rsplit("/", 1)[-1]]
        return _Reply(status, body, {"Replay-Nonce": self._nonce(), **headers})


def measure(alg: str, csr_key: str, seconds: float, chain: bytes) -> dict[str, Any]:
    key = AccountKey.generate(alg)
    payload = {"identifiers": [{"type": "dns", "value": "e1.bench.example.com"}]}
    sign_us, _ = cpu_us_per_op(
        lambda: sign_jws(
            key, payload, url=f"{BASE}/new-order", nonce="abc", kid=f"{BASE}/account/x"
        ),
        seconds,
    )
    csr_us, _ = cpu_us_per_op(lambda: make_csr(["e1.bench.example.com"], key_type=csr_key), seconds)

    def parse() -> None:
        ari_cert_id(x509.load_pem_x509_certificate(chain))

    ari_us, _ = cpu_us_per_op(parse, seconds)

    directory = AcmeDirectory(
        f"{BASE}/directory",
        f"{BASE}/new-nonce",
        f"{BASE}/new-account",
        f"{BASE}/new-order",
        f"{BASE}/renewal-info",
    )
    server = InstantServer(chain)
    client = AcmeClient(server, directory, {"Authorization": "Bearer x"}, csr_key_type=csr_key)
    account = AcmeAccount(key, f"{BASE}/account/x")

    async def loop() -> tuple[float, int]:
        await client.enroll(account, ["e1.bench.example.com"])
        calls = 0
        start = time.thread_time_ns()
        deadline = start + int(seconds * 1e9)
        now = start
        while now < deadline:
            result = await client.enroll(account, ["e1.bench.example.com"])
            if not result.ok:
                raise SystemExit(f"the in-memory enrollment failed: {result.problem}")
            calls += 1
            now = time.thread_time_ns()
        return (now - start) / calls / 1000, calls

    enroll_us, enrollments = anyio.run(loop)
    return {
        "alg": alg,
        "csr_key": csr_key,
        "jws_sign_us": sign_us,
        "csr_us": csr_us,
        "chain_parse_ari_us": ari_us,
        "crypto_us": JWS_PER_ENROLLMENT * sign_us + csr_us + ari_us,
        "enroll_us": enroll_us,
        "enrollments_timed": enrollments,
        "enrollments_per_core_s": 1e6 / enroll_us,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="CPU seconds per measurement (default 2)"
    )
    parser.add_argument(
        "--cpu", type=int, default=None, help="pin to this CPU (default: not pinned)"
    )
    parser.add_argument(
        "--algs", default="ES256,RS256,EdDSA", help="account algorithms (default all)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per row")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    import cryptography

    print(
        f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"cryptography {cryptography.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        file=sys.stderr,
    )
    chain = _sample_chain()
    rows = []
    for alg in args.algs.split(","):
        for csr_key in dict.fromkeys(["ec-p256", SAME_FAMILY[alg]]):
            rows.append(measure(alg, csr_key, args.seconds, chain))
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    head = (
        f"{'account':8} {'CSR key':9} {'JWS sign µs':>11} {'CSR+key µs':>11} {'parse µs':>9} "
        f"{'crypto µs':>10} {'enroll µs':>10} {'enroll/s/core':>14}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['alg']:8} {r['csr_key']:9} {r['jws_sign_us']:11.1f} {r['csr_us']:11.1f} "
            f"{r['chain_parse_ari_us']:9.1f} {r['crypto_us']:10.1f} {r['enroll_us']:10.1f} "
            f"{r['enrollments_per_core_s']:14,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
