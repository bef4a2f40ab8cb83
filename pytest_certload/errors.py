"""Every exception pytest-certload raises on purpose, and nothing else.

Nothing here imports pytest (or anything above this module): the engine, metrics,
thresholds, stack and certctl client raise these, and the pytest glue translates them.
Every class derives from :class:`CertloadError`. Messages name what failed, the
offending value and where it came from, what is valid and what to do next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .certctl.acme.problems import AcmeProblem
    from .http import Response

__all__ = [
    "AcmeError",
    "BaselineError",
    "CertctlError",
    "CertloadError",
    "CleanupError",
    "ConfigError",
    "HTTPStatusError",
    "ImagesSyntaxError",
    "OptionValueError",
    "PreflightError",
    "RecordError",
    "SeedError",
    "ServiceError",
    "ServiceTimeout",
    "ThresholdBreach",
    "ThresholdSyntaxError",
    "TransportError",
    "TxSyntaxError",
    "UntrustworthyRun",
]


class CertloadError(Exception):
    """Base class of every error pytest-certload raises on purpose."""


# -- configuration ----------------------------------------------------------------------


class ConfigError(CertloadError, ValueError):
    """A setting, option, marker argument or scenario definition is invalid.

    The message names the value, where it came from, what is valid and what to do.
    """


class OptionValueError(ConfigError):
    """An option parser rejected a raw value: ``kind`` is what was expected, ``grammar``
    what is valid. The caller adds the option's name and source (argparse does too).
    ``shown``, when given, is what the message shows instead of the raw value (a value
    that may hold a secret is not repeated)."""

    def __init__(self, kind: str, grammar: str, *, shown: str | None = None) -> None:
        super().__init__(f"not a valid {kind}; use {grammar}")
        self.kind = kind
        self.grammar = grammar
        self.shown = shown

    def value_text(self, raw: str) -> str:
        """How a message names the rejected value: ``shown``, or ``raw`` quoted."""
        return self.shown if self.shown is not None else repr(raw)


class ThresholdSyntaxError(ConfigError):
    """A threshold expression or metric selector cannot be parsed."""


class TxSyntaxError(ConfigError):
    """A ``--certload-tx`` value does not follow the gateway-spec grammar."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class ImagesSyntaxError(ConfigError):
    """A ``--certload-images`` value does not follow the ``ROLE=IMAGE,...`` grammar."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


# -- verdicts ------------------------------------------------------------------------------


class ThresholdBreach(CertloadError, AssertionError):
    """One or more thresholds of a trustworthy run were breached (a test failure)."""


class UntrustworthyRun(CertloadError):
    """The generator could not deliver the load, or the target never answered (an error)."""


class BaselineError(CertloadError):
    """A baseline or a results directory cannot be read, written or compared."""


class RecordError(CertloadError):
    """A session record (``session.json``) or a run file cannot be read."""


# -- the system under test ----------------------------------------------------------------


class TransportError(CertloadError):
    """An HTTP request failed below HTTP (connect, TLS, timeout, reset)."""

    def __init__(self, message: str, *, url: str = "", kind: str = "error") -> None:
        super().__init__(message)
        self.url = url
        #: one of ``connect``, ``tls``, ``timeout``, ``reset``, ``protocol``, ``error``
        self.kind = kind


class HTTPStatusError(CertloadError):
    """``Response.raise_for_status()`` found an error status (4xx, 5xx, or 0)."""

    def __init__(self, message: str, *, response: Response) -> None:
        super().__init__(message)
        self.response = response


class ServiceError(CertloadError):
    """A service of the stack failed to start, answer or stop."""


class ServiceTimeout(ServiceError, TimeoutError):
    """A readiness wait ran out of time; the message says what, where and how long."""


class SeedError(CertloadError):
    """A seed SQL file failed; the message names file, line and statement."""


class CleanupError(CertloadError):
    """``python -m pytest_certload.cleanup`` could not connect, or removed nothing because
    a row it would remove is still referenced (the message names what and where)."""


class CertctlError(CertloadError):
    """certctl answered a setup call with something the scenario cannot work with."""


class AcmeError(CertloadError):
    """An ACME setup step (directory, account creation) failed; ``problem`` says how."""

    def __init__(self, message: str, problem: AcmeProblem | None = None) -> None:
        super().__init__(message)
        self.problem = problem


class PreflightError(ServiceError):
    """The pre-flight check found the stack unusable before any load was sent.

    ``problems`` holds one line per problem (what failed, where, the cause, the option
    to fix); the message lists them all. Neither ever holds a token or a password.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems
