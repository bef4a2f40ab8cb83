"""The baseline command line (``python -m pytest_certload.baseline``): save, compare
and tabulate baselines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import BaselineError
from ..record import DEFAULT_OUTPUT_DIR
from .build import baseline_from_results
from .compare import Rule, compare
from .model import DEFAULT_DIR, load, resolve_path, save
from .render import comparison_lines, markdown_table

__all__ = ["main"]


def _fraction(raw: str) -> float:
    text = raw.strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a valid fraction; use e.g. '10%' or '0.1'."
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is negative; use e.g. '10%'.")
    return value


def _confidence(raw: str) -> float:
    value = _fraction(raw)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not in (0, 1); use e.g. '95%' or '0.95'.")
    return value


def _ms(raw: str) -> int:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a number of milliseconds; use e.g. '1' or '0.5'."
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is negative; use e.g. '1'.")
    return round(value * 1e6)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_certload.baseline",
        description="Save, compare and tabulate pytest-certload latency baselines.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help=f"directory of saved baselines. Default: {DEFAULT_DIR}",
    )
    results = argparse.ArgumentParser(add_help=False)
    results.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        help=f"--certload-output-dir of the session to read. Default: {DEFAULT_OUTPUT_DIR}",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_save = sub.add_parser(
        "save", parents=[common, results], help="save the last session as baseline NAME"
    )
    p_save.add_argument("name", metavar="NAME")
    p_save.add_argument("--force", action="store_true", help="overwrite an existing baseline")
    p_cmp = sub.add_parser(
        "compare",
        parents=[common, results],
        help="compare the last session with baseline NAME; exit 1 on a regression",
    )
    p_cmp.add_argument("name", metavar="NAME")
    p_cmp.add_argument(
        "--min-relative",
        type=_fraction,
        default=Rule.min_relative,
        metavar="FRACTION",
        help="smallest relative increase that counts, e.g. '10%%'. Default: 10%%",
    )
    p_cmp.add_argument(
        "--min-ms",
        type=_ms,
        default=Rule.min_absolute_ns,
        metavar="MS",
        help="smallest absolute increase that counts, in ms. Default: 1",
    )
    p_cmp.add_argument(
        "--confidence",
        type=_confidence,
        default=Rule.confidence,
        metavar="LEVEL",
        help="confidence of each quantile's interval, e.g. '95%%'. Default: 95%%",
    )
    p_cmp.add_argument("--markdown", action="store_true", help="print a markdown list")
    p_tab = sub.add_parser(
        "table",
        parents=[common],
        help="render the measured-baseline table of saved baselines (or of --results)",
    )
    p_tab.add_argument("names", metavar="NAME", nargs="*", help="default: every saved baseline")
    p_tab.add_argument(
        "--results", type=Path, default=None, help="tabulate this results directory instead"
    )
    p_tab.add_argument("--markdown", action="store_true", help="markdown (default: plain text)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "save":
            path = resolve_path(args.name, args.dir)
            if path.exists() and not args.force:
                raise BaselineError(f"{path} exists; pass --force to replace it.")
            baseline = baseline_from_results(args.results, name=path.stem)
            save(baseline, path)
            scenarios = ", ".join(baseline.scenarios)
            print(f"saved baseline {path.stem!r} ({scenarios}) to {path}")
            if baseline.capacity:
                found = ", ".join(f"{c.scenario} ({c.test})" for c in baseline.capacity)
                print(f"with the capacity of {found}")
            return 0
        if args.command == "compare":
            rule = Rule(
                min_relative=args.min_relative,
                min_absolute_ns=args.min_ms,
                confidence=args.confidence,
            )
            result = compare(
                load(resolve_path(args.name, args.dir)),
                baseline_from_results(args.results),
                rule,
            )
            for line in comparison_lines(result):
                print(f"- {line.text}" if args.markdown else line.text)
            return 0 if result.ok else 1
        if args.results is not None:
            chosen = [baseline_from_results(args.results)]
        else:
            names = args.names or sorted(p.stem for p in args.dir.glob("*.json"))
            if not names:
                raise BaselineError(
                    f"no saved baseline in {args.dir}; save one with "
                    "'python -m pytest_certload.baseline save NAME' or give --results DIR."
                )
            chosen = [load(resolve_path(n, args.dir)) for n in names]
        print(markdown_table(chosen, markdown=args.markdown))
        return 0
    except BaselineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
