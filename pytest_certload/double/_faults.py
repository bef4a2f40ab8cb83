"""Fault injection for the harness's own tests: latency, errors, stalls, drops.

A fault spec is JSON::

    {"rules": [{"method": "POST", "path": "/api/v1/certificates",
                "latency": {"dist": "uniform", "min_ms": 5, "max_ms": 20},
                "error_rate": 0.1, "error_status": 503, "drop_rate": 0.0}],
     "stall_s": 2.5}

``method`` is an HTTP method or ``*``. ``path`` is a prefix, or a glob
(``fnmatch``) when it contains ``*``, ``?`` or ``[``. The first matching rule
applies. ``latency`` is ``{"dist": "fixed", "ms": 50}`` (or a bare number of
ms), ``{"dist": "uniform", "min_ms": a, "max_ms": b}`` or ``{"dist":
"exponential", "mean_ms": m}`` (optionally capped by ``max_ms``). ``stall_s``
holds every response, including those already in flight, until that many
seconds after the spec was applied.

An injected error is certctl's handler error by default (``"error_shape":
"certctl"``: JSON ``{"error", "message", "request_id"}``, message ``injected fault``);
``"error_shape": "acme"`` answers as certctl's ACME handlers do, an RFC 7807 problem
document (``serverInternal`` for a 5xx, ``malformed`` for a 4xx) whose detail is
certctl's ``ACME server error``. ``error_detail`` replaces the message or detail, e.g.
to show what a certctl build's answer revealed of its cause.
"""

from __future__ import annotations

import fnmatch
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["ERROR_SHAPES", "FaultRule", "FaultState", "Latency", "parse_faults"]

_GLOB_CHARS = frozenset("*?[")
_ERROR_STATUSES = range(400, 600)
#: how an injected error is answered: certctl's handler error, or its ACME problem
ERROR_SHAPES = ("certctl", "acme")


@dataclass(frozen=True)
class Latency:
    """An added-latency distribution, in milliseconds."""

    dist: str
    a_ms: float
    b_ms: float = 0.0

    def sample_s(self, rng: random.Random) -> float:
        if self.dist == "fixed":
            ms = self.a_ms
        elif self.dist == "uniform":
            ms = rng.uniform(self.a_ms, self.b_ms)
        else:
            ms = rng.expovariate(1.0 / self.a_ms) if self.a_ms > 0 else 0.0
            if self.b_ms > 0:
                ms = min(ms, self.b_ms)
        return ms / 1000.0

    def to_json(self) -> dict[str, Any]:
        if self.dist == "fixed":
            return {"dist": "fixed", "ms": self.a_ms}
        if self.dist == "uniform":
            return {"dist": "uniform", "min_ms": self.a_ms, "max_ms": self.b_ms}
        out: dict[str, Any] = {"dist": "exponential", "mean_ms": self.a_ms}
        if self.b_ms > 0:
            out["max_ms"] = self.b_ms
        return out


@dataclass(frozen=True)
class FaultRule:
    """One rule: which requests it matches and what it does to them."""

    method: str
    path: str
    latency: Latency | None = None
    error_rate: float = 0.0
    error_status: int = 500
    drop_rate: float = 0.0
    error_shape: str = "certctl"
    #: the injected error's message (certctl shape) or detail (acme); "" for the default
    error_detail: str = ""

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method != method:
            return False
        if _GLOB_CHARS.intersection(self.path):
            return fnmatch.fnmatchcase(path, self.path)
        return path.startswith(self.path)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.latency is not None:
            out["latency"] = self.latency.to_json()
        out.update(
            error_rate=self.error_rate, error_status=self.error_status, drop_rate=self.drop_rate
        )
        out["error_shape"] = self.error_shape
        if self.error_detail:
            out["error_detail"] = self.error_detail
        return out


def _number(value: Any, what: str, *, low: float = 0.0, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"fault {what}={value!r} is not a number.")
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ConfigError(f"fault {what}={value!r} is out of range; it must be {bound}.")
    return float(value)


def _latency(value: Any) -> Latency:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Latency("fixed", _number(value, "latency"))
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"fault latency={value!r} is invalid; use a number of ms or an object with "
            f"dist fixed/uniform/exponential."
        )
    dist = value.get("dist", "fixed")
    if dist == "fixed":
        return Latency("fixed", _number(value.get("ms"), "latency.ms"))
    if dist == "uniform":
        low = _number(value.get("min_ms"), "latency.min_ms")
        high = _number(value.get("max_ms"), "latency.max_ms", low=low)
        return Latency("uniform", low, high)
    if dist == "exponential":
        mean = _number(value.get("mean_ms"), "latency.mean_ms")
        cap = _number(value.get("max_ms", 0), "latency.max_ms")
        return Latency("exponential", mean, cap)
    raise ConfigError(
        f"fault latency dist={dist!r} is unknown; use 'fixed', 'uniform' or 'exponential'."
    )


def _rule(raw: Any, index: int) -> FaultRule:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"fault rule #{index} is not an object.")
    unknown = set(raw) - {
        "method",
        "path",
        "latency",
        "error_rate",
        "error_status",
        "drop_rate",
        "error_shape",
        "error_detail",
    }
    if unknown:
        raise ConfigError(f"fault rule #{index} has unknown keys {sorted(unknown)}.")
    method = raw.get("method", "*")
    path = raw.get("path", "/")
    if not isinstance(method, str) or not isinstance(path, str) or not path.startswith("/"):
        raise ConfigError(
            f"fault rule #{index}: method must be a string and path must start with '/'."
        )
    status = raw.get("error_status", 500)
    if isinstance(status, bool) or not isinstance(status, int) or status not in _ERROR_STATUSES:
        raise ConfigError(f"fault rule #{index}: error_status={status!r} must be 400-599.")
    shape = raw.get("error_shape", "certctl")
    if shape not in ERROR_SHAPES:
        raise ConfigError(
            f"fault rule #{index}: error_shape={shape!r} is unknown; use "
            f"{' or '.join(repr(s) for s in ERROR_SHAPES)}."
        )
    detail = raw.get("error_detail", "")
    if not isinstance(detail, str) or len(detail) > 1000:
        raise ConfigError(
            f"fault rule #{index}: error_detail must be a string of at most 1000 characters."
        )
    return FaultRule(
        method=method.upper() if method != "*" else "*",
        path=path,
        latency=_latency(raw["latency"]) if raw.get("latency") is not None else None,
        error_rate=_number(raw.get("error_rate", 0.0), "error_rate", high=1.0),
        error_status=status,
        drop_rate=_number(raw.get("drop_rate", 0.0), "drop_rate", high=1.0),
        error_shape=shape,
        error_detail=detail,
    )


def parse_faults(spec: Mapping[str, Any]) -> tuple[tuple[FaultRule, ...], float]:
    """Validate a spec; return its rules and its stall in seconds."""
    unknown = set(spec) - {"rules", "stall_s"}
    if unknown:
        raise ConfigError(f"fault spec has unknown keys {sorted(unknown)}; use rules, stall_s.")
    rules_raw = spec.get("rules", [])
    if not isinstance(rules_raw, list):
        raise ConfigError("fault spec 'rules' must be a list.")
    rules = tuple(_rule(raw, i) for i, raw in enumerate(rules_raw))
    stall = _number(spec.get("stall_s", 0), "stall_s", high=3600)
    return rules, stall


class FaultState:
    """The faults in force in this worker process."""

    def __init__(self, *, seed: int | None = None) -> None:
        self.rules: tuple[FaultRule, ...] = ()
        self.stall_until = 0.0
        self.rng = random.Random(seed)

    def apply(self, spec: Mapping[str, Any]) -> None:
        """Replace the rules; a stall counts from now."""
        rules, stall = parse_faults(spec)
        self.rules = rules
        self.stall_until = time.monotonic() + stall if stall > 0 else 0.0

    def clear(self) -> None:
        self.rules = ()
        self.stall_until = 0.0

    def match(self, method: str, path: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.matches(method, path):
                return rule
        return None

    def stall_remaining_s(self) -> float:
        return max(0.0, self.stall_until - time.monotonic())

    def describe(self) -> dict[str, Any]:
        return {
            "rules": [rule.to_json() for rule in self.rules],
            "stall_remaining_s": round(self.stall_remaining_s(), 3),
        }
