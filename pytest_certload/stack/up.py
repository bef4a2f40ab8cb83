"""``python -m pytest_certload.stack up``: the stack by hand, until Ctrl-C or SIGTERM.

Boots the embedded stack (PostgreSQL, the certctl reference double or your certctl
binary, the connector targets) or the containers one, prints where everything is, and
writes it as JSON for scripts::

    {"certctl_url": "https://127.0.0.1:41235", "ca": "/tmp/.../ca.pem",
     "token_file": "certload-stack/token", "dsn": "postgresql://certctl:...@.../certctl",
     "targets": {"nginx": "https://127.0.0.1:40111", ...}, "f5_http_url": ..., "pid": 1234}

The API token is written to a file of mode 0600 (never to the terminal), the JSON file
too (it holds the DSN with its password); the terminal shows the DSN with its password
masked. Ending the command (Ctrl-C, SIGTERM, SIGHUP) tears everything down and removes
the token and JSON files: there is no ``down``.

Imports no pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from anyio.from_thread import start_blocking_portal

from ..errors import CertloadError, ImagesSyntaxError
from ..redaction import redact_dsn
from .images import IMAGES_GRAMMAR, parse_images
from .info import TARGET_TYPES, StackInfo
from .processes import install_cleanup_hooks
from .protocols import StackProvider

__all__ = ["main"]

_PROG = "python -m pytest_certload.stack"


def _targets(raw: str) -> tuple[str, ...]:
    if raw.strip().lower() in ("", "none"):
        return ()
    names = tuple(t.strip() for t in raw.split(",") if t.strip())
    unknown = [t for t in names if t not in TARGET_TYPES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown target(s) {', '.join(map(repr, unknown))}; give a comma-separated "
            f"subset of {','.join(TARGET_TYPES)}, or 'none'"
        )
    return names


def _images(raw: str) -> dict[str, str]:
    try:
        return parse_images(raw)
    except ImagesSyntaxError as exc:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a valid image list ({exc.problem}); use {IMAGES_GRAMMAR}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_PROG, description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up",
        help="boot the stack, print where it is, keep it up until Ctrl-C or SIGTERM",
        description="Boot the stack and keep it up until Ctrl-C or SIGTERM, then tear it down.",
    )
    up.add_argument(
        "--provider",
        choices=("local", "containers"),
        default="local",
        help="native processes (default) or containers through a Docker-compatible engine",
    )
    up.add_argument(
        "--certctl",
        choices=("double", "binary"),
        default="double",
        help="the certctl reference double (default), or your certctl build (--certctl-bin)",
    )
    up.add_argument(
        "--images",
        type=_images,
        metavar="ROLE=IMAGE,...",
        help="the containers provider's images by role (postgres, certctl, nginx, apache, "
        "haproxy, f5), e.g. what scripts/container-images.sh prints (default: "
        "$CERTLOAD_IMAGES, else the public images)",
    )
    up.add_argument("--certctl-bin", type=Path, help="certctl's server binary (--certctl binary)")
    up.add_argument(
        "--certctl-migrations", type=Path, help="certctl's migrations/ directory (with the binary)"
    )
    up.add_argument(
        "--targets",
        type=_targets,
        default=TARGET_TYPES,
        metavar="LIST",
        help=f"connector targets to boot, comma-separated, or 'none' (default: "
        f"{','.join(TARGET_TYPES)})",
    )
    up.add_argument(
        "--dir",
        type=Path,
        default=Path("certload-stack"),
        help="where the token file and stack.json are written, mode 0600, removed at the end "
        "(default: ./certload-stack)",
    )
    up.add_argument(
        "--json", type=Path, help="write the stack's description here instead of DIR/stack.json"
    )
    return parser


def _private_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    path.chmod(0o600)


def describe(info: StackInfo, token_file: Path) -> dict[str, Any]:
    """The JSON description of a running stack (holds the DSN with its password)."""
    return {
        "certctl_url": info.certctl_url,
        "ca": str(info.ca) if info.ca is not None else None,
        "token_file": str(token_file),
        "dsn": info.dsn,
        "targets": dict(info.targets),
        "f5_http_url": info.f5_http_url,
        "provider": info.provider,
        "pid": os.getpid(),
    }


def _provider(args: argparse.Namespace) -> StackProvider:
    images = args.images
    if images is None and os.environ.get("CERTLOAD_IMAGES"):
        try:
            images = parse_images(os.environ["CERTLOAD_IMAGES"])
        except ImagesSyntaxError as exc:
            raise CertloadError(
                f"{os.environ['CERTLOAD_IMAGES']!r}, the value of the environment variable "
                f"CERTLOAD_IMAGES, is not a valid image list ({exc.problem}); use "
                f"{IMAGES_GRAMMAR}."
            ) from None
    if args.provider == "containers":
        from .containers import ContainerStack

        return ContainerStack(targets=args.targets, images=images)
    if args.images is not None:
        raise CertloadError(
            "--images picks the containers provider's images; add --provider containers, "
            "or leave --images out for the local stack."
        )
    from .local import LocalStack

    if args.certctl == "binary" and (args.certctl_bin is None or args.certctl_migrations is None):
        raise CertloadError(
            "--certctl binary needs --certctl-bin PATH (certctl's server binary) and "
            "--certctl-migrations DIR (the migrations/ folder of the same checkout)."
        )
    return LocalStack(
        certctl=args.certctl,
        certctl_binary=args.certctl_bin,
        certctl_migrations=args.certctl_migrations,
        targets=args.targets,
    )


def _stop_on(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def up(args: argparse.Namespace, out: Any = sys.stdout) -> int:
    """Boot, describe, wait for a signal, tear down. Returns the exit status."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on)  # unwinds like Ctrl-C: every finally runs
    install_cleanup_hooks()
    provider = _provider(args)
    token_file = args.dir / "token"
    json_file = args.json or args.dir / "stack.json"
    written: list[Path] = []
    try:
        with start_blocking_portal(backend="asyncio") as portal:
            try:
                print(f"booting the {args.provider} stack ...", file=out, flush=True)
                info = portal.call(provider.start)
                _private_file(token_file, info.token + "\n")
                written.append(token_file)
                _private_file(json_file, json.dumps(describe(info, token_file), indent=2) + "\n")
                written.append(json_file)
                lines = [
                    f"certctl   {info.certctl_url}",
                    f"CA        {info.ca}",
                    f"token     in {token_file} (mode 0600)",
                    f"database  {redact_dsn(info.dsn) if info.dsn else '(none)'}",
                    *(f"{kind:<9} {url}" for kind, url in info.targets.items()),
                    f"described in {json_file} (mode 0600: it holds the DSN's password)",
                    "up; Ctrl-C or SIGTERM tears it down",
                ]
                print("\n".join(lines), file=out, flush=True)
                threading.Event().wait()  # until a signal unwinds this
            finally:
                portal.call(provider.stop)
    except KeyboardInterrupt:
        print("stopped; the stack is torn down", file=out, flush=True)
    finally:
        for path in written:
            path.unlink(missing_ok=True)
        if args.json is None and args.dir.is_dir() and not any(args.dir.iterdir()):
            args.dir.rmdir()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return up(args)
    except CertloadError as exc:
        print(f"{_PROG} {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
