"""Names no other run has used: certificate names for the REST API, DNS names for ACME.

certctl's certificate ``name`` is globally UNIQUE and a duplicate is a 500 (not a 409),
and an ACME order for names another run already holds is a different workload: a run
against a database that outlives it must never repeat one, and neither may two processes
sending one run's load (``--certload-tx`` workers). So a :class:`UniqueNames` lives in
the process that uses it (:meth:`UniqueNames.for_process`) and is never pickled: a copy
would repeat its counter. Imports no pytest.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..units import NS_PER_S

__all__ = ["HARNESS_DOMAIN", "HARNESS_NAME_PREFIX", "UniqueNames"]

#: every name the harness gives a certctl row starts with this (seeded certificates and
#: agents, certificates the API tier creates); ``python -m pytest_certload.cleanup``
#: removes the rows by it
HARNESS_NAME_PREFIX = "loadtest-"
#: the DNS domain under which the harness's ACME orders and certificates are named
#: (``<name>.acme.certload.example.com``); cleanup removes those too
HARNESS_DOMAIN = "certload.example.com"

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
    """The start second and this process's id in base 36, four random hex digits and
    this process's count: two processes of one host never share a run id, two hosts
    only with the same pid, second and random digits."""
    return (
        _base36(time.time_ns() // NS_PER_S)
        + _base36(os.getpid())
        + secrets.token_hex(2)
        + _base36(next(_runs))
    )


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

    ``run`` defaults to the start time and the process id in base 36, four random hex
    digits and a count of the run ids this process made, so two instances never
    overlap, in one process or in several. The names are valid hostname labels:
    ``<name>.example.test`` is a valid common name
    (:func:`~.payloads.certificate_payload`), and ``UniqueNames("e",
    domain="acme.certload.example.com")`` gives the identifiers of ACME orders.

    An iteration function that ``--certload-tx`` workers import takes its names from
    :meth:`for_process` (one instance per process and prefix); an instance refuses to be
    pickled, since the copy would hand out the same names again.
    """

    prefix: str = f"{HARNESS_NAME_PREFIX}issuance"
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

    @classmethod
    def for_process(cls, prefix: str, *, domain: str | None = None) -> UniqueNames:
        """This process's instance for ``prefix`` and ``domain``, made on first use.

        Pass the prefix (and domain) to an iteration function as data and call this in
        the iteration: each process sending the load (the test's, or each
        ``--certload-tx`` worker's) gets its own run id, so no two hand out one name.
        """
        key = (os.getpid(), prefix, domain)  # a forked child makes its own
        names = _per_process.get(key)
        if names is None:
            names = _per_process[key] = cls(prefix, domain=domain)
        return names

    def __reduce__(self) -> Any:
        raise TypeError(
            f"UniqueNames({self.prefix!r}) cannot be pickled: a copy in another process "
            "would hand out the same names again (certctl answers a duplicate certificate "
            "name with a 500). Pass the prefix as data and call "
            "UniqueNames.for_process(prefix) in the iteration function."
        )


#: each process's instances, by (pid, prefix, domain): see :meth:`UniqueNames.for_process`
_per_process: dict[tuple[int, str, str | None], UniqueNames] = {}
