"""StackInfo and the external provider."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from pytest_certload.errors import ConfigError, ServiceTimeout
from pytest_certload.stack.external import ExternalStack
from pytest_certload.stack.helpers import free_port
from pytest_certload.stack.info import StackInfo
from pytest_certload.stack.local import LocalStack
from pytest_certload.stack.protocols import StackProvider


def test_stack_info_is_frozen_and_hides_secrets(tmp_path: Path) -> None:
    info = StackInfo(
        certctl_url="https://example.test:8443/",
        token="t0ken",
        admin_token="adm1n",
        dsn="postgresql://u:secret@h/db",
        targets={"nginx": "https://n"},
    )
    assert info.certctl_url == "https://example.test:8443"
    assert "t0ken" not in repr(info)
    assert "secret" not in repr(info)
    assert repr(info).startswith("StackInfo(certctl_url='https://example.test:8443', ")
    with_password = StackInfo(
        certctl_url="https://u:url-pw-1@example.test:8443",
        token="t",
        admin_token="t",
        targets={"nginx": "https://u:target-pw-2@n"},
    )
    assert "url-pw-1" not in repr(with_password)
    assert "target-pw-2" not in repr(with_password)
    with pytest.raises(AttributeError):
        info.token = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        info.targets["f5"] = "x"  # type: ignore[index]
    assert info.target("nginx") == "https://n"
    with pytest.raises(ConfigError, match="the external stack has no 'f5' target"):
        info.target("f5")


def test_verify_gives_a_fresh_context_or_a_bool(tmp_path: Path) -> None:
    from pytest_certload.stack.tls import make_tls_material

    material = make_tls_material(tmp_path, server_names={})
    info = StackInfo(certctl_url="https://x", token="t", admin_token="t", ca=material.ca_cert)
    first, second = info.verify(), info.verify()
    assert isinstance(first, ssl.SSLContext)
    assert first is not second
    off = StackInfo(certctl_url="https://x", token="t", admin_token="t", verify_tls=False)
    assert off.verify() is False
    system = StackInfo(certctl_url="https://x", token="t", admin_token="t")
    assert system.verify() is True


def test_unknown_target_type_rejected() -> None:
    with pytest.raises(ConfigError, match=r"unknown target type.*iis"):
        StackInfo(certctl_url="https://x", token="t", admin_token="t", targets={"iis": "u"})


def test_providers_satisfy_the_protocol() -> None:
    info = StackInfo(certctl_url="https://x", token="t", admin_token="t")
    assert isinstance(ExternalStack(info), StackProvider)
    assert isinstance(LocalStack(), StackProvider)


@pytest.mark.anyio
async def test_external_stack_that_is_not_running_times_out_with_advice() -> None:
    port = free_port()
    info = StackInfo(
        certctl_url=f"https://127.0.0.1:{port}", token="t", admin_token="t", verify_tls=False
    )
    with pytest.raises(ServiceTimeout) as exc:
        await ExternalStack(info, ready_timeout_ns=200_000_000).start()
    assert f"https://127.0.0.1:{port}/ready" in str(exc.value)
    assert any("this stack is external" in n for n in exc.value.__notes__)


def test_package_all_is_exact_and_importable() -> None:
    import pytest_certload.stack as stack

    assert sorted(stack.__all__) == sorted(stack._WHERE)
    for name in stack.__all__:
        assert getattr(stack, name) is not None
