"""A JWS-signing ACME client (RFC 8555 + ARI, RFC 9773) for load scenarios.

One job per module, each importing only those listed before it:

* :mod:`.jose`: base64url, account keys, RFC 7638 thumbprints, flattened JWS;
* :mod:`.csr`: the CSR of an order, the PEM chain it yields, the ARI id of a certificate;
* :mod:`.problems`: :class:`AcmeProblem`, why a step failed, and its problem types;
* :mod:`.directory`: :class:`AcmeDirectory`, one profile's directory and the URL
  templates its requests are tagged with;
* :mod:`.models`: orders, renewal windows, accounts, enrollments;
* :mod:`.transport`: what the client sends through (``vu.http`` or :class:`PlainTransport`);
* :mod:`.client`: :class:`AcmeClient`, one ACME session (nonces, resources, ``enroll``);
* :mod:`.pool`: :class:`AccountPool` and :func:`pool_size`, inside certctl's
  per-account limits;
* :mod:`.metrics`: :class:`EnrollmentMetrics`, how enrollments are recorded and explained;
* :mod:`.surface`: :class:`AcmeSurface`, the unauthenticated walk of certctl's k6 scripts.

Failures never raise out of an iteration: every step returns its result or an
:class:`AcmeProblem`. Imports no pytest.
"""

from ...errors import AcmeError
from .client import AcmeClient
from .csr import CSR_KEY_TYPES, ari_cert_id, make_csr
from .directory import AcmeDirectory
from .jose import ACCOUNT_ALGS, AccountKey, b64url, jwk_thumbprint, sign_jws
from .metrics import EnrollmentMetrics
from .models import ENROLL_STEPS, AcmeAccount, AcmeOrder, Enrollment, RenewalWindow
from .pool import AccountPool, lease_problem, pool_size
from .problems import ACME_ERROR, POOL_EXHAUSTED, RATE_LIMITED, AcmeProblem
from .surface import AcmeSurface
from .transport import AcmeTransport, PlainTransport

__all__ = [
    "ACCOUNT_ALGS",
    "ACME_ERROR",
    "CSR_KEY_TYPES",
    "ENROLL_STEPS",
    "POOL_EXHAUSTED",
    "RATE_LIMITED",
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
    "Enrollment",
    "EnrollmentMetrics",
    "PlainTransport",
    "RenewalWindow",
    "ari_cert_id",
    "b64url",
    "jwk_thumbprint",
    "lease_problem",
    "make_csr",
    "pool_size",
    "sign_jws",
]
