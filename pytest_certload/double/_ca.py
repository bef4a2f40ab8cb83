"""The double's local CA: loads CERTCTL_CA_CERT_PATH/KEY_PATH or makes an ephemeral one.

Building the CA and signing certificates is :mod:`pytest_certload.pki`'s job; this module
loads the CA the double is configured with and shapes what finalize stores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from ..errors import ConfigError
from ..pki import CertificateAuthority, IssuableKey, issue_server_certificate, make_ca

__all__ = ["IssuedCertificate", "LocalCA", "make_ephemeral_ca_pem", "serial_hex"]

_EPHEMERAL_CA_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certctl reference double"),
        x509.NameAttribute(NameOID.COMMON_NAME, "certctl double ephemeral CA"),
    ]
)


def serial_hex(serial: int) -> str:
    """Serial as certctl's local CA stores it: lowercase hex, zero-padded to 40 digits."""
    return f"{serial:040x}"


@dataclass(frozen=True)
class IssuedCertificate:
    leaf_pem: str
    chain_pem: str
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint_sha256: str
    key_algorithm: str
    key_size: int


def make_ephemeral_ca_pem() -> tuple[bytes, bytes]:
    """A fresh self-signed ECDSA P-256 CA as (cert PEM, key PEM)."""
    now = dt.datetime.now(dt.UTC)
    ca = make_ca(
        _EPHEMERAL_CA_NAME,
        not_before=now - dt.timedelta(minutes=5),
        not_after=now + dt.timedelta(days=3650),
    )
    return ca.cert_pem(), ca.key_pem()


def _key_description(key: CertificatePublicKeyTypes) -> tuple[str, int]:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ECDSA", key.curve.key_size
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    return type(key).__name__, 0


class LocalCA:
    """Signs leaf certificates for ACME finalize."""

    def __init__(self, cert_pem: bytes, key_pem: bytes) -> None:
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
            key = serialization.load_pem_private_key(key_pem, password=None)
        except ValueError as exc:
            raise ConfigError(f"the local CA certificate or key does not parse: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ConfigError("the local CA key must be ECDSA or RSA.")
        self.authority = CertificateAuthority(cert, key)
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()

    @classmethod
    def from_files(cls, cert_path: str, key_path: str) -> LocalCA:
        try:
            with open(cert_path, "rb") as fc, open(key_path, "rb") as fk:
                return cls(fc.read(), fk.read())
        except OSError as exc:
            raise ConfigError(
                f"CERTCTL_CA_CERT_PATH/CERTCTL_CA_KEY_PATH not readable: {exc.filename} "
                f"({exc.strerror})."
            ) from None

    def issue(
        self,
        csr: x509.CertificateSigningRequest,
        names: list[str],
        lifetime: dt.timedelta,
    ) -> IssuedCertificate:
        """Sign a server certificate for ``names`` with the CSR's public key."""
        public_key = csr.public_key()
        if not isinstance(public_key, IssuableKey):
            raise ValueError("unsupported CSR key type")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        not_before = now - dt.timedelta(minutes=1)
        not_after = now + lifetime
        cert = issue_server_certificate(
            self.authority,
            public_key,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]),
            sans=[x509.DNSName(n) for n in names],
            not_before=not_before,
            not_after=not_after,
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        leaf_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        algorithm, size = _key_description(public_key)
        return IssuedCertificate(
            leaf_pem=leaf_pem,
            chain_pem=leaf_pem + self.cert_pem,
            serial=cert.serial_number,
            not_before=not_before,
            not_after=not_after,
            fingerprint_sha256=hashlib.sha256(der).hexdigest(),
            key_algorithm=algorithm,
            key_size=size,
        )
