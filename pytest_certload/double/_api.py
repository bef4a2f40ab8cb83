"""REST handlers under /api/v1 (health, auth, certificates, bulk ops, agents, jobs,
metrics)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import ipaddress
import json
import re
import secrets
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors

from ..errors import ConfigError
from ._http import (
    TEXT,
    HttpError,
    Request,
    Response,
    decode_json,
    go_atoi,
    json_response,
    raw_json,
)

if TYPE_CHECKING:
    from ._app import DoubleApp

__all__ = ["ts_sql"]

VERSION = "double-0.1.0"


def ts_sql(column: str) -> str:
    """SQL rendering a timestamptz like Go's RFC 3339 (UTC, trailing zeros trimmed)."""
    return (
        f"(rtrim(rtrim(to_char({column} AT TIME ZONE 'UTC', "
        f"'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '0'), '.') || 'Z')"
    )


_ZERO_TIME = "'0001-01-01 00:00:00+00'::timestamptz"
_TARGET_IDS = (
    "coalesce((SELECT jsonb_agg(m.target_id ORDER BY m.target_id) "
    "FROM certificate_target_mappings m WHERE m.certificate_id = c.id), '[]'::jsonb)"
)


def _cert_json(target_ids: str) -> str:
    return f"""(jsonb_build_object(
        'id', c.id, 'name', c.name, 'common_name', c.common_name,
        'sans', coalesce(to_jsonb(c.sans), '[]'::jsonb),
        'environment', coalesce(c.environment, ''), 'owner_id', c.owner_id,
        'team_id', c.team_id, 'issuer_id', c.issuer_id, 'target_ids', {target_ids},
        'renewal_policy_id', c.renewal_policy_id, 'status', c.status,
        'expires_at', {ts_sql(f"coalesce(c.expires_at, {_ZERO_TIME})")},
        'tags', c.tags, 'created_at', {ts_sql("c.created_at")},
        'updated_at', {ts_sql("c.updated_at")})
      || jsonb_strip_nulls(jsonb_build_object(
        'certificate_profile_id', nullif(c.certificate_profile_id, ''),
        'source', nullif(c.source, ''),
        'last_renewal_at', {ts_sql("c.last_renewal_at")},
        'last_deployment_at', {ts_sql("c.last_deployment_at")},
        'revoked_at', {ts_sql("c.revoked_at")},
        'revocation_reason', nullif(c.revocation_reason, ''))))"""


CERT_JSON_LISTED = _cert_json(_TARGET_IDS)
CERT_JSON_CREATED = _cert_json("'null'::jsonb")

AGENT_JSON = f"""(jsonb_build_object(
    'id', a.id, 'name', a.name, 'hostname', a.hostname, 'status', a.status,
    'last_heartbeat_at', {ts_sql("a.last_heartbeat_at")},
    'registered_at', {ts_sql("a.registered_at")}, 'os', coalesce(a.os, ''),
    'architecture', coalesce(a.architecture, ''), 'ip_address', coalesce(a.ip_address, ''),
    'version', coalesce(a.version, ''))
  || jsonb_strip_nulls(jsonb_build_object(
    'retired_at', {ts_sql("a.retired_at")}, 'retired_reason', nullif(a.retired_reason, ''))))"""

JOB_JSON = f"""(jsonb_build_object(
    'id', j.id, 'type', j.type, 'certificate_id', coalesce(j.certificate_id, ''),
    'status', j.status, 'attempts', j.attempts, 'max_attempts', j.max_attempts,
    'scheduled_at', {ts_sql(f"coalesce(j.scheduled_at, {_ZERO_TIME})")},
    'created_at', {ts_sql("j.created_at")},
    'verification_status', coalesce(j.verification_status, ''))
  || jsonb_strip_nulls(jsonb_build_object(
    'target_id', nullif(j.target_id, ''), 'agent_id', nullif(j.agent_id, ''),
    'last_error', nullif(j.last_error, ''),
    'started_at', {ts_sql("j.started_at")}, 'completed_at', {ts_sql("j.completed_at")},
    'verified_at', {ts_sql("j.verified_at")},
    'verification_error', nullif(j.verification_error, ''),
    'verification_fingerprint', nullif(j.verification_fingerprint, ''))))"""


# -- small helpers --------------------------------------------------------------------


def _query_int(request: Request, name: str, low: int, high: int) -> int | None:
    """A query value as certctl's handlers read it (``strconv.Atoi``, then a range check):
    None when absent, not a Go integer (``1_0``, `` 5``) or out of [low, high]."""
    value = go_atoi(request.query.get(name, ""))
    return value if value is not None and low <= value <= high else None


def _page(request: Request) -> tuple[int, int]:
    """certctl's page/per_page: bad or out-of-range values fall back silently."""
    page = _query_int(request, "page", 1, 2**63 - 1) or 1
    per_page = _query_int(request, "per_page", 1, 500) or 50
    return page, per_page


def _paged(data: str, total: int, page: int, per_page: int) -> Response:
    return raw_json(200, f'{{"data":{data},"total":{total},"page":{page},"per_page":{per_page}}}')


def _str_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise HttpError(400, "Invalid request body")
    return value


def _str_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HttpError(400, "Invalid request body")
    return value


def _rfc3339(value: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or "T" not in value.upper():
        return None
    return parsed


_HOST_CHARS = re.compile(r"^[A-Za-z0-9.\-_*]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate_common_name(name: str) -> str | None:
    """certctl's common-name rule; returns an error message or None."""
    if len(name) > 253:
        return "common_name must be at most 253 characters"
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        pass
    if "@" in name:
        return None if _EMAIL.match(name) else f"invalid email address in common_name: {name}"
    if not _HOST_CHARS.match(name):
        return f"invalid hostname in common_name: {name}"
    for label in name.split("."):
        if not label:
            return f"invalid hostname in common_name (empty label): {name}"
        if label.startswith("-") or label.endswith("-"):
            return f"invalid hostname in common_name (label starts or ends with '-'): {name}"
    return None


# -- health, auth, version ------------------------------------------------------------


async def health(app: DoubleApp, request: Request) -> Response:
    return Response(200, b'{"status":"healthy"}')


async def ready(app: DoubleApp, request: Request) -> Response:
    try:
        async with asyncio.timeout(2.0):
            async with app.pool.connection(timeout=2.0) as conn:
                await conn.execute("SELECT 1")
    except Exception as exc:  # any failure to reach the DB is "not ready"
        detail = str(exc) or type(exc).__name__
        return json_response(503, {"status": "db_unavailable", "error": detail})
    return Response(200, b'{"status":"ready","db":"reachable"}')


async def auth_info(app: DoubleApp, request: Request) -> Response:
    config = app.config
    return json_response(200, {"auth_type": config.auth_type, "required": config.auth_required})


async def auth_check(app: DoubleApp, request: Request) -> Response:
    key = request.key
    assert key is not None  # the authenticated chain always sets it
    return json_response(200, {"status": "authenticated", "user": key.name, "admin": key.admin})


async def version(app: DoubleApp, request: Request) -> Response:
    return json_response(
        200,
        {
            "version": VERSION,
            "commit": "certctl-reference-double",
            "modified": False,
            "build_time": "",
            "go_version": "none (Python reference double of certctl 2.0.9)",
        },
    )


async def head_refused_text(app: DoubleApp, request: Request) -> Response:
    """HEAD on /health, /ready, /api/v1/version: those handlers of certctl accept GET only
    and refuse anything else with ``http.Error`` (text/plain; the body is not sent)."""
    return Response(405, b"Method not allowed\n", TEXT, [(b"x-content-type-options", b"nosniff")])


async def head_refused_json(app: DoubleApp, request: Request) -> Response:
    """HEAD on a REST GET route: certctl's handlers check the method themselves and answer
    405 with their JSON error (no request id; the body is not sent)."""
    return json_response(405, {"error": "Method Not Allowed", "message": "Method not allowed"})


# -- certificates ---------------------------------------------------------------------

#: certctl's CreateCertificate checks in this order, common_name (and its rules) first
_REQUIRED_CERT_FIELDS = (
    "common_name",
    "owner_id",
    "team_id",
    "issuer_id",
    "name",
    "renewal_policy_id",
)

_INSERT_CERT = f"""
INSERT INTO managed_certificates AS c
    (id, name, common_name, sans, environment, owner_id, team_id, issuer_id,
     renewal_policy_id, certificate_profile_id, status, expires_at, tags, source)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
RETURNING {CERT_JSON_CREATED}::text
"""


async def create_certificate(app: DoubleApp, request: Request) -> Response:
    body = request.json_object()
    fields = {name: _str_field(body, name) for name in _REQUIRED_CERT_FIELDS}
    for name in ("id", "environment", "certificate_profile_id", "status", "source"):
        fields[name] = _str_field(body, name)
    sans = _str_list(body, "sans")
    _str_list(body, "target_ids")  # accepted, type-checked, not persisted (like certctl)
    tags = body.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise HttpError(400, "Invalid request body")
    expires_raw = body.get("expires_at")
    if expires_raw is None:
        expires_at = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    elif isinstance(expires_raw, str) and (parsed := _rfc3339(expires_raw)) is not None:
        expires_at = parsed
    else:
        raise HttpError(400, "Invalid request body")
    for name in _REQUIRED_CERT_FIELDS:
        if not fields[name]:
            raise HttpError(400, f"{name} is required")
        if name == "common_name" and (problem := validate_common_name(fields[name])):
            raise HttpError(400, problem)
    params = (
        fields["id"] or app.next_id("cert"),
        fields["name"],
        fields["common_name"],
        sans,
        fields["environment"],
        fields["owner_id"],
        fields["team_id"],
        fields["issuer_id"],
        fields["renewal_policy_id"],
        fields["certificate_profile_id"] or None,
        fields["status"] or "Pending",
        expires_at,
        json.dumps(tags),
        fields["source"],
    )
    try:
        async with app.pool.connection() as conn:
            cur = await conn.execute(_INSERT_CERT, params)
            row = await cur.fetchone()
    except psycopg.Error:
        raise HttpError(500, "Failed to create certificate") from None
    assert row is not None
    return raw_json(201, row[0])


_SORT_COLUMNS = {
    "notAfter": "c.expires_at",
    "expiresAt": "c.expires_at",
    "createdAt": "c.created_at",
    "updatedAt": "c.updated_at",
    "commonName": "c.common_name",
    "name": "c.name",
    "status": "c.status",
    "environment": "c.environment",
}
_EXACT_FILTERS = {
    "status": "c.status = %s",
    "environment": "c.environment = %s",
    "owner_id": "c.owner_id = %s",
    "team_id": "c.team_id = %s",
    "issuer_id": "c.issuer_id = %s",
    "profile_id": "c.certificate_profile_id = %s",
    "agent_id": (
        "c.id IN (SELECT m.certificate_id FROM certificate_target_mappings m "
        "JOIN deployment_targets t ON t.id = m.target_id WHERE t.agent_id = %s)"
    ),
}
_TIME_FILTERS = {
    "expires_before": "c.expires_at < %s",
    "expires_after": "c.expires_at > %s",
    "created_after": "c.created_at > %s",
    "updated_after": "c.updated_at > %s",
}


def _cert_filters(query: dict[str, str]) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for name, clause in _EXACT_FILTERS.items():
        value = query.get(name)
        if value:
            clauses.append(clause)
            params.append(value)
    for name, clause in _TIME_FILTERS.items():
        value = query.get(name)
        if value and (parsed := _rfc3339(value)) is not None:
            clauses.append(clause)
            params.append(parsed)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _encode_cursor(created_at: str, cert_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at}|{cert_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[dt.datetime, str] | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    stamp, sep, cert_id = text.partition("|")
    parsed = _rfc3339(stamp) if sep else None
    return (parsed, cert_id) if parsed is not None else None


async def list_certificates(app: DoubleApp, request: Request) -> Response:
    query = request.query
    where, params = _cert_filters(query)
    json_expr = CERT_JSON_LISTED
    fields = [f.strip() for f in query.get("fields", "").split(",") if f.strip()]
    if fields:
        json_expr = (
            f"(SELECT coalesce(jsonb_object_agg(k, v), '{{}}'::jsonb) "
            f"FROM jsonb_each({json_expr}) AS e(k, v) WHERE k = ANY(%s))"
        )
    cursor = query.get("cursor", "")
    page, per_page = _page(request)
    limit = _query_int(request, "page_size", 1, 500) or per_page
    if cursor:
        return await _list_by_cursor(app, where, params, json_expr, fields, cursor, limit)
    sort = query.get("sort", "")
    descending = sort.startswith("-") or query.get("sort_desc") == "true"
    column = _SORT_COLUMNS.get(sort.lstrip("-"), "c.created_at")
    direction = "DESC" if descending else "ASC"
    sql = (
        f"SELECT (SELECT count(*) FROM managed_certificates c{where}),"
        f" coalesce((SELECT json_agg(p.j) FROM (SELECT {json_expr} AS j"
        f" FROM managed_certificates c{where} ORDER BY {column} {direction}, c.id {direction}"
        f" LIMIT %s OFFSET %s) p), '[]')::text"
    )
    args = [*params, *([fields] if fields else []), *params, limit, (page - 1) * limit]
    async with app.pool.connection() as conn:
        cur = await conn.execute(sql, args)
        row = await cur.fetchone()
    assert row is not None
    return _paged(row[1], row[0], page, per_page)


async def _list_by_cursor(
    app: DoubleApp,
    where: str,
    params: list[Any],
    json_expr: str,
    fields: list[str],
    cursor: str,
    page_size: int,
) -> Response:
    position = _decode_cursor(cursor)
    cursor_where = where
    cursor_params = list(params)
    if position is not None:
        clause = "(c.created_at, c.id) > (%s, %s)"
        cursor_where = f"{where} AND {clause}" if where else f" WHERE {clause}"
        cursor_params += [position[0], position[1]]
    # one round trip: total, the page, the page's last row (the next cursor) and
    # whether anything follows it
    page_rows = f"FROM managed_certificates c{cursor_where} ORDER BY c.created_at, c.id"
    sql = (
        f"SELECT (SELECT count(*) FROM managed_certificates c{where}),"
        f" coalesce((SELECT json_agg(p.j) FROM (SELECT {json_expr} AS j {page_rows}"
        f" LIMIT %s) p), '[]')::text,"
        f" (SELECT array[{ts_sql('c.created_at')}, c.id] {page_rows} OFFSET %s LIMIT 1),"
        f" EXISTS (SELECT 1 {page_rows} OFFSET %s)"
    )
    fields_arg = [fields] if fields else []
    args = [*params, *fields_arg, *cursor_params, page_size]
    args += [*cursor_params, page_size - 1, *cursor_params, page_size]
    async with app.pool.connection() as conn:
        cur = await conn.execute(sql, args)
        row = await cur.fetchone()
    assert row is not None
    total, data, last, more = row
    next_cursor = _encode_cursor(last[0], last[1]) if more and last is not None else ""
    return raw_json(
        200,
        f'{{"data":{data},"total":{total},"next_cursor":{json.dumps(next_cursor)},'
        f'"page_size":{page_size}}}',
    )


async def get_certificate(app: DoubleApp, request: Request) -> Response:
    async with app.pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT {CERT_JSON_LISTED}::text FROM managed_certificates c WHERE c.id = %s",
            [request.params["id"]],
        )
        row = await cur.fetchone()
    if row is None:
        raise HttpError(404, "Certificate not found")
    return raw_json(200, row[0])


# -- bulk renew / revoke --------------------------------------------------------------

_CRITERIA = ("profile_id", "owner_id", "agent_id", "issuer_id", "team_id")
_CRITERIA_SQL = {
    "profile_id": "c.certificate_profile_id = %s",
    "owner_id": "c.owner_id = %s",
    "issuer_id": "c.issuer_id = %s",
    "team_id": "c.team_id = %s",
    "agent_id": _EXACT_FILTERS["agent_id"],
}
#: certctl's repository resets its 10 000-row request to 50, so criteria mode stops there.
CRITERIA_CAP = 50
_CRITERIA_MESSAGE = (
    "At least one filter criterion is required (profile_id, owner_id, agent_id, issuer_id, "
    "team_id, or certificate_ids)"
)


async def _resolve(
    conn: psycopg.AsyncConnection[Any], body: dict[str, Any]
) -> list[tuple[str, str, dt.datetime | None, str]]:
    """Matched certs as (id, status, expires_at, issuer_id), certctl's resolution rules."""
    ids = list(dict.fromkeys(_str_list(body, "certificate_ids")))
    criteria = {name: _str_field(body, name) for name in _CRITERIA}
    criteria = {k: v for k, v in criteria.items() if v}
    select = "SELECT c.id, c.status, c.expires_at, c.issuer_id FROM managed_certificates c"
    if criteria:
        where = " AND ".join(_CRITERIA_SQL[k] for k in criteria)
        cur = await conn.execute(
            f"{select} WHERE {where} ORDER BY c.created_at, c.id LIMIT {CRITERIA_CAP}",
            list(criteria.values()),
        )
        rows = await cur.fetchall()
        if ids:
            wanted = set(ids)
            rows = [r for r in rows if r[0] in wanted]
        return rows
    cur = await conn.execute(f"{select} WHERE c.id = ANY(%s)", [ids])
    found = {r[0]: r for r in await cur.fetchall()}
    return [found[i] for i in ids if i in found]


def _has_criteria(body: dict[str, Any]) -> bool:
    return bool(_str_list(body, "certificate_ids")) or any(
        _str_field(body, name) for name in _CRITERIA
    )


_RENEW_SKIP = ("Archived", "Revoked", "Expired", "RenewalInProgress")


async def bulk_renew(app: DoubleApp, request: Request) -> Response:
    body = request.json_object()
    if not _has_criteria(body):
        raise HttpError(400, _CRITERIA_MESSAGE)
    job_status = "AwaitingCSR" if app.config.keygen_mode == "agent" else "Pending"
    key = request.key
    try:
        async with app.pool.connection() as conn, conn.transaction():
            matched = await _resolve(conn, body)
            cur = await conn.execute(
                "UPDATE managed_certificates SET status = 'RenewalInProgress'"
                " WHERE id = ANY(%s) AND status <> ALL(%s) RETURNING id, expires_at",
                [[m[0] for m in matched], list(_RENEW_SKIP)],
            )
            flipped = {r[0]: r[1] for r in await cur.fetchall()}
            jobs: list[tuple[str, str, str]] = []
            for cert_id, _status, _exp, _iss in matched:
                if cert_id not in flipped:
                    continue
                expires = flipped[cert_id]
                kind = "Issuance" if expires is None or expires.year < 2000 else "Renewal"
                jobs.append((app.next_id("job"), cert_id, kind))
            if jobs:
                await conn.execute(
                    "INSERT INTO jobs (id, certificate_id, type, status, max_attempts,"
                    " scheduled_at) SELECT j.id, j.cert, j.kind, %s, 3, NOW()"
                    " FROM unnest(%s::text[], %s::text[], %s::text[]) AS j(id, cert, kind)",
                    [job_status, [j[0] for j in jobs], [j[1] for j in jobs], [j[2] for j in jobs]],
                )
    except psycopg.Error as exc:
        raise HttpError(500, f"Bulk renewal failed: {exc}") from None
    result: dict[str, Any] = {
        "total_matched": len(matched),
        "total_enqueued": len(jobs),
        "total_skipped": len(matched) - len(jobs),
        "total_failed": 0,
    }
    if jobs:
        result["enqueued_jobs"] = [{"certificate_id": j[1], "job_id": j[0]} for j in jobs]
    await app.audit.put(
        app.audit.row(
            key.name if key else "anonymous",
            "User",
            "bulk_renewal_initiated",
            "certificate",
            "bulk",
            {k: v for k, v in result.items() if k.startswith("total_")},
        )
    )
    return json_response(200, result)


REVOCATION_REASONS = frozenset(
    {
        "unspecified",
        "keyCompromise",
        "caCompromise",
        "affiliationChanged",
        "superseded",
        "cessationOfOperation",
        "certificateHold",
        "privilegeWithdrawn",
    }
)


async def bulk_revoke(app: DoubleApp, request: Request) -> Response:
    key = request.key
    if key is None or not key.admin:
        raise HttpError(403, "Bulk revocation requires admin privileges")
    body = request.json_object()
    reason = _str_field(body, "reason")
    if not reason:
        raise HttpError(400, "reason is required")
    if reason not in REVOCATION_REASONS:
        raise HttpError(400, f"invalid revocation reason: {reason}")
    if not _has_criteria(body):
        raise HttpError(400, _CRITERIA_MESSAGE)
    try:
        async with app.pool.connection() as conn:
            matched = await _resolve(conn, body)
    except psycopg.Error as exc:
        raise HttpError(500, f"Bulk revocation failed: {exc}") from None
    revoked = skipped = 0
    errors: list[dict[str, str]] = []
    for cert_id, status, _exp, issuer_id in matched:
        if status in ("Revoked", "Archived"):
            skipped += 1
            continue
        problem = await _revoke_one(app, cert_id, issuer_id, reason, key.name)
        if problem is None:
            revoked += 1
        else:
            errors.append({"certificate_id": cert_id, "error": problem})
    result: dict[str, Any] = {
        "total_matched": len(matched),
        "total_revoked": revoked,
        "total_skipped": skipped,
        "total_failed": len(errors),
    }
    if errors:
        result["errors"] = errors
    await app.audit.put(
        app.audit.row(key.name, "User", "bulk_revocation_initiated", "certificate", "bulk", result)
    )
    return json_response(200, result)


async def _revoke_one(
    app: DoubleApp, cert_id: str, issuer_id: str, reason: str, actor: str
) -> str | None:
    try:
        async with app.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT serial_number FROM certificate_versions WHERE certificate_id = %s"
                " ORDER BY created_at DESC, id DESC LIMIT 1",
                [cert_id],
            )
            version = await cur.fetchone()
            if version is None:
                return "failed to get certificate version: not found"
            await conn.execute(
                "UPDATE managed_certificates SET status = 'Revoked', revoked_at = NOW(),"
                " revocation_reason = %s, updated_at = NOW() WHERE id = %s",
                [reason, cert_id],
            )
            await conn.execute(
                "INSERT INTO certificate_revocations"
                " (id, certificate_id, serial_number, reason, revoked_by, issuer_id)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                [app.next_id("rev"), cert_id, version[0], reason, actor, issuer_id],
            )
            await conn.execute(
                "INSERT INTO audit_events (id, actor, actor_type, action, resource_type,"
                " resource_id, details) VALUES (%s, %s, 'User', 'certificate_revoked',"
                " 'certificate', %s, %s)",
                [
                    app.next_id("audit"),
                    actor,
                    cert_id,
                    json.dumps({"reason": reason, "serial": version[0]}),
                ],
            )
    except psycopg.Error as exc:
        return f"revocation failed: {exc}"
    return None


# -- agents ---------------------------------------------------------------------------

_INSERT_AGENT = f"""
INSERT INTO agents AS a (id, name, hostname, status, last_heartbeat_at, registered_at,
                         api_key_hash, os, architecture, ip_address, version)
VALUES (%s, %s, %s, 'Online', NOW(), NOW(), %s, %s, %s, %s, %s)
RETURNING {AGENT_JSON}::text
"""


async def register_agent(app: DoubleApp, request: Request) -> Response:
    body = request.json_object()
    values = {
        n: _str_field(body, n)
        for n in ("name", "hostname", "os", "architecture", "ip_address", "version")
    }
    if not values["name"]:
        raise HttpError(400, "name is required")
    if len(values["name"]) > 128:
        raise HttpError(400, "name must be at most 128 characters")
    if not values["hostname"]:
        raise HttpError(400, "hostname is required")
    key_hash = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
    params = [
        app.next_id("agent"),
        values["name"],
        values["hostname"],
        key_hash,
        values["os"],
        values["architecture"],
        values["ip_address"],
        values["version"],
    ]
    try:
        async with app.pool.connection() as conn:
            cur = await conn.execute(_INSERT_AGENT, params)
            row = await cur.fetchone()
    except pg_errors.UniqueViolation:
        raise HttpError(409, "Agent with this name already exists") from None
    except psycopg.Error:
        raise HttpError(500, "Failed to register agent") from None
    assert row is not None
    return raw_json(201, row[0])


async def list_agents(app: DoubleApp, request: Request) -> Response:
    page, per_page = _page(request)
    sql = (
        "SELECT (SELECT count(*) FROM agents WHERE retired_at IS NULL),"
        f" coalesce((SELECT json_agg(p.j) FROM (SELECT {AGENT_JSON} AS j FROM agents a"
        " WHERE a.retired_at IS NULL ORDER BY a.registered_at DESC, a.id"
        " LIMIT %s OFFSET %s) p), '[]')::text"
    )
    async with app.pool.connection() as conn:
        cur = await conn.execute(sql, [per_page, (page - 1) * per_page])
        row = await cur.fetchone()
    assert row is not None
    return _paged(row[1], row[0], page, per_page)


async def get_agent(app: DoubleApp, request: Request) -> Response:
    async with app.pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT {AGENT_JSON}::text FROM agents a WHERE a.id = %s", [request.params["id"]]
        )
        row = await cur.fetchone()
    if row is None:
        raise HttpError(404, "Agent not found")
    return raw_json(200, row[0])


_HEARTBEAT = """
WITH target AS (SELECT id, retired_at FROM agents WHERE id = %(id)s),
updated AS (
    UPDATE agents SET last_heartbeat_at = NOW(), status = 'Online',
        version = coalesce(nullif(%(version)s, ''), version),
        hostname = coalesce(nullif(%(hostname)s, ''), hostname),
        os = coalesce(nullif(%(os)s, ''), os),
        architecture = coalesce(nullif(%(architecture)s, ''), architecture),
        ip_address = coalesce(nullif(%(ip_address)s, ''), ip_address)
    WHERE id = %(id)s AND retired_at IS NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM target), (SELECT count(*) FROM target WHERE retired_at IS NOT NULL),
       (SELECT count(*) FROM updated)
"""
_HEARTBEAT_FIELDS = ("version", "hostname", "os", "architecture", "ip_address")


async def heartbeat(app: DoubleApp, request: Request) -> Response:
    """certctl's heartbeat, including its answer for an agent it does not have: 500
    ``Failed to record heartbeat`` (``internal/repository/postgres/agent.go``: ``scanAgent``
    wraps ``sql.ErrNoRows`` and ``AgentRepository.Get`` compares it with ``==``, so the
    handler's 404 branch never runs). A retired agent is 410."""
    metadata = _heartbeat_metadata(request)
    params: dict[str, str] = {"id": request.params["id"], **metadata}
    try:
        async with app.pool.connection() as conn:
            cur = await conn.execute(_HEARTBEAT, params)
            row = await cur.fetchone()
    except psycopg.Error:
        raise HttpError(500, "Failed to record heartbeat") from None
    assert row is not None
    if row[0] == 0:
        raise HttpError(500, "Failed to record heartbeat")
    if row[1]:
        raise HttpError(410, "Agent has been retired")
    return Response(200, b'{"status":"heartbeat_recorded"}')


def _heartbeat_metadata(request: Request) -> dict[str, str]:
    """The optional metadata body as certctl's handler decodes it: the first JSON value
    (trailing bytes ignored); any decoding error (a field of the wrong type included)
    means no metadata at all."""
    metadata = dict.fromkeys(_HEARTBEAT_FIELDS, "")
    if not request.body or request.too_large:
        return metadata
    try:
        decoded = decode_json(request.body)
    except ValueError:
        return metadata
    if not isinstance(decoded, dict):
        return metadata
    values = {name: decoded.get(name) for name in _HEARTBEAT_FIELDS}
    if not all(v is None or isinstance(v, str) for v in values.values()):
        return metadata
    return {name: value or "" for name, value in values.items()}


# -- jobs -----------------------------------------------------------------------------


async def list_jobs(app: DoubleApp, request: Request) -> Response:
    page, per_page = _page(request)
    clauses: list[str] = []
    params: list[Any] = []
    for name in ("status", "type"):
        value = request.query.get(name)
        if value:
            clauses.append(f"j.{name} = %s")
            params.append(value)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = (
        f"SELECT (SELECT count(*) FROM jobs j{where}),"
        f" coalesce((SELECT json_agg(p.j) FROM (SELECT {JOB_JSON} AS j FROM jobs j{where}"
        " ORDER BY j.created_at DESC, j.id LIMIT %s OFFSET %s) p), '[]')::text"
    )
    async with app.pool.connection() as conn:
        cur = await conn.execute(sql, [*params, *params, per_page, (page - 1) * per_page])
        row = await cur.fetchone()
    assert row is not None
    return _paged(row[1], row[0], page, per_page)


async def get_job(app: DoubleApp, request: Request) -> Response:
    async with app.pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT {JOB_JSON}::text FROM jobs j WHERE j.id = %s", [request.params["id"]]
        )
        row = await cur.fetchone()
    if row is None:
        raise HttpError(404, "Job not found")
    return raw_json(200, row[0])


# -- metrics --------------------------------------------------------------------------

#: The media type of Prometheus' text exposition format 0.0.4, as certctl sends it.
PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"

#: Job statuses certctl's dashboard summary counts as pending (exact, case-sensitive
#: matches, so the demo seed's lowercase ``pending``/``running`` rows are not counted).
PENDING_JOB_STATUSES = ("Pending", "AwaitingCSR", "AwaitingApproval", "Running")

#: certctl counts an agent as online when its last heartbeat is this recent, whatever
#: its ``status`` column says; retired agents are not counted.
AGENT_ONLINE_WINDOW = "5 minutes"

_METRIC_COUNTS = f"""
SELECT (SELECT count(*) FROM managed_certificates),
       (SELECT count(*) FROM agents WHERE retired_at IS NULL
            AND last_heartbeat_at > NOW() - INTERVAL '{AGENT_ONLINE_WINDOW}'),
       (SELECT count(*) FROM jobs WHERE status = ANY(%s))
"""

#: (name, help) of the gauges served, in the order of ``_METRIC_COUNTS``' columns.
PROMETHEUS_GAUGES = (
    ("certctl_certificate_total", "Managed certificates, whatever their status."),
    ("certctl_agent_online", "Non-retired agents that sent a heartbeat in the last 5 minutes."),
    (
        "certctl_job_pending",
        "Jobs waiting or running (Pending, AwaitingCSR, AwaitingApproval, Running).",
    ),
)


async def prometheus_metrics(app: DoubleApp, request: Request) -> Response:
    """``GET /api/v1/metrics/prometheus``: the gauges the double can count from its
    tables (one round trip of COUNT queries), in the text exposition format."""
    try:
        async with app.pool.connection() as conn:
            cur = await conn.execute(_METRIC_COUNTS, [list(PENDING_JOB_STATUSES)])
            row = await cur.fetchone()
    except psycopg.Error:
        raise HttpError(500, "Failed to collect metrics") from None
    assert row is not None
    lines: list[str] = []
    for (name, help_text), value in zip(PROMETHEUS_GAUGES, row, strict=True):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}", ""]
    return Response(200, "\n".join(lines).encode(), PROMETHEUS_TEXT)


# -- the double's own fault endpoint --------------------------------------------------


async def faults_get(app: DoubleApp, request: Request) -> Response:
    _require_admin(app, request)
    return json_response(200, app.faults.describe())


async def faults_set(app: DoubleApp, request: Request) -> Response:
    _require_admin(app, request)
    spec = request.json_object()
    try:
        app.faults.apply(spec)
    except ConfigError as exc:
        raise HttpError(400, str(exc)) from None
    return json_response(200, app.faults.describe())


async def faults_clear(app: DoubleApp, request: Request) -> Response:
    _require_admin(app, request)
    app.faults.clear()
    return json_response(200, app.faults.describe())


def _require_admin(app: DoubleApp, request: Request) -> None:
    """Admin keys only; with CERTCTL_AUTH_TYPE=none there are no keys, so anyone may."""
    key = request.key
    if app.config.auth_required and (key is None or not key.admin):
        raise HttpError(403, "Fault injection requires an admin API key")
