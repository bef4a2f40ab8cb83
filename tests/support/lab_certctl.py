"""certctl (the reference double) serving from a lab's server namespace.

The double runs inside the lab's ``srv`` namespace, listening on that namespace's address
only, with TLS (a throwaway CA; the certificate names the address). Its PostgreSQL runs
beside the controller, in this process's namespace, and listens on the controller's lab
address too, so the double reaches its database over the lab's network as a certctl on
another host would. Both are removed on exit. Imports no pytest.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from anyio.from_thread import start_blocking_portal

from pytest_certload.errors import ServiceError
from pytest_certload.stack.certctl import CertctlServer
from pytest_certload.stack.postgres import LocalPostgres
from pytest_certload.stack.tls import make_tls_material
from pytest_certload.units import NS_PER_S

from .netlab import Lab

__all__ = ["CERTCTL_PORT", "LabCertctl", "certctl_in_lab"]

CERTCTL_PORT = 8443


@dataclass(frozen=True)
class LabCertctl:
    """Where the double answers, its admin API key and the CA its certificate chains to."""

    url: str
    token: str = field(repr=False)
    ca: Path
    pid: int  # the double's process (in the server namespace)
    port: int = CERTCTL_PORT


class _NamespacedCertctl(CertctlServer):
    """:class:`CertctlServer` started with ``ip netns exec``, answering on a lab address."""

    def __init__(self, *, address: str, **kwargs: Any) -> None:
        self.address = address
        super().__init__(**kwargs)

    def url(self) -> str:
        if not self.port:
            raise ServiceError("certctl.url() needs a started server; call start() first.")
        return f"https://{self.address}:{self.port}"


def _dsn_at(dsn: str, host: str) -> str:
    """``dsn`` with its host replaced (the password stays as it is)."""
    parts = urlsplit(dsn)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    port = hostport.rpartition(":")[2]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}:{port}"))


@contextlib.contextmanager
def certctl_in_lab(lab: Lab, role: str = "srv") -> Iterator[LabCertctl]:
    """PostgreSQL beside the controller and the double in ``role``'s namespace."""
    address, db_host = lab.address(role), lab.address("controller")
    # postgres (its own user) reads its hba file from here
    lab.directory.chmod(0o711)
    pg_dir = lab.directory / "pg"
    pg_dir.mkdir(mode=0o755)
    hba = pg_dir / "pg_hba.conf"
    hba.write_text(
        "local all all trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        f"host all all {lab.subnet} scram-sha-256\n"
    )
    hba.chmod(0o644)
    tls = make_tls_material(lab.directory / "tls", server_names={"certctl": [address]})
    cert, key = tls.server_pair("certctl")
    postgres = LocalPostgres(
        base_dir=lab.directory,
        settings=[("listen_addresses", f"127.0.0.1,{db_host}"), ("hba_file", str(hba))],
    )
    with start_blocking_portal(backend="asyncio") as portal:
        server: _NamespacedCertctl | None = None
        try:
            portal.call(postgres.start)
            server = _NamespacedCertctl(
                address=address,
                db_dsn=_dsn_at(postgres.dsn(), db_host),
                cert=cert,
                key=key,
                ca=tls.ca_cert,
                port=CERTCTL_PORT,
                command=lab.argv(role, sys.executable, "-m", "pytest_certload.double"),
                extra_env={"CERTCTL_SERVER_HOST": address},
                base_dir=lab.directory,
            )
            portal.call(server.start)
            portal.call(server.wait_ready, 60 * NS_PER_S)
            assert server.pid is not None
            yield LabCertctl(server.url(), server.api_key, tls.ca_cert, server.pid)
        finally:
            if server is not None:
                portal.call(server.stop)
            portal.call(postgres.stop)
