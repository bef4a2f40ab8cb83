"""Cold boot of the full stack: per-service and total seconds.

    python bench/coldboot.py [--runs 3] [--certctl double|none] [--targets nginx,apache,...]
    python bench/coldboot.py --provider containers --images ROLE=IMAGE,... [--runs 3]

Each run boots a fresh :class:`~pytest_certload.stack.local.LocalStack` (new TLS
material, initdb, certctl, nginx, apache, haproxy, f5 mock), records each service's
start-to-ready time, tears it down and records the teardown time. ``--certctl double``
(the default) uses the reference double when it is importable and falls back to
``none`` (everything but certctl) otherwise. ``--provider containers`` boots a
:class:`~pytest_certload.stack.containers.ContainerStack` instead (the engine at
``DOCKER_HOST``; ``--images`` as ``--certload-images``, e.g. what
``scripts/container-images.sh`` prints), whose containers start one after the other.
The last line is always

    coldboot_s=<median total> teardown_s=<median teardown> runs=<n> certctl=<mode>

Prints figures only; never passes or fails on them.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from pytest_certload.errors import ImagesSyntaxError  # noqa: E402
from pytest_certload.stack import TARGET_TYPES  # noqa: E402
from pytest_certload.stack.images import IMAGES_GRAMMAR, parse_images  # noqa: E402
from pytest_certload.stack.local import LocalStack  # noqa: E402


def _runs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} runs: use 1 or more")
    return value


def _targets(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = sorted(set(names) - set(TARGET_TYPES))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown target(s) {', '.join(unknown)}; use a comma list of {', '.join(TARGET_TYPES)}"
        )
    return names


def _images(text: str) -> dict[str, str]:
    try:
        return parse_images(text)
    except ImagesSyntaxError as exc:
        raise argparse.ArgumentTypeError(f"{exc.problem}; use {IMAGES_GRAMMAR}") from None


async def _containers(
    images: dict[str, str] | None, targets: list[str]
) -> tuple[dict[str, float], float]:
    from pytest_certload.stack.containers import ContainerStack

    stack = ContainerStack(images=images, targets=targets)
    await stack.start()
    seconds = dict(stack.boot_seconds)
    started = time.perf_counter()
    await stack.stop()
    return seconds, time.perf_counter() - started


async def _one(certctl: str, targets: list[str]) -> tuple[dict[str, float], float]:
    stack = LocalStack(certctl=certctl, targets=targets)  # type: ignore[arg-type]
    await stack.start()
    seconds = dict(stack.boot_seconds)
    if stack.postgres is not None:
        for phase, value in stack.postgres.phase_seconds.items():
            seconds[f"pg_{phase}"] = value
    started = time.perf_counter()
    await stack.stop()
    return seconds, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=_runs, default=3, help="cold boots to time (3)")
    parser.add_argument(
        "--certctl",
        choices=("double", "none"),
        default="double",
        help="certctl to boot: the reference double or none (double)",
    )
    parser.add_argument(
        "--targets",
        type=_targets,
        default=list(TARGET_TYPES),
        help="comma list of sidecars (nginx,apache,haproxy,f5)",
    )
    parser.add_argument(
        "--provider",
        choices=("local", "containers"),
        default="local",
        help="child processes (local) or containers on the engine at DOCKER_HOST (local)",
    )
    parser.add_argument(
        "--images",
        type=_images,
        help="the containers' images, as --certload-images (default: the public ones)",
    )
    args = parser.parse_args(argv)
    certctl = args.certctl
    if args.provider == "containers":
        certctl = "image"
    elif certctl == "double" and importlib.util.find_spec("pytest_certload.double") is None:
        print("the reference double is not importable; booting without certctl", flush=True)
        certctl = "none"

    totals: list[float] = []
    teardowns: list[float] = []
    per_service: dict[str, list[float]] = {}
    for run in range(1, args.runs + 1):
        if args.provider == "containers":
            seconds, teardown = anyio.run(_containers, args.images, args.targets)
        else:
            seconds, teardown = anyio.run(_one, certctl, args.targets)
        totals.append(seconds["total"])
        teardowns.append(teardown)
        for name, value in seconds.items():
            per_service.setdefault(name, []).append(value)
        parts = " ".join(f"{k}={v:.3f}" for k, v in seconds.items() if k != "total")
        print(f"run {run}: total={seconds['total']:.3f}s {parts} teardown={teardown:.3f}s")
    order = "one after the other" if args.provider == "containers" else "in parallel"
    print(f"median seconds per service (start to ready; services boot {order}):")
    for name, values in per_service.items():
        if name != "total":
            print(f"  {name:<14} {statistics.median(values):.3f}")
    print(
        f"coldboot_s={statistics.median(totals):.3f} teardown_s={statistics.median(teardowns):.3f}"
        f" runs={args.runs} certctl={certctl}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
