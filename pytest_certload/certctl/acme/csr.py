"""The certificate side of an enrollment: the CSR, the PEM chain and its ARI id.

certctl requires the CSR's name set (CN plus SANs, case-folded) to equal the order's
identifiers exactly; ARI (RFC 9773) names a certificate by its issuer's key id and its
serial. Imports no pytest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from ...errors import ConfigError
from .jose import PrivateKey, b64url

__all__ = [
    "CSR_KEY_TYPES",
    "CertKey",
    "CsrKeyType",
    "ari_cert_id",
    "check_csr_key_type",
    "make_csr",
    "pem_certificates",
]

CsrKeyType = Literal["ec-p256", "rsa-2048", "ed25519"]
CSR_KEY_TYPES: tuple[CsrKeyType, ...] = ("ec-p256", "rsa-2048", "ed25519")
#: a certificate's private key: any key type a JWS account key may have
CertKey: TypeAlias = PrivateKey
_PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


#: how a fresh certificate key of each type is made
_NEW_KEY: dict[str, Callable[[], CertKey]] = {
    "ec-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "rsa-2048": lambda: rsa.generate_private_key(65537, 2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


def check_csr_key_type(key_type: str) -> None:
    """Raise :class:`~pytest_certload.errors.ConfigError` unless ``key_type`` is one of
    :data:`CSR_KEY_TYPES`."""
    if key_type not in _NEW_KEY:
        raise ConfigError(
            f"{key_type!r} is not a CSR key type; use one of {', '.join(CSR_KEY_TYPES)}."
        )


def make_csr(
    names: Sequence[str], *, key_type: str = "ec-p256", key: CertKey | None = None
) -> tuple[bytes, CertKey]:
    """A DER PKCS#10 request for ``names`` and its new private key.

    CN is the first name and every name is a DNS SAN, lowercase: certctl requires the
    CSR's name set (CN plus SANs, case-folded) to equal the order's identifiers exactly.
    """
    if not names:
        raise ConfigError("a CSR needs at least one DNS name.")
    lowered = [n.lower() for n in names]
    private = key
    if private is None:
        check_csr_key_type(key_type)
        private = _NEW_KEY[key_type]()
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, lowered[0])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in lowered]), critical=False
        )
    )
    algorithm = None if isinstance(private, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(private, algorithm)
    return csr.public_bytes(serialization.Encoding.DER), private


def _serial_bytes(serial: int) -> bytes:
    """The content octets of the DER INTEGER (a leading 0x00 when the top bit is set)."""
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big") if serial else b"\x00"


def ari_cert_id(cert: x509.Certificate) -> str:
    """The RFC 9773 §4.1 certificate id: ``base64url(AKI keyIdentifier) "." base64url(serial)``.

    The serial is its DER INTEGER value bytes (two's complement, so a leading zero byte
    when the high bit is set), both parts without padding.
    """
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        raise ConfigError(
            f"certificate {cert.serial_number:x} has no Authority Key Identifier; ARI "
            "cannot name it."
        ) from None
    if aki.key_identifier is None:
        raise ConfigError(
            f"the Authority Key Identifier of certificate {cert.serial_number:x} has no "
            "keyIdentifier; ARI cannot name it."
        )
    return f"{b64url(aki.key_identifier)}.{b64url(_serial_bytes(cert.serial_number))}"


def pem_certificates(chain: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM chain, in order (leaf first, as ACME sends it)."""
    return [x509.load_pem_x509_certificate(m) for m in _PEM_RE.findall(chain)]
