"""Build a certificate authority and issue server certificates: the one place that does.

The stack's TLS material (:mod:`pytest_certload.stack.tls`) and the reference double's
local CA (``pytest_certload.double``) both build on these functions, so the CA profile
(ECDSA P-256, ``BasicConstraints(ca, path_length=0)``, key usage ``keyCertSign`` and
``cRLSign``, a subject key identifier) and the server-certificate profile (``serverAuth``,
the subject alternative names, key identifiers, SHA-256 signatures) have one owner.

Below the stack and the double in the layers: imports ``cryptography`` and the standard
library only. Nothing here reads or writes files; callers decide where PEM goes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

__all__ = [
    "CertificateAuthority",
    "IssuableKey",
    "general_name",
    "issue_server_certificate",
    "make_ca",
    "new_key",
    "private_key_pem",
]

#: public keys a server certificate may carry
IssuableKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key (what certctl's own compose stack generates)."""
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def general_name(name: str) -> x509.GeneralName:
    """An IP address SAN when ``name`` parses as one, else a DNS name SAN."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate and its private key; :func:`issue_server_certificate` signs with it."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @property
    def key_identifier(self) -> bytes:
        """The CA's subject key identifier (computed from its key when the extension is
        missing), as issued certificates' authority key identifier."""
        try:
            ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            ski = x509.SubjectKeyIdentifier.from_public_key(self.cert.public_key())
        return ski.digest

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return private_key_pem(self.key)


def make_ca(
    subject: x509.Name, *, not_before: dt.datetime, not_after: dt.datetime
) -> CertificateAuthority:
    """A fresh self-signed ECDSA P-256 CA that may sign end-entity certificates only."""
    key = new_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
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
    return CertificateAuthority(cert, key)


def issue_server_certificate(
    ca: CertificateAuthority,
    public_key: IssuableKey,
    *,
    subject: x509.Name,
    sans: Sequence[x509.GeneralName],
    not_before: dt.datetime,
    not_after: dt.datetime,
    key_agreement: bool = False,
) -> x509.Certificate:
    """A TLS server certificate for ``public_key``, signed by ``ca`` (SHA-256).

    Key usage is ``digitalSignature``, plus ``keyEncipherment`` for an RSA key and
    ``keyAgreement`` when ``key_agreement`` is set (the stack's ECDSA server keys carry
    it; certctl's local CA does not set it).
    """
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=key_agreement,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(ca.key_identifier, None, None), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
