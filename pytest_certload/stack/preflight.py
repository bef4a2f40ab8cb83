"""The pre-flight check: is the stack usable at all, before any load is sent to it?

A run against a stack that cannot work -- an untrusted certificate, an ``http://`` URL
pointed at a TLS port, a wrong API key, a database that is down -- otherwise ends, after
the whole run, as a generic ``http_req_failed`` breach. :func:`preflight` asks once per
session, with the project's own HTTP client and TLS policy (:mod:`.probes`,
:mod:`pytest_certload.http.tls`):

* certctl: ``GET /ready`` answers 200 (a 503 means certctl runs but its database is
  down: certctl's body says why), then one authenticated call, ``GET
  /api/v1/auth/check``, answers 200 (a 401 is a wrong ``--certctl-token``; certctl's 401
  bodies never echo the key);
* every connector target: one TLS handshake, verified like the load will verify it.

When a request fails below HTTP the real cause is named: connection refused, no answer,
a certificate that does not verify against the CA in use (``--certload-ca``), or the
wrong scheme -- the port is asked whether it speaks TLS (an unverified handshake) or
plain HTTP (one request), so ``http://`` at a TLS port and ``https://`` at a plain port
are told apart from a broken server.

:func:`preflight` raises :class:`~pytest_certload.errors.PreflightError` listing every
problem found, each with what failed, where, the cause and the option that fixes it.
No message holds the API key or a database password. Imports no pytest.
"""

from __future__ import annotations

import errno
import os
import ssl
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import anyio

from ..errors import ConfigError, PreflightError, TransportError
from ..http import Response
from ..http.tls import VerifyTypes, client_context
from ..redaction import dsn_passwords, redact_url, scrub_secrets
from ..units import NS_PER_S
from .info import TARGET_TYPES, StackInfo
from .probes import PROBE_TIMEOUT_NS, fetch, probe_tls

__all__ = ["AUTH_CHECK_PATH", "READY_PATH", "PreflightProblem", "check_stack", "preflight"]

#: certctl's readiness route: 200 when its database answers, 503 when it does not
READY_PATH = "/ready"
#: certctl's cheapest authenticated route (``internal/api/handler/health.go``): 200 for a
#: valid key
AUTH_CHECK_PATH = "/api/v1/auth/check"
_BODY_CHARS = 300

_URL_OPTION = "--certctl-url (ini certload_certctl_url, env CERTLOAD_CERTCTL_URL)"
_TOKEN_OPTION = (
    "--certctl-token (better the environment variable CERTLOAD_CERTCTL_TOKEN, which "
    "other users cannot read from the process list)"
)
_TARGETS_OPTION = "--certload-targets (ini certload_targets, env CERTLOAD_TARGETS)"
_CA_FIX = (
    "give --certload-ca PATH, the CA that signed the server's certificate (or, knowingly, "
    "--certload-ca insecure to skip verification)"
)


@dataclass(frozen=True)
class PreflightProblem:
    """One thing the pre-flight check found wrong.

    ``kind`` is one of ``refused``, ``unreachable``, ``timeout``, ``scheme``, ``tls``,
    ``not_ready``, ``auth``, ``status`` or ``url``; ``url`` is shown without credentials.
    """

    service: str
    url: str
    kind: str
    cause: str
    fix: str

    def __str__(self) -> str:
        return f"{self.service} at {self.url}: {self.cause}; {self.fix}"


@dataclass(frozen=True)
class _Where:
    """What is being checked, and how the user names it."""

    service: str
    url: str
    option: str
    provider: str

    def problem(self, kind: str, cause: str, fix: str) -> PreflightProblem:
        if self.provider != "external" and kind not in ("scheme", "url"):
            fix = (
                f"{fix} (the {self.provider} provider started this service: its log is "
                "with the session's service logs)"
            )
        return PreflightProblem(self.service, redact_url(self.url), kind, cause, fix)


# ------------------------------------------------------------------------- helpers


def _root(exc: BaseException) -> BaseException:
    """The innermost cause (clients and anyio wrap the OSError that says what happened)."""
    while True:
        if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[-1]
        elif exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            return exc


def _is_refused(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionRefusedError):
        return True
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return True
    # asyncio joins the errors of several addresses into one OSError without an errno
    return isinstance(exc, OSError) and f"[Errno {errno.ECONNREFUSED}]" in str(exc)


def _text(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{exc.reason.replace('_', ' ').lower()}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _host_port(parts: SplitResult) -> tuple[str, int]:
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = None
    return host, port or (443 if parts.scheme.lower() == "https" else 80)


def _origin(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def _body(response: Response) -> str:
    text = response.content.decode("utf-8", errors="replace").strip()
    if len(text) > _BODY_CHARS:
        text = text[:_BODY_CHARS] + " ..."
    return text or "(empty body)"


def _trust(verify: VerifyTypes) -> str:
    if verify is True:
        return "the system trust store"
    if isinstance(verify, str | os.PathLike):
        return f"the CA in {os.fspath(verify)}"
    return "the given SSL context"


def _timeout_s(timeout_ns: int) -> str:
    return f"{timeout_ns / NS_PER_S:g} s"


async def _speaks_tls(host: str, port: int, timeout_ns: int) -> bool:
    """Whether ``host:port`` completes a TLS handshake (unverified: any certificate)."""
    try:
        with anyio.fail_after(timeout_ns / NS_PER_S):
            await probe_tls(host, port, verify=False, server_hostname=host)
    except (OSError, ssl.SSLError, TimeoutError):
        return False
    return True


async def _speaks_http(host: str, port: int, timeout_ns: int) -> bool:
    """Whether ``host:port`` answers a plain-HTTP request with an HTTP response."""
    try:
        await fetch(_origin("http", host, port) + "/", timeout_ns=timeout_ns)
    except TransportError:
        return False
    return True


def _verify_of(info: StackInfo) -> VerifyTypes:
    """How the load verifies TLS, as a value the probes take (a path, not a context)."""
    if not info.verify_tls:
        return False
    return info.ca if info.ca is not None else True


# ------------------------------------------------------------------------- classification


async def _below_http(
    where: _Where, exc: BaseException, verify: VerifyTypes, timeout_ns: int
) -> PreflightProblem:
    """Name the real cause of a request or handshake that failed below HTTP."""
    parts = urlsplit(where.url)
    scheme = parts.scheme.lower()
    host, port = _host_port(parts)
    root = _root(exc)
    option = where.option
    if _is_refused(root):
        return where.problem(
            "refused",
            f"connection refused (nothing listens on {host}:{port})",
            f"check that the service runs there and that {option} names its address",
        )
    kind = exc.kind if isinstance(exc, TransportError) else ""
    if kind == "timeout" or isinstance(root, TimeoutError):
        return where.problem(
            "timeout",
            f"no answer within {_timeout_s(timeout_ns)}",
            f"check that the service runs there, answers, and that {option} names its address",
        )
    if kind == "connect" and not isinstance(root, ssl.SSLError):
        return where.problem(
            "unreachable",
            f"cannot connect ({_text(root)})",
            f"check the host name and port in {option}",
        )
    if scheme == "https":
        if isinstance(root, ssl.SSLCertVerificationError):
            reason = root.verify_message or _text(root)
            fix = _CA_FIX
            if "hostname mismatch" in reason.lower() or "ip address mismatch" in reason.lower():
                fix = (
                    f"use a host name the certificate names in {option}, or {_CA_FIX} "
                    "if it was signed by another CA"
                )
            if option == _TARGETS_OPTION:
                fix += (
                    "; connector targets are verified with the same CA as certctl (their "
                    "URLs come from --certload-targets)"
                )
            return where.problem(
                "tls", f"TLS verification failed ({reason}) against {_trust(verify)}", fix
            )
        if await _speaks_http(host, port, timeout_ns):
            return where.problem(
                "scheme",
                "the URL says https:// but the server speaks plain HTTP (no TLS)",
                f"use {_origin('http', host, port)} in {option}, or the port of its TLS listener",
            )
        return where.problem(
            "tls",
            f"the TLS handshake failed ({_text(root)})",
            f"check that {host}:{port} is a TLS listener and that {option} names it",
        )
    if await _speaks_tls(host, port, timeout_ns):
        return _http_at_tls(where, host, port)
    return where.problem(
        "unreachable",
        f"the request failed below HTTP ({_text(root)})",
        f"check that {host}:{port} is an HTTP listener and that {option} names it",
    )


def _http_at_tls(where: _Where, host: str, port: int) -> PreflightProblem:
    return where.problem(
        "scheme",
        "the URL says http:// but the server speaks TLS",
        f"use {_origin('https', host, port)} in {where.option}",
    )


async def _plain_at_tls(where: _Where, response: Response, timeout_ns: int) -> bool:
    """An http:// request answered 400 (nginx: "The plain HTTP request was sent to HTTPS
    port"): is it a TLS port?"""
    parts = urlsplit(where.url)
    if parts.scheme.lower() != "http" or response.status_code != 400:
        return False
    host, port = _host_port(parts)
    return await _speaks_tls(host, port, timeout_ns)


def _bad_url(where: _Where) -> PreflightProblem | None:
    try:
        parts = urlsplit(where.url)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        valid = valid and (parts.port is None or parts.port > 0)  # port: ValueError if bad
    except ValueError:
        valid = False
    if valid:
        return None
    return where.problem(
        "url",
        "not an http:// or https:// URL with a host and a valid port",
        f"give a URL such as https://127.0.0.1:8443 in {where.option}",
    )


# ------------------------------------------------------------------------- the checks


async def _check_certctl(
    info: StackInfo, verify: VerifyTypes, timeout_ns: int
) -> list[PreflightProblem]:
    where = _Where("certctl", info.certctl_url, _URL_OPTION, info.provider)
    bad = _bad_url(where)
    if bad is not None:
        return [bad]
    problems: list[PreflightProblem] = []
    try:
        ready = await fetch(info.certctl_url + READY_PATH, verify=verify, timeout_ns=timeout_ns)
    except TransportError as exc:
        return [await _below_http(where, exc, verify, timeout_ns)]
    if await _plain_at_tls(where, ready, timeout_ns):
        host, port = _host_port(urlsplit(where.url))
        return [_http_at_tls(where, host, port)]
    if ready.status_code == 503:
        problems.append(
            where.problem(
                "not_ready",
                f"GET {READY_PATH} answered 503 {_body(ready)}: certctl runs but cannot reach "
                "its PostgreSQL database (its /ready pings it)",
                "start the database or fix certctl's CERTCTL_DATABASE_URL, then run again",
            )
        )
    elif ready.status_code != 200:
        problems.append(
            where.problem(
                "status",
                f"GET {READY_PATH} answered {ready.status_code} {_body(ready)}; certctl answers "
                "it with 200 (or 503 when its database is down), so this may not be certctl",
                f"check that {where.option} names certctl's API address",
            )
        )
    tokens = dict.fromkeys(t for t in (info.token, info.admin_token) if t)
    for number, token in enumerate(tokens):
        key = "API key" if number == 0 else "admin API key"
        try:
            check = await fetch(
                info.certctl_url + AUTH_CHECK_PATH,
                verify=verify,
                headers={"Authorization": f"Bearer {token}"},
                timeout_ns=timeout_ns,
            )
        except TransportError as exc:
            problems.append(await _below_http(where, exc, verify, timeout_ns))
            break
        if check.status_code == 401:
            problems.append(
                where.problem(
                    "auth",
                    f"GET {AUTH_CHECK_PATH} with the {key} answered 401 {_body(check)}: "
                    "certctl rejected the key",
                    f"give a valid API key with {_TOKEN_OPTION}",
                )
            )
        elif check.status_code != 200:
            problems.append(
                where.problem(
                    "status",
                    f"GET {AUTH_CHECK_PATH} with the {key} answered {check.status_code} "
                    f"{_body(check)} (certctl answers 200 for a valid key)",
                    f"check that {where.option} names certctl's API address",
                )
            )
    return problems


async def _check_target(
    kind: str, url: str, info: StackInfo, verify: VerifyTypes, timeout_ns: int
) -> list[PreflightProblem]:
    where = _Where(f"the {kind} target", url, _TARGETS_OPTION, info.provider)
    bad = _bad_url(where)
    if bad is not None:
        return [bad]
    parts = urlsplit(url)
    host, port = _host_port(parts)
    if parts.scheme.lower() == "https":
        try:
            with anyio.fail_after(timeout_ns / NS_PER_S):
                await probe_tls(host, port, verify=verify, server_hostname=host)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            return [await _below_http(where, exc, verify, timeout_ns)]
        return []
    try:
        response = await fetch(url.rstrip("/") + "/", timeout_ns=timeout_ns)
    except TransportError as exc:
        return [await _below_http(where, exc, verify, timeout_ns)]
    if await _plain_at_tls(where, response, timeout_ns):
        return [_http_at_tls(where, host, port)]
    return []


async def check_stack(
    info: StackInfo, *, timeout_ns: int = PROBE_TIMEOUT_NS
) -> list[PreflightProblem]:
    """Every problem the pre-flight check finds with ``info`` (empty: all is well).

    certctl first, then the targets in :data:`~.info.TARGET_TYPES` order; every check
    runs at once and each request is bounded by ``timeout_ns``.
    """
    verify = _verify_of(info)
    try:
        client_context(verify)  # a CA bundle that is missing or not PEM fails every check
    except ConfigError as exc:
        where = _Where("the CA bundle", str(info.ca), "--certload-ca", info.provider)
        return [where.problem("tls", f"it cannot be used ({exc})", _CA_FIX)]
    found: dict[int, list[PreflightProblem]] = {}

    async def run_certctl() -> None:
        found[0] = await _check_certctl(info, verify, timeout_ns)

    async def run_target(index: int, kind: str, url: str) -> None:
        found[index] = await _check_target(kind, url, info, verify, timeout_ns)

    async with anyio.create_task_group() as tg:
        if info.certctl_url:
            tg.start_soon(run_certctl)
        for index, kind in enumerate(TARGET_TYPES, start=1):
            url = info.targets.get(kind)
            if url:
                tg.start_soon(run_target, index, kind, url)
    return [problem for index in sorted(found) for problem in found[index]]


def _secrets(info: StackInfo) -> list[str]:
    secrets = [info.token, info.admin_token]
    if info.dsn:
        secrets += dsn_passwords(info.dsn)
    return [s for s in secrets if s]


async def preflight(info: StackInfo, *, timeout_ns: int = PROBE_TIMEOUT_NS) -> None:
    """Check the stack before the first load; raise :class:`PreflightError` listing every
    problem :func:`check_stack` finds (what failed, where, the cause, the option to fix).
    """
    problems = await check_stack(info, timeout_ns=timeout_ns)
    if not problems:
        return
    secrets = _secrets(info)
    lines = tuple(scrub_secrets(str(p), secrets) for p in problems)
    count = f"{len(lines)} problem{'s' if len(lines) != 1 else ''}"
    listing = "\n".join(f"  - {line}" for line in lines)
    raise PreflightError(
        f"the pre-flight check of the {info.provider} stack found {count} before any load "
        f"was sent:\n{listing}",
        problems=lines,
    )
