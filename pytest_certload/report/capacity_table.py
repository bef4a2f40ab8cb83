"""``python -m pytest_certload.report.capacity_table``: the measured capacity table of
``docs/operator/scale.md``, from a results directory::

    python -m pytest_certload.report.capacity_table [RESULTS] [--update FILE]

It reads the session recorded in ``RESULTS`` (default ``certload-results``, read back with
:meth:`.SessionRecord.read`) and prints the table :func:`.capacity.render_table` renders;
with ``--update`` it writes it between the ``capacity-table`` markers of ``FILE`` instead.
Nothing imports this module (``python -m`` runs it as ``__main__``); imports no pytest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import CertloadError, ConfigError
from ..record import DEFAULT_OUTPUT_DIR, SessionRecord
from .capacity import END_MARKER, START_MARKER, capacity_rows, render_table, replace_table

__all__ = ["main"]


def _update(path: Path, table: str) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    new = replace_table(text, table, where=str(path))
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_certload.report.capacity_table",
        description="Render the measured capacity table of a session that ran with "
        "--certload-capacity, or write it between the capacity-table markers of a file.",
    )
    parser.add_argument(
        "results",
        metavar="RESULTS",
        nargs="?",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        help=f"--certload-output-dir of the session to read. Default: {DEFAULT_OUTPUT_DIR}",
    )
    parser.add_argument(
        "--update",
        metavar="FILE",
        type=Path,
        default=None,
        help=f"replace the table between {START_MARKER} and {END_MARKER} in FILE "
        "(e.g. docs/operator/scale.md) instead of printing it. Default: print",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when the table was printed or written, 2 when it could not be."""
    args = _parser().parse_args(argv)
    try:
        session = SessionRecord.read(args.results)
        table = render_table(session, source=str(args.results))
        if args.update is None:
            print(table)
            return 0
        _update(args.update, table)
    except (CertloadError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = len(capacity_rows(session))
    print(f"updated {args.update}: {rows} row(s) from {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
