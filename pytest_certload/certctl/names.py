"""Names no other run has used: certificate names for the REST API, DNS names for ACME.

certctl's certificate ``name`` is globally UNIQUE and a duplicate is a 500 (not a 409),
and an ACME order for names another run already holds is a different workload: a run
against a database that outlives it must never repeat one. Imports no pytest.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..units import NS_PER_S

__all__ = ["UniqueNames"]

#: run ids made by this process so far: two runs started in the same second differ
_runs = itertools.count()


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _run_id() -> str:
    """The start second in base 36, four random hex digits and this process's count."""
    return _base36(time.time_ns() // NS_PER_S) + secrets.token_hex(2) + _base36(next(_runs))


def _check_label(part: str, what: str, example: str) -> None:
    if not part or not all(c.isascii() and (c.isalnum() or c == "-") for c in part):
        raise ConfigError(
            f"{part!r} is not a valid {what}; use letters, digits and '-', e.g. {example!r}."
        )
    if part.startswith("-") or part.endswith("-"):
        raise ConfigError(f"{part!r} must not start or end with '-' ({what}).")


@dataclass
class UniqueNames:
    """Names no other run has used: ``<prefix>-<run>-<n>``, or with ``domain`` the DNS
    name ``<prefix>-<run>-<n>.<domain>``.

    ``run`` defaults to the start time in base 36, four random hex digits and a count
    of the run ids this process made, so two instances never overlap. The names are
    valid hostname labels: ``<name>.example.test`` is a valid common name
    (:func:`~.payloads.certificate_payload`), and ``UniqueNames("e",
    domain="acme.certload.example.com")`` gives the identifiers of ACME orders.
    """

    prefix: str = "loadtest-issuance"
    run: str = field(default_factory=_run_id)
    domain: str | None = None
    _counter: Iterator[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._counter = itertools.count(1)
        _check_label(self.prefix, "certificate name prefix", "loadtest-issuance")
        _check_label(self.run, "certificate name run id", "loadtest-issuance")
        if self.domain is not None:
            for label in self.domain.split("."):
                _check_label(
                    label, f"label of the DNS domain {self.domain!r}", "acme.certload.example.com"
                )

    def next(self) -> str:
        name = f"{self.prefix}-{self.run}-{next(self._counter)}"
        return name if self.domain is None else f"{name}.{self.domain}"
