"""certctl's routes as the scenarios address them: URL templates and the API key header.

Each template is also the ``name`` tag of the requests sent to it, so every
certificate id lands in one metric series. Imports no pytest.
"""

from __future__ import annotations

from urllib.parse import quote

from ..errors import ConfigError
from ..redaction import SecretHeaders

__all__ = [
    "ACME_DIRECTORY",
    "ACME_NEW_NONCE",
    "ACME_RENEWAL_INFO",
    "AGENTS",
    "AGENT_HEARTBEAT",
    "ARI_PROBE_EXPECTED",
    "ARI_PROBE_ID",
    "AUTH_CHECK",
    "BULK_RENEW",
    "CERTIFICATES",
    "JOBS",
    "acme_directory_path",
    "bearer",
    "expand",
]

CERTIFICATES = "/api/v1/certificates"
BULK_RENEW = "/api/v1/certificates/bulk-renew"
AGENTS = "/api/v1/agents"
AGENT_HEARTBEAT = "/api/v1/agents/{id}/heartbeat"
JOBS = "/api/v1/jobs"
AUTH_CHECK = "/api/v1/auth/check"
ACME_DIRECTORY = "/acme/profile/{profile}/directory"
ACME_NEW_NONCE = "/acme/profile/{profile}/new-nonce"
ACME_RENEWAL_INFO = "/acme/profile/{profile}/renewal-info/{id}"

#: an ARI certificate id that is well-formed base64url but names no certificate:
#: certctl answers 404 (unknown) or 400 (malformed), both the *expected* answer
ARI_PROBE_ID = "aaaa.bbbb"
ARI_PROBE_EXPECTED = (400, 404)


def expand(template: str, **params: str) -> str:
    """Fill a URL template, percent-encoding each value: ``expand(AGENT_HEARTBEAT, id=x)``."""
    try:
        return template.format_map({k: quote(v, safe="") for k, v in params.items()})
    except KeyError as exc:
        raise ConfigError(
            f"URL template {template!r} needs the parameter {exc.args[0]!r}; "
            f"got {', '.join(sorted(params)) or 'none'}."
        ) from None


def acme_directory_path(profile: str) -> str:
    """``/acme/profile/<profile>/directory`` (certctl's shorthand needs a default profile)."""
    return expand(ACME_DIRECTORY, profile=profile)


def bearer(token: str) -> SecretHeaders:
    """The Authorization header of certctl's API keys (ACME routes need it too when
    certctl runs without a dashboard); its repr masks the key."""
    if not token:
        raise ConfigError("certctl's API needs an API key, but the token is empty.")
    return SecretHeaders({"Authorization": f"Bearer {token}"})
