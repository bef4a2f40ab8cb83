"""TLS material for the local stack: one private CA and a server certificate per service.

Everything is ECDSA P-256 (what certctl's own compose stack generates). Every server
certificate carries the names given for it plus ``localhost``, ``127.0.0.1`` and ``::1``
so clients can verify it whichever loopback name they dial. The certificates are built
by :mod:`pytest_certload.pki`; this module decides names, validity and files.

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
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ..errors import ConfigError
from ..pki import general_name, issue_server_certificate, make_ca, new_key, private_key_pem

__all__ = ["ALWAYS_SANS", "TLSMaterial", "make_tls_material"]

#: names every server certificate carries
ALWAYS_SANS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VALIDITY = dt.timedelta(days=30)
_BACKDATE = dt.timedelta(minutes=5)
_CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pytest-certload test CA")])


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

    ca = make_ca(_CA_NAME, not_before=not_before, not_after=not_after)
    ca_pem = ca.cert_pem()
    ca_cert_path, ca_key_path = directory / "ca.pem", directory / "ca.key"
    _write(ca_cert_path, ca_pem, 0o644)
    _write(ca_key_path, ca.key_pem(), 0o600)

    for name, extra in server_names.items():
        sans: list[str] = []
        for entry in (*extra, *ALWAYS_SANS):
            if entry not in sans:
                sans.append(entry)
        key = new_key()
        cn = next((s for s in sans if not _is_ip(s)), name)
        cert = issue_server_certificate(
            ca,
            key.public_key(),
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn[:64])]),
            sans=[general_name(s) for s in sans],
            not_before=not_before,
            not_after=not_after,
            key_agreement=True,
        )
        chain = cert.public_bytes(serialization.Encoding.PEM) + ca_pem
        key_pem = private_key_pem(key)
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
