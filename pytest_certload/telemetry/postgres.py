"""What PostgreSQL did during a run, read from its statistics views.

One connection (autocommit, short statement timeout) reads, per sample:

* ``pg_stat_database`` of the stack's database: commits, rollbacks, blocks read and hit,
  temp bytes, deadlocks (cumulative; the sampler keeps the deltas);
* ``pg_stat_activity`` of that database: client sessions active, idle in transaction,
  and waiting (active with a wait event other than the client or idle kind), by wait
  event (``Lock:transactionid``);
* ``pg_stat_statements`` when the extension is installed in that database: each
  statement's calls and execution time (the texts only for statements not seen yet).

Query texts are what pg_stat_statements keeps: normalised, constants replaced by ``$1``.
Only plain DML is kept (``SELECT``/``INSERT``/``UPDATE``/``DELETE``/``WITH``/``MERGE``),
so a utility statement that carries a literal (``ALTER ROLE ... PASSWORD '...'``) never
reaches a report; the sampler's own queries on ``pg_stat_*`` are left out. The DSN is
never kept or shown; errors are reported without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg

from ..redaction import dsn_passwords, scrub_secrets

__all__ = ["ActivitySample", "DatabaseSample", "PgStats", "StatementSample"]

#: pg_stat_database counters kept, in their view's names
DATABASE_COUNTERS = (
    "xact_commit",
    "xact_rollback",
    "blks_read",
    "blks_hit",
    "temp_bytes",
    "deadlocks",
)
#: wait-event kinds that are not waiting on the server: a session reading its client's
#: next command, or a background process idling
_NOT_WAITING = ("Client", "Activity")
_DML = re.compile(r"^\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH|MERGE)\b", re.I)
_OWN = re.compile(r"\bpg_stat_(?:statements|activity|database)\b|\bpg_backend_pid\b", re.I)
_QUERY_CHARS = 300
_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class DatabaseSample:
    counters: dict[str, int]


@dataclass(frozen=True)
class ActivitySample:
    active: int = 0
    idle_in_transaction: int = 0
    waiting: int = 0
    #: waiting sessions by ``type:event``
    wait_events: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StatementSample:
    """Cumulative calls and execution time (ms) per statement id."""

    stats: dict[int, tuple[int, float]]


def kept_query(text: str) -> str | None:
    """The query text to report (collapsed whitespace, cut at 300 characters), or None
    for one that is not plain DML or is the sampler's own."""
    if not _DML.match(text) or _OWN.search(text):
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= _QUERY_CHARS else flat[: _QUERY_CHARS - 1] + "…"


class PgStats:
    """A reader of the statistics views over one connection to ``dsn``'s database.

    :meth:`open` never raises: a database it cannot reach gives :attr:`note` and no
    figures, and so does a missing pg_stat_statements (for the statements only).
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.Connection | None = None
        self.note = ""
        self.statements_note = ""
        #: statement id -> text to report (None: not reported)
        self.texts: dict[int, str | None] = {}

    def _clean(self, text: object) -> str:
        return scrub_secrets(str(text).strip(), dsn_passwords(self._dsn))

    def open(self) -> bool:
        try:
            self._conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=5,
                options=f"-c statement_timeout={_TIMEOUT_MS}",
                application_name="pytest-certload telemetry",
            )
        except psycopg.Error as exc:
            self.note = f"database statistics not read: cannot connect ({self._clean(exc)})"
            return False
        self._check_statements()
        return True

    def _check_statements(self) -> None:
        assert self._conn is not None
        try:
            row = self._conn.execute(
                "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"
            ).fetchone()
            if row is None:
                self.statements_note = (
                    "top statements not recorded: the pg_stat_statements extension is not "
                    "installed in this database (add it to shared_preload_libraries, restart, "
                    "then CREATE EXTENSION pg_stat_statements)"
                )
                return
            self._conn.execute("SELECT 1 FROM pg_stat_statements(false) LIMIT 1").fetchall()
        except psycopg.Error as exc:
            self.statements_note = f"top statements not recorded: {self._clean(exc)}"

    @property
    def has_statements(self) -> bool:
        return self._conn is not None and not self.statements_note

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def database(self) -> DatabaseSample | None:
        if self._conn is None:
            return None
        try:
            row = self._conn.execute(
                f"SELECT {', '.join(DATABASE_COUNTERS)} FROM pg_stat_database "
                "WHERE datname = current_database()"
            ).fetchone()
        except psycopg.Error as exc:
            self.note = f"pg_stat_database not read: {self._clean(exc)}"
            return None
        if row is None:
            return None
        return DatabaseSample({k: int(v or 0) for k, v in zip(DATABASE_COUNTERS, row, strict=True)})

    def activity(self) -> ActivitySample | None:
        if self._conn is None:
            return None
        try:
            rows = self._conn.execute(
                "SELECT state, wait_event_type, wait_event, count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend' GROUP BY 1, 2, 3"
            ).fetchall()
        except psycopg.Error as exc:
            self.note = f"pg_stat_activity not read: {self._clean(exc)}"
            return None
        active = idle_tx = waiting = 0
        events: dict[str, int] = {}
        for state, kind, event, count in rows:
            n = int(count)
            if state == "active":
                active += n
                if kind is not None and kind not in _NOT_WAITING:
                    waiting += n
                    key = f"{kind}:{event}"
                    events[key] = events.get(key, 0) + n
            elif state and state.startswith("idle in transaction"):
                idle_tx += n
        return ActivitySample(active, idle_tx, waiting, events)

    def statements(self) -> StatementSample | None:
        if not self.has_statements:
            return None
        assert self._conn is not None
        try:
            rows = self._conn.execute(
                "SELECT queryid, calls, total_exec_time FROM pg_stat_statements(false) "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND queryid IS NOT NULL"
            ).fetchall()
            stats: dict[int, tuple[int, float]] = {}
            for qid, calls, total in rows:
                prev = stats.get(int(qid), (0, 0.0))  # a statement may appear per user
                stats[int(qid)] = (prev[0] + int(calls), prev[1] + float(total))
            unknown = [qid for qid in stats if qid not in self.texts]
            if unknown:
                for qid, text in self._conn.execute(
                    "SELECT queryid, query FROM pg_stat_statements(true) WHERE queryid = ANY(%s)",
                    (unknown,),
                ).fetchall():
                    self.texts[int(qid)] = kept_query(str(text or ""))
                for qid in unknown:
                    self.texts.setdefault(qid, None)
        except psycopg.Error as exc:
            self.statements_note = f"top statements not recorded: {self._clean(exc)}"
            return None
        return StatementSample(
            {qid: v for qid, v in stats.items() if self.texts.get(qid) is not None}
        )
