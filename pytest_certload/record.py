"""The record of a session: the one writer and reader of its files.

A session's output directory (``--certload-output-dir``, default ``certload-results``)
holds, besides the reports:

* ``runs/<test>.<n>.json``: one file per run, written the moment the run ends, so a
  later crash cannot lose what it measured (:data:`RUN_FORMAT`; the full
  :class:`~pytest_certload.engine.RunResult` in integer nanoseconds, HDR histograms
  included), and beside it ``runs/<test>.<n>.hlog``, the same run's latency per interval
  in HdrHistogram's log format (:func:`~pytest_certload.intervals.write_hdr_log`);
* ``session.json``: the session index (:data:`SESSION_FORMAT`): what was measured
  (target with certctl's version and commit, profile, HTTP backend, the database's
  settings), where (machine, generator version), the run files in order and each test's
  outcome. Rewritten after every run and at the session's end.

A run file also holds the row counts of the tables the test declared it touches, read
before the run (``database``; null when it declared none). Fields added to either file
since its format was published are optional: a file written before them reads back
with ``None``.

:class:`SessionRecord` is that record in memory; reports and baselines read it, never
pytest objects. :meth:`SessionRecord.read` reads a finished session back. Imports no
pytest.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .engine import RunResult
from .engine.capacity import CapacityResult
from .errors import ConfigError, RecordError
from .intervals import write_hdr_log
from .stack.database import DatabaseSettings, RowCounts
from .telemetry import ServerTelemetry

__all__ = [
    "DEFAULT_OUTPUT_DIR",
    "PREVIOUS_DIR",
    "REPORT_FILE",
    "RUNS_DIR",
    "RUN_FORMAT",
    "SERVICE_LOGS_DIR",
    "SESSION_FILE",
    "SESSION_FORMAT",
    "SESSION_OUTPUTS",
    "SUMMARY_FILE",
    "RunRecord",
    "SessionRecord",
    "generator_version",
    "machine",
    "now_iso",
    "run_file_stem",
    "set_aside_previous",
]

#: ``--certload-output-dir``'s default
DEFAULT_OUTPUT_DIR = Path("certload-results")
#: layout of ``runs/*.json``; 2: every duration in integer ns (timeline rows included),
#: judged thresholds kept (1 had timeline rows in float seconds and ms)
RUN_FORMAT = 2
#: layout of ``session.json``
SESSION_FORMAT = 1
SESSION_FILE = "session.json"
RUNS_DIR = "runs"
#: the reports' file names (written by ``report.summary`` and ``report.html``)
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
_RERUN_HINT = "run the session again with this version of pytest-certload"
#: longest run-file stem (file systems allow 255 bytes per name)
_STEM_LIMIT = 150
#: where the previous session's outputs go when a new session starts recording
PREVIOUS_DIR = "previous"
#: where the stack's service logs are kept (copied before the stack is torn down)
SERVICE_LOGS_DIR = "service-logs"
#: what a session writes into its output directory, set aside as a whole
SESSION_OUTPUTS = (SUMMARY_FILE, SESSION_FILE, REPORT_FILE, RUNS_DIR, SERVICE_LOGS_DIR)


def generator_version() -> str:
    """This pytest-certload's version (``unknown`` when it is not installed)."""
    try:
        return metadata.version("pytest-certload")
    except metadata.PackageNotFoundError:
        return "unknown"


def machine() -> dict[str, Any]:
    """Where the load was generated."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def now_iso() -> str:
    """Now, UTC, to the second, as every record and report stamps it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class RunRecord:
    """One run of one test: the result and where it was written."""

    nodeid: str
    label: str
    result: RunResult
    target: str
    path: Path | None = None  # the run file (None until written, or when writing failed)
    #: the shared run this test's scenario was part of ("" for a run of its own)
    group: str = ""
    #: the other scenarios of that shared run (they ran at the same time)
    ran_with: tuple[str, ...] = ()
    #: with --certload-capacity: each open-model scenario's capacity search
    capacity: tuple[CapacityResult, ...] = ()
    #: what the stack's processes, its database and the generator did during the run
    #: (None with --certload-telemetry off)
    server: ServerTelemetry | None = None
    #: the rows of the tables the test declared it touches, before the run (None when it
    #: declared none)
    database: RowCounts | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_format": RUN_FORMAT,
            "nodeid": self.nodeid,
            "label": self.label,
            "target": self.target,
            "group": self.group,
            "ran_with": list(self.ran_with),
            "capacity": [c.to_dict() for c in self.capacity],
            "server": self.server.to_dict() if self.server is not None else None,
            "database": self.database.to_dict() if self.database is not None else None,
            "result": self.result.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: Path | None = None) -> RunRecord:
        where = str(path) if path is not None else "a run record"
        _check_format(data, "run_format", RUN_FORMAT, where)
        try:
            return cls(
                nodeid=str(data["nodeid"]),
                label=str(data["label"]),
                result=RunResult.from_dict(data["result"]),
                target=str(data["target"]),
                path=path,
                group=str(data.get("group", "")),  # absent before shared runs existed
                ran_with=tuple(str(name) for name in data.get("ran_with", ())),
                # absent before capacity searches existed
                capacity=tuple(CapacityResult.from_dict(c) for c in data.get("capacity", ())),
                # absent before telemetry existed, null when it was off
                server=(
                    ServerTelemetry.from_dict(data["server"])
                    if data.get("server") is not None
                    else None
                ),
                # absent before row counts were recorded, null when none was declared
                database=(
                    RowCounts.from_dict(data["database"])
                    if data.get("database") is not None
                    else None
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
            raise RecordError(
                f"{where} is not a valid run file ({type(exc).__name__}: {exc}); {_RERUN_HINT}."
            ) from exc

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RecordError(f"cannot read run file {path}: {exc}") from exc
        return cls.from_dict(data, path=path)


@dataclass
class SessionRecord:
    """Everything measured in one pytest session, in the order it was measured."""

    output_dir: Path
    profile: str | None = None
    http_backend: str | None = None
    target: str = ""
    target_details: dict[str, Any] = field(default_factory=dict)
    #: certctl's database settings (None when the session used no stack)
    database: DatabaseSettings | None = None
    machine: dict[str, Any] = field(default_factory=machine)
    generator_version: str = field(default_factory=generator_version)
    started_at: str = field(default_factory=now_iso)
    finished_at: str = ""
    records: list[RunRecord] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    #: files that could not be written (the reports name them; the data stays in memory)
    write_errors: list[str] = field(default_factory=list)
    #: applied to every text this record writes (the session's secrets become ``***``)
    scrub: Callable[[str], str] = field(default=str, repr=False)
    #: whether :meth:`add` rewrites ``session.json`` (not in a pytest-xdist worker, whose
    #: runs the controller indexes)
    keeps_index: bool = True

    # -- filling it -------------------------------------------------------------------------
    def add(self, record: RunRecord) -> None:
        """Keep ``record`` and write its run file (and the index) at once."""
        self.records.append(record)
        record.path = self._write_run(record)
        if self.keeps_index:
            self.write_index()

    def adopt(self, record: RunRecord) -> None:
        """Keep a record whose run file another process already wrote (xdist workers)."""
        self.records.append(record)

    def set_outcome(self, nodeid: str, when: str, outcome: str) -> None:
        """A test report's outcome: a failed set-up or teardown makes the test an error."""
        if outcome == "failed" and when != "call":
            self.outcomes[nodeid] = "error"
        elif when == "call" and self.outcomes.get(nodeid) != "error":
            self.outcomes[nodeid] = outcome

    def outcome(self, nodeid: str) -> str:
        return self.outcomes.get(nodeid, "")

    @property
    def target_record(self) -> dict[str, Any]:
        """The target as reports and baselines store it: ``{"label": ..., **details}``."""
        return {"label": self.target or "", **self.target_details}

    # -- files ------------------------------------------------------------------------------
    def _write_run(self, record: RunRecord) -> Path | None:
        index = sum(1 for r in self.records if r.nodeid == record.nodeid)
        path = self.output_dir / RUNS_DIR / f"{run_file_stem(record.nodeid)}.{index}.json"
        try:
            _write_json(path, record.to_dict(), scrub=self.scrub)
        except OSError as exc:
            self.write_errors.append(f"run file {path}: {exc}")
            return None
        self._write_hdr_log(record, path.with_suffix(".hlog"))
        return path

    def _write_hdr_log(self, record: RunRecord, path: Path) -> None:
        """The run's latency histograms per interval in HdrHistogram's log format, beside
        its run file (nothing for a run that kept no intervals)."""
        result = record.result
        if not result.intervals:
            return
        try:
            started = datetime.fromisoformat(result.started_at).timestamp()
        except ValueError:
            started = 0.0
        try:
            write_hdr_log(
                path,
                result.intervals,
                result.scenarios,
                started_at_s=started,
                comment=f"pytest-certload {record.nodeid}: http_req_duration per scenario "
                "and generator_hiccup, values in ns",
            )
        except OSError as exc:
            self.write_errors.append(f"HDR interval log {path}: {exc}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_format": SESSION_FORMAT,
            "profile": self.profile,
            "http_backend": self.http_backend,
            "target": self.target_record,
            "database": self.database.to_dict() if self.database is not None else None,
            "machine": self.machine,
            "generator_version": self.generator_version,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "runs": [
                {
                    "nodeid": r.nodeid,
                    "file": r.path.name if r.path is not None else None,
                    "outcome": self.outcome(r.nodeid),
                }
                for r in self.records
            ],
        }

    def write_output(self, name: str, text: str) -> Path:
        """Write the session's file ``name`` (a report) atomically, scrubbed of secrets.

        Raises ``OSError``; the caller reports it.
        """
        path = self.output_dir / name
        _write_text(path, self.scrub(text))
        return path

    def run_file(self, record: RunRecord) -> str | None:
        """Where ``record``'s run file is, relative to the output directory."""
        return f"{RUNS_DIR}/{record.path.name}" if record.path is not None else None

    def write_index(self) -> Path | None:
        """Write ``session.json``; a failure is recorded in :attr:`write_errors`."""
        path = self.output_dir / SESSION_FILE
        try:
            _write_json(path, self.to_dict(), scrub=self.scrub)
        except OSError as exc:
            message = f"session index {path}: {exc}"
            if message not in self.write_errors:
                self.write_errors.append(message)
            return None
        return path

    @classmethod
    def read(cls, output_dir: Path) -> SessionRecord:
        """The session recorded in ``output_dir`` (its index and every run file it lists).

        Stale run files of earlier sessions left in ``runs/`` are ignored.
        """
        index = output_dir / SESSION_FILE
        try:
            data = json.loads(index.read_text())
        except FileNotFoundError:
            raise RecordError(
                f"no {index}: point at the --certload-output-dir of a finished "
                f"pytest-certload session (default {DEFAULT_OUTPUT_DIR})."
            ) from None
        except (OSError, ValueError) as exc:
            raise RecordError(f"cannot read {index}: {exc}") from exc
        _check_format(data, "session_format", SESSION_FORMAT, str(index))
        try:
            target = dict(data["target"])
            session = cls(
                output_dir=output_dir,
                profile=data["profile"],
                http_backend=data["http_backend"],
                target=str(target.pop("label", "")),
                target_details=target,
                # absent before database settings were recorded
                database=(
                    DatabaseSettings.from_dict(data["database"])
                    if data.get("database") is not None
                    else None
                ),
                machine=dict(data["machine"]),
                generator_version=str(data["generator_version"]),
                started_at=str(data["started_at"]),
                finished_at=str(data["finished_at"]),
            )
            runs = [dict(run) for run in data["runs"]]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecordError(f"{index} is not a valid session index: {exc!r}") from exc
        for run in runs:
            name = run.get("file")
            if not name:
                raise RecordError(
                    f"the run of {run.get('nodeid')!r} was never written (see the session's "
                    f"terminal summary); {index} cannot be read back whole."
                )
            path = output_dir / RUNS_DIR / str(name)
            if not path.is_file():
                raise RecordError(
                    f"the run file of {run.get('nodeid')!r} is missing: {path}; keep "
                    f"{output_dir / RUNS_DIR} beside {SESSION_FILE}."
                )
            session.records.append(RunRecord.read(path))
            if run.get("outcome"):
                session.outcomes[str(run["nodeid"])] = str(run["outcome"])
        return session


def run_file_stem(nodeid: str) -> str:
    """A file-name stem for a test's runs: the node id in safe characters, and, when that
    is long, a prefix of it plus a hash of the whole id, so two ids never share a stem."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")
    if len(stem) <= _STEM_LIMIT:
        return stem
    digest = hashlib.sha256(nodeid.encode()).hexdigest()[:16]
    return f"{stem[: _STEM_LIMIT - 17]}-{digest}"


def _check_format(data: object, key: str, expected: int, where: str) -> None:
    version = data.get(key) if isinstance(data, Mapping) else None
    if version != expected:
        raise RecordError(
            f"{where} has {key} {version!r}; this version of pytest-certload reads format "
            f"{expected}: {_RERUN_HINT}."
        )


def set_aside_previous(output_dir: Path) -> Path | None:
    """Move an earlier session's outputs (:data:`SESSION_OUTPUTS`) into
    ``output_dir/previous/`` (replacing what an even earlier one left there), so this
    session's reports can never be mistaken for, or mixed with, the last one's.

    Returns the directory they went to, or None when there was nothing to move.
    """
    found = [output_dir / name for name in SESSION_OUTPUTS if (output_dir / name).exists()]
    if not found:
        return None
    previous = output_dir / PREVIOUS_DIR
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir(parents=True)
    for path in found:
        path.replace(previous / path.name)
    return previous


def _write_json(path: Path, data: Mapping[str, Any], *, scrub: Callable[[str], str]) -> None:
    _write_text(path, scrub(json.dumps(data, indent=1, default=str)))


def _write_text(path: Path, text: str) -> None:
    """Write atomically (a reader never sees half a file, a full disk leaves the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
