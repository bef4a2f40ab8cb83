"""Remove the harness's rows from certctl's database in one transaction, or count them.

:func:`cleanup` runs the steps of :mod:`.plan` in order inside one transaction and
commits it, or, with ``dry_run=True``, rolls it back: a dry run executes exactly what the
real run would (so its counts, and the foreign keys that would stop it, are the real
ones) and leaves the database as it was. Before deleting from a table it looks up every
foreign key that points at the table (PostgreSQL's catalog, so tables of a certctl
version this module does not know are seen too) and counts the rows that point at the
rows about to go: a ``CASCADE`` or ``SET NULL`` is reported; a ``RESTRICT`` or ``NO
ACTION`` with rows behind it stops the cleanup, which then removes nothing and names the
table, column and constraint. It holds the seed's advisory lock, so it never runs while a
seed is applied, and waits at most ``lock_timeout_s`` for a row lock (certctl or a load
writing those rows).

No message shows the DSN's password (libpq's own texts are scrubbed). Imports no pytest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ..errors import CleanupError
from ..redaction import dsn_passwords, redact_dsn, scrub_secrets
from ..seed import SEED_LOCK_KEY
from .plan import ACCOUNTS, FIRSTS, LEDGER, LEFTOVERS, PARAMS, STEPS

__all__ = ["CONNECT_TIMEOUT_S", "CleanupReport", "Left", "Linked", "Removed", "cleanup"]

#: how long connecting may take (libpq's connect_timeout, whole seconds)
CONNECT_TIMEOUT_S = 10
#: how long a statement may wait for a lock another client holds
LOCK_TIMEOUT_S = 10

Connection = psycopg.Connection[tuple[Any, ...]]

#: pg_constraint.confdeltype -> what happens to a referencing row
_ACTIONS = {
    "c": "removed with them (ON DELETE CASCADE)",
    "n": "unlinked (ON DELETE SET NULL)",
    "d": "unlinked (ON DELETE SET DEFAULT)",
    "r": "refuses it (ON DELETE RESTRICT)",
    "a": "refuses it (ON DELETE NO ACTION)",
}
_REFERENCES = """
SELECT c.conname, c.conrelid::regclass::text, ra.attname, fa.attname, c.confdeltype
FROM pg_constraint c
JOIN pg_attribute ra ON ra.attrelid = c.conrelid AND ra.attnum = c.conkey[1]
JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
WHERE c.contype = 'f' AND c.confrelid = %s::regclass AND cardinality(c.conkey) = 1
  AND c.conrelid <> c.confrelid
ORDER BY 2, 1
"""


@dataclass(frozen=True)
class Removed:
    """The rows one step removed (or, in a dry run, would remove)."""

    table: str
    rows: int
    what: str


@dataclass(frozen=True)
class Linked:
    """Rows of another table that point at removed rows and go or are unlinked with them."""

    table: str
    column: str
    parent: str
    rows: int
    action: str


@dataclass(frozen=True)
class Left:
    """Rows the cleanup cannot remove, and why."""

    table: str
    rows: int
    why: str


@dataclass(frozen=True)
class CleanupReport:
    """What :func:`cleanup` removed (or would remove), in order, and what it left."""

    database: str
    dry_run: bool
    removed: tuple[Removed, ...] = ()
    linked: tuple[Linked, ...] = ()
    left: tuple[Left, ...] = ()
    #: tables of the plan this database does not have (another certctl version)
    missing: tuple[str, ...] = ()
    #: when the first row the harness wrote was written (None: none is left)
    since: dt.datetime | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.removed)


def _connect(dsn: str, connect_timeout_s: int) -> Connection:
    shown = redact_dsn(dsn)
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout_s)
    except psycopg.Error as exc:
        reason = scrub_secrets(str(exc).strip(), dsn_passwords(dsn), fragments=True)
        reason = " ".join(reason.split()) or type(exc).__name__
        if isinstance(exc, psycopg.ProgrammingError) or "invalid" in reason:
            problem = f"the DSN {shown!r} is not a valid PostgreSQL connection string"
            fix = "Give one such as postgresql://USER:PASSWORD@HOST:5432/DBNAME"
        else:
            problem = f"cannot connect to the database of DSN {shown!r}"
            fix = (
                "Check that PostgreSQL runs there and accepts this login (connect timeout "
                f"{connect_timeout_s} s) and that the DSN names certctl's database"
            )
        raise CleanupError(
            f"{problem} ({reason}); nothing was removed. {fix}, with --certctl-dsn DSN or, "
            "better, the environment variable CERTLOAD_CERTCTL_DSN (a command line is visible "
            "to every local user)."
        ) from None


def _exists(conn: Connection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def _count(conn: Connection, query: sql.Composed | str, params: dict[str, Any]) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _links(
    conn: Connection, table: str, where: str, params: dict[str, Any]
) -> tuple[list[Linked], list[str]]:
    """Rows of other tables pointing at ``table``'s rows that ``where`` selects: those
    that go or are unlinked with them, and what stops the delete."""
    linked: list[Linked] = []
    blocking: list[str] = []
    for name, child, column, key, action in conn.execute(_REFERENCES, (table,)).fetchall():
        rows = _count(
            conn,
            sql.SQL("SELECT count(*) FROM {} WHERE {} IN (SELECT {} FROM {} WHERE {})").format(
                sql.SQL(child),  # a regclass's text: quoted as needed by PostgreSQL
                sql.Identifier(column),
                sql.Identifier(key),
                sql.Identifier(table),
                sql.SQL(where),  # the plan's constant SQL
            ),
            params,
        )
        if not rows:
            continue
        what = _ACTIONS.get(action, f"ON DELETE action {action!r}")
        if action in ("r", "a"):
            blocking.append(
                f"{rows:,} row(s) of {child} point at them through {child}.{column} "
                f"(constraint {name}, which {what})"
            )
        else:
            linked.append(Linked(child, column, table, rows, what))
    return linked, blocking


def _since(conn: Connection, tables: set[str]) -> dt.datetime | None:
    firsts = []
    for table, query in FIRSTS:
        if table in tables:
            row = conn.execute(query, PARAMS).fetchone()
            if row and row[0] is not None:
                firsts.append(row[0])
    return min(firsts) if firsts else None


def _steps(conn: Connection, dry_run: bool, database: str) -> CleanupReport:
    tables = {s.table for s in STEPS} | {LEDGER} | {x.table for x in LEFTOVERS}
    present = {t for t in tables if _exists(conn, t)}
    if not {"managed_certificates", "agents"} & present:
        raise CleanupError(
            f"the database of {database} has no managed_certificates or agents table: it is "
            "not certctl's database; nothing was removed. Give the DSN of the database "
            "certctl uses (its CERTCTL_DATABASE_URL)."
        )
    since = _since(conn, present)
    accounts: list[str] = []
    if {"acme_accounts", "acme_orders"} <= present:
        accounts = [str(r[0]) for r in conn.execute(ACCOUNTS, PARAMS).fetchall()]
    params: dict[str, Any] = {**PARAMS, "accounts": accounts}
    removed: list[Removed] = []
    linked: list[Linked] = []
    missing = sorted(t for t in {s.table for s in STEPS} if t not in present)
    for step in STEPS:
        if step.table not in present:
            continue
        where = step.where.replace("%(accounts)s", "%(accounts)s::text[]")
        links, blocking = _links(conn, step.table, where, params)
        if blocking:
            verb = "a cleanup would remove" if dry_run else "the cleanup removed"
            raise CleanupError(
                f"{verb} nothing from {database}: the {step.table} rows it removes "
                f"({step.what}) are still referenced: {'; '.join(blocking)}. Those rows are "
                "not the harness's: remove them first, or drop and recreate the database "
                "(a load-test database should be a throwaway one)."
            )
        linked += links
        cur = conn.execute(
            sql.SQL("DELETE FROM {} WHERE {}").format(
                sql.Identifier(step.table),
                sql.SQL(where),  # the plan's constant SQL
            ),
            params,
        )
        removed.append(Removed(step.table, max(cur.rowcount, 0), step.what))
    if LEDGER in present:
        rows = _count(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(LEDGER)), {})
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(LEDGER)))
        removed.append(
            Removed(
                LEDGER,
                rows,
                "the seed ledger (the table is dropped: the next seed applies every file again)",
            )
        )
    left: list[Left] = []
    for leftover in LEFTOVERS:
        if leftover.table not in present:
            continue
        rows = _count(
            conn,
            leftover.count,
            {**PARAMS, "since": since or dt.datetime.min.replace(tzinfo=dt.UTC)},
        )
        if not rows:
            continue
        why = leftover.why
        if leftover.table == "audit_events":
            when = (
                f"written since {since.isoformat(timespec='seconds')}, when the first row the "
                "harness left was written (every request certctl audited since then, the "
                "harness's among them)"
                if since is not None
                else "in all (no row the harness wrote is left to date them by)"
            )
            why = f"{when}: {why}"
        left.append(Left(leftover.table, rows, why))
    return CleanupReport(
        database=database,
        dry_run=dry_run,
        removed=tuple(removed),
        linked=tuple(linked),
        left=tuple(left),
        missing=tuple(missing),
        since=since,
    )


def cleanup(
    dsn: str,
    *,
    dry_run: bool,
    connect_timeout_s: int = CONNECT_TIMEOUT_S,
    lock_timeout_s: int = LOCK_TIMEOUT_S,
) -> CleanupReport:
    """Remove the harness's rows from the certctl database of ``dsn`` in one transaction
    (``dry_run``: run the same transaction and roll it back) and say what was removed,
    in order, and what is left. Raises :class:`~pytest_certload.errors.CleanupError`
    (nothing removed) when it cannot connect, when the database is not certctl's, when
    a seed is being applied, or when a row it would remove is still referenced."""
    database = redact_dsn(dsn)
    secrets = dsn_passwords(dsn)
    conn = _connect(dsn, connect_timeout_s)
    try:
        with conn.transaction(force_rollback=dry_run):
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(f"{lock_timeout_s}s"))
            locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (SEED_LOCK_KEY,))
            row = locked.fetchone()
            if not (row and row[0]):
                raise CleanupError(
                    f"a pytest-certload seed is being applied to {database} right now (its "
                    "advisory lock is held); nothing was removed: run the cleanup when that "
                    "session has finished."
                )
            return _steps(conn, dry_run, database)
    except psycopg.errors.LockNotAvailable:
        raise CleanupError(
            f"waited {lock_timeout_s} s for a lock in {database}: another client (certctl "
            "serving a load, or a running test session) is writing the rows to remove; "
            "nothing was removed. Stop the load and run the cleanup again."
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        reason = scrub_secrets(str(exc).strip(), secrets)
        raise CleanupError(
            f"the DSN's user may not change {database} ({reason}); nothing was removed. Use "
            "the user certctl connects with (its CERTCTL_DATABASE_URL), which owns the tables."
        ) from None
    except psycopg.Error as exc:
        diag = exc.diag
        where = (
            f" (table {diag.table_name}, constraint {diag.constraint_name})"
            if diag.constraint_name
            else ""
        )
        reason = scrub_secrets(" ".join(str(exc).split()), secrets)
        raise CleanupError(
            f"the cleanup of {database} failed{where}: {reason}; nothing was removed (the "
            "transaction was rolled back)."
        ) from None
    finally:
        conn.close()
