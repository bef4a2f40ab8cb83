"""Idempotent application of seed SQL (``fixtures/sql/*.sql``) with a checksum ledger.

:func:`apply_seed` applies every ``*.sql`` file of a directory in lexical order, each in
its own transaction, and records ``(filename, sha256, applied_at, rows)`` in the ledger
table ``certload_seed_ledger`` inside that same transaction. A file whose checksum is in
the ledger is skipped; a changed file is applied again (seed files are written to be
re-runnable, e.g. ``INSERT ... ON CONFLICT ... DO UPDATE``). A failing file is rolled back
and raises :class:`~pytest_certload.errors.SeedError` naming the file, the line and the
statement. A session advisory lock serialises concurrent callers (e.g. xdist workers).

:func:`restore_seed` applies the files it is given again, whatever the ledger says, all
in **one** transaction: the seed files are written so that applying one again puts the
rows it seeds back in their seeded state (upserts that restore every seeded column, and
deletes of what runs derived from those rows, e.g. the renewal jobs of the seeded
certificates). A test that consumes seeded rows restores them before it measures, so
every run measures the same work.

The connection gives up after :data:`CONNECT_TIMEOUT_S`; a DSN that is malformed or
names a server that does not answer is a :class:`~pytest_certload.errors.SeedError`
naming ``--certctl-dsn``. No message shows the DSN's password (libpq's own texts can
quote parts of the DSN: they are scrubbed).

Files are split into statements here, not by the server, so that the error can name
the statement and so the rows inserted (or, by an upsert, restored) can be counted per
file. The splitter understands
``--`` and nested ``/* */`` comments, quoted strings (``'...'``, ``E'...'``), quoted
identifiers and dollar quoting (``$$ ... $$``, ``$tag$ ... $tag$``). Top-level
``BEGIN``/``COMMIT``/``ROLLBACK`` are refused: the transaction is ours.

Nothing here imports pytest.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

from .errors import SeedError
from .redaction import dsn_passwords, redact_dsn, scrub_secrets

__all__ = [
    "CONNECT_TIMEOUT_S",
    "LEDGER_TABLE",
    "SEED_LOCK_KEY",
    "SeedFileResult",
    "SeedReport",
    "Statement",
    "apply_seed",
    "restore_seed",
    "split_statements",
]

LEDGER_TABLE = "certload_seed_ledger"
#: how long connecting to the database may take (libpq's connect_timeout, whole seconds)
CONNECT_TIMEOUT_S = 10
_DSN_OPTION = "--certctl-dsn (better the environment variable CERTLOAD_CERTCTL_DSN)"
#: the PostgreSQL advisory lock that serialises seeding (and ``pytest_certload.cleanup``)
SEED_LOCK_KEY = 0x6365_7274_6C6F_6164 & 0x7FFF_FFFF_FFFF_FFFF  # "certload"
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_TXN_CONTROL = re.compile(
    r"^(BEGIN|COMMIT|ROLLBACK|START\s+TRANSACTION|END|SAVEPOINT|RELEASE)\b", re.I
)

Status = Literal["applied", "reapplied", "skipped", "restored"]


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a file and the 1-based line it starts on."""

    text: str
    line: int


@dataclass(frozen=True)
class SeedFileResult:
    filename: str
    sha256: str
    status: Status
    #: rows inserted or restored by this application (0 when skipped)
    rows: int
    statements: int
    seconds: float


@dataclass(frozen=True)
class SeedReport:
    directory: Path
    files: tuple[SeedFileResult, ...]

    @property
    def rows(self) -> int:
        """Rows inserted or restored by this call, over all files."""
        return sum(f.rows for f in self.files)

    @property
    def applied(self) -> tuple[str, ...]:
        return tuple(f.filename for f in self.files if f.status != "skipped")

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(f.filename for f in self.files if f.status == "skipped")

    def summary(self) -> str:
        parts = [f"{f.filename}: {f.status}, {f.rows} rows" for f in self.files]
        return f"seed {self.directory}: " + ("; ".join(parts) if parts else "no *.sql files")


def split_statements(text: str) -> list[Statement]:
    """Split SQL text into statements at top-level semicolons.

    Comments-only fragments are dropped. Each statement keeps the line it starts on
    (its first non-blank, non-comment character).
    """
    statements: list[Statement] = []
    buf: list[str] = []
    start_line: int | None = None
    line = 1
    i, n = 0, len(text)

    def flush() -> None:
        nonlocal start_line
        body = "".join(buf).strip()
        if body and start_line is not None:
            statements.append(Statement(body, start_line))
        buf.clear()
        start_line = None

    while i < n:
        ch = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if ch == "-" and nxt == "-":  # line comment
            end = text.find("\n", i)
            end = n if end == -1 else end
            buf.append(text[i:end])
            i = end
            continue
        if ch == "/" and nxt == "*":  # block comment, nested
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            chunk = text[i:j]
            buf.append(chunk)
            line += chunk.count("\n")
            i = j
            continue
        if start_line is None and not ch.isspace() and ch != ";":
            start_line = line
        if ch in ("'", '"'):
            escapes = ch == "'" and i > 0 and text[i - 1] in "eE" and _word_start(text, i - 1)
            j = i + 1
            while j < n:
                if escapes and text[j] == "\\":
                    j += 2
                    continue
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            chunk = text[i : j + 1]
            buf.append(chunk)
            line += chunk.count("\n")
            i = j + 1
            continue
        if ch == "$":
            match = _DOLLAR_TAG.match(text, i)
            if match and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
                tag = match.group(0)
                end = text.find(tag, match.end())
                end = n if end == -1 else end + len(tag)
                chunk = text[i:end]
                buf.append(chunk)
                line += chunk.count("\n")
                i = end
                continue
        if ch == ";":
            flush()
            i += 1
            continue
        if ch == "\n":
            line += 1
        buf.append(ch)
        i += 1
    flush()
    return [s for s in statements if _strip_comments(s.text)]


def _word_start(text: str, i: int) -> bool:
    return i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")


def _strip_comments(text: str) -> str:
    without_line = re.sub(r"--[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", without_line, flags=re.S).strip()


def _sql_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise SeedError(
            f"seed directory {directory} does not exist or is not a directory; "
            "pass the directory that holds the *.sql files (e.g. fixtures/sql)."
        )
    return sorted(
        (p for p in directory.iterdir() if p.suffix == ".sql" and p.is_file()), key=lambda p: p.name
    )


def _ensure_ledger(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                " filename TEXT PRIMARY KEY,"
                " sha256 TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
                " rows BIGINT NOT NULL)"
            ).format(sql.Identifier(LEDGER_TABLE))
        )


def _ledger(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, str]:
    cur = conn.execute(
        sql.SQL("SELECT filename, sha256 FROM {}").format(sql.Identifier(LEDGER_TABLE))
    )
    return {str(name): str(digest) for name, digest in cur.fetchall()}


def _error_line(stmt: Statement, exc: psycopg.Error) -> int:
    position = exc.diag.statement_position if exc.diag is not None else None
    if position and position.isdigit():
        offset = int(position) - 1
        return stmt.line + stmt.text[:offset].count("\n")
    return stmt.line


def _statements_of(path: Path, text: str) -> Iterator[Statement]:
    for stmt in split_statements(text):
        head = _strip_comments(stmt.text)
        if _TXN_CONTROL.match(head):
            raise SeedError(
                f"{path.name}, line {stmt.line}: remove the transaction control statement "
                f"{head.split()[0].upper()!r}; apply_seed runs each file in its own "
                "transaction."
            )
        yield stmt


def _apply_file(
    conn: psycopg.Connection[tuple[object, ...]],
    path: Path,
    statements: list[Statement],
    digest: str,
) -> int:
    rows = 0
    current: Statement | None = None
    try:
        with conn.transaction():
            for current in statements:
                cur = conn.execute(current.text.encode())
                status = (cur.statusmessage or "").upper()
                # an upsert's count is the rows it inserted or updated
                if status.startswith("INSERT") and cur.rowcount > 0:
                    rows += cur.rowcount
            current = None
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (filename, sha256, applied_at, rows)"
                    " VALUES (%s, %s, now(), %s)"
                    " ON CONFLICT (filename) DO UPDATE"
                    " SET sha256 = EXCLUDED.sha256, applied_at = EXCLUDED.applied_at,"
                    " rows = EXCLUDED.rows"
                ).format(sql.Identifier(LEDGER_TABLE)),
                (path.name, digest, rows),
            )
    except psycopg.Error as exc:
        if current is None:
            raise SeedError(f"{path.name}: recording it in the ledger failed: {exc}") from exc
        line = _error_line(current, exc)
        shown = current.text if len(current.text) <= 400 else current.text[:400] + " ..."
        message = (exc.diag.message_primary if exc.diag is not None else None) or str(exc)
        err = SeedError(
            f"seed file {path.name} failed at line {line}: {message.strip()}; the file was "
            f"rolled back (nothing from it was kept).\nstatement (from line {current.line}):"
            f"\n{shown}"
        )
        detail = exc.diag.message_detail if exc.diag is not None else None
        if detail:
            err.add_note(f"detail: {detail}")
        err.add_note(f"file: {path}")
        raise err from exc
    return rows


@dataclass(frozen=True)
class _Prepared:
    path: Path
    digest: str
    statements: list[Statement]


def _prepare(directory: Path) -> list[_Prepared]:
    """Read, checksum and split every file before touching the database."""
    prepared = []
    for path in _sql_files(directory):
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SeedError(f"seed file {path} is not UTF-8: {exc}") from exc
        statements = list(_statements_of(path, text))
        prepared.append(_Prepared(path, hashlib.sha256(data).hexdigest(), statements))
    return prepared


def _connect(
    dsn: str, directory: Path, connect_timeout_s: int
) -> psycopg.Connection[tuple[object, ...]]:
    """A connection for the seed; a SeedError naming --certctl-dsn, never its password,
    when the DSN is malformed or its server cannot be reached."""
    shown = redact_dsn(dsn)
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout_s)
    except psycopg.Error as exc:
        reason = scrub_secrets(str(exc).strip(), dsn_passwords(dsn), fragments=True)
        reason = " ".join(reason.split()) or type(exc).__name__
        if isinstance(exc, psycopg.ProgrammingError) or "invalid" in reason:
            problem = f"the DSN {shown!r} is not a valid PostgreSQL connection string"
            fix = (
                f"give a DSN such as postgresql://USER:PASSWORD@HOST:5432/DBNAME with {_DSN_OPTION}"
            )
        else:
            problem = f"cannot connect to the database of DSN {shown!r}"
            fix = (
                f"check that PostgreSQL runs there and accepts this login (connect timeout "
                f"{connect_timeout_s} s), and that {_DSN_OPTION} names certctl's database"
            )
        # `from None`: psycopg's own exception (and its text) stays out of the traceback
        raise SeedError(
            f"{problem} ({reason}), so the seed from {directory} was not applied; {fix}."
        ) from None


def apply_seed(
    dsn: str, directory: Path | str, *, connect_timeout_s: int = CONNECT_TIMEOUT_S
) -> SeedReport:
    """Apply ``directory/*.sql`` in lexical order; skip files already in the ledger.

    Every file is read and split first, so a malformed file is reported before any
    file is applied. Connecting gives up after ``connect_timeout_s`` seconds.
    """
    directory = Path(directory)
    prepared = _prepare(directory)
    results: list[SeedFileResult] = []
    conn = _connect(dsn, directory, connect_timeout_s)
    with conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SEED_LOCK_KEY,))
        try:
            _ensure_ledger(conn)
            known = _ledger(conn)
            for item in prepared:
                started = time.perf_counter()
                previous = known.get(item.path.name)
                if previous == item.digest:
                    elapsed = time.perf_counter() - started
                    results.append(
                        SeedFileResult(item.path.name, item.digest, "skipped", 0, 0, elapsed)
                    )
                    continue
                rows = _apply_file(conn, item.path, item.statements, item.digest)
                results.append(
                    SeedFileResult(
                        item.path.name,
                        item.digest,
                        "applied" if previous is None else "reapplied",
                        rows,
                        len(item.statements),
                        time.perf_counter() - started,
                    )
                )
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SEED_LOCK_KEY,))
    return SeedReport(directory=directory, files=tuple(results))


def restore_seed(
    dsn: str,
    directory: Path | str,
    files: Sequence[str],
    *,
    connect_timeout_s: int = CONNECT_TIMEOUT_S,
) -> SeedReport:
    """Apply the seed files ``files`` of ``directory`` again, whatever the ledger says,
    all in one transaction, putting the rows they seed back in their seeded state.

    Nothing is kept when one statement fails (the error names the file, line and
    statement). Each file's result has status ``restored`` and counts the rows written.
    """
    directory = Path(directory)
    prepared = {item.path.name: item for item in _prepare(directory)}
    unknown = [name for name in files if name not in prepared]
    if unknown or not files:
        raise SeedError(
            f"cannot restore {', '.join(map(repr, unknown)) or 'no file'}: not a seed file "
            f"of {directory}; name one or more of {', '.join(prepared) or '(none there)'}."
        )
    results: list[SeedFileResult] = []
    conn = _connect(dsn, directory, connect_timeout_s)
    with conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SEED_LOCK_KEY,))
        try:
            _ensure_ledger(conn)
            with conn.transaction():
                for name in dict.fromkeys(files):
                    item = prepared[name]
                    started = time.perf_counter()
                    try:
                        rows = _apply_file(conn, item.path, item.statements, item.digest)
                    except SeedError as exc:
                        exc.add_note(
                            f"restoring {', '.join(files)} ran in one transaction: nothing "
                            "was restored."
                        )
                        raise
                    results.append(
                        SeedFileResult(
                            name,
                            item.digest,
                            "restored",
                            rows,
                            len(item.statements),
                            time.perf_counter() - started,
                        )
                    )
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SEED_LOCK_KEY,))
    return SeedReport(directory=directory, files=tuple(results))
