"""What certctl's database holds and how it is configured: read so runs can be compared.

Two figures decide whether two runs of one scenario measured the same thing besides the
code under test:

* :class:`RowCounts` -- the rows of the tables a test's run touches (declared with
  ``@pytest.mark.certload(tables=...)``), counted just before the run: certctl's list
  query counts and pages a table that has no index on its sort key, so the same request
  costs more on a larger table;
* :class:`DatabaseSettings` -- PostgreSQL's settings that change write and cache costs
  (:data:`COMPARABILITY_SETTINGS`). The local and containers providers run PostgreSQL
  with ``fsync``, ``synchronous_commit`` and ``full_page_writes`` off: commits never
  wait for the disk, so writes cost less than on a durable production database.

:func:`count_rows` and :func:`read_settings` read them with the stack's DSN, in a
read-only transaction with a statement timeout; they never raise. Without a DSN, or
when the database does not answer, the figure says why it was not read (``not read: no
DSN``); an error's text never holds the DSN's password. Imports no pytest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..redaction import dsn_passwords, scrub_secrets

__all__ = [
    "COMPARABILITY_SETTINGS",
    "NOT_DURABLE_SETTINGS",
    "NO_DSN",
    "TABLE_RE",
    "DatabaseSettings",
    "RowCounts",
    "count_rows",
    "read_settings",
]

#: PostgreSQL settings that change what a write or a read costs, in the order reports
#: list them
COMPARABILITY_SETTINGS = (
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "shared_buffers",
    "max_connections",
)
#: the settings that, when ``off``, make commits cheaper than on a durable database
NOT_DURABLE_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")
#: what a figure says when the session knows no DSN for certctl's database
NO_DSN = "not read: no DSN (give --certctl-dsn)"
#: what a table name may be: an identifier, optionally schema-qualified
TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_CONNECT_TIMEOUT_S = 5
_STATEMENT_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class RowCounts:
    """The rows of the tables a run touches, counted before it started.

    ``tables`` is what the test declared; ``rows`` what could be counted (a table missing
    from it was not); ``note`` says why not, empty when every table was counted.
    """

    tables: tuple[str, ...]
    rows: Mapping[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def complete(self) -> bool:
        return all(t in self.rows for t in self.tables)

    def text(self) -> str:
        """``managed_certificates 10,032 rows, jobs 40 rows``, the note after what was read."""
        parts = [f"{t} {self.rows[t]:,} rows" for t in self.tables if t in self.rows]
        if self.note:
            parts.append(self.note)
        return ", ".join(parts) or "no table declared"

    def to_dict(self) -> dict[str, Any]:
        return {"tables": list(self.tables), "rows": dict(self.rows), "note": self.note}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RowCounts:
        return cls(
            tables=tuple(str(t) for t in data["tables"]),
            rows={str(k): int(v) for k, v in data.get("rows", {}).items()},
            note=str(data.get("note", "")),
        )


@dataclass(frozen=True)
class DatabaseSettings:
    """PostgreSQL's version and the :data:`COMPARABILITY_SETTINGS`, as ``SHOW`` prints
    them (``off``, ``128MB``); ``note`` says why they were not read."""

    settings: Mapping[str, str] = field(default_factory=dict)
    version: str = ""
    note: str = ""

    @property
    def not_durable(self) -> tuple[str, ...]:
        """The :data:`NOT_DURABLE_SETTINGS` that are off."""
        return tuple(s for s in NOT_DURABLE_SETTINGS if self.settings.get(s) == "off")

    def text(self) -> str:
        """``PostgreSQL 16.4: fsync off, synchronous_commit off, ..., max_connections
        200``, or the note."""
        if not self.settings:
            return self.note or "not read"
        shown = ", ".join(
            f"{k} {self.settings[k]}" for k in COMPARABILITY_SETTINGS if k in self.settings
        )
        head = f"PostgreSQL {self.version}" if self.version else "PostgreSQL"
        return f"{head}: {shown}" + (f" ({self.note})" if self.note else "")

    def warning(self) -> str:
        """What every report says when commits did not wait for the disk; ``""`` else."""
        off = self.not_durable
        if not off:
            return ""
        named = off[0] if len(off) == 1 else f"{', '.join(off[:-1])} and {off[-1]}"
        return (
            f"{named} off: PostgreSQL did not wait for the disk, so writes cost less than on "
            "a durable database; compare only with runs on the same settings"
        )

    def differences(self, other: DatabaseSettings) -> list[str]:
        """``fsync off -> on`` for every setting both read and that differs."""
        return [
            f"{k} {self.settings[k]} -> {other.settings[k]}"
            for k in COMPARABILITY_SETTINGS
            if k in self.settings and k in other.settings and self.settings[k] != other.settings[k]
        ]

    def to_dict(self) -> dict[str, Any]:
        return {"settings": dict(self.settings), "version": self.version, "note": self.note}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatabaseSettings:
        return cls(
            settings={str(k): str(v) for k, v in data.get("settings", {}).items()},
            version=str(data.get("version", "")),
            note=str(data.get("note", "")),
        )


def _why(exc: Exception, dsn: str) -> str:
    text = scrub_secrets(" ".join(str(exc).split()), dsn_passwords(dsn), fragments=True)
    return text or type(exc).__name__


def _connect(dsn: str) -> Any:
    import psycopg  # imported only by sessions that read a database

    conn = psycopg.connect(dsn, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S)
    conn.execute(f"SET statement_timeout = {_STATEMENT_TIMEOUT_MS}")
    return conn


def count_rows(dsn: str | None, tables: Sequence[str]) -> RowCounts:
    """``SELECT count(*)`` of every table in ``tables``, in one read-only snapshot; never
    raises (what could not be counted is named in the note)."""
    declared = tuple(dict.fromkeys(tables))
    if not declared:
        return RowCounts(())
    if not dsn:
        return RowCounts(declared, note=NO_DSN)
    from psycopg import Error, sql

    rows: dict[str, int] = {}
    missing: list[str] = []
    try:
        with _connect(dsn) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            for table in declared:
                cur = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
                found = cur.fetchone()
                if not (found and found[0]):
                    missing.append(table)
                    continue
                ident = sql.Identifier(*table.split("."))
                cur = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident))
                counted = cur.fetchone()
                rows[table] = int(counted[0]) if counted else 0
            conn.execute("COMMIT")
    except Error as exc:
        return RowCounts(declared, rows, note=f"not read: {_why(exc, dsn)}")
    note = f"no such table: {', '.join(missing)}" if missing else ""
    return RowCounts(declared, rows, note=note)


def read_settings(dsn: str | None) -> DatabaseSettings:
    """PostgreSQL's version and :data:`COMPARABILITY_SETTINGS` (``SHOW``'s texts); never
    raises."""
    if not dsn:
        return DatabaseSettings(note=NO_DSN)
    from psycopg import Error

    try:
        with _connect(dsn) as conn:
            cur = conn.execute(
                "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name",
                (list(COMPARABILITY_SETTINGS),),
            )
            settings = {str(k): str(v) for k, v in cur.fetchall()}
            cur = conn.execute("SELECT current_setting('server_version')")
            version = cur.fetchone()
    except Error as exc:
        return DatabaseSettings(note=f"not read: {_why(exc, dsn)}")
    return DatabaseSettings(settings, str(version[0]) if version else "")
