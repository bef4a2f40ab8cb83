"""certctl's API as the load scenarios speak it: routes, payloads, checks, setup calls.

Imports no pytest. One job per module:

* :mod:`.routes`: URL templates (also the requests' ``name`` tags), :func:`expand`,
  :func:`bearer`;
* :mod:`.payloads`: request bodies and the bulk-renew answer;
* :mod:`.names`: :class:`UniqueNames`, certificate and DNS names no run repeats;
* :mod:`.responses`: :class:`ResponseLike`, the one response protocol, and its readers;
* :mod:`.rotation`: :class:`Rotation` and :func:`batches` over seeded rows;
* :mod:`.acme`: the JWS-signing ACME client (:class:`AcmeClient`, :class:`AccountPool`,
  :class:`AcmeDirectory`, ...) and the unauthenticated walk (:class:`AcmeSurface`);
* :mod:`.ratelimit`: certctl's two kinds of 429 told apart (:func:`classify_429`), and
  its API limiter's share of a run (:func:`limiter_tally`, :func:`rate_limit_storm`);
* :mod:`.defects`: certctl's known defects (``KNOWN_DEFECTS``), each recognised in a
  run's evidence by its signature (``match_defects``); import them from that module;
* :mod:`.setup_client`: :class:`CertctlSetup`, the synchronous client for the few calls
  made before a load starts.

Iteration functions use the pure helpers; tests use :class:`CertctlSetup` before the
load starts.
"""

from ..errors import AcmeError, CertctlError
from .acme import (
    AccountKey,
    AccountPool,
    AcmeAccount,
    AcmeClient,
    AcmeDirectory,
    AcmeOrder,
    AcmeProblem,
    AcmeSurface,
    AcmeTransport,
    Enrollment,
    EnrollmentMetrics,
    PlainTransport,
    RenewalWindow,
    ari_cert_id,
    jwk_thumbprint,
    lease_problem,
    make_csr,
    pool_size,
    sign_jws,
)
from .names import HARNESS_DOMAIN, HARNESS_NAME_PREFIX, UniqueNames
from .payloads import (
    DEMO_FOREIGN_KEYS,
    FAR_FUTURE_EXPIRY,
    BulkRenewResult,
    certificate_payload,
    heartbeat_body,
    parse_bulk_renew,
)
from .ratelimit import (
    ACME_RATE_LIMITED,
    API_LIMITER_SHAPE,
    API_RATE_LIMITED,
    LIMITER_SETTINGS,
    RATE_LIMITED_COUNTER,
    LimiterTally,
    acme_rate_limit_shape_ok,
    classify_429,
    count_rate_limit,
    is_api_rate_limit,
    limiter_tally,
    rate_limit_storm,
)
from .responses import ResponseLike
from .rotation import Rotation, batches
from .routes import (
    ACME_DIRECTORY,
    ACME_NEW_NONCE,
    ACME_RENEWAL_INFO,
    AGENT_HEARTBEAT,
    AGENTS,
    ARI_PROBE_EXPECTED,
    ARI_PROBE_ID,
    AUTH_CHECK,
    BULK_RENEW,
    CERTIFICATES,
    JOBS,
    acme_directory_path,
    bearer,
    expand,
)
from .setup_client import CertctlSetup

__all__ = [
    "ACME_DIRECTORY",
    "ACME_NEW_NONCE",
    "ACME_RATE_LIMITED",
    "ACME_RENEWAL_INFO",
    "AGENTS",
    "AGENT_HEARTBEAT",
    "API_LIMITER_SHAPE",
    "API_RATE_LIMITED",
    "ARI_PROBE_EXPECTED",
    "ARI_PROBE_ID",
    "AUTH_CHECK",
    "BULK_RENEW",
    "CERTIFICATES",
    "DEMO_FOREIGN_KEYS",
    "FAR_FUTURE_EXPIRY",
    "HARNESS_DOMAIN",
    "HARNESS_NAME_PREFIX",
    "JOBS",
    "LIMITER_SETTINGS",
    "RATE_LIMITED_COUNTER",
    "AccountKey",
    "AccountPool",
    "AcmeAccount",
    "AcmeClient",
    "AcmeDirectory",
    "AcmeError",
    "AcmeOrder",
    "AcmeProblem",
    "AcmeSurface",
    "AcmeTransport",
    "BulkRenewResult",
    "CertctlError",
    "CertctlSetup",
    "Enrollment",
    "EnrollmentMetrics",
    "LimiterTally",
    "PlainTransport",
    "RenewalWindow",
    "ResponseLike",
    "Rotation",
    "UniqueNames",
    "acme_directory_path",
    "acme_rate_limit_shape_ok",
    "ari_cert_id",
    "batches",
    "bearer",
    "certificate_payload",
    "classify_429",
    "count_rate_limit",
    "expand",
    "heartbeat_body",
    "is_api_rate_limit",
    "jwk_thumbprint",
    "lease_problem",
    "limiter_tally",
    "make_csr",
    "parse_bulk_renew",
    "pool_size",
    "rate_limit_storm",
    "sign_jws",
]
