"""The f5 iControl mock: pure routing, then the same flows over HTTPS and HTTP."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from pytest_certload.stack.f5 import MOCK_TOKEN, F5Mock
from pytest_certload.stack.f5mock import F5State, handle, main
from pytest_certload.stack.tls import TLSMaterial

from .conftest import TIMEOUT_NS

AUTH = {"x-f5-auth-token": MOCK_TOKEN}


def call(state: F5State, method: str, path: str, body: object = None, **headers: str):
    raw = b"" if body is None else json.dumps(body).encode()
    status, ctype, payload = handle(state, method, path, {**headers}, raw)
    data = json.loads(payload) if ctype == "application/json" and payload else payload
    return status, data


def test_healthz_needs_no_token() -> None:
    assert call(F5State(), "GET", "/healthz") == (200, b"ok")


def test_login_requires_both_fields() -> None:
    state = F5State()
    assert call(state, "POST", "/mgmt/shared/authn/login", {"username": "admin"})[0] == 401
    status, data = call(
        state, "POST", "/mgmt/shared/authn/login", {"username": "a", "password": "b"}
    )
    assert status == 200
    assert data["token"]["token"] == MOCK_TOKEN
    assert data["token"]["timeout"] == 3600


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/mgmt/tm/transaction"),
        ("POST", "/mgmt/tm/sys/crypto/cert"),
        ("POST", "/mgmt/shared/file-transfer/uploads/a.pem"),
        ("GET", "/mgmt/tm/ltm/profile/client-ssl/p1"),
    ],
)
def test_everything_else_needs_the_token(method: str, path: str) -> None:
    state = F5State()
    assert call(state, method, path, {"name": "x"})[0] == 401
    assert call(state, method, path, {"name": "x"}, authorization="Bearer wrong")[0] == 401
    assert call(state, method, path, {"name": "x"}, authorization=f"Bearer {MOCK_TOKEN}")[0] == 200


def test_upload_cert_key_transaction_profile_flow() -> None:
    state = F5State()
    path = "/mgmt/shared/file-transfer/uploads/site.pem"
    assert handle(state, "POST", path, {**AUTH, "content-range": "0-3/8"}, b"abcd")[0] == 200
    status, _, payload = handle(state, "POST", path, {**AUTH, "content-range": "4-7/8"}, b"efgh")
    assert status == 200
    assert bytes(state.uploads["site.pem"]) == b"abcdefgh"
    assert json.loads(payload) == {
        "localFilePath": "/var/config/rest/downloads/site.pem",
        "size": 8,
    }
    # a new upload of the same name starts over
    handle(state, "POST", path, {**AUTH, "content-range": "0-1/2"}, b"xy")
    assert bytes(state.uploads["site.pem"]) == b"xy"

    assert call(state, "POST", "/mgmt/tm/sys/crypto/cert", {"name": "c1", "x": 1}, **AUTH) == (
        200,
        {"name": "c1", "x": 1},
    )
    assert call(state, "POST", "/mgmt/tm/sys/crypto/key", {"name": "k1"}, **AUTH)[0] == 200
    assert call(state, "POST", "/mgmt/tm/sys/crypto/key", {}, **AUTH)[0] == 400
    assert call(state, "DELETE", "/mgmt/tm/sys/crypto/cert/c1", None, **AUTH)[0] == 200
    assert call(state, "DELETE", "/mgmt/tm/sys/crypto/cert/c1", None, **AUTH)[0] == 404
    assert call(state, "DELETE", "/mgmt/tm/sys/crypto/key/k1", None, **AUTH)[0] == 200

    status, txn = call(state, "POST", "/mgmt/tm/transaction", {}, **AUTH)
    assert txn == {"transId": "txn-1", "state": "STARTED"}
    assert call(state, "POST", "/mgmt/tm/transaction/txn-1", {}, **AUTH)[1]["state"] == "COMPLETED"
    assert call(state, "PATCH", "/mgmt/tm/transaction/txn-9", {}, **AUTH)[0] == 404

    profile = "/mgmt/tm/ltm/profile/client-ssl/site"
    assert call(state, "GET", profile, None, **AUTH)[1]["name"] == "site"
    patched = call(state, "PATCH", profile, {"cert": "c2", "key": "k2"}, **AUTH)[1]
    assert (patched["cert"], patched["key"], patched["name"]) == ("c2", "k2", "site")
    replaced = call(state, "PUT", profile, {"cert": "c3"}, **AUTH)[1]
    assert "key" not in replaced
    assert replaced["cert"] == "c3"
    assert call(state, "GET", "/mgmt/tm/unknown", None, **AUTH)[0] == 404


def test_cli_rejects_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--https-port", "70000", "--cert", "c", "--key", "k"])
    assert "70000 is not a port number (0-65535)" in capsys.readouterr().err


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def f5(tls: TLSMaterial) -> AsyncIterator[F5Mock]:
    cert, key = tls.server_pair("f5")
    mock = F5Mock(cert, key, ca=tls.ca_cert)
    await mock.start()
    try:
        await mock.wait_ready(TIMEOUT_NS)
        yield mock
    finally:
        await mock.stop()


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["https", "http"])
async def test_login_then_authorized_call_over_the_wire(
    f5: F5Mock, tls: TLSMaterial, scheme: str
) -> None:
    base = f5.url() if scheme == "https" else f5.http_url()
    async with httpx.AsyncClient(
        base_url=base, verify=ssl.create_default_context(cafile=str(tls.ca_cert))
    ) as client:
        denied = await client.post("/mgmt/tm/transaction", json={})
        assert denied.status_code == 401
        login = await client.post(
            "/mgmt/shared/authn/login", json={"username": "admin", "password": "admin"}
        )
        assert login.status_code == 200
        token = login.json()["token"]["token"]
        started = await client.post(
            "/mgmt/tm/transaction", json={}, headers={"X-F5-Auth-Token": token}
        )
        assert started.status_code == 200
        assert started.json()["state"] == "STARTED"
        committed = await client.patch(
            f"/mgmt/tm/transaction/{started.json()['transId']}",
            json={"state": "VALIDATING"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert committed.json()["state"] == "COMPLETED"
