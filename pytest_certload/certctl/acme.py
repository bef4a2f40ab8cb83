"""A JWS-signing ACME client (RFC 8555 + ARI, RFC 9773) for load scenarios.

It runs on top of a VU's recording HTTP client (``vu.http``), so every request is
measured and tagged with a URL template (``/acme/profile/{profile}/new-order``), or on
anything with the same ``get``/``head``/``post`` shape (:class:`PlainTransport` adapts
an engine :class:`~pytest_certload.http.Client` for setup code). Imports no pytest.

The facts it encodes are certctl's (contract §3):

* the protected header's ``url`` must equal ``https://`` + Host + path; new-account
  carries ``jwk``, every other POST ``kid`` = the new-account ``Location``;
* a nonce is consumed before the signature is checked, and **error responses carry no
  Replay-Nonce**: after any error the client fetches a fresh nonce with
  ``HEAD newNonce``; a ``badNonce`` is retried once with a fresh nonce;
* only ``ES256`` (default), ``RS256`` and ``EdDSA`` are accepted;
* per account: 100 new orders an hour (a token bucket that starts full) and 5 orders
  outstanding (pending, ready or processing); :class:`AccountPool` keeps inside both;
* with ``trust_authenticated`` (every seeded profile) a new order is ``ready`` at once.

Failures never raise out of an iteration: every step returns its result or an
:class:`AcmeProblem` naming the step, the HTTP status and the problem type.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import anyio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from ..errors import AcmeError, ConfigError, TransportError

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
    "unique_dns_names",
]

AccountAlg = Literal["ES256", "RS256", "EdDSA"]
CsrKeyType = Literal["ec-p256", "rsa-2048", "ed25519"]
#: the JWS algorithms certctl accepts (anything else is ``malformed``)
ACCOUNT_ALGS: tuple[AccountAlg, ...] = ("ES256", "RS256", "EdDSA")
CSR_KEY_TYPES: tuple[CsrKeyType, ...] = ("ec-p256", "rsa-2048", "ed25519")
ACME_ERROR = "urn:ietf:params:acme:error:"
BAD_NONCE = ACME_ERROR + "badNonce"
RATE_LIMITED = ACME_ERROR + "rateLimited"
#: pseudo problem types for failures that are not an ACME problem document
TRANSPORT = "certload:transport"
NOT_A_PROBLEM = "certload:notProblemDocument"
UNEXPECTED = "certload:unexpectedResponse"
POOL_EXHAUSTED = "certload:accountPoolExhausted"
#: the timed steps of one enrollment, in order
ENROLL_STEPS = ("new_order", "authz", "csr", "finalize", "certificate", "ari")
JOSE_JSON = "application/jose+json"
PEM_CHAIN = "application/pem-certificate-chain"
PROBLEM_JSON = "application/problem+json"
_PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


# -- encoding, keys, JWS ------------------------------------------------------------------


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(length, "big"))


#: RFC 7638 §3.2: the required members of each key type, in lexicographic order
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding."""
    kty = jwk.get("kty")
    members = _THUMBPRINT_MEMBERS.get(str(kty))
    if members is None:
        raise ConfigError(
            f"cannot take the thumbprint of a JWK with kty {kty!r}; supported: EC, RSA, OKP."
        )
    missing = [m for m in members if m not in jwk]
    if missing:
        raise ConfigError(f"the {kty} JWK lacks {', '.join(missing)}; cannot take its thumbprint.")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class AccountKey:
    """An ACME account key: its JWS algorithm, public JWK and RFC 7638 thumbprint."""

    alg: AccountAlg
    private_key: PrivateKey = field(repr=False)
    jwk: Mapping[str, str] = field(repr=False)
    thumbprint: str

    @classmethod
    def generate(cls, alg: str = "ES256") -> AccountKey:
        """A fresh key: P-256 for ES256, RSA-2048 for RS256, Ed25519 for EdDSA."""
        if alg == "ES256":
            return cls.from_private_key(ec.generate_private_key(ec.SECP256R1()))
        if alg == "RS256":
            return cls.from_private_key(rsa.generate_private_key(65537, 2048))
        if alg == "EdDSA":
            return cls.from_private_key(ed25519.Ed25519PrivateKey.generate())
        raise ConfigError(
            f"{alg!r} is not a JWS algorithm certctl accepts; use one of "
            f"{', '.join(ACCOUNT_ALGS)} (ES384, ES512, PS256 and HS256 are rejected)."
        )

    @classmethod
    def from_private_key(cls, key: PrivateKey) -> AccountKey:
        jwk: dict[str, str]
        alg: AccountAlg
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise ConfigError(
                    f"ES256 needs a P-256 key, not {key.curve.name}; certctl accepts no other "
                    "curve."
                )
            numbers = key.public_key().public_numbers()
            jwk = {
                "crv": "P-256",
                "kty": "EC",
                "x": _uint(numbers.x, 32),
                "y": _uint(numbers.y, 32),
            }
            alg = "ES256"
        elif isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < 2048:
                raise ConfigError(
                    f"an RS256 account key needs 2048 bits or more, not {key.key_size}."
                )
            pub = key.public_key().public_numbers()
            jwk = {"e": _uint(pub.e), "kty": "RSA", "n": _uint(pub.n)}
            alg = "RS256"
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            jwk = {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}
            alg = "EdDSA"
        else:  # pragma: no cover - excluded by the type
            raise ConfigError(f"unsupported account key type {type(key).__name__}.")
        return cls(alg, key, jwk, jwk_thumbprint(jwk))

    def sign(self, data: bytes) -> bytes:
        """The JWS signature of ``data`` (ES256: the 64-byte ``r || s`` form)."""
        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return key.sign(data)


def sign_jws(
    key: AccountKey,
    payload: Mapping[str, Any] | None,
    *,
    url: str,
    nonce: str,
    kid: str | None = None,
) -> bytes:
    """A flattened JWS (RFC 7515 §7.2.2) as certctl wants it.

    The protected header has ``alg``, ``nonce``, ``url`` and either ``kid`` (when given)
    or the public ``jwk`` (new-account). ``payload=None`` signs the empty payload of a
    POST-as-GET.
    """
    protected: dict[str, Any] = {"alg": key.alg, "nonce": nonce, "url": url}
    if kid is None:
        protected["jwk"] = dict(key.jwk)
    else:
        protected["kid"] = kid
    header_b64 = b64url(json.dumps(protected, separators=(",", ":")).encode())
    payload_b64 = (
        "" if payload is None else b64url(json.dumps(payload, separators=(",", ":")).encode())
    )
    signature = key.sign(f"{header_b64}.{payload_b64}".encode("ascii"))
    body = {"protected": header_b64, "payload": payload_b64, "signature": b64url(signature)}
    return json.dumps(body, separators=(",", ":")).encode()


# -- CSR and certificate helpers -------------------------------------------------------------

CertKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def _cert_key(key_type: str) -> CertKey:
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa-2048":
        return rsa.generate_private_key(65537, 2048)
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ConfigError(f"{key_type!r} is not a CSR key type; use one of {', '.join(CSR_KEY_TYPES)}.")


def make_csr(
    names: Sequence[str], *, key_type: str = "ec-p256", key: CertKey | None = None
) -> tuple[bytes, CertKey]:
    """A DER PKCS#10 request for ``names`` and its new private key.

    CN is the first name and every name is a DNS SAN, lowercase: certctl requires the
    CSR's name set (CN plus SANs, case-folded) to equal the order's identifiers exactly.
    """
    if not names:
        raise ConfigError("a CSR needs at least one DNS name.")
    lowered = [n.lower() for n in names]
    private = key if key is not None else _cert_key(key_type)
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, lowered[0])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in lowered]), critical=False
        )
    )
    algorithm = None if isinstance(private, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(private, algorithm)
    return csr.public_bytes(serialization.Encoding.DER), private


def _serial_bytes(serial: int) -> bytes:
    """The content octets of the DER INTEGER (a leading 0x00 when the top bit is set)."""
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big") if serial else b"\x00"


def ari_cert_id(cert: x509.Certificate) -> str:
    """The RFC 9773 §4.1 certificate id: ``base64url(AKI keyIdentifier) "." base64url(serial)``.

    The serial is its DER INTEGER value bytes (two's complement, so a leading zero byte
    when the high bit is set), both parts without padding.
    """
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        raise ConfigError(
            f"certificate {cert.serial_number:x} has no Authority Key Identifier; ARI "
            "cannot name it."
        ) from None
    if aki.key_identifier is None:
        raise ConfigError(
            f"the Authority Key Identifier of certificate {cert.serial_number:x} has no "
            "keyIdentifier; ARI cannot name it."
        )
    return f"{b64url(aki.key_identifier)}.{b64url(_serial_bytes(cert.serial_number))}"


def _pem_certificates(chain: bytes) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(m) for m in _PEM_RE.findall(chain)]


# -- transport --------------------------------------------------------------------------------


class _Response(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...


class AcmeTransport(Protocol):
    """What the client sends through: ``vu.http`` or :class:`PlainTransport`.

    Called with ``headers=``, ``name=`` (a URL template), ``expected=`` (the statuses
    that are not failures) and, for POSTs, ``content=``. Must not raise on transport
    errors: answer status 0 instead, as ``vu.http`` does.
    """

    def get(self, url: str, **kwargs: Any) -> Awaitable[_Response]: ...

    def head(self, url: str, **kwargs: Any) -> Awaitable[_Response]: ...

    def post(self, url: str, **kwargs: Any) -> Awaitable[_Response]: ...


@dataclass(frozen=True)
class _NoAnswer:
    url: str
    error: str
    status_code: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""


class PlainTransport:
    """Adapts an engine HTTP client (``pytest_certload.http.make_client``) to
    :class:`AcmeTransport` for setup code outside a VU: drops ``name``/``tags``/
    ``expected`` and turns :class:`~pytest_certload.errors.TransportError` into status 0.
    """

    _DROP = ("name", "tags", "expected")

    def __init__(self, client: Any) -> None:
        self.client = client

    async def _send(self, method: str, url: str, kwargs: dict[str, Any]) -> _Response:
        for key in self._DROP:
            kwargs.pop(key, None)
        try:
            response: _Response = await self.client.request(method, url, **kwargs)
        except TransportError as exc:
            return _NoAnswer(url, str(exc))
        return response

    async def get(self, url: str, **kwargs: Any) -> _Response:
        return await self._send("GET", url, kwargs)

    async def head(self, url: str, **kwargs: Any) -> _Response:
        return await self._send("HEAD", url, kwargs)

    async def post(self, url: str, **kwargs: Any) -> _Response:
        return await self._send("POST", url, kwargs)


def _header(response: _Response, name: str) -> str:
    value = response.headers.get(name)
    if value is None:  # a plain dict is case-sensitive
        lowered = name.lower()
        value = next((v for k, v in response.headers.items() if k.lower() == lowered), "")
    return value


def _media_type(response: _Response) -> str:
    return _header(response, "content-type").split(";", 1)[0].strip().lower()


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


# -- problems ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcmeProblem:
    """Why a step failed: the step, the HTTP status (0: no HTTP answer), the problem
    type (an ACME URN, or ``certload:...`` when the answer was no problem document)
    and its detail; plus what a shape check needs: the response's media type, its
    ``Retry-After`` header and the document's own ``status`` member."""

    step: str
    status: int
    type: str
    detail: str
    url: str = ""
    media_type: str = ""
    retry_after: str = ""
    document_status: int | None = None

    @property
    def short_type(self) -> str:
        """The type without its namespace: ``rateLimited``, ``transport``..."""
        return self.type.rsplit(":", 1)[-1]

    @property
    def is_rate_limit_document(self) -> bool:
        """certctl's ACME 429 exactly: 429, ``application/problem+json``, type
        ``urn:ietf:params:acme:error:rateLimited``, ``status`` 429 in the document and a
        detail (RFC 7807); certctl sends no ``Retry-After`` (not required here)."""
        return (
            self.status == 429
            and self.media_type == PROBLEM_JSON
            and self.type == RATE_LIMITED
            and self.document_status == 429
            and bool(self.detail)
        )

    def __str__(self) -> str:
        where = f" ({self.url})" if self.url else ""
        return f"{self.step}: {self.status} {self.type}: {self.detail}{where}"

    @classmethod
    def from_response(cls, step: str, response: _Response, url: str = "") -> AcmeProblem:
        status = response.status_code
        if status == 0:
            error = getattr(response, "error", "") or "no HTTP answer"
            return cls(step, 0, TRANSPORT, str(error), url)
        media = _media_type(response)
        retry_after = _header(response, "retry-after")
        body = _json(response.content) if response.content else None
        if isinstance(body, dict) and isinstance(body.get("type"), str):
            detail = body.get("detail")
            member = body.get("status")
            return cls(
                step,
                status,
                body["type"],
                str(detail) if detail is not None else "",
                url,
                media,
                retry_after,
                member if isinstance(member, int) and not isinstance(member, bool) else None,
            )
        shown = response.content[:160].decode("utf-8", "replace").strip() or "(empty body)"
        return cls(
            step,
            status,
            NOT_A_PROBLEM,
            f"{media or 'no content type'}: {shown}",
            url,
            media,
            retry_after,
        )


# -- directory, orders ---------------------------------------------------------------------------

_PROFILE_PREFIX = re.compile(r"^/acme/profile/[^/]+$")


def _path(url: str) -> str:
    rest = url.split("://", 1)[-1]
    slash = rest.find("/")
    return rest[slash:].split("?", 1)[0] if slash >= 0 else "/"


def _prefix_template(base: str) -> str:
    return "/acme/profile/{profile}" if _PROFILE_PREFIX.match(base) else base


@dataclass(frozen=True)
class AcmeDirectory:
    """One profile's ACME directory, plus the URL templates its requests are tagged with."""

    url: str
    new_nonce: str
    new_account: str
    new_order: str
    renewal_info: str | None = None

    @classmethod
    def from_json(cls, url: str, body: bytes | Mapping[str, Any]) -> AcmeDirectory:
        data = _json(body) if isinstance(body, bytes) else dict(body)
        if not isinstance(data, dict):
            raise AcmeError(
                f"the ACME directory at {url} is not a JSON object; a certctl started from a "
                "directory containing web/ answers /acme/* with its dashboard's HTML: start "
                "it from a directory without web/."
            )
        missing = [k for k in ("newNonce", "newAccount", "newOrder") if not data.get(k)]
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
        return _prefix_template(_path(self.new_order).rsplit("/", 1)[0])

    def name(self, suffix: str) -> str:
        """The URL template of a route, e.g. ``name("order/{id}/finalize")``."""
        return f"{self.prefix}/{suffix}"


@dataclass(frozen=True)
class AcmeOrder:
    url: str
    status: str
    finalize: str
    authorizations: tuple[str, ...] = ()
    certificate: str | None = None
    error: Any = None

    @classmethod
    def parse(cls, url: str, body: Any) -> AcmeOrder | None:
        if not isinstance(body, dict):
            return None
        finalize, status = body.get("finalize"), body.get("status")
        if not isinstance(finalize, str) or not isinstance(status, str):
            return None
        authz = body.get("authorizations")
        cert = body.get("certificate")
        return cls(
            url,
            status,
            finalize,
            tuple(a for a in authz if isinstance(a, str)) if isinstance(authz, list) else (),
            cert if isinstance(cert, str) and cert else None,
            body.get("error"),
        )


@dataclass(frozen=True)
class RenewalWindow:
    start: dt.datetime
    end: dt.datetime
    retry_after: str = ""


def _rfc3339(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


# -- accounts ---------------------------------------------------------------------------------


@dataclass(eq=False)
class AcmeAccount:
    """An account (its key and ``kid``) and what the client knows of its limits."""

    key: AccountKey
    kid: str
    #: enrollments using the account right now (each holds one order at most)
    in_flight: int = 0
    #: orders left pending/ready/processing by failed enrollments: they count toward
    #: certctl's concurrent-order cap until the order TTL (24 h) expires them
    stuck: int = 0
    tokens: float = 0.0
    refilled_at: float = 0.0


def pool_size(
    rate_per_s: float,
    duration_s: float,
    *,
    orders_per_hour: int = 100,
    concurrent_orders: int = 5,
    enrollment_budget_s: float = 5.0,
    margin: float = 0.2,
) -> int:
    """Accounts needed to offer ``rate_per_s`` enrollments for ``duration_s`` within
    certctl's per-account limits.

    ``ceil(rate * duration / orders_per_hour)`` keeps every account inside its hourly
    bucket (ignoring the refill, so it stays safe for runs up to an hour);
    ``ceil(rate * enrollment_budget_s / concurrent_orders)`` keeps the orders in flight
    per account under the cap while an enrollment takes up to ``enrollment_budget_s``.
    The larger of the two gets ``margin`` more (at least one more account).
    """
    if rate_per_s <= 0 or duration_s <= 0:
        raise ConfigError(
            f"pool_size needs a positive rate and duration, got {rate_per_s}/s for {duration_s} s."
        )
    if orders_per_hour <= 0 or concurrent_orders <= 0:
        raise ConfigError(
            "pool_size needs certctl's limits; a limit of 0 (disabled) needs no pool: "
            f"got orders_per_hour={orders_per_hour}, concurrent_orders={concurrent_orders}."
        )
    hourly = math.ceil(rate_per_s * duration_s / orders_per_hour)
    concurrent = math.ceil(rate_per_s * enrollment_budget_s / concurrent_orders)
    base = max(hourly, concurrent)
    return base + max(1, math.ceil(base * margin))


class AccountPool:
    """Accounts handed out round-robin, never beyond certctl's per-account limits.

    :meth:`lease` returns the next account that has an order slot free (``in_flight +
    stuck < concurrent_orders``) and a token in a client-side copy of certctl's hourly
    bucket (capacity ``orders_per_hour``, full at start, refilled continuously), taking
    the token; ``None`` when no account qualifies (the pool is too small for the rate,
    or failed enrollments left too many orders outstanding). :meth:`release` gives the
    slot back, or marks it stuck when the order may still be outstanding.
    """

    def __init__(
        self,
        accounts: Iterable[AcmeAccount],
        *,
        orders_per_hour: int = 100,
        concurrent_orders: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.accounts = list(accounts)
        if not self.accounts:
            raise ConfigError("an AccountPool needs at least one account.")
        self.orders_per_hour = orders_per_hour
        self.concurrent_orders = concurrent_orders
        self._clock = clock
        now = clock()
        for account in self.accounts:
            account.tokens = float(orders_per_hour)
            account.refilled_at = now
        self._cursor = 0
        self.leases = 0
        self.refusals = 0

    def __len__(self) -> int:
        return len(self.accounts)

    def _has_token(self, account: AcmeAccount, now: float) -> bool:
        if self.orders_per_hour <= 0:
            return True
        capacity = float(self.orders_per_hour)
        account.tokens = min(
            capacity, account.tokens + (now - account.refilled_at) * capacity / 3600.0
        )
        account.refilled_at = now
        return account.tokens >= 1.0

    def lease(self) -> AcmeAccount | None:
        now = self._clock()
        n = len(self.accounts)
        for i in range(n):
            account = self.accounts[(self._cursor + i) % n]
            if self.concurrent_orders > 0 and (
                account.in_flight + account.stuck >= self.concurrent_orders
            ):
                continue
            if not self._has_token(account, now):
                continue
            if self.orders_per_hour > 0:
                account.tokens -= 1.0
            account.in_flight += 1
            self._cursor = (self._cursor + i + 1) % n
            self.leases += 1
            return account
        self.refusals += 1
        return None

    def release(self, account: AcmeAccount, *, order_outstanding: bool = False) -> None:
        account.in_flight -= 1
        if order_outstanding:
            account.stuck += 1

    @classmethod
    async def create(
        cls,
        client: AcmeClient,
        size: int,
        *,
        alg: str = "ES256",
        contact: Sequence[str] = (),
        orders_per_hour: int = 100,
        concurrent_orders: int = 5,
    ) -> AccountPool:
        """Create ``size`` accounts, one fresh key each, before the timed run.

        Raises :class:`AcmeError` naming the first account that could not be created.
        """
        if size < 1:
            raise ConfigError(f"an account pool needs at least one account, not {size}.")
        accounts: list[AcmeAccount] = []
        for index in range(size):
            result = await client.new_account(AccountKey.generate(alg), contact=contact)
            if isinstance(result, AcmeProblem):
                raise AcmeError(
                    f"could not create ACME account {index + 1} of {size} at "
                    f"{client.directory.new_account}: {result}",
                    result,
                )
            accounts.append(result)
        return cls(accounts, orders_per_hour=orders_per_hour, concurrent_orders=concurrent_orders)


# -- the client -------------------------------------------------------------------------------


@dataclass
class Enrollment:
    """What one enrollment did: per-step times (ns), the certificate, or the problem."""

    names: tuple[str, ...]
    timings: dict[str, int] = field(default_factory=dict)
    problem: AcmeProblem | None = None
    order: AcmeOrder | None = None
    csr_der: bytes = b""
    chain_pem: bytes = b""
    cert_id: str = ""
    window: RenewalWindow | None = None
    #: the order may still count toward the concurrent-order cap (created, not settled)
    order_outstanding: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def total_ns(self) -> int:
        return sum(self.timings.values())

    def certificates(self) -> list[x509.Certificate]:
        """The downloaded chain, leaf first."""
        return _pem_certificates(self.chain_pem)


class AcmeClient:
    """One ACME session: a transport, a directory and a Replay-Nonce slot.

    Create one per VU (keep it in ``vu.state``): a VU runs one iteration at a time, so
    the nonce a response hands back is the one its next request signs. Accounts may be
    shared between clients (nonces are not bound to an account in certctl).

    ``headers`` go on every request (certctl's ``/acme/*`` needs the Bearer API key when
    it runs without a dashboard). ``check_authz`` fetches each authorization with a
    POST-as-GET before finalizing (as certbot does); ``poll_attempts`` bounds the order
    polling, ``poll_interval_s`` apart, when finalize answers ``processing`` (certctl
    issues synchronously, so it normally answers ``valid`` at once).
    """

    def __init__(
        self,
        transport: AcmeTransport,
        directory: AcmeDirectory,
        headers: Mapping[str, str] | None = None,
        *,
        check_authz: bool = True,
        csr_key_type: str = "ec-p256",
        poll_attempts: int = 5,
        poll_interval_s: float = 0.2,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        if csr_key_type not in CSR_KEY_TYPES:
            raise ConfigError(
                f"{csr_key_type!r} is not a CSR key type; use one of {', '.join(CSR_KEY_TYPES)}."
            )
        self.transport = transport
        self.directory = directory
        self.headers = dict(headers or {})
        self._post_headers = {**self.headers, "Content-Type": JOSE_JSON}
        self.check_authz = check_authz
        self.csr_key_type = csr_key_type
        self.poll_attempts = poll_attempts
        self.poll_interval_s = poll_interval_s
        self._sleep = sleep
        self._nonce: str | None = None
        #: how often the client had to HEAD newNonce, and retried after a badNonce
        self.nonce_fetches = 0
        self.bad_nonce_retries = 0

    # -- directory ------------------------------------------------------------------------
    @classmethod
    async def open(
        cls,
        transport: AcmeTransport,
        directory_url: str,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> AcmeClient:
        """GET the directory and return a client for it (raises :class:`AcmeError`)."""
        response = await transport.get(
            directory_url,
            headers=dict(headers or {}),
            name=_prefix_template(_path(directory_url).rsplit("/", 1)[0]) + "/directory",
        )
        if response.status_code != 200:
            problem = AcmeProblem.from_response("directory", response, directory_url)
            raise AcmeError(f"GET {directory_url} failed: {problem}", problem)
        directory = AcmeDirectory.from_json(directory_url, response.content)
        client = cls(transport, directory, headers, **options)
        client._keep_nonce(response)
        return client

    # -- nonces ---------------------------------------------------------------------------
    def _keep_nonce(self, response: _Response) -> None:
        self._nonce = _header(response, "replay-nonce") or None

    async def _take_nonce(self, step: str) -> str | AcmeProblem:
        nonce, self._nonce = self._nonce, None
        if nonce:
            return nonce
        self.nonce_fetches += 1
        url = self.directory.new_nonce
        response = await self.transport.head(
            url, headers=self.headers, name=self.directory.name("new-nonce"), expected=(200, 204)
        )
        fresh = _header(response, "replay-nonce")
        if response.status_code in (200, 204) and fresh:
            return fresh
        problem = AcmeProblem.from_response(step, response, url)
        if problem.status in (200, 204):
            problem = AcmeProblem(
                step, problem.status, UNEXPECTED, "newNonce sent no Replay-Nonce", url
            )
        return problem

    async def post(
        self,
        step: str,
        url: str,
        payload: Mapping[str, Any] | None,
        *,
        name: str,
        key: AccountKey,
        kid: str | None,
        expected: Sequence[int] = (200,),
        accept: str | None = None,
    ) -> _Response | AcmeProblem:
        """Sign and POST; a success keeps its Replay-Nonce, an error drops the nonce (certctl
        sends none), and a ``badNonce`` is retried once with a fresh one."""
        headers = self._post_headers if accept is None else {**self._post_headers, "Accept": accept}
        for attempt in (1, 2):
            nonce = await self._take_nonce(step)
            if isinstance(nonce, AcmeProblem):
                return nonce
            body = sign_jws(key, payload, url=url, nonce=nonce, kid=kid)
            response = await self.transport.post(
                url, content=body, headers=headers, name=name, expected=tuple(expected)
            )
            status = response.status_code
            if 200 <= status < 300:
                self._keep_nonce(response)
                return response
            problem = AcmeProblem.from_response(step, response, url)
            if problem.type == BAD_NONCE and attempt == 1:
                self.bad_nonce_retries += 1
                continue
            return problem
        raise AssertionError("unreachable")  # pragma: no cover

    # -- resources ------------------------------------------------------------------------
    async def new_account(
        self, key: AccountKey, *, contact: Sequence[str] = ()
    ) -> AcmeAccount | AcmeProblem:
        payload: dict[str, Any] = {"termsOfServiceAgreed": True}
        if contact:
            payload["contact"] = list(contact)
        url = self.directory.new_account
        response = await self.post(
            "new_account",
            url,
            payload,
            name=self.directory.name("new-account"),
            key=key,
            kid=None,
            expected=(200, 201),
        )
        if isinstance(response, AcmeProblem):
            return response
        kid = _header(response, "location")
        if not kid:
            return AcmeProblem("new_account", response.status_code, UNEXPECTED, "no Location", url)
        return AcmeAccount(key, kid)

    async def new_order(
        self, account: AcmeAccount, names: Sequence[str], *, expected: Sequence[int] = (201,)
    ) -> AcmeOrder | AcmeProblem:
        # certctl compares the identifier type with the CSR case-sensitively: "dns"
        payload = {"identifiers": [{"type": "dns", "value": n.lower()} for n in names]}
        url = self.directory.new_order
        response = await self.post(
            "new_order",
            url,
            payload,
            name=self.directory.name("new-order"),
            key=account.key,
            kid=account.kid,
            expected=expected,
        )
        if isinstance(response, AcmeProblem):
            return response
        location = _header(response, "location")
        order = AcmeOrder.parse(location, _json(response.content))
        if order is None or not location:
            return AcmeProblem(
                "new_order", response.status_code, UNEXPECTED, "no order object or Location", url
            )
        return order

    async def post_as_get(
        self, step: str, account: AcmeAccount, url: str, *, name: str, accept: str | None = None
    ) -> _Response | AcmeProblem:
        return await self.post(
            step, url, None, name=name, key=account.key, kid=account.kid, accept=accept
        )

    async def authorization(self, account: AcmeAccount, url: str) -> dict[str, Any] | AcmeProblem:
        response = await self.post_as_get(
            "authz", account, url, name=self.directory.name("authz/{id}")
        )
        if isinstance(response, AcmeProblem):
            return response
        body = _json(response.content)
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            return AcmeProblem("authz", response.status_code, UNEXPECTED, "no authorization", url)
        return body

    async def finalize(
        self, account: AcmeAccount, order: AcmeOrder, csr_der: bytes
    ) -> AcmeOrder | AcmeProblem:
        response = await self.post(
            "finalize",
            order.finalize,
            {"csr": b64url(csr_der)},
            name=self.directory.name("order/{id}/finalize"),
            key=account.key,
            kid=account.kid,
        )
        if isinstance(response, AcmeProblem):
            return response
        updated = AcmeOrder.parse(order.url, _json(response.content))
        if updated is None:
            return AcmeProblem(
                "finalize", response.status_code, UNEXPECTED, "no order object", order.finalize
            )
        for _ in range(self.poll_attempts):
            if updated.status != "processing":
                break
            await self._sleep(self.poll_interval_s)
            polled = await self.post_as_get(
                "finalize", account, order.url, name=self.directory.name("order/{id}")
            )
            if isinstance(polled, AcmeProblem):
                return polled
            again = AcmeOrder.parse(order.url, _json(polled.content))
            if again is None:
                return AcmeProblem(
                    "finalize", polled.status_code, UNEXPECTED, "no order", order.url
                )
            updated = again
        return updated

    async def certificate(self, account: AcmeAccount, url: str) -> bytes | AcmeProblem:
        response = await self.post_as_get(
            "certificate", account, url, name=self.directory.name("cert/{id}"), accept=PEM_CHAIN
        )
        if isinstance(response, AcmeProblem):
            return response
        media = _media_type(response)
        if media != PEM_CHAIN or b"-----BEGIN CERTIFICATE-----" not in response.content:
            return AcmeProblem(
                "certificate",
                response.status_code,
                UNEXPECTED,
                f"expected {PEM_CHAIN} with a PEM chain, got {media or 'no content type'}",
                url,
            )
        return response.content

    async def renewal_info(self, cert_id: str) -> RenewalWindow | AcmeProblem:
        base = self.directory.renewal_info
        if base is None:
            return AcmeProblem("ari", 0, UNEXPECTED, "the directory has no renewalInfo", "")
        url = f"{base.rstrip('/')}/{cert_id}"
        response = await self.transport.get(
            url,
            headers=self.headers,
            name=self.directory.name("renewal-info/{id}"),
            expected=(200,),
        )
        if response.status_code != 200:
            return AcmeProblem.from_response("ari", response, url)
        body = _json(response.content)
        window = body.get("suggestedWindow") if isinstance(body, dict) else None
        start = _rfc3339(window.get("start")) if isinstance(window, dict) else None
        end = _rfc3339(window.get("end")) if isinstance(window, dict) else None
        if start is None or end is None or end <= start:
            return AcmeProblem(
                "ari", 200, UNEXPECTED, f"no valid suggestedWindow: {body!r:.120}", url
            )
        return RenewalWindow(start, end, _header(response, "retry-after"))

    # -- the whole flow -------------------------------------------------------------------
    async def enroll(self, account: AcmeAccount, names: Sequence[str]) -> Enrollment:
        """new-order → authz → CSR → finalize → certificate → ARI, each step timed.

        Stops at the first problem (``Enrollment.problem``); never raises for a server
        answer. ``order_outstanding`` tells the pool whether the order may still count
        toward the account's concurrent-order cap.
        """
        clock = time.perf_counter_ns
        result = Enrollment(tuple(n.lower() for n in names))
        timings = result.timings

        t = clock()
        order = await self.new_order(account, result.names)
        timings["new_order"] = clock() - t
        if isinstance(order, AcmeProblem):
            # no answer at all: the server may have created the order anyway
            result.order_outstanding = order.status == 0
            result.problem = order
            return result
        result.order = order
        result.order_outstanding = True

        if self.check_authz:
            t = clock()
            for url in order.authorizations:
                authz = await self.authorization(account, url)
                if isinstance(authz, AcmeProblem):
                    result.problem = authz
                    break
                if authz["status"] != "valid":
                    result.problem = AcmeProblem(
                        "authz",
                        200,
                        UNEXPECTED,
                        f"authorization is {authz['status']!r}, not 'valid': the profile is in "
                        "challenge mode, which this client does not solve (use a "
                        "trust_authenticated profile)",
                        url,
                    )
                    break
            timings["authz"] = clock() - t
            if result.problem is not None:
                return result
        if order.status != "ready":
            result.problem = AcmeProblem(
                "new_order", 201, UNEXPECTED, f"order is {order.status!r}, not 'ready'", order.url
            )
            return result

        t = clock()
        result.csr_der, _ = make_csr(result.names, key_type=self.csr_key_type)
        timings["csr"] = clock() - t

        t = clock()
        final = await self.finalize(account, order, result.csr_der)
        timings["finalize"] = clock() - t
        if isinstance(final, AcmeProblem):
            result.problem = final
            return result
        result.order = final
        result.order_outstanding = final.status in ("pending", "ready", "processing")
        if final.status != "valid" or final.certificate is None:
            error = f": {final.error}" if final.error else ""
            result.problem = AcmeProblem(
                "finalize",
                200,
                UNEXPECTED,
                f"order is {final.status!r} after finalize, not 'valid' with a certificate{error}",
                final.url,
            )
            return result

        t = clock()
        chain = await self.certificate(account, final.certificate)
        timings["certificate"] = clock() - t
        if isinstance(chain, AcmeProblem):
            result.problem = chain
            return result
        result.chain_pem = chain

        t = clock()
        try:
            leaf = _pem_certificates(chain)[0]
            result.cert_id = ari_cert_id(leaf)
        except (ValueError, IndexError, ConfigError) as exc:
            timings["ari"] = clock() - t
            result.problem = AcmeProblem("ari", 0, UNEXPECTED, f"unusable certificate: {exc}")
            return result
        window = await self.renewal_info(result.cert_id)
        timings["ari"] = clock() - t
        if isinstance(window, AcmeProblem):
            result.problem = window
        else:
            result.window = window
        return result


# -- recording ---------------------------------------------------------------------------------


class _VULike(Protocol):
    current_lag_ns: int

    def trend(self, name: str, value_ns: int, tags: Mapping[str, str] | None = None) -> None: ...

    def rate(self, name: str, ok: bool, tags: Mapping[str, str] | None = None) -> None: ...

    def counter(
        self, name: str, value: float = 1, tags: Mapping[str, str] | None = None
    ) -> None: ...


@dataclass
class EnrollmentMetrics:
    """The custom metrics of an enrollment scenario and how one enrollment is recorded.

    * ``acme_<step>_duration`` (time Trends): the step's own time, from its first request
      to its last answer (a nonce fetch or a badNonce retry it needed included);
    * ``acme_enroll_duration``: the whole enrollment **from its intended start** (the
      schedule lag added, as ``http_req_duration`` does), recorded for successes only;
    * ``acme_enroll_ok`` (Rate): enrollments that got a certificate and an ARI window;
    * ``acme_problems`` (Counter) tagged ``step``, ``status`` and ``problem`` (the
      problem type's last segment): one series per problem type.

    :meth:`record` also remembers the first detail of each (step, status, type) so a
    failing test can say what the server answered (:meth:`explain`).
    """

    prefix: str = "acme"
    details: dict[tuple[str, int, str], str] = field(default_factory=dict)

    def trend_name(self, step: str) -> str:
        return f"{self.prefix}_{step}_duration"

    @property
    def ok_name(self) -> str:
        return f"{self.prefix}_enroll_ok"

    @property
    def problems_name(self) -> str:
        return f"{self.prefix}_problems"

    @property
    def total_name(self) -> str:
        return f"{self.prefix}_enroll_duration"

    @property
    def metrics(self) -> dict[str, str]:
        """Name -> kind, for ``Scenario(metrics=...)``."""
        out = {self.trend_name(step): "time" for step in ENROLL_STEPS}
        out[self.total_name] = "time"
        out[self.ok_name] = "rate"
        out[self.problems_name] = "counter"
        return out

    def record(self, vu: _VULike, enrollment: Enrollment) -> None:
        for step, ns in enrollment.timings.items():
            vu.trend(self.trend_name(step), ns)
        vu.rate(self.ok_name, enrollment.ok)
        if enrollment.problem is None:
            vu.trend(self.total_name, enrollment.total_ns + vu.current_lag_ns)
        else:
            self.record_problem(vu, enrollment.problem)

    def record_problem(self, vu: _VULike, problem: AcmeProblem) -> None:
        key = (problem.step, problem.status, problem.type)
        if key not in self.details and len(self.details) < 50:
            self.details[key] = str(problem)
        tags = {"step": problem.step, "status": str(problem.status), "problem": problem.short_type}
        vu.counter(self.problems_name, 1, tags)

    def tally(self, store: Any) -> list[tuple[int, str, int, str]]:
        """(count, step, status, problem) per series of the problems Counter, in the order
        of the enrollment's steps (a refused lease, usually a consequence, last)."""
        rows: list[tuple[int, str, int, str]] = []
        series = store.series(self.problems_name) if self.problems_name in store.names() else {}
        for tags, sink in series.items():
            t = dict(tags)
            status = t.get("status", "0")
            rows.append(
                (
                    int(sink.count),
                    t.get("step", "?"),
                    int(status) if status.isdigit() else 0,
                    t.get("problem", "?"),
                )
            )
        order = {step: i for i, step in enumerate((*ENROLL_STEPS, "lease"))}
        rows.sort(key=lambda r: (order.get(r[1], len(order)), -r[0]))
        return rows

    def _detail(self, step: str, status: int, short: str) -> str:
        for (s, st, ty), detail in self.details.items():
            if s == step and st == status and ty.rsplit(":", 1)[-1] == short:
                return detail
        return ""

    def explain(self, store: Any) -> str:
        """A message naming every failing step with its status, problem type and count
        (empty when no enrollment failed)."""
        rows = self.tally(store)
        if not rows:
            return ""
        ok = store.select(self.ok_name, {}) if self.ok_name in store.names() else None
        total = getattr(ok, "total", 0)
        of = f" of {total:,} enrollments" if total else ""
        lines = ["ACME enrollments failed:"]
        for count, step, status, short in rows:
            detail = self._detail(step, status, short)
            lines.append(
                f"  - {count:,}{of} at step {step}: HTTP {status}, {short}"
                + (f" -- {detail}" if detail else "")
            )
        if any(r[1] == "finalize" and r[2] >= 500 for r in rows):
            lines.append(
                "  finalize answered 5xx: certctl's finalize is known to fail (contract §3.6): "
                "it picks the issuer at random among every enabled issuer (leave only "
                "iss-local enabled) and inserts the certificate with empty owner/team/"
                "renewal-policy foreign keys (pre-insert rows with empty ids)."
            )
        if any(r[3] == POOL_EXHAUSTED.rsplit(":", 1)[-1] for r in rows):
            lines.append(
                "  accountPoolExhausted: every account had 5 orders outstanding or no order "
                "token left; orders of failed enrollments stay ready/processing and count "
                "toward certctl's concurrent-order cap, so this usually follows another problem."
            )
        return "\n".join(lines)


def lease_problem() -> AcmeProblem:
    """The problem recorded when :meth:`AccountPool.lease` finds no usable account."""
    return AcmeProblem(
        "lease",
        0,
        POOL_EXHAUSTED,
        "no account with a free order slot and an order token: the pool is too small for "
        "the rate, or failed enrollments left orders outstanding",
    )


_run_tag = itertools.count()


def unique_dns_names(domain: str = "acme.certload.example.com") -> Callable[[], str]:
    """A generator of DNS names no other run has used: ``e<n>-<run>.<domain>``."""
    run = f"{int(time.time()) % 46_656:x}{secrets.token_hex(2)}{next(_run_tag)}"
    counter = itertools.count(1)
    return lambda: f"e{next(counter)}-{run}.{domain}"
