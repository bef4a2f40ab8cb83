"""nginx, apache, haproxy and the f5 mock as TLS targets verified by the test CA."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pytest_certload.errors import ServiceError
from pytest_certload.stack import sidecars
from pytest_certload.stack.f5 import F5Mock
from pytest_certload.stack.probes import probe_http, probe_tls
from pytest_certload.stack.sidecars import ApacheSidecar, HAProxySidecar, NginxSidecar, Sidecar
from pytest_certload.stack.tls import TLSMaterial

from .conftest import TIMEOUT_NS, descendants

pytestmark = pytest.mark.anyio

SIDECARS = [NginxSidecar, ApacheSidecar, HAProxySidecar]


@pytest.fixture(params=SIDECARS, ids=lambda cls: cls.name)
async def sidecar(request: pytest.FixtureRequest, tls: TLSMaterial) -> AsyncIterator[Sidecar]:
    cls = request.param
    cert, key = tls.server_pair(cls.name)
    service = cls(cert, key, ca=tls.ca_cert)
    await service.start()
    try:
        await service.wait_ready(TIMEOUT_NS)
        yield service
    finally:
        await service.stop()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_answers_200_over_verified_tls(
    sidecar: Sidecar, tls: TLSMaterial, version: ssl.TLSVersion
) -> None:
    status, body, negotiated = await probe_http(
        sidecar.url() + "/", verify=tls.ca_cert, tls_version=version
    )
    assert status == 200
    assert (
        negotiated
        == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    )
    if sidecar.name != "apache":
        assert body == b"ok\n"


async def test_untrusted_ca_fails_verification(sidecar: Sidecar, tmp_path: Path) -> None:
    from pytest_certload.stack.tls import make_tls_material

    other = make_tls_material(tmp_path, server_names={})
    with pytest.raises(ssl.SSLCertVerificationError):
        await probe_tls("127.0.0.1", sidecar.port, verify=other.ca_cert)


@pytest.mark.parametrize("cls", SIDECARS, ids=lambda cls: cls.name)
async def test_stop_leaves_no_process_and_no_directory(
    cls: type[Sidecar], tls: TLSMaterial
) -> None:
    cert, key = tls.server_pair(cls.name)
    service = cls(cert, key, ca=tls.ca_cert)
    await service.start()
    try:
        await service.wait_ready(TIMEOUT_NS)
        pid, directory = service.pid, service.directory
        assert pid is not None
        assert directory is not None
        assert directory.exists()
        workers = descendants(pid)
        if cls is not HAProxySidecar:  # nginx and apache fork workers; haproxy does not
            assert workers
    finally:
        await service.stop()
    assert not directory.exists()
    assert pid not in descendants()
    assert not (workers & descendants())


@pytest.mark.parametrize(
    ("cls", "package"),
    [
        (NginxSidecar, "apt-get install nginx"),
        (ApacheSidecar, "apt-get install apache2"),
        (HAProxySidecar, "apt-get install haproxy"),
    ],
    ids=["nginx", "apache", "haproxy"],
)
async def test_missing_binary_names_the_package(
    cls: type[Sidecar],
    package: str,
    tls: TLSMaterial,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sidecars, "_SBIN_DIRS", ())
    cert, key = tls.server_pair(cls.name)
    service = cls(cert, key, ca=tls.ca_cert, base_dir=tmp_path / "work")
    with pytest.raises(ServiceError) as info:
        await service.start()
    message = str(info.value)
    assert f"the {cls.name} binary" in message
    assert "was not found" in message
    assert f"PATH ({tmp_path})" in message
    assert package in message
    assert "binary=Path(" in message
    assert "containers provider" in message
    assert "external provider" in message
    assert not (tmp_path / "work").exists()


async def test_explicit_binary_path_that_does_not_exist(tls: TLSMaterial, tmp_path: Path) -> None:
    cert, key = tls.server_pair("nginx")
    service = NginxSidecar(cert, key, ca=tls.ca_cert, binary=tmp_path / "nginx")
    with pytest.raises(ServiceError, match=rf"Checked:\n  - {tmp_path / 'nginx'}"):
        await service.start()


async def test_f5_mock_both_listeners_and_teardown(tls: TLSMaterial) -> None:
    cert, key = tls.server_pair("f5")
    mock = F5Mock(cert, key, ca=tls.ca_cert)
    await mock.start()
    try:
        await mock.wait_ready(TIMEOUT_NS)
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            status, body, _ = await probe_http(
                mock.url() + "/healthz", verify=tls.ca_cert, tls_version=version
            )
            assert (status, body) == (200, b"ok")
        status, body, negotiated = await probe_http(mock.http_url() + "/healthz")
        assert (status, body, negotiated) == (200, b"ok", "")
        pid, directory = mock.pid, mock.directory
    finally:
        await mock.stop()
    assert directory is not None
    assert not directory.exists()
    assert pid not in descendants()
