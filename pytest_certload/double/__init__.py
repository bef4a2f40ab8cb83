"""The certctl reference double: a stand-in for the certctl server.

It speaks certctl's REST and ACME API on every path the load scenarios touch,
stores its state in PostgreSQL with certctl's schema, and can inject faults.
Run it as a separate process: ``python -m pytest_certload.double`` (see
docs/double.md). Importing this package starts nothing.
"""

from __future__ import annotations

from ._config import ApiKey, DoubleConfig, load_config
from ._faults import FaultRule, FaultState, parse_faults

__all__ = [
    "ApiKey",
    "DoubleConfig",
    "FaultRule",
    "FaultState",
    "load_config",
    "parse_faults",
]
