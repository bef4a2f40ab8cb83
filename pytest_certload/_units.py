"""Parsing of durations and rates as users write them (``"30s"``, ``"1.5m"``, ``"250ms"``)."""

from __future__ import annotations

import re

from .errors import ConfigError

__all__ = ["DURATION_GRAMMAR", "format_duration", "parse_duration_ns", "to_ms"]

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


def to_ms(ns: float) -> float:
    """Nanoseconds to milliseconds as a float."""
    return ns / 1_000_000


def format_duration(ns: int) -> str:
    """A short human form: ``'5m'``, ``'30s'``, ``'1.5s'``, ``'250ms'``."""
    if ns % 60_000_000_000 == 0 and ns >= 60_000_000_000:
        return f"{ns // 60_000_000_000}m"
    if ns >= 1_000_000_000:
        return f"{ns / 1_000_000_000:g}s"
    if ns >= 1_000_000:
        return f"{ns / 1_000_000:g}ms"
    return f"{ns / 1_000:g}us"
