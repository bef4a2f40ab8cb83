"""A stand-in for an F5 BIG-IP iControl REST endpoint, run as its own process.

Usage::

    python -I f5mock.py --https-port P --http-port Q --cert C --key K
    python -m pytest_certload.stack.f5mock --https-port P --http-port Q --cert C --key K

It serves the same handlers over HTTPS (``--https-port``, TLS 1.2 minimum) and plain
HTTP (``--http-port``), keeps all state in memory, and implements what certctl's F5
connector and the loadtest's connector scenario call:

========================================================  ==============================
``GET /healthz``                                          200 ``ok`` (no auth)
``POST /mgmt/shared/authn/login``                         token for any non-empty pair
``POST /mgmt/shared/file-transfer/uploads/<name>``        appends a chunk
``POST /mgmt/tm/sys/crypto/cert`` and ``.../key``         stores and echoes the body
``DELETE /mgmt/tm/sys/crypto/cert/<name>`` and ``key``    removes (404 if unknown)
``POST /mgmt/tm/transaction``                             ``{transId, state: STARTED}``
``POST|PATCH /mgmt/tm/transaction/<id>``                  ``{transId, state: COMPLETED}``
``GET|PATCH|PUT /mgmt/tm/ltm/profile/client-ssl/<name>``  read, merge, replace
========================================================  ==============================

Everything except ``/healthz`` and login needs ``X-F5-Auth-Token: <token>`` (or
``Authorization: Bearer <token>``), otherwise 401.

This module uses the standard library only and no relative imports, because it runs
as a plain script: :class:`pytest_certload.stack.f5.F5Mock` starts it as
``python -I <path>/f5mock.py`` and the containers provider and ``docker-compose.yml`` run
the file alone in a stock Python image, where this package is not installed. (The ``-m``
form works too, but imports the ``pytest_certload`` package first.) Keep it that way:
no import from ``pytest_certload`` here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import ssl
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MOCK_TOKEN", "F5State", "handle", "main", "serve"]

MOCK_TOKEN = "mock-bearer-token-do-not-use-in-prod"
_MAX_BODY = 64 * 1024 * 1024
_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
_REASONS.update({405: "Method Not Allowed", 413: "Payload Too Large"})


@dataclass
class F5State:
    """The mock's in-memory state (one per process)."""

    uploads: dict[str, bytearray] = field(default_factory=dict)
    certs: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=lambda: {MOCK_TOKEN})
    _txn_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_transaction(self) -> str:
        return f"txn-{next(self._txn_ids)}"


Reply = tuple[int, str, bytes]  # status, content type, body


def _json(status: int, payload: Any) -> Reply:
    return status, "application/json", json.dumps(payload).encode()


def _error(status: int, message: str) -> Reply:
    return _json(status, {"code": status, "message": message, "errorStack": []})


def _authorized(state: F5State, headers: dict[str, str]) -> bool:
    token = headers.get("x-f5-auth-token", "")
    if not token:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
    return token in state.tokens


def _body_json(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def handle(state: F5State, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
    """Route one request (pure: no I/O, so it is unit-testable)."""
    path = path.split("?", 1)[0].rstrip("/") or "/"
    if path == "/healthz":
        return 200, "text/plain", b"ok"
    if path == "/mgmt/shared/authn/login":
        if method != "POST":
            return _error(405, "use POST")
        data = _body_json(body)
        if not data or not data.get("username") or not data.get("password"):
            return _error(401, "username and password are required")
        expires = int((time.time() + 3600) * 1_000_000)
        return _json(
            200,
            {
                "username": data["username"],
                "token": {
                    "token": MOCK_TOKEN,
                    "name": MOCK_TOKEN,
                    "userName": data["username"],
                    "timeout": 3600,
                    "expirationMicros": expires,
                },
            },
        )
    if not _authorized(state, headers):
        return _error(401, "Authorization failed: no valid X-F5-Auth-Token")

    parts = path.split("/")
    upload_prefix = "/mgmt/shared/file-transfer/uploads/"
    if path.startswith(upload_prefix) and method == "POST":
        name = path[len(upload_prefix) :]
        buf = state.uploads.setdefault(name, bytearray())
        content_range = headers.get("content-range", "")
        if content_range.startswith("0-"):
            buf.clear()  # a new upload of the same file starts over
        buf += body
        return _json(
            200,
            {"localFilePath": f"/var/config/rest/downloads/{name}", "size": len(buf)},
        )
    for kind, store in (("cert", state.certs), ("key", state.keys)):
        base = f"/mgmt/tm/sys/crypto/{kind}"
        if path == base and method == "POST":
            data = _body_json(body)
            if not data or not data.get("name"):
                return _error(400, f"a {kind} needs a name")
            store[str(data["name"])] = data
            return _json(200, data)
        if path == base and method == "GET":
            return _json(200, {"items": list(store.values())})
        if path.startswith(base + "/") and method in ("DELETE", "GET"):
            name = path[len(base) + 1 :]
            if name not in store:
                return _error(404, f"{kind} {name} not found")
            if method == "DELETE":
                del store[name]
                return 200, "application/json", b""
            return _json(200, store[name])
    if path == "/mgmt/tm/transaction" and method == "POST":
        txn = state.next_transaction()
        state.transactions[txn] = "STARTED"
        return _json(200, {"transId": txn, "state": "STARTED"})
    if len(parts) == 5 and path.startswith("/mgmt/tm/transaction/"):
        txn = parts[4]
        if txn not in state.transactions:
            return _error(404, f"transaction {txn} not found")
        if method in ("POST", "PATCH"):
            state.transactions[txn] = "COMPLETED"
        elif method != "GET":
            return _error(405, "use GET, POST or PATCH")
        return _json(200, {"transId": txn, "state": state.transactions[txn]})
    profile_prefix = "/mgmt/tm/ltm/profile/client-ssl/"
    if path.startswith(profile_prefix):
        name = path[len(profile_prefix) :]
        current = state.profiles.get(
            name, {"kind": "tm:ltm:profile:client-ssl:client-sslstate", "name": name}
        )
        if method == "GET":
            return _json(200, current)
        data = _body_json(body)
        if data is None:
            return _error(400, "body must be a JSON object")
        if method == "PATCH":
            current = {**current, **data, "name": name}
        elif method == "PUT":
            current = {"kind": current["kind"], **data, "name": name}
        else:
            return _error(405, "use GET, PATCH or PUT")
        state.profiles[name] = current
        return _json(200, current)
    return _error(404, f"{method} {path} is not implemented by the mock")


async def _serve_connection(
    state: F5State, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ", 2)
            except ValueError:
                return
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if ":" in line:
                    key, value = line.split(":", 1)
                    headers[key.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if length > _MAX_BODY:
                status, ctype, body = _error(413, "body too large")
                keep_alive = False
            else:
                payload = await reader.readexactly(length) if length else b""
                status, ctype, body = handle(state, method.upper(), target, headers, payload)
                keep_alive = (
                    headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
                )
            response = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
            ).encode("latin-1") + body
            writer.write(response)
            await writer.drain()
            if not keep_alive:
                return
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def serve(
    *, host: str, https_port: int, http_port: int | None, cert: Path, key: Path
) -> None:
    """Serve until SIGTERM/SIGINT."""
    state = F5State()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))

    async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _serve_connection(state, r, w)

    servers = [await asyncio.start_server(on_connect, host, https_port, ssl=ctx)]
    if http_port is not None:
        servers.append(await asyncio.start_server(on_connect, host, http_port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(
        f"f5mock listening: https://{host}:{ports[0]}"
        + (f" http://{host}:{ports[1]}" if len(ports) > 1 else ""),
        flush=True,
    )
    await stop.wait()
    for s in servers:
        s.close()
    print("f5mock stopped", flush=True)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_certload.stack.f5mock",
        description="F5 BIG-IP iControl REST mock for load tests (in-memory state).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--https-port", type=_port, required=True, metavar="PORT")
    parser.add_argument("--http-port", type=_port, default=None, metavar="PORT")
    parser.add_argument("--cert", type=Path, required=True, help="server certificate chain PEM")
    parser.add_argument("--key", type=Path, required=True, help="server private key PEM")
    args = parser.parse_args(argv)
    asyncio.run(
        serve(
            host=args.host,
            https_port=args.https_port,
            http_port=args.http_port,
            cert=args.cert,
            key=args.key,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
