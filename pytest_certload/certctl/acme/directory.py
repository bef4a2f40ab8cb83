"""One profile's ACME directory: the one model of it in pytest-certload.

Read by the JWS client (:meth:`~.client.AcmeClient.open`), by the synchronous setup
client (``CertctlSetup.acme_directory``) and on every iteration of the unauthenticated
walk (:class:`~.surface.AcmeSurface`). It also names the URL template each request is
tagged with, so every order, authorization and certificate lands in one metric
series. Imports no pytest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import AcmeError
from ..responses import json_value
from ..routes import ACME_DIRECTORY

__all__ = ["AcmeDirectory", "route_prefix"]

#: ``/acme/profile/{profile}``: the part of certctl's ACME routes that names the profile
_PROFILE_TEMPLATE = ACME_DIRECTORY.rsplit("/", 1)[0]
_PROFILE_PATH = re.compile(r"^/acme/profile/[^/]+$")
#: what RFC 8555 §7.1.1 requires and the client uses
_REQUIRED = (("newNonce", "new_nonce"), ("newAccount", "new_account"), ("newOrder", "new_order"))


def _path(url: str) -> str:
    rest = url.split("://", 1)[-1]
    slash = rest.find("/")
    return rest[slash:].split("?", 1)[0] if slash >= 0 else "/"


def route_prefix(url: str) -> str:
    """The name-tag prefix of the ACME route at ``url`` (its path without the last
    segment): ``/acme/profile/{profile}`` for a profile's route, ``/acme`` for the
    shorthand."""
    base = _path(url).rsplit("/", 1)[0]
    return _PROFILE_TEMPLATE if _PROFILE_PATH.match(base) else base


@dataclass(frozen=True)
class AcmeDirectory:
    """One profile's ACME directory, plus the URL templates its requests are tagged with.

    ``url`` is where the directory was read; the others are its ``newNonce``,
    ``newAccount``, ``newOrder`` and (ARI, RFC 9773) ``renewalInfo`` URLs.
    """

    url: str
    new_nonce: str
    new_account: str
    new_order: str
    renewal_info: str | None = None

    @classmethod
    def from_json(cls, url: str, body: bytes | Mapping[str, Any]) -> AcmeDirectory:
        """Parse the directory read from ``url``; :class:`~pytest_certload.errors.AcmeError`
        names what is wrong (HTML instead of JSON, a missing URL)."""
        data = json_value(body) if isinstance(body, bytes) else dict(body)
        if not isinstance(data, dict):
            raise AcmeError(
                f"the ACME directory at {url} is not a JSON object; a certctl started from a "
                "directory containing web/ answers /acme/* with its dashboard's HTML: start "
                "it from a directory without web/."
            )
        missing = [key for key, _ in _REQUIRED if not data.get(key)]
        if missing:
            raise AcmeError(f"the ACME directory at {url} has no {', '.join(missing)} URL.")
        ari = data.get("renewalInfo")
        return cls(
            url,
            str(data["newNonce"]),
            str(data["newAccount"]),
            str(data["newOrder"]),
            str(ari) if ari else None,
        )

    @property
    def prefix(self) -> str:
        """The name-tag prefix: ``/acme/profile/{profile}`` (or ``/acme``, the shorthand)."""
        return route_prefix(self.new_order)

    def name(self, suffix: str) -> str:
        """The URL template of a route, e.g. ``name("order/{id}/finalize")``."""
        return f"{self.prefix}/{suffix}"

    def renewal_info_url(self, cert_id: str) -> str:
        """The renewal-info URL of a certificate id; :class:`~pytest_certload.errors.AcmeError`
        when the directory advertises no ``renewalInfo``."""
        if self.renewal_info is None:
            raise AcmeError(
                f"the ACME directory at {self.url} advertises no renewalInfo; enable "
                "ARI (CERTCTL_ACME_SERVER_ARI_ENABLED=true, certctl's default)."
            )
        return f"{self.renewal_info.rstrip('/')}/{cert_id}"
