"""TLS and HTTP versions: TLS 1.3 only, HTTP/2 through ALPN, HTTP/1.1 still served."""

from __future__ import annotations

import socket
import ssl

import pytest
from double_support import Double


def test_tls12_client_is_refused(double: Double) -> None:
    context = double.ssl_context(maximum_version=ssl.TLSVersion.TLSv1_2)
    host, port = double.base_url.removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="localhost").close()


def test_alpn_negotiates_h2_and_tls13(double: Double) -> None:
    context = double.ssl_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    host, port = double.base_url.removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"
        assert tls.version() == "TLSv1.3"


@pytest.mark.parametrize(("http2", "version"), [(True, "HTTP/2"), (False, "HTTP/1.1")])
def test_both_http_versions_answer(double: Double, http2: bool, version: str) -> None:
    with double.client(http2=http2) as client:
        response = client.get("/api/v1/auth/check")
    assert response.status_code == 200
    assert response.http_version == version
