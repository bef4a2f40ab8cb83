"""What scenarios consume, whichever provider booted the stack.

:class:`StackInfo` is the frozen hand-over object: certctl's URL and API keys, the DSN
(when the harness may seed), how to verify TLS, and the connector targets by type.
:data:`TARGET_TYPES` is the one list of connector target types.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..errors import ConfigError
from ..http.tls import client_context
from ..redaction import redact_url

__all__ = ["TARGET_TYPES", "StackInfo"]

#: connector target types, as certctl's k6 script tags them (``target_type``)
TARGET_TYPES: tuple[str, ...] = ("nginx", "apache", "haproxy", "f5")


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, repr=False)
class StackInfo:
    """Everything a scenario needs to reach the system under test.

    Its repr (what a failing test's traceback shows) holds no token, no DSN and no
    password of a URL.
    """

    certctl_url: str
    token: str = field(repr=False)
    admin_token: str = field(repr=False)
    dsn: str | None = field(default=None, repr=False)
    #: CA bundle that signed the server certificates; None with verify_tls=True means
    #: the system trust store
    ca: Path | None = None
    verify_tls: bool = True
    #: target type (nginx, apache, haproxy, f5) -> base URL
    targets: Mapping[str, str] = field(default_factory=dict)
    #: the f5 mock's plain-HTTP URL, when there is one
    f5_http_url: str | None = None
    provider: str = "external"

    def __post_init__(self) -> None:
        object.__setattr__(self, "certctl_url", self.certctl_url.rstrip("/"))
        object.__setattr__(self, "targets", _frozen(self.targets))
        unknown = sorted(set(self.targets) - set(TARGET_TYPES))
        if unknown:
            raise ConfigError(
                f"unknown target type(s) {', '.join(unknown)} in StackInfo.targets; "
                f"valid types are {', '.join(TARGET_TYPES)}."
            )

    def __repr__(self) -> str:
        targets = {kind: redact_url(url) for kind, url in self.targets.items()}
        return (
            f"StackInfo(certctl_url={redact_url(self.certctl_url)!r}, ca={self.ca!r}, "
            f"verify_tls={self.verify_tls!r}, targets={targets!r}, "
            f"f5_http_url={self.f5_http_url!r}, provider={self.provider!r})"
        )

    def verify(self) -> ssl.SSLContext | bool:
        """What to pass as an HTTP client's ``verify``.

        A *new* SSL context trusting :attr:`ca` on every call (httpx with HTTP/2 modifies
        the context it is given, so clients must not share one; built by
        :func:`pytest_certload.http.tls.client_context`), True for the system store, or
        False when verification is off.
        """
        if not self.verify_tls:
            return False
        if self.ca is None:
            return True
        return client_context(self.ca)

    def target(self, target_type: str) -> str:
        """The base URL of connector target ``target_type``."""
        try:
            return self.targets[target_type]
        except KeyError:
            have = ", ".join(self.targets) or "none"
            raise ConfigError(
                f"the {self.provider} stack has no {target_type!r} target (it has: {have}); "
                f"start it with that sidecar or give its URL to the external provider."
            ) from None
