"""The pre-flight check names the real cause of an unusable stack before any load.

Local servers play the stack (tests/support: the latency server, plain or TLS, answers
200 to every path); certctl's own answers (its 401 body, a 503 /ready) are checked
against the reference double in tests/double/test_double_preflight.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from pytest_certload.errors import PreflightError, ServiceError
from pytest_certload.stack.helpers import free_port
from pytest_certload.stack.info import StackInfo
from pytest_certload.stack.preflight import check_stack, preflight
from pytest_certload.stack.session import OpenStack, StackRequest, open_stack
from tests.support.servers import LatencyServer, TLSFiles, generate_tls, latency_server

TOKEN = "tok-never-shown-1234"
DSN = "postgresql://certctl:dsn-password-never-shown@127.0.0.1:5432/certctl"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return generate_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A CA that did not sign the servers' certificates."""
    return generate_tls(tmp_path_factory.mktemp("other"))


@pytest.fixture(scope="module")
def tls_server(tls: TLSFiles) -> Iterator[LatencyServer]:
    with latency_server(tls=tls) as server:
        yield server


@pytest.fixture(scope="module")
def plain_server() -> Iterator[LatencyServer]:
    with latency_server() as server:
        yield server


def info_for(url: str, ca: str | None, **kwargs: object) -> StackInfo:
    return StackInfo(
        certctl_url=url,
        token=TOKEN,
        admin_token=TOKEN,
        dsn=DSN,
        ca=Path(ca) if ca else None,
        provider="external",
        **kwargs,  # type: ignore[arg-type]
    )


def failure(info: StackInfo) -> str:
    with pytest.raises(PreflightError) as caught:
        anyio.run(preflight, info)
    message = str(caught.value)
    assert TOKEN not in message
    assert "dsn-password-never-shown" not in message
    assert message.startswith("the pre-flight check of the external stack found ")
    return message


def test_a_usable_stack_passes(tls_server: LatencyServer, tls: TLSFiles) -> None:
    info = info_for(tls_server.url, tls.ca, targets={"nginx": tls_server.url})
    assert anyio.run(check_stack, info) == []
    anyio.run(preflight, info)  # no error


def test_untrusted_certificate_names_tls_and_the_ca_option(
    tls_server: LatencyServer, other_ca: TLSFiles
) -> None:
    message = failure(info_for(tls_server.url, other_ca.ca))
    assert f"certctl at {tls_server.url}: TLS verification failed (" in message
    assert f"against the CA in {other_ca.ca}" in message
    assert "give --certload-ca PATH, the CA that signed the server's certificate" in message
    assert "--certload-ca insecure" in message


def test_system_trust_store_is_named_when_no_ca_is_given(tls_server: LatencyServer) -> None:
    message = failure(info_for(tls_server.url, None))
    assert "TLS verification failed (" in message
    assert "against the system trust store" in message
    assert "--certload-ca PATH" in message


def test_http_url_at_a_tls_port_names_the_scheme(tls_server: LatencyServer, tls: TLSFiles) -> None:
    url = f"http://127.0.0.1:{tls_server.port}"
    message = failure(info_for(url, tls.ca))
    assert (
        f"certctl at {url}: the URL says http:// but the server speaks TLS; "
        f"use https://127.0.0.1:{tls_server.port} in --certctl-url"
    ) in message


def test_https_url_at_a_plain_port_names_the_scheme(
    plain_server: LatencyServer, tls: TLSFiles
) -> None:
    url = f"https://127.0.0.1:{plain_server.port}"
    message = failure(info_for(url, tls.ca))
    assert (
        f"certctl at {url}: the URL says https:// but the server speaks plain HTTP (no TLS); "
        f"use http://127.0.0.1:{plain_server.port} in --certctl-url"
    ) in message


def test_refused_port_names_the_url_and_the_option(tls: TLSFiles) -> None:
    port = free_port()
    message = failure(info_for(f"https://127.0.0.1:{port}", tls.ca))
    assert (
        f"certctl at https://127.0.0.1:{port}: connection refused (nothing listens on "
        f"127.0.0.1:{port}); check that the service runs there and that --certctl-url"
    ) in message


def test_every_target_gets_a_handshake_with_the_same_ca_rule(
    tls_server: LatencyServer, plain_server: LatencyServer, tls: TLSFiles, other_ca: TLSFiles
) -> None:
    closed = free_port()
    info = info_for(
        "",
        other_ca.ca,
        targets={
            "nginx": tls_server.url,  # signed by another CA than --certload-ca
            "apache": f"https://127.0.0.1:{plain_server.port}",  # plain HTTP port
            "haproxy": f"http://127.0.0.1:{tls_server.port}",  # TLS port
            "f5": f"https://127.0.0.1:{closed}",  # nothing there
        },
    )
    problems = anyio.run(check_stack, info)
    assert [(p.service, p.kind) for p in problems] == [
        ("the nginx target", "tls"),
        ("the apache target", "scheme"),
        ("the haproxy target", "scheme"),
        ("the f5 target", "refused"),
    ]
    message = failure(info)
    assert "found 4 problems before any load was sent:\n  - the nginx target at" in message
    assert "--certload-ca PATH" in message
    assert "connector targets are verified with the same CA" in message
    assert message.count("--certload-targets") == 4


def test_every_problem_is_listed_at_once(tls_server: LatencyServer, other_ca: TLSFiles) -> None:
    port = free_port()
    info = info_for(f"https://127.0.0.1:{port}", other_ca.ca, targets={"nginx": tls_server.url})
    message = failure(info)
    assert "found 2 problems" in message
    assert "certctl at" in message
    assert "connection refused" in message
    assert "the nginx target at" in message
    assert "TLS verification failed" in message
    assert message.index("certctl at") < message.index("the nginx target at")


def test_credentials_in_the_url_are_never_shown(tls: TLSFiles) -> None:
    port = free_port()
    message = failure(info_for(f"https://admin:url-password-xyz@127.0.0.1:{port}", tls.ca))
    assert "url-password-xyz" not in message
    assert f"certctl at https://127.0.0.1:{port}:" in message


def test_an_unusable_ca_bundle_is_named(tmp_path: Path, tls_server: LatencyServer) -> None:
    bundle = tmp_path / "not-a-ca.pem"
    bundle.write_text("not PEM\n")
    message = failure(info_for(tls_server.url, str(bundle)))
    assert f"the CA bundle at {bundle}: it cannot be used (" in message
    assert "give --certload-ca PATH" in message


def test_a_malformed_url_is_named() -> None:
    message = failure(info_for("ftp://127.0.0.1:21", None))
    assert "not an http:// or https:// URL" in message
    assert "--certctl-url" in message


def test_preflight_error_is_a_service_error_with_one_line_per_problem(tls: TLSFiles) -> None:
    with pytest.raises(ServiceError) as caught:
        anyio.run(preflight, info_for(f"https://127.0.0.1:{free_port()}", tls.ca))
    assert isinstance(caught.value, PreflightError)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("certctl at https://127.0.0.1:")


def test_open_stack_preflight_runs_once_and_repeats_its_verdict(
    tls_server: LatencyServer,
) -> None:
    # no CA given: the server's certificate fails against the system trust store, which
    # ends the external provider's wait for /ready at once and leaves the cause to the
    # pre-flight check (a refused connection is waited for: tests/stack/test_external_wait.py)
    request = StackRequest(provider="external", certctl_url=tls_server.url, certctl_token=TOKEN)
    with open_stack(request) as opened:
        assert isinstance(opened, OpenStack)
        assert opened.dead_services() == []  # an external stack is not ours to watch
        assert opened.copy_logs() == []
        with pytest.raises(PreflightError) as first:
            opened.preflight()
        with pytest.raises(PreflightError) as second:
            opened.preflight()
    assert second.value is first.value
    assert "TLS verification failed" in str(first.value)
    assert TOKEN not in str(first.value)
