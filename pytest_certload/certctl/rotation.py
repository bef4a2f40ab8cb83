"""Handing seeded rows out to iterations: :class:`Rotation` and :func:`batches`.

Imports no pytest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from ..errors import ConfigError

__all__ = ["Rotation", "batches"]

T = TypeVar("T")


class Rotation(Generic[T]):
    """Hands out ``items`` in order and starts over after the last one.

    ``laps`` counts completed passes, so a caller can tell a fresh item from a reused
    one (``rotation.laps == 0``). Safe for the engine's one-thread event loop.
    """

    def __init__(self, items: Sequence[T], *, what: str = "items") -> None:
        if not items:
            raise ConfigError(f"nothing to rotate over: no {what} were found.")
        self._items = tuple(items)
        self._next = 0
        self.laps = 0

    def __len__(self) -> int:
        return len(self._items)

    def next(self) -> T:
        item = self._items[self._next]
        self._next += 1
        if self._next == len(self._items):
            self._next = 0
            self.laps += 1
        return item


def batches(items: Sequence[str], size: int) -> list[tuple[str, ...]]:
    """``items`` cut into consecutive tuples of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ConfigError(f"{size!r} is not a valid batch size; use 1 or more.")
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]
