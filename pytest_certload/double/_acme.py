"""The ACME server (RFC 8555 subset plus ARI) under /acme/profile/{profile}/..."""

from __future__ import annotations

import asyncio
import binascii
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from psycopg.types.json import Jsonb

from ..units import NS_PER_S
from ._ca import serial_hex
from ._http import JSON, Handler, Response, json_response
from ._jws import (
    JWSError,
    ParsedJWS,
    b64u_decode,
    jwk_thumbprint,
    parse_jws,
    public_key_from_jwk,
    verify_signature,
)

if TYPE_CHECKING:
    from ._app import DoubleApp
    from ._http import Request

__all__ = ["gc_loop", "routes"]

log = logging.getLogger("certctl_double")

PROBLEM = b"application/problem+json"
PEM_CHAIN = b"application/pem-certificate-chain"
ERR = "urn:ietf:params:acme:error:"
MAX_JWS_BYTES = 64 * 1024
DEFAULT_LIFETIME = dt.timedelta(days=90)
ACTIVE_ORDER_STATES = ["pending", "ready", "processing"]
PLACEHOLDER_TEAM = "t-acme-double"
PLACEHOLDER_OWNER = "o-acme-double"


class AcmeProblem(Exception):
    def __init__(self, status: int, kind: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.extra = extra

    def response(self) -> Response:
        """certctl's problem document: ``type, detail, status`` then ``subproblems`` and
        ``identifier`` when set (its ``Problem`` struct's order), compact as Go writes it."""
        body: dict[str, Any] = {"type": ERR + self.kind, "detail": self.detail}
        body["status"] = self.status
        body.update(self.extra)
        return Response(self.status, json.dumps(body, separators=(",", ":")).encode(), PROBLEM)


def server_error() -> AcmeProblem:
    """certctl's catch-all: 500 serverInternal ``ACME server error``."""
    return AcmeProblem(500, "serverInternal", "ACME server error")


def unknown_profile() -> AcmeProblem:
    """An ACME profile id certctl does not have. certctl answers 500, not its 404
    ``profile not found``: ``internal/repository/postgres/profile.go``'s ``scanProfile``
    wraps ``sql.ErrNoRows`` with ``%w`` and ``ProfileRepository.Get`` compares it with
    ``==``, so the not-found branch of ``internal/service/acme.go::resolveProfile`` never
    runs. The double copies it: a scenario that names a profile certctl lacks is wrong,
    and its users must see what certctl does."""
    return server_error()


def _rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Ctx:
    """One ACME request: its profile and the URL prefix it was addressed under."""

    app: DoubleApp
    request: Request
    profile_id: str
    base: str  # https://host/acme/profile/<id> (or https://host/acme for the shorthand)
    auth_mode: str = "trust_authenticated"
    max_ttl_seconds: int = 0

    def url(self, suffix: str) -> str:
        return f"{self.base}/{suffix}"


def _context(app: DoubleApp, request: Request) -> Ctx:
    host = request.headers.get("host", "")
    profile = request.params.get("profile")
    if profile is None:
        if not app.config.acme_default_profile_id:
            raise AcmeProblem(
                403,
                "userActionRequired",
                "no default ACME profile configured; use /acme/profile/<id>/ or set "
                "CERTCTL_ACME_SERVER_DEFAULT_PROFILE_ID",
            )
        return Ctx(app, request, app.config.acme_default_profile_id, f"https://{host}/acme")
    return Ctx(app, request, profile, f"https://{host}/acme/profile/{profile}")


async def _load_profile(conn: psycopg.AsyncConnection[Any], ctx: Ctx) -> None:
    cur = await conn.execute(
        "SELECT coalesce(nullif(acme_auth_mode, ''), 'trust_authenticated'), max_ttl_seconds"
        " FROM certificate_profiles WHERE id = %s",
        [ctx.profile_id],
    )
    row = await cur.fetchone()
    if row is None:
        raise unknown_profile()
    ctx.auth_mode, ctx.max_ttl_seconds = row[0], row[1]


async def _new_nonce(app: DoubleApp, conn: psycopg.AsyncConnection[Any]) -> bytes:
    nonce = secrets.token_urlsafe(16)
    ttl = dt.timedelta(microseconds=app.config.acme_nonce_ttl_ns // 1000)
    await conn.execute(
        "INSERT INTO acme_nonces (nonce, issued_at, expires_at) VALUES (%s, NOW(), NOW() + %s)",
        [nonce, ttl],
    )
    return nonce.encode()


def _acme_handler(func: Callable[[Ctx], Awaitable[Response]]) -> Handler:
    """Give an ACME handler its context and turn failures into problem documents."""

    async def wrapper(app: DoubleApp, request: Request) -> Response:
        try:
            ctx = _context(app, request)
            response: Response = await func(ctx)
            return response
        except AcmeProblem as problem:
            return problem.response()
        except JWSError as exc:
            return AcmeProblem(exc.status, exc.kind, exc.detail).response()
        except psycopg.Error:
            log.exception("ACME database error on %s", request.path)
            return server_error().response()

    wrapper.__name__ = func.__name__
    return wrapper


# -- unauthenticated (no JWS) endpoints -----------------------------------------------

_PROFILE_AND_NONCE = """
WITH p AS (SELECT 1 FROM certificate_profiles WHERE id = %s),
n AS (
    INSERT INTO acme_nonces (nonce, issued_at, expires_at)
    SELECT %s, NOW(), NOW() + %s WHERE EXISTS (SELECT 1 FROM p)
    RETURNING 1
)
SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM n)
"""


async def _profile_and_nonce(ctx: Ctx) -> bytes:
    nonce = secrets.token_urlsafe(16)
    ttl = dt.timedelta(microseconds=ctx.app.config.acme_nonce_ttl_ns // 1000)
    async with ctx.app.pool.connection() as conn:
        cur = await conn.execute(_PROFILE_AND_NONCE, [ctx.profile_id, nonce, ttl])
        row = await cur.fetchone()
    if row is None or row[0] == 0:
        raise unknown_profile()
    return nonce.encode()


@_acme_handler
async def directory(ctx: Ctx) -> Response:
    nonce = await _profile_and_nonce(ctx)
    body: dict[str, Any] = {
        "newNonce": ctx.url("new-nonce"),
        "newAccount": ctx.url("new-account"),
        "newOrder": ctx.url("new-order"),
        "revokeCert": ctx.url("revoke-cert"),
        "keyChange": ctx.url("key-change"),
    }
    if ctx.app.config.acme_ari_enabled:
        body["renewalInfo"] = ctx.url("renewal-info")
    return json_response(
        200,
        body,
        [(b"replay-nonce", nonce), (b"cache-control", b"public, max-age=0, no-cache")],
    )


@_acme_handler
async def new_nonce_head(ctx: Ctx) -> Response:
    nonce = await _profile_and_nonce(ctx)
    return Response(200, b"", None, [(b"replay-nonce", nonce), (b"cache-control", b"no-store")])


@_acme_handler
async def new_nonce_get(ctx: Ctx) -> Response:
    nonce = await _profile_and_nonce(ctx)
    return Response(204, b"", None, [(b"replay-nonce", nonce), (b"cache-control", b"no-store")])


@_acme_handler
async def renewal_info(ctx: Ctx) -> Response:
    config = ctx.app.config
    if not config.acme_ari_enabled:
        return Response(404, b"404 page not found\n", b"text/plain; charset=utf-8")
    cert_id = ctx.request.params["cert_id"]
    async with ctx.app.pool.connection() as conn:
        # certctl resolves the profile before it parses the id: an unknown profile is a
        # 500 even when the id is malformed
        await _load_profile(conn, ctx)
        aki_part, dot, serial_part = cert_id.partition(".")
        try:
            if not dot or not aki_part or not serial_part:
                raise ValueError("expected <aki>.<serial>")
            b64u_decode(aki_part)
            serial_bytes = b64u_decode(serial_part)
            if not serial_bytes:
                raise ValueError("empty serial")
        except ValueError as exc:
            raise AcmeProblem(400, "malformed", f"invalid ARI certificate id: {exc}") from None
        serial = int.from_bytes(serial_bytes, "big")
        cur = await conn.execute(
            "SELECT not_before, not_after FROM certificate_versions"
            " WHERE serial_number IN (%s, %s) ORDER BY created_at DESC LIMIT 1",
            [serial_hex(serial), f"{serial:x}"],
        )
        row = await cur.fetchone()
    if row is None:
        raise AcmeProblem(404, "malformed", "resource not found")
    not_before, not_after = row
    lifetime = not_after - not_before
    start = not_after - lifetime / 3
    end = not_after - lifetime / 6
    retry_after = str(max(1, config.acme_ari_poll_interval_ns // NS_PER_S)).encode()
    return json_response(
        200,
        {"suggestedWindow": {"start": _rfc3339(start), "end": _rfc3339(end)}},
        [(b"retry-after", retry_after), (b"cache-control", b"no-store")],
    )


# -- JWS-authenticated endpoints ------------------------------------------------------


@dataclass
class Verified:
    jws: ParsedJWS
    payload: Any
    conn: psycopg.AsyncConnection[Any]
    account_id: str = ""
    account: dict[str, Any] | None = None
    jwk: dict[str, Any] | None = None


async def _verify(ctx: Ctx, conn: psycopg.AsyncConnection[Any], *, use_jwk: bool) -> Verified:
    """certctl's order (``internal/api/acme/jws.go::VerifyJWS``, after the handler has
    resolved the profile): parse, check ``url``, consume the nonce, kid or jwk, resolve
    the key, verify the signature. A wrong ``url`` leaves the nonce unused; every later
    failure has spent it."""
    request = ctx.request
    if len(request.body) > MAX_JWS_BYTES or request.too_large:
        raise AcmeProblem(400, "malformed", "JWS body too large")
    jws = parse_jws(request.body)
    await _load_profile(conn, ctx)
    expected_url = f"https://{request.headers.get('host', '')}{request.path}"
    if jws.protected.get("url") != expected_url:
        raise AcmeProblem(401, "unauthorized", "protected header `url` mismatch or missing")
    nonce = jws.protected.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise AcmeProblem(400, "badNonce", "JWS has no nonce")
    cur = await conn.execute(
        "UPDATE acme_nonces SET used = TRUE"
        " WHERE nonce = %s AND NOT used AND expires_at > NOW() RETURNING 1",
        [nonce],
    )
    if await cur.fetchone() is None:
        raise AcmeProblem(400, "badNonce", "invalid, expired or already used nonce")
    has_jwk = "jwk" in jws.protected
    has_kid = "kid" in jws.protected
    if has_jwk == has_kid:
        raise AcmeProblem(400, "malformed", "JWS must carry exactly one of kid or jwk")
    if use_jwk:
        if not has_jwk:
            raise AcmeProblem(400, "malformed", "expected jwk in the JWS protected header")
        jwk = jws.protected["jwk"]
        verify_signature(jws, public_key_from_jwk(jwk))
        return Verified(jws, jws.payload_json(), conn, jwk=jwk)
    if not has_kid:
        raise AcmeProblem(400, "malformed", "expected kid in the JWS protected header")
    kid = jws.protected["kid"]
    prefix = ctx.url("account/")
    if not isinstance(kid, str) or not kid.startswith(prefix) or len(kid) == len(prefix):
        raise AcmeProblem(401, "unauthorized", "kid is not an account URL of this profile")
    account_id = kid[len(prefix) :]
    cur = await conn.execute(
        "SELECT jwk, status, contact FROM acme_accounts WHERE account_id = %s AND profile_id = %s",
        [account_id, ctx.profile_id],
    )
    row = await cur.fetchone()
    if row is None:
        raise AcmeProblem(400, "accountDoesNotExist", "account not found")
    if row[1] != "valid":
        raise AcmeProblem(401, "unauthorized", f"account is {row[1]}")
    verify_signature(jws, public_key_from_jwk(row[0]))
    account = {"status": row[1], "contact": row[2]}
    return Verified(jws, jws.payload_json(), conn, account_id=account_id, account=account)


def _account_body(ctx: Ctx, account_id: str, status: str, contact: Any) -> dict[str, Any]:
    """certctl's account object: ``contact`` is omitted when empty (``omitempty``)."""
    body: dict[str, Any] = {"status": status}
    if contact:
        body["contact"] = contact
    body["orders"] = ctx.url(f"account/{account_id}/orders")
    return body


async def _reply(
    ctx: Ctx,
    conn: psycopg.AsyncConnection[Any],
    status: int,
    body: Any,
    *,
    location: str | None = None,
    content_type: bytes = JSON,
) -> Response:
    headers = [(b"replay-nonce", await _new_nonce(ctx.app, conn))]
    if location is not None:
        headers.append((b"location", location.encode()))
    if isinstance(body, bytes):
        return Response(status, body, content_type, headers)
    return Response(status, json.dumps(body).encode(), content_type, headers)


@_acme_handler
async def new_account(ctx: Ctx) -> Response:
    async with ctx.app.pool.connection() as conn:
        v = await _verify(ctx, conn, use_jwk=True)
        payload = v.payload if isinstance(v.payload, dict) else {}
        assert v.jwk is not None
        thumbprint = jwk_thumbprint(v.jwk)
        cur = await conn.execute(
            "SELECT account_id, status, contact FROM acme_accounts"
            " WHERE profile_id = %s AND jwk_thumbprint = %s",
            [ctx.profile_id, thumbprint],
        )
        row = await cur.fetchone()
        if row is not None:
            location = ctx.url(f"account/{row[0]}")
            body = _account_body(ctx, row[0], row[1], row[2])
            return await _reply(ctx, conn, 200, body, location=location)
        if payload.get("onlyReturnExisting") is True:
            raise AcmeProblem(400, "accountDoesNotExist", "no account exists for this key")
        contact = payload.get("contact") or []
        if not isinstance(contact, list) or not all(isinstance(c, str) for c in contact):
            raise AcmeProblem(400, "malformed", "contact must be a list of URLs")
        account_id = f"acme-acc-{thumbprint}"
        await conn.execute(
            "INSERT INTO acme_accounts (account_id, profile_id, jwk_thumbprint, jwk, contact)"
            " VALUES (%s, %s, %s, %s, %s)",
            [account_id, ctx.profile_id, thumbprint, Jsonb(v.jwk), Jsonb(contact)],
        )
        location = ctx.url(f"account/{account_id}")
        body = _account_body(ctx, account_id, "valid", contact)
        return await _reply(ctx, conn, 201, body, location=location)


@_acme_handler
async def account(ctx: Ctx) -> Response:
    async with ctx.app.pool.connection() as conn:
        v = await _verify(ctx, conn, use_jwk=False)
        if ctx.request.params["acc_id"] != v.account_id:
            raise AcmeProblem(401, "unauthorized", "kid does not match the account URL")
        assert v.account is not None
        status, contact = v.account["status"], v.account["contact"]
        payload = v.payload if isinstance(v.payload, dict) else {}
        if payload.get("status") == "deactivated":
            status = "deactivated"
        if "contact" in payload:
            contact = payload["contact"]
            if not isinstance(contact, list) or not all(isinstance(c, str) for c in contact):
                raise AcmeProblem(400, "malformed", "contact must be a list of URLs")
        if payload:
            await conn.execute(
                "UPDATE acme_accounts SET status = %s, contact = %s, updated_at = NOW()"
                " WHERE account_id = %s",
                [status, Jsonb(contact), v.account_id],
            )
        body = _account_body(ctx, v.account_id, status, contact)
        return await _reply(ctx, conn, 200, body)


def _order_limit_allows(app: DoubleApp, account_id: str) -> bool:
    capacity = app.config.acme_orders_per_hour
    if capacity <= 0:
        return True
    now = time.monotonic()
    bucket = app.acme_order_buckets.get(account_id)
    if bucket is None:
        bucket = app.acme_order_buckets[account_id] = [float(capacity), now]
    tokens = min(float(capacity), bucket[0] + (now - bucket[1]) * capacity / 3600.0)
    bucket[1] = now
    if tokens >= 1.0:
        bucket[0] = tokens - 1.0
        return True
    bucket[0] = tokens
    return False


def _rejected(
    detail: str, kind: str, value: str, problem: str = "rejectedIdentifier"
) -> dict[str, Any]:
    """One subproblem, every key certctl sends: type, detail, status, identifier."""
    return {
        "type": ERR + problem,
        "detail": detail,
        "status": 400,
        "identifier": {"type": kind, "value": value},
    }


def _identifiers(payload: Any) -> list[dict[str, str]]:
    """certctl's identifier rules (``internal/api/acme/order.go::ValidateIdentifiers``):
    ``dns`` (any case) with a value; a missing or empty list is rejected too. Every
    rejection is 400 rejectedIdentifier with one subproblem per refused identifier."""
    raw = payload.get("identifiers") if isinstance(payload, dict) else None
    if raw is None:
        raw = []
    if not isinstance(raw, list) or not all(
        isinstance(i, dict) and all(isinstance(i.get(k) or "", str) for k in ("type", "value"))
        for i in raw
    ):
        raise AcmeProblem(400, "malformed", "identifiers must be a list of {type, value}")
    if not raw:
        raise AcmeProblem(
            400,
            "rejectedIdentifier",
            "unsupported identifier",
            subproblems=[_rejected("new-order needs at least one identifier", "", "", "malformed")],
        )
    result: list[dict[str, str]] = []
    subproblems: list[dict[str, Any]] = []
    for item in raw:
        kind, value = item.get("type") or "", item.get("value") or ""
        if kind.lower() != "dns":
            subproblems.append(_rejected(f"identifier type {kind!r} is not supported", kind, value))
        elif not value:
            subproblems.append(_rejected("identifier value is empty", kind, value))
        else:
            result.append({"type": kind, "value": value})
    if subproblems:
        raise AcmeProblem(
            400, "rejectedIdentifier", "unsupported identifier", subproblems=subproblems
        )
    return result


_ORDER_SELECT = """
SELECT o.account_id, o.status, o.expires_at, o.identifiers, o.not_before, o.not_after,
       o.error, o.certificate_id,
       coalesce((SELECT array_agg(a.authz_id ORDER BY a.created_at, a.authz_id)
                 FROM acme_authorizations a WHERE a.order_id = o.order_id), '{}')
FROM acme_orders o WHERE o.order_id = %s AND o.profile_id = %s
"""


async def _order_body(
    ctx: Ctx, conn: psycopg.AsyncConnection[Any], order_id: str, account_id: str
) -> tuple[dict[str, Any], str]:
    cur = await conn.execute(_ORDER_SELECT, [order_id, ctx.profile_id])
    row = await cur.fetchone()
    if row is None:
        raise AcmeProblem(404, "malformed", "order not found")
    if row[0] != account_id:
        raise AcmeProblem(403, "unauthorized", "order belongs to another account")
    body: dict[str, Any] = {
        "status": row[1],
        "expires": _rfc3339(row[2]),
        "identifiers": row[3],
        "authorizations": [ctx.url(f"authz/{a}") for a in row[8]],
        "finalize": ctx.url(f"order/{order_id}/finalize"),
    }
    if row[4] is not None:
        body["notBefore"] = _rfc3339(row[4])
    if row[5] is not None:
        body["notAfter"] = _rfc3339(row[5])
    if row[7]:
        body["certificate"] = ctx.url(f"cert/{row[7]}")
    if row[6]:
        body["error"] = row[6]
    return body, row[1]


def _optional_time(payload: dict[str, Any], name: str) -> dt.datetime | None:
    value = payload.get(name)
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise AcmeProblem(400, "malformed", f"{name} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise AcmeProblem(400, "malformed", f"{name} is not an RFC 3339 time")
    return parsed


@_acme_handler
async def new_order(ctx: Ctx) -> Response:
    app = ctx.app
    async with app.pool.connection() as conn:
        v = await _verify(ctx, conn, use_jwk=False)
        identifiers = _identifiers(v.payload)
        payload: dict[str, Any] = v.payload
        not_before = _optional_time(payload, "notBefore")
        not_after = _optional_time(payload, "notAfter")
        limit = app.config.acme_concurrent_orders
        if limit > 0:
            cur = await conn.execute(
                "SELECT count(*) FROM acme_orders WHERE account_id = %s AND status = ANY(%s)",
                [v.account_id, ACTIVE_ORDER_STATES],
            )
            row = await cur.fetchone()
            if row is not None and row[0] >= limit:
                raise AcmeProblem(
                    429,
                    "rateLimited",
                    "too many concurrent orders for this account; finish or cancel pending "
                    "orders before submitting more",
                )
        if not _order_limit_allows(app, v.account_id):
            raise AcmeProblem(429, "rateLimited", "request rate limit exceeded; retry later")
        trusted = ctx.auth_mode == "trust_authenticated"
        order_id = secrets.token_urlsafe(12)
        order_ttl = dt.timedelta(microseconds=app.config.acme_order_ttl_ns // 1000)
        authz_ttl = dt.timedelta(microseconds=app.config.acme_authz_ttl_ns // 1000)
        authz_ids = [secrets.token_urlsafe(12) for _ in identifiers]
        challenge_ids = [secrets.token_urlsafe(12) for _ in identifiers]
        tokens = [secrets.token_urlsafe(32) for _ in identifiers]
        values = [i["value"].lower() for i in identifiers]
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO acme_orders (order_id, account_id, profile_id, status, expires_at,"
                " identifiers, not_before, not_after) VALUES (%s, %s, %s, %s, NOW() + %s, %s,"
                " %s, %s)",
                [
                    order_id,
                    v.account_id,
                    ctx.profile_id,
                    "ready" if trusted else "pending",
                    order_ttl,
                    Jsonb(identifiers),
                    not_before,
                    not_after,
                ],
            )
            await conn.execute(
                "INSERT INTO acme_authorizations (authz_id, order_id, identifier_type,"
                " identifier_value, status, expires_at, wildcard)"
                " SELECT a, %s, 'dns', val, %s, NOW() + %s, val LIKE '*.%%'"
                " FROM unnest(%s::text[], %s::text[]) AS t(a, val)",
                [order_id, "valid" if trusted else "pending", authz_ttl, authz_ids, values],
            )
            await conn.execute(
                "INSERT INTO acme_challenges (challenge_id, authz_id, type, status, token,"
                " validated_at) SELECT c, a, 'http-01', %s, tok, %s"
                " FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(c, a, tok)",
                [
                    "valid" if trusted else "pending",
                    dt.datetime.now(dt.UTC) if trusted else None,
                    challenge_ids,
                    authz_ids,
                    tokens,
                ],
            )
        body, _ = await _order_body(ctx, conn, order_id, v.account_id)
        return await _reply(ctx, conn, 201, body, location=ctx.url(f"order/{order_id}"))


@_acme_handler
async def order(ctx: Ctx) -> Response:
    async with ctx.app.pool.connection() as conn:
        v = await _verify(ctx, conn, use_jwk=False)
        order_id = ctx.request.params["ord_id"]
        body, _ = await _order_body(ctx, conn, order_id, v.account_id)
        return await _reply(ctx, conn, 200, body)


def _csr_names(csr: x509.CertificateSigningRequest) -> list[str]:
    names: list[str] = []
    for attr in csr.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME):
        names.append(str(attr.value).lower())
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names.extend(n.lower() for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    return list(dict.fromkeys(names))


async def _ensure_placeholders(app: DoubleApp, conn: psycopg.AsyncConnection[Any]) -> None:
    """certctl writes ACME certificates with empty owner/team/policy (an FK failure);
    the double points them at real rows it creates on first use."""
    if app.acme_placeholders_ready:
        return
    await conn.execute(
        "INSERT INTO teams (id, name, description) VALUES (%s, 'ACME (double)',"
        " 'Owner team of certificates issued through the double''s ACME server')"
        " ON CONFLICT DO NOTHING",
        [PLACEHOLDER_TEAM],
    )
    await conn.execute(
        "INSERT INTO owners (id, name, email, team_id) VALUES (%s, 'ACME (double)',"
        " 'acme@certctl-double.invalid', %s) ON CONFLICT DO NOTHING",
        [PLACEHOLDER_OWNER, PLACEHOLDER_TEAM],
    )
    await conn.execute(
        "INSERT INTO issuers (id, name, type, config, enabled, source)"
        " VALUES ('iss-local', 'Local CA', 'GenericCA', '{}', TRUE, 'env')"
        " ON CONFLICT DO NOTHING"
    )
    app.acme_placeholders_ready = True


@_acme_handler
async def finalize(ctx: Ctx) -> Response:
    app = ctx.app
    async with app.pool.connection() as conn:
        v = await _verify(ctx, conn, use_jwk=False)
        order_id = ctx.request.params["ord_id"]
        _, status = await _order_body(ctx, conn, order_id, v.account_id)
        if status != "ready":
            raise AcmeProblem(403, "orderNotReady", f"order is {status}, not ready")
        payload = v.payload if isinstance(v.payload, dict) else {}
        try:
            der = b64u_decode(str(payload.get("csr", "")))
            csr = x509.load_der_x509_csr(der)
            if not csr.is_signature_valid:
                raise ValueError("CSR signature is invalid")
        except (ValueError, binascii.Error) as exc:
            raise AcmeProblem(400, "badCSR", f"invalid CSR: {exc}") from None
        cur = await conn.execute(
            "SELECT identifiers FROM acme_orders WHERE order_id = %s", [order_id]
        )
        row = await cur.fetchone()
        assert row is not None
        wanted = sorted({i["value"].lower() for i in row[0]})
        names = _csr_names(csr)
        if sorted(set(names)) != wanted:
            raise AcmeProblem(
                400,
                "badCSR",
                f"CSR names {sorted(set(names))} do not match the order identifiers {wanted}",
            )
        cur = await conn.execute(
            "UPDATE acme_orders SET status = 'processing', updated_at = NOW()"
            " WHERE order_id = %s AND status = 'ready' RETURNING 1",
            [order_id],
        )
        if await cur.fetchone() is None:
            raise AcmeProblem(403, "orderNotReady", "order is no longer ready")
        lifetime = (
            dt.timedelta(seconds=ctx.max_ttl_seconds)
            if ctx.max_ttl_seconds > 0
            else DEFAULT_LIFETIME
        )
        ordered = [n for n in names if n in wanted]
        try:
            issued = await asyncio.to_thread(app.ca.issue, csr, ordered, lifetime)
            cert_id = f"mc-acme-{secrets.token_hex(8)}"
            csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
            async with conn.transaction():
                await _ensure_placeholders(app, conn)
                await conn.execute(
                    "INSERT INTO managed_certificates (id, name, common_name, sans, environment,"
                    " owner_id, team_id, issuer_id, renewal_policy_id, certificate_profile_id,"
                    " status, expires_at, source) VALUES (%s, %s, %s, %s, '', %s, %s,"
                    " 'iss-local', 'rp-default', %s, 'Active', %s, 'ACME')",
                    [
                        cert_id,
                        cert_id,
                        ordered[0],
                        ordered,
                        PLACEHOLDER_OWNER,
                        PLACEHOLDER_TEAM,
                        ctx.profile_id,
                        issued.not_after,
                    ],
                )
                await conn.execute(
                    "INSERT INTO certificate_versions (id, certificate_id, serial_number,"
                    " not_before, not_after, fingerprint_sha256, pem_chain, csr_pem,"
                    " key_algorithm, key_size) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        f"cv-acme-{secrets.token_hex(8)}",
                        cert_id,
                        serial_hex(issued.serial),
                        issued.not_before,
                        issued.not_after,
                        issued.fingerprint_sha256,
                        issued.chain_pem,
                        csr_pem,
                        issued.key_algorithm,
                        issued.key_size,
                    ],
                )
                await conn.execute(
                    "UPDATE acme_orders SET status = 'valid', certificate_id = %s, csr_pem = %s,"
                    " updated_at = NOW() WHERE order_id = %s",
                    [cert_id, csr_pem, order_id],
                )
        except Exception:
            log.exception("ACME finalize of order %s failed", order_id)
            await conn.execute(
                "UPDATE acme_orders SET status = 'invalid', error = %s, updated_at = NOW()"
                " WHERE order_id = %s",
                [Jsonb({"type": ERR + "serverInternal", "detail": "issuance failed"}), order_id],
            )
            raise AcmeProblem(500, "serverInternal", "ACME server error") from None
        body, _ = await _order_body(ctx, conn, order_id, v.account_id)
        return await _reply(ctx, conn, 200, body, location=ctx.url(f"order/{order_id}"))


_AUTHZ_SELECT = """
SELECT o.account_id, a.identifier_type, a.identifier_value, a.status, a.expires_at, a.wildcard
FROM acme_authorizations a JOIN acme_orders o ON o.order_id = a.order_id
WHERE a.authz_id = %s AND o.profile_id = %s
"""


def _challenge_body(ctx: Ctx, row: tuple[Any, ...]) -> dict[str, Any]:
    challenge_id, kind, status, token, validated, error = row
    body: dict[str, Any] = {
        "type": kind,
        "url": ctx.url(f"challenge/{challenge_id}"),
        "status": status,
        "token": token,
    }
    if validated is not None:
        body["validated"] = _rfc3339(validated)
    if error:
        body["error"] = error
    return body


@_acme_handler
async def authz(ctx: Ctx) -> Response:
    async with ctx.app.pool.connection() as conn:
        v = await _verify(ctx, conn, use_jwk=False)
        authz_id = ctx.request.params["authz_id"]
        cur = await conn.execute(_AUTHZ_SELECT, [authz_id, ctx.profile_id])
        row = await cur.fetchone()
        if row is None:
            raise AcmeProblem(404, "malformed", "authorization not found")
        if row[0] != v.account_id:
            raise AcmeProblem(403, "unauthorized", "authorization belongs to another account")
        cur = await conn.execute(
            "SELECT challenge_id, type, status, token, validated_at, error FROM acme_challenges"
            " WHERE authz_id = %s ORDER BY created_at, challenge_id",
            [authz_id],
        )
        challenges = [_challenge_body(ctx, c) for c in await cur.fetchall()]
        body: dict[str, Any] = {
            "identifier": {"type": row[1], "value": row[2]},
            "status": row[3],
            "expires": _rfc3339(row[4]),
            "challenges": challenges,
        }
        if row[5]:
            body["wildcard"] = True
        return await _reply(ctx, conn, 200, body)


@_acme_handler
async def challenge(ctx: Ctx) -> Response:
    async with ctx.app.pool.connection() as conn:
        v = await _verify(ctx, conn, use_jwk=False)
        challenge_id = ctx.request.params["chall_id"]
        cur = await conn.execute(
            "SELECT o.account_id FROM acme_challenges c"
            " JOIN acme_authorizations a ON a.authz_id = c.authz_id"
            " JOIN acme_orders o ON o.order_id = a.order_id"
            " WHERE c.challenge_id = %s AND o.profile_id = %s",
            [challenge_id, ctx.profile_id],
        )
        owner = await cur.fetchone()
        if owner is None:
            raise AcmeProblem(404, "malformed", "challenge not found")
        if owner[0] != v.account_id:
            raise AcmeProblem(403, "unauthorized", "challenge belongs to another account")
        # challenge mode: certctl would now fetch http://<name>/.well-known/... on port 80;
        # the double cannot, so the challenge stays "processing".
        await conn.execute(
            "UPDATE acme_challenges SET status = 'processing', updated_at = NOW()"
            " WHERE challenge_id = %s AND status = 'pending'",
            [challenge_id],
        )
        cur = await conn.execute(
            "SELECT challenge_id, type, status, token, validated_at, error FROM acme_challenges"
            " WHERE challenge_id = %s",
            [challenge_id],
        )
        row = await cur.fetchone()
        assert row is not None
        return await _reply(ctx, conn, 200, _challenge_body(ctx, row))


@_acme_handler
async def certificate(ctx: Ctx) -> Response:
    async with ctx.app.pool.connection() as conn:
        v = await _verify(ctx, conn, use_jwk=False)
        cert_id = ctx.request.params["cert_id"]
        cur = await conn.execute(
            "SELECT v.pem_chain, EXISTS (SELECT 1 FROM acme_orders o"
            " WHERE o.certificate_id = c.id AND o.account_id = %s)"
            " FROM managed_certificates c"
            " LEFT JOIN certificate_versions v ON v.certificate_id = c.id"
            " WHERE c.id = %s ORDER BY v.created_at DESC NULLS LAST LIMIT 1",
            [v.account_id, cert_id],
        )
        row = await cur.fetchone()
        if row is None or row[0] is None:
            # certctl: the certificate scan wraps sql.ErrNoRows like scanAgent does, so an
            # id it does not have is a 500 serverInternal, not a 404 (copied)
            raise server_error()
        if not row[1]:
            # certctl's ownership check is a stub that passes; the double refuses
            raise AcmeProblem(403, "unauthorized", "certificate belongs to another account")
        return await _reply(ctx, conn, 200, row[0].encode(), content_type=PEM_CHAIN)


#: RFC 5280 CRLReason codes certctl maps; anything else becomes ``unspecified``.
_REVOCATION_REASONS = {
    0: "unspecified",
    1: "keyCompromise",
    2: "caCompromise",
    3: "affiliationChanged",
    4: "superseded",
    5: "cessationOfOperation",
    6: "certificateHold",
    9: "privilegeWithdrawn",
}


@_acme_handler
async def revoke_cert(ctx: Ctx) -> Response:
    """Revoke with the account key (kid) or with the certificate's own key (jwk)."""
    try:
        parsed = parse_jws(ctx.request.body)
    except JWSError:
        parsed = None
    use_jwk = parsed is not None and "jwk" in parsed.protected
    async with ctx.app.pool.connection() as conn:
        v = await _verify(ctx, conn, use_jwk=use_jwk)
        payload = v.payload if isinstance(v.payload, dict) else {}
        try:
            cert = x509.load_der_x509_certificate(b64u_decode(str(payload.get("certificate"))))
        except ValueError:
            # certctl files a payload that is not a certificate under badCSR
            raise AcmeProblem(400, "badCSR", "certificate is not base64url DER") from None
        reason_code = payload.get("reason", 0)
        reason = _REVOCATION_REASONS.get(reason_code, "unspecified")
        serial = serial_hex(cert.serial_number)
        cur = await conn.execute(
            "SELECT v.certificate_id, c.status, c.issuer_id,"
            " EXISTS (SELECT 1 FROM acme_orders o WHERE o.certificate_id = v.certificate_id"
            " AND o.account_id = %s)"
            " FROM certificate_versions v JOIN managed_certificates c ON c.id = v.certificate_id"
            " WHERE v.serial_number = %s ORDER BY v.created_at DESC LIMIT 1",
            [v.account_id, serial],
        )
        row = await cur.fetchone()
        if row is None:
            raise AcmeProblem(404, "malformed", "certificate not found")
        cert_id, status, issuer_id, owned = row
        if use_jwk:
            assert v.jwk is not None
            if public_key_from_jwk(v.jwk) != cert.public_key():
                raise AcmeProblem(403, "unauthorized", "jwk is not the certificate's key")
        elif not owned:
            raise AcmeProblem(403, "unauthorized", "certificate belongs to another account")
        if status == "Revoked":
            raise AcmeProblem(400, "alreadyRevoked", "certificate is already revoked")
        async with conn.transaction():
            await conn.execute(
                "UPDATE managed_certificates SET status = 'Revoked', revoked_at = NOW(),"
                " revocation_reason = %s, updated_at = NOW() WHERE id = %s",
                [reason, cert_id],
            )
            await conn.execute(
                "INSERT INTO certificate_revocations"
                " (id, certificate_id, serial_number, reason, revoked_by, issuer_id)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    ctx.app.next_id("rev"),
                    cert_id,
                    serial,
                    reason,
                    v.account_id or "acme-certificate-key",
                    issuer_id,
                ],
            )
        return await _reply(ctx, conn, 200, b"", content_type=JSON)


def routes() -> list[tuple[str, str, Handler]]:
    """(method, path, handler) for the per-profile prefix and the shorthand."""
    suffixes: list[tuple[str, str, Handler]] = [
        ("GET", "/directory", directory),
        ("HEAD", "/new-nonce", new_nonce_head),
        ("GET", "/new-nonce", new_nonce_get),
        ("POST", "/new-account", new_account),
        ("POST", "/account/{acc_id}", account),
        ("POST", "/new-order", new_order),
        ("POST", "/order/{ord_id}", order),
        ("POST", "/order/{ord_id}/finalize", finalize),
        ("POST", "/authz/{authz_id}", authz),
        ("POST", "/challenge/{chall_id}", challenge),
        ("POST", "/cert/{cert_id}", certificate),
        ("GET", "/renewal-info/{cert_id}", renewal_info),
        ("POST", "/revoke-cert", revoke_cert),
    ]
    out: list[tuple[str, str, Handler]] = []
    for method, suffix, handler in suffixes:
        out.append((method, "/acme/profile/{profile}" + suffix, handler))
        out.append((method, "/acme" + suffix, handler))
    return out


async def gc_loop(app: DoubleApp) -> None:
    """certctl's ACME GC (only with CERTCTL_ACME_SERVER_ENABLED=true)."""
    interval = app.config.acme_gc_interval_ns / NS_PER_S
    while True:
        await asyncio.sleep(interval)
        try:
            async with app.pool.connection() as conn:
                await conn.execute("DELETE FROM acme_nonces WHERE used OR expires_at < NOW()")
                await conn.execute(
                    "UPDATE acme_authorizations SET status = 'expired'"
                    " WHERE status = 'pending' AND expires_at < NOW()"
                )
                await conn.execute(
                    "UPDATE acme_orders SET status = 'invalid'"
                    " WHERE status IN ('pending', 'ready') AND expires_at < NOW()"
                )
        except psycopg.Error:
            log.exception("ACME GC failed")
