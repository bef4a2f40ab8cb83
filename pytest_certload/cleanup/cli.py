"""The cleanup command line (``python -m pytest_certload.cleanup``).

::

    export CERTLOAD_CERTCTL_DSN='postgresql://certctl:...@127.0.0.1:5432/certctl'
    python -m pytest_certload.cleanup --dry-run   # what would go, with counts; changes nothing
    python -m pytest_certload.cleanup --yes       # remove it, in one transaction

The DSN comes from ``--certctl-dsn`` or, better (a command line is visible to every
local user), the environment variable ``CERTLOAD_CERTCTL_DSN``: the same spellings as
the pytest option. One of ``--dry-run`` and ``--yes`` is required. Exit status 0 when it
removed (or would remove) the rows, 1 when it removed nothing (no connection, not
certctl's database, a row still referenced), 2 for a usage error. No output shows the
DSN's password.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from ..errors import CleanupError
from .run import CONNECT_TIMEOUT_S, LOCK_TIMEOUT_S, CleanupReport, cleanup

__all__ = ["ENV_DSN", "main", "render"]

#: where the DSN is read from when --certctl-dsn is not given (the pytest option's env)
ENV_DSN = "CERTLOAD_CERTCTL_DSN"


def _seconds(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of seconds, 1 or more.")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_certload.cleanup",
        description=(
            "Remove the rows pytest-certload wrote into certctl's database (certificates "
            "and agents named loadtest-*, their jobs, ACME orders and accounts for names "
            "under certload.example.com, the seed ledger), in one transaction; say what "
            "cannot be removed (certctl's audit table is append-only). See "
            "docs/external-deployment.md."
        ),
    )
    parser.add_argument(
        "--certctl-dsn",
        metavar="DSN",
        help=(
            "PostgreSQL DSN of certctl's database; prefer the environment variable "
            f"{ENV_DSN}: a command line is visible to every local user"
        ),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would be removed, with counts, and change nothing",
    )
    mode.add_argument("--yes", action="store_true", help="remove the rows (no question asked)")
    parser.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=CONNECT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up connecting after this long (default {CONNECT_TIMEOUT_S})",
    )
    parser.add_argument(
        "--lock-timeout",
        type=_seconds,
        default=LOCK_TIMEOUT_S,
        metavar="SECONDS",
        help=(
            "give up when a row to remove stays locked this long by another client, e.g. "
            f"certctl serving a load (default {LOCK_TIMEOUT_S})"
        ),
    )
    return parser


def render(report: CleanupReport) -> list[str]:
    """The lines the command prints for ``report``."""
    head = "dry run: nothing is changed" if report.dry_run else "in one transaction"
    lines = [f"pytest-certload cleanup of {report.database} ({head})"]
    lines.append("would remove, in this order:" if report.dry_run else "removed, in this order:")
    width = max([len(r.table) for r in report.removed] + [len(x.table) for x in report.left] + [20])
    for r in report.removed:
        lines.append(f"  {r.rows:>9,}  {r.table:<{width}}  {r.what}")
    lines.append(f"  {report.rows:>9,}  rows in all")
    if report.linked:
        lines.append("with them, rows of other tables that point at them:")
        for link in report.linked:
            lines.append(
                f"  {link.rows:>9,}  {link.table:<{width}}  {link.action} "
                f"({link.table}.{link.column} -> {link.parent})"
            )
    if report.missing:
        lines.append(f"not in this database (another certctl version): {', '.join(report.missing)}")
    if report.left:
        lines.append("cannot remove:")
        for left in report.left:
            lines.append(f"  {left.rows:>9,}  {left.table:<{width}}  {left.why}")
    if report.dry_run:
        lines.append("Nothing was changed. Run again with --yes to remove these rows.")
    else:
        lines.append(f"Removed {report.rows:,} rows.")
    return lines


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    dsn = args.certctl_dsn if args.certctl_dsn is not None else environ.get(ENV_DSN, "")
    if not dsn.strip():
        parser.error(
            f"no database given: set the environment variable {ENV_DSN} to the DSN of "
            "certctl's database (or give --certctl-dsn DSN)"
        )
    if not (args.dry_run or args.yes):
        parser.error(
            "give --dry-run to see what would be removed (nothing is changed), or --yes to "
            "remove it"
        )
    try:
        report = cleanup(
            dsn,
            dry_run=args.dry_run,
            connect_timeout_s=args.connect_timeout,
            lock_timeout_s=args.lock_timeout,
        )
    except CleanupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(render(report)))
    return 0
