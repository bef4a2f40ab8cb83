"""The ``--certload-tx`` grammar: execnet gateway specs, pytest-xdist's ``--tx`` syntax.

The only part of :mod:`pytest_certload.distributed` that settings import: parsing a spec
list needs neither execnet nor the controller.
"""

from __future__ import annotations

import os
import re

from ..errors import TxSyntaxError

__all__ = ["TX_GRAMMAR", "parse_tx", "spec_keys", "usable_cores"]

TX_GRAMMAR = (
    "'auto' (one local worker per usable core), or comma-separated execnet gateway specs, "
    "each optionally prefixed by N* for N identical "
    "workers: 'popen', 'popen//python=python3', 'ssh=HOST//python=python3' or "
    "'socket=HOST:PORT', with '//'-separated options python=, chdir=, id=, nice=, "
    "env:NAME=, dont_write_bytecode, ssh_config=, via=, execmodel=; "
    "e.g. '2*popen' or '2*popen,ssh=loadgen1//python=python3'"
)
_TYPES = ("popen", "ssh", "socket", "vagrant_ssh")
_KEYS = frozenset(
    {*_TYPES, "python", "chdir", "id", "nice", "dont_write_bytecode", "ssh_config", "via"}
    | {"execmodel"}
)
_FLAGS = frozenset({"popen", "dont_write_bytecode"})
_COUNT_RE = re.compile(r"^\s*(\d+)\s*\*\s*(.*)$")
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def parse_tx(raw: str) -> tuple[str, ...]:
    """Expand ``"2*popen,ssh=h//python=python3"`` into one spec string per worker;
    ``"auto"`` is one ``popen`` worker per usable core (:func:`usable_cores`).

    Specs are separated by commas or newlines; ``N*`` repeats a spec. Raises
    :class:`TxSyntaxError` naming the offending spec and what is wrong with it.
    """
    if raw.strip().lower() == "auto":
        return ("popen",) * usable_cores()
    specs: list[str] = []
    parts = [p.strip() for p in re.split(r"[,\n]", raw)]
    for part in filter(None, parts):
        count = 1
        match = _COUNT_RE.match(part)
        if match:
            count = int(match.group(1))
            if count < 1:
                raise TxSyntaxError(f"{part!r}: the count before '*' must be 1 or more")
            part = match.group(2).strip()
        keys = _check_spec(part)
        if count > 1 and "id" in keys:
            raise TxSyntaxError(f"{count}*{part!r}: an id= cannot be repeated; drop it or N*")
        specs += [part] * count
    if not specs:
        raise TxSyntaxError(f"{raw!r} names no gateway")
    ids = [spec_keys(s).get("id") for s in specs]
    dupes = sorted({i for i in ids if i is not None and ids.count(i) > 1})
    if dupes:
        raise TxSyntaxError(f"gateway id(s) {', '.join(dupes)} given more than once")
    return tuple(specs)


def spec_keys(spec: str) -> dict[str, str | None]:
    """A checked spec's options: ``{"popen": None, "python": "python3", ...}``."""
    keys: dict[str, str | None] = {}
    for item in spec.split("//"):
        key, sep, value = item.partition("=")
        keys[key.strip()] = value if sep else None
    return keys


def _check_spec(spec: str) -> dict[str, str | None]:
    if not spec:
        raise TxSyntaxError("an empty spec (nothing after '*')")
    keys: dict[str, str | None] = {}
    for item in spec.split("//"):
        key, sep, value = item.partition("=")
        if not key:
            raise TxSyntaxError(f"{spec!r}: an empty option (two '//' in a row?)")
        if key in keys:
            raise TxSyntaxError(f"{spec!r}: {key!r} given twice")
        if key not in _KEYS and not (key.startswith("env:") and len(key) > 4):
            raise TxSyntaxError(f"{spec!r}: unknown option {key!r}")
        if key in _FLAGS and sep:
            raise TxSyntaxError(f"{spec!r}: {key!r} takes no value")
        if key not in _FLAGS and not key.startswith("env:") and not value:
            raise TxSyntaxError(f"{spec!r}: {key!r} needs a value ({key}=...)")
        keys[key] = value if sep else None
    types = [t for t in _TYPES if t in keys]
    if len(types) != 1:
        found = f"{' and '.join(types)}" if types else "none"
        raise TxSyntaxError(
            f"{spec!r}: a spec needs exactly one gateway type of popen, ssh=, socket= "
            f"(found {found})"
        )
    address = keys.get("socket")
    if address is not None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise TxSyntaxError(f"{spec!r}: socket= needs HOST:PORT, e.g. socket=10.0.0.5:8888")
        if "python" in keys:
            raise TxSyntaxError(
                f"{spec!r}: socket= takes no python= (execnet does not support it): the "
                "worker runs in the interpreter that runs the socket server there; drop it"
            )
    ident = keys.get("id")
    if ident is not None and not _ID_RE.match(ident):
        raise TxSyntaxError(f"{spec!r}: id= takes letters, digits, '_', '-' or '.'")
    return keys
