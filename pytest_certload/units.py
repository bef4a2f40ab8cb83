"""Time units: the nanosecond constants and the one duration parser.

Every duration inside pytest-certload is integer nanoseconds. Users write strings
(``"30s"``, ``"1.5m"``, ``"250ms"``); :func:`parse_duration_ns` reads them, and
:func:`as_ns` is the same parser for values that may already be nanoseconds (a bare
``int`` inside the engine, as executors and scenarios accept).
"""

from __future__ import annotations

import re
from typing import TypeAlias

from .errors import ConfigError

__all__ = [
    "DURATION_GRAMMAR",
    "MIN_BARE_NS",
    "NS_PER_MS",
    "NS_PER_S",
    "NS_PER_UNIT",
    "DurationLike",
    "as_ns",
    "exact_ns",
    "format_ms",
    "format_offset",
    "parse_duration_ns",
]

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
#: a duration as the engine accepts it: a string with a unit, or integer nanoseconds
DurationLike: TypeAlias = str | int

NS_PER_UNIT: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
DURATION_GRAMMAR = "a number with ns, us, ms, s, m or h, e.g. '30s', '1.5m' or '250ms'"
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ns|us|µs|ms|s|m|h)\s*$")


def parse_duration_ns(
    value: str | int | float,
    *,
    what: str = "duration",
    source: str = "",
    default_unit: str | None = None,
    allow_zero: bool = True,
) -> int:
    """Return ``value`` as integer nanoseconds.

    Strings need a unit unless ``default_unit`` is given; bare numbers use
    ``default_unit`` (and are an error without one). ``what`` and ``source`` name
    the setting and where it came from, for the error message.
    """
    where = f" (from {source})" if source else ""
    if isinstance(value, bool):
        raise ConfigError(f"{value!r} is not a valid {what}{where}; use {DURATION_GRAMMAR}.")
    if isinstance(value, int | float):
        if default_unit is None:
            raise ConfigError(
                f"{value!r} is not a valid {what}{where}: a bare number has no unit; "
                f"use {DURATION_GRAMMAR}."
            )
        ns = round(value * NS_PER_UNIT[default_unit])
    else:
        text = str(value)
        match = _DURATION_RE.match(text)
        if match is None and default_unit is not None:
            match = re.match(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*$", text)
            unit = default_unit
        else:
            unit = match.group(2) if match else ""
        if match is None:
            raise ConfigError(f"{text!r} is not a valid {what}{where}; use {DURATION_GRAMMAR}.")
        ns = round(float(match.group(1)) * NS_PER_UNIT[unit])
    if ns < 0 or (ns == 0 and not allow_zero):
        raise ConfigError(f"{value!r} is not a valid {what}{where}; it must be greater than 0.")
    return ns


#: a bare ``int`` below this many nanoseconds (1 ms) is refused by :func:`as_ns`: no
#: duration, offset or timeout of a load test is that short, so it is a number of seconds
#: written without its unit (``duration=30`` for ``"30s"``)
MIN_BARE_NS = NS_PER_MS


def as_ns(value: DurationLike, what: str, *, allow_zero: bool = False) -> int:
    """``value`` as integer nanoseconds: a bare ``int`` is already nanoseconds (the
    engine's own unit), a string is parsed by :func:`parse_duration_ns`.

    A bare ``int`` from 1 to 999,999 (under 1 ms) is refused: ``duration=30`` would
    otherwise mean 30 ns where ``"30s"`` was meant.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0 or (value == 0 and not allow_zero):
            raise ConfigError(f"{value!r} is not a valid {what}; it must be greater than 0.")
        if 0 < value < MIN_BARE_NS:
            raise ConfigError(
                f"{value!r} is not a valid {what}: a bare int is nanoseconds, so {value} means "
                f"{value} ns; write '{value}s' (or {DURATION_GRAMMAR}), or integer "
                f"nanoseconds of at least {MIN_BARE_NS:_} (1 ms)."
            )
        return value
    return parse_duration_ns(value, what=what, allow_zero=allow_zero)


def exact_ns(ns: int) -> DurationLike:
    """Integer nanoseconds the code computed (not a user's number), as a duration that
    :func:`as_ns` takes at any size: an ``int`` from 1 ms up, a ``"<n>ns"`` string below."""
    return f"{ns}ns" if 0 < ns < MIN_BARE_NS else ns


def format_ms(ns: float | None) -> str:
    """A duration for people, three significant digits: ``2.12 ms``, ``843 ms``,
    ``1.25 s``; ``—`` for None."""
    if ns is None:
        return "—"
    ms = ns / NS_PER_MS
    if ms >= 1000:
        return f"{ms / 1000:.3g} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    return f"{ms:.3g} ms"


def format_offset(ns: int) -> str:
    """A window's length or an offset into a run as a person writes it: ``10s``,
    ``1.5s``, ``250ms``, ``2m``."""
    if ns and ns % (60 * NS_PER_S) == 0:
        return f"{ns // (60 * NS_PER_S)}m"
    if ns and ns < NS_PER_S:
        return f"{ns // 1_000_000}ms" if ns % 1_000_000 == 0 else f"{ns / 1e6:.3g}ms"
    return f"{ns / NS_PER_S:.6g}s"
