"""Shared fixtures of the pytest-benchmark micro-benchmarks (see bench/README.md).

Run from the repository root::

    .venv/bin/pytest bench/microbench -p no:cacheprovider

They report figures and pass or fail only on errors, never on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def run_in_loop() -> Iterator[Callable[..., Any]]:
    """Run a coroutine function to completion on one event loop kept for the benchmark.

    Each call costs one ``run_until_complete`` (a few µs) on top of the coroutine.
    """
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()

    def run(fn: Callable[..., Any], *args: Any) -> Any:
        return loop.run_until_complete(fn(*args))

    try:
        yield run
    finally:
        loop.close()
