"""The double's local CA: loads CERTCTL_CA_CERT_PATH/KEY_PATH or makes an ephemeral one."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import ConfigError

__all__ = ["IssuedCertificate", "LocalCA", "make_ephemeral_ca_pem", "serial_hex"]


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
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certctl reference double"),
            x509.NameAttribute(NameOID.COMMON_NAME, "certctl double ephemeral CA"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


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
            self.cert = x509.load_pem_x509_certificate(cert_pem)
            key = serialization.load_pem_private_key(key_pem, password=None)
        except ValueError as exc:
            raise ConfigError(f"the local CA certificate or key does not parse: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ConfigError("the local CA key must be ECDSA or RSA.")
        self.key: CertificateIssuerPrivateKeyTypes = key
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()
        try:
            ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            self.key_identifier = ski.digest
        except x509.ExtensionNotFound:
            self.key_identifier = x509.SubjectKeyIdentifier.from_public_key(
                self.cert.public_key()
            ).digest

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
        if not isinstance(
            public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
        ):
            raise ValueError("unsupported CSR key type")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        not_before = now - dt.timedelta(minutes=1)
        not_after = now + lifetime
        serial = x509.random_serial_number()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier(self.key_identifier, None, None), critical=False
            )
        )
        cert = builder.sign(self.key, hashes.SHA256())
        der = cert.public_bytes(serialization.Encoding.DER)
        leaf_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        algorithm, size = _key_description(public_key)
        return IssuedCertificate(
            leaf_pem=leaf_pem,
            chain_pem=leaf_pem + self.cert_pem,
            serial=serial,
            not_before=not_before,
            not_after=not_after,
            fingerprint_sha256=hashlib.sha256(der).hexdigest(),
            key_algorithm=algorithm,
            key_size=size,
        )
