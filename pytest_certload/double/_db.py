"""Boot-time database work (schema, seeds, checks) and the runtime audit writer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from importlib import resources
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ..errors import ConfigError, ServiceError
from ..redaction import dsn_passwords, redact_dsn, scrub_secrets
from ._config import DoubleConfig

__all__ = ["AuditWriter", "prepare_database", "sql_text"]

log = logging.getLogger("certctl_double")

#: certctl hard-codes its pool at 25 open connections.
POOL_MAX = 25
POOL_MIN = 5


def sql_text(name: str) -> str:
    """The text of one of the double's SQL files (``schema.sql``, ``seed.sql``, ...)."""
    return resources.files(__package__).joinpath("sql", name).read_text(encoding="utf-8")


_ENV_ISSUERS = """
INSERT INTO issuers (id, name, type, config, enabled, source) VALUES
    ('iss-local', 'Local CA', 'GenericCA', '{}', TRUE, 'env'),
    ('iss-acme-staging', 'ACME Staging', 'ACME', '{"directory_url": ""}', TRUE, 'env'),
    ('iss-acme-prod', 'ACME Production', 'ACME', '{"directory_url": ""}', TRUE, 'env')
ON CONFLICT DO NOTHING
"""


def prepare_database(config: DoubleConfig) -> None:
    """Apply schema and seeds the way certctl boots; raise ServiceError or ConfigError."""
    try:
        conn = psycopg.connect(config.database_url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        # the log is kept with the session's reports: never the password
        shown = redact_dsn(config.database_url)
        reason = scrub_secrets(str(exc), dsn_passwords(config.database_url), fragments=True)
        raise ServiceError(
            f"cannot connect to CERTCTL_DATABASE_URL={shown!r}: {reason}".strip()
        ) from None
    with conn:
        for name in ("schema.sql", "seed.sql", *(("seed_demo.sql",) if config.demo_seed else ())):
            try:
                # Quieten "already exists, skipping" notices of the guarded DDL.
                conn.execute("SET client_min_messages = warning")
                conn.execute(sql_text(name).encode())
            except psycopg.Error as exc:
                raise ServiceError(f"applying {name} failed: {exc}") from None
        if not config.config_encryption_key:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM issuers WHERE source = 'database')"
                " + (SELECT count(*) FROM deployment_targets WHERE source = 'database')"
            ).fetchone()
            if row is not None and row[0]:
                raise ConfigError(
                    f"{row[0]} issuer/deployment-target rows have source='database' (the demo "
                    f"seed adds them) but CERTCTL_CONFIG_ENCRYPTION_KEY is not set; certctl "
                    f"refuses to start like this. Set a key of at least 32 bytes."
                )
        row = conn.execute("SELECT count(*) FROM issuers").fetchone()
        if row is not None and row[0] == 0:
            conn.execute(_ENV_ISSUERS)


def make_pool(config: DoubleConfig) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        config.database_url,
        min_size=POOL_MIN,
        max_size=POOL_MAX,
        kwargs={"autocommit": True},
        open=False,
        timeout=30.0,
        name="certctl-double",
    )


_AUDIT_INSERT = """
INSERT INTO audit_events (id, actor, actor_type, action, resource_type, resource_id, details)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                     %s::jsonb[])
"""

AuditRow = tuple[str, str, str, str, str, str, str]


class AuditWriter:
    """Writes ``audit_events`` rows off the request path through a bounded queue.

    certctl spawns one goroutine and one INSERT per request. The double queues the
    row (a full queue makes the request wait: memory stays bounded) and a single task
    inserts whatever has accumulated in one multi-row INSERT.
    """

    def __init__(self, pool: AsyncConnectionPool, *, maxsize: int = 10_000) -> None:
        self.pool = pool
        self.queue: asyncio.Queue[AuditRow] = asyncio.Queue(maxsize=maxsize)
        self.task: asyncio.Task[None] | None = None
        self.written = 0
        self.failed = 0

    @staticmethod
    def row(
        actor: str,
        actor_type: str,
        action: str,
        resource_type: str,
        resource_id: str,
        details: dict[str, Any],
    ) -> AuditRow:
        return (
            f"audit-{uuid.uuid4().hex}",
            actor,
            actor_type,
            action,
            resource_type,
            resource_id[:255],
            json.dumps(details, separators=(",", ":")),
        )

    async def put(self, row: AuditRow) -> None:
        try:
            self.queue.put_nowait(row)
        except asyncio.QueueFull:
            await self.queue.put(row)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name="audit-writer")

    async def stop(self, timeout: float = 5.0) -> None:
        """Flush what is queued (bounded by ``timeout``), then stop the task."""
        deadline = time.monotonic() + timeout
        while not self.queue.empty() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < 1000:
                try:
                    batch.append(self.queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            columns = [list(col) for col in zip(*batch, strict=True)]
            try:
                async with self.pool.connection() as conn:
                    await conn.execute(_AUDIT_INSERT, columns)
                self.written += len(batch)
            except Exception:  # keep writing later rows; certctl also just logs
                self.failed += len(batch)
                log.exception("audit insert of %d rows failed", len(batch))
