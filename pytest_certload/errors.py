"""Exception hierarchy shared by every part of pytest-certload.

Nothing here imports pytest: the engine, metrics, thresholds, stack and
certctl client raise these, and the pytest glue translates them.
"""

from __future__ import annotations

__all__ = [
    "CertloadError",
    "ConfigError",
    "SeedError",
    "ServiceError",
    "ServiceTimeout",
    "ThresholdSyntaxError",
    "TransportError",
]


class CertloadError(Exception):
    """Base class of every error pytest-certload raises on purpose."""


class ConfigError(CertloadError, ValueError):
    """A setting, option, marker argument or scenario definition is invalid.

    The message names the value, where it came from, what is valid and what to do.
    """


class ThresholdSyntaxError(ConfigError):
    """A threshold expression or metric selector cannot be parsed."""


class TransportError(CertloadError):
    """An HTTP request failed below HTTP (connect, TLS, timeout, reset)."""

    def __init__(self, message: str, *, url: str = "", kind: str = "error") -> None:
        super().__init__(message)
        self.url = url
        #: one of ``connect``, ``tls``, ``timeout``, ``reset``, ``protocol``, ``error``
        self.kind = kind


class ServiceError(CertloadError):
    """A service of the stack failed to start, answer or stop."""


class ServiceTimeout(ServiceError, TimeoutError):
    """A readiness wait ran out of time; the message says what, where and how long."""


class SeedError(CertloadError):
    """A seed SQL file failed; the message names file, line and statement."""
