"""TLS material for the local stack: one private CA and a server certificate per service.

Everything is ECDSA P-256 (what certctl's own compose stack generates). Every server
certificate carries the names given for it plus ``localhost``, ``127.0.0.1`` and ``::1``
so clients can verify it whichever loopback name they dial.

Files written into ``directory``::

    ca.pem  ca.key                       the CA (key 0600)
    <name>.pem  <name>.key               server certificate (leaf then CA) and key
    <name>.combined.pem                  certificate chain followed by key (haproxy's crt)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import ConfigError

__all__ = ["ALWAYS_SANS", "TLSMaterial", "make_tls_material"]

#: names every server certificate carries
ALWAYS_SANS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VALIDITY = dt.timedelta(days=30)
_BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class TLSMaterial:
    """Paths of the CA and of the server pairs written by :func:`make_tls_material`."""

    ca_cert: Path
    ca_key: Path
    directory: Path = field(default=Path())
    names: tuple[str, ...] = ()

    def server_pair(self, name: str) -> tuple[Path, Path]:
        """``(certificate chain, key)`` of service ``name``."""
        self._check(name)
        return self.directory / f"{name}.pem", self.directory / f"{name}.key"

    def combined_pem(self, name: str) -> Path:
        """Chain followed by key in one file, as haproxy's ``crt`` wants it."""
        self._check(name)
        return self.directory / f"{name}.combined.pem"

    def _check(self, name: str) -> None:
        if name not in self.names:
            known = ", ".join(self.names) or "none"
            raise ConfigError(
                f"no server certificate named {name!r} in {self.directory}; "
                f"known names: {known}. Pass it in server_names= to make_tls_material()."
            )


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def make_tls_material(
    directory: Path,
    *,
    server_names: Mapping[str, Sequence[str]],
    key_mode: int = 0o600,
) -> TLSMaterial:
    """Write a fresh CA and one server certificate per entry of ``server_names``.

    ``server_names`` maps a service name (used in file names) to the extra DNS names or
    IP addresses of its certificate. ``key_mode`` is the permission of the key files;
    pass ``0o644`` when a process running as another user must read them.
    """
    for name in server_names:
        if not _NAME_RE.match(name):
            raise ConfigError(
                f"{name!r} is not a valid service name for TLS material; use letters, "
                "digits, '.', '_' or '-', starting with a letter or digit."
            )
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - _BACKDATE, now + _VALIDITY

    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pytest-certload test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
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
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    ca_cert_path, ca_key_path = directory / "ca.pem", directory / "ca.key"
    _write(ca_cert_path, ca_pem, 0o644)
    _write(ca_key_path, _key_pem(ca_key), 0o600)

    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    for name, extra in server_names.items():
        sans: list[str] = []
        for entry in (*extra, *ALWAYS_SANS):
            if entry not in sans:
                sans.append(entry)
        key = _key()
        cn = next((s for s in sans if not _is_ip(s)), name)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn[:64])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([_san(s) for s in sans]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(aki, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + ca_pem
        key_pem = _key_pem(key)
        _write(directory / f"{name}.pem", chain, 0o644)
        _write(directory / f"{name}.key", key_pem, key_mode)
        _write(directory / f"{name}.combined.pem", chain + key_pem, key_mode)

    return TLSMaterial(
        ca_cert=ca_cert_path,
        ca_key=ca_key_path,
        directory=directory,
        names=tuple(server_names),
    )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
