"""certctl's REST and unauthenticated ACME surface, as the load scenarios use it.

Helpers for what an iteration function does many times a second -- URL templates,
payloads, response checks, telling certctl's two kinds of 429 apart (all pure), and
:class:`AcmeSurface`, one walk over the unauthenticated ACME endpoints on a VU's
recording client -- and :class:`CertctlSetup`, a small synchronous httpx client for the
few one-off calls a test makes before its load starts (read the ACME directory, list
the seeded rows). No pytest imports.

The facts encoded here are certctl's, not the double's: the API 429 is Go's
``http.Error`` (text/plain, a JSON-looking body, ``Retry-After: 1``); the ACME 429 is an
RFC 7807 problem document without ``Retry-After``; a certificate ``name`` is globally
unique and a duplicate is a 500; an omitted ``expires_at`` is stored as the zero time,
which the renewal scan then flips to Expired.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import quote

from ..errors import CertctlError, ConfigError

if TYPE_CHECKING:
    import ssl

    import httpx

    from ..engine import VU, RunResult

__all__ = [
    "ACME_DIRECTORY",
    "ACME_NEW_NONCE",
    "ACME_RATE_LIMITED",
    "ACME_RENEWAL_INFO",
    "AGENTS",
    "AGENT_HEARTBEAT",
    "API_RATE_LIMITED",
    "ARI_PROBE_EXPECTED",
    "ARI_PROBE_ID",
    "AUTH_CHECK",
    "BULK_RENEW",
    "CERTIFICATES",
    "DEMO_FOREIGN_KEYS",
    "FAR_FUTURE_EXPIRY",
    "JOBS",
    "RATE_LIMITED_COUNTER",
    "AcmeEndpoints",
    "AcmeSurface",
    "BulkRenewResult",
    "CertctlError",
    "CertctlSetup",
    "ResponseLike",
    "Rotation",
    "UniqueNames",
    "acme_directory_path",
    "acme_rate_limit_shape_ok",
    "batches",
    "bearer",
    "certificate_payload",
    "classify_429",
    "count_rate_limit",
    "expand",
    "heartbeat_body",
    "is_api_rate_limit",
    "parse_bulk_renew",
    "rate_limit_storm",
]

# -- paths: URL templates, also used as the ``name`` tag of the requests -----------------

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

#: rows of certctl's demo seed (CERTCTL_DEMO_SEED=true) a certificate must point at
DEMO_FOREIGN_KEYS: Mapping[str, str] = {
    "issuer_id": "iss-local",
    "owner_id": "o-alice",
    "team_id": "t-platform",
    "renewal_policy_id": "rp-standard",
}

#: far outside every renewal window: certctl stores an omitted expires_at as
#: 0001-01-01, and its renewal scan (at boot, then hourly) would flip such rows to
#: Expired and queue jobs and alerts
FAR_FUTURE_EXPIRY = "2099-12-31T00:00:00Z"

#: what :func:`classify_429` returns
API_RATE_LIMITED = "certctl-api"
ACME_RATE_LIMITED = "acme"
_OTHER_429 = "other"
#: Counter of certctl API-limiter 429s (see :func:`count_rate_limit`)
RATE_LIMITED_COUNTER = "certctl_rate_limited"
_ACME_RATE_LIMITED_TYPE = "urn:ietf:params:acme:error:rateLimited"


T = TypeVar("T")


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


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of certctl's API keys (ACME routes need it too when
    certctl runs without a dashboard)."""
    if not token:
        raise ConfigError("certctl's API needs an API key, but the token is empty.")
    return {"Authorization": f"Bearer {token}"}


# -- payloads -----------------------------------------------------------------------------


def _run_id() -> str:
    return _base36(time.time_ns() // 1_000_000_000) + secrets.token_hex(2)


@dataclass
class UniqueNames:
    """Certificate names no other run has used: ``<prefix>-<run>-<n>``.

    certctl's ``name`` is globally UNIQUE and a duplicate is a 500 (not a 409), so a
    run against a database that outlives it must never repeat one. ``run`` defaults to
    the start time in base 36 plus four random hex digits; names stay valid hostname
    labels, so ``<name>.example.test`` is a valid common name.
    """

    prefix: str = "loadtest-issuance"
    run: str = field(default_factory=_run_id)
    _counter: Iterator[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._counter = itertools.count(1)
        for part, what in ((self.prefix, "prefix"), (self.run, "run id")):
            if not part or not all(c.isascii() and (c.isalnum() or c == "-") for c in part):
                raise ConfigError(
                    f"{part!r} is not a valid certificate name {what}; use letters, digits "
                    "and '-', e.g. 'loadtest-issuance'."
                )
            if part.startswith("-") or part.endswith("-"):
                raise ConfigError(f"{part!r} must not start or end with '-' ({what}).")

    def next(self) -> str:
        return f"{self.prefix}-{self.run}-{next(self._counter)}"


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def certificate_payload(
    name: str,
    *,
    domain: str = "example.test",
    environment: str = "production",
    expires_at: str = FAR_FUTURE_EXPIRY,
    foreign_keys: Mapping[str, str] = DEMO_FOREIGN_KEYS,
) -> dict[str, Any]:
    """The body of ``POST /api/v1/certificates``, as certctl's k6 script sends it, plus
    the two things that keep a load-test row inert: a unique name and a far-future
    ``expires_at``."""
    common_name = f"{name}.{domain}"
    return {
        "name": name,
        "common_name": common_name,
        **foreign_keys,
        "environment": environment,
        "sans": [common_name],
        "expires_at": expires_at,
    }


def heartbeat_body(agent: Mapping[str, Any]) -> bytes:
    """What certctl's agent sends with every heartbeat (its five metadata fields).

    Empty values leave the stored ones alone, so a row from the agent list can be
    echoed back unchanged.
    """
    fields = ("version", "hostname", "os", "architecture", "ip_address")
    return json.dumps({f: str(agent.get(f) or "") for f in fields}).encode()


# -- responses ----------------------------------------------------------------------------


class ResponseLike(Protocol):
    """What the checks read: the engine's responses and httpx's both fit."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...


def _header(response: ResponseLike, name: str) -> str:
    value = response.headers.get(name)
    if value is None:  # a plain dict (a failed request) is case-sensitive
        lowered = name.lower()
        value = next((v for k, v in response.headers.items() if k.lower() == lowered), "")
    return value


def _media_type(response: ResponseLike) -> str:
    return _header(response, "content-type").split(";", 1)[0].strip().lower()


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def is_api_rate_limit(response: ResponseLike) -> bool:
    """True for certctl's API limiter answer: 429, ``Retry-After: 1``, text/plain
    (``http.Error`` overrides the JSON content type) and ``{"error": ...}`` as text."""
    if response.status_code != 429 or _media_type(response) != "text/plain":
        return False
    if _header(response, "retry-after").strip() != "1":
        return False
    body = _json_object(response.content)
    return body is not None and "error" in body


def acme_rate_limit_shape_ok(response: ResponseLike) -> bool:
    """True for certctl's ACME 429 exactly: ``application/problem+json`` whose body has
    ``type`` ``urn:ietf:params:acme:error:rateLimited`` and ``status`` 429."""
    if response.status_code != 429 or _media_type(response) != "application/problem+json":
        return False
    body = _json_object(response.content)
    return (
        body is not None
        and body.get("type") == _ACME_RATE_LIMITED_TYPE
        and body.get("status") == 429
        and isinstance(body.get("detail"), str)
    )


def classify_429(response: ResponseLike) -> str | None:
    """``None`` unless the status is 429; else :data:`API_RATE_LIMITED` (certctl's API
    limiter), :data:`ACME_RATE_LIMITED` (the RFC 7807 ACME answer) or ``"other"``."""
    if response.status_code != 429:
        return None
    if is_api_rate_limit(response):
        return API_RATE_LIMITED
    if acme_rate_limit_shape_ok(response):
        return ACME_RATE_LIMITED
    return _OTHER_429


@dataclass(frozen=True)
class BulkRenewResult:
    """The counters of a ``POST /api/v1/certificates/bulk-renew`` answer."""

    total_matched: int
    total_enqueued: int
    total_skipped: int
    total_failed: int
    enqueued_jobs: int = 0
    errors: tuple[str, ...] = ()

    @property
    def consistent(self) -> bool:
        """Every matched certificate was enqueued, skipped or failed, and one job was
        listed per enqueued certificate."""
        accounted = self.total_enqueued + self.total_skipped + self.total_failed
        return accounted == self.total_matched and self.enqueued_jobs == self.total_enqueued


def parse_bulk_renew(body: bytes | Mapping[str, Any]) -> BulkRenewResult:
    """Parse a bulk-renew answer; :class:`ValueError` names what is missing or wrong."""
    data = _json_object(body) if isinstance(body, bytes) else dict(body)
    if data is None:
        raise ValueError(f"bulk-renew answer is not a JSON object: {body!r:.120}")
    totals: dict[str, int] = {}
    for key in ("total_matched", "total_enqueued", "total_skipped", "total_failed"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"bulk-renew answer has {key}={value!r}; expected a count")
        totals[key] = value
    jobs = data.get("enqueued_jobs") or []
    errors = data.get("errors") or []
    if not isinstance(jobs, list) or not isinstance(errors, list):
        raise ValueError("bulk-renew answer has enqueued_jobs or errors that are not lists")
    messages = tuple(
        f"{e.get('certificate_id', '?')}: {e.get('error', '?')}" if isinstance(e, dict) else str(e)
        for e in errors
    )
    return BulkRenewResult(**totals, enqueued_jobs=len(jobs), errors=messages)


def count_rate_limit(vu: VU, response: ResponseLike) -> str | None:
    """Classify a 429 (see :func:`classify_429`) and add certctl's API-limiter ones to the
    :data:`RATE_LIMITED_COUNTER` Counter that :func:`rate_limit_storm` reads. Costs one
    integer comparison for any other status."""
    if response.status_code != 429:
        return None
    kind = classify_429(response)
    if kind == API_RATE_LIMITED:
        vu.counter(RATE_LIMITED_COUNTER)
    return kind


def rate_limit_storm(
    result: RunResult, *, counter: str = RATE_LIMITED_COUNTER, max_share: float = 0.05
) -> str | None:
    """A message when more than ``max_share`` of the run's responses were certctl's API
    429 (counted by the scenarios in ``counter``), else None.

    certctl's API limiter is on by default (50 rps, burst 100) and keyed by client IP,
    so one load generator shares a single bucket: a latency verdict on such a run would
    measure the limiter, not certctl.
    """
    from ..metrics import CounterSink

    limited = result.store.select(counter, {})
    requests = result.store.select("http_reqs", {})
    if not isinstance(limited, CounterSink) or not isinstance(requests, CounterSink):
        return None
    if not requests.count or limited.count <= max_share * requests.count:
        return None
    return (
        f"{int(limited.count):,} of {int(requests.count):,} responses "
        f"({limited.count / requests.count:.1%}, limit {max_share:.0%}) were certctl's API "
        "rate limiter (429, Retry-After: 1): the run measured the limiter, not certctl. "
        "Start certctl with CERTCTL_RATE_LIMIT_ENABLED=false, or raise "
        "CERTCTL_RATE_LIMIT_RPS and CERTCTL_RATE_LIMIT_BURST above the scenario's rate "
        "(the bucket is per client IP, so every scenario of this host shares it)."
    )


# -- ACME -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcmeEndpoints:
    """The URLs of one ACME profile's unauthenticated surface, read from its directory."""

    directory: str
    new_nonce: str
    renewal_info: str | None

    @classmethod
    def from_directory(cls, directory_url: str, body: bytes | Mapping[str, Any]) -> AcmeEndpoints:
        data = _json_object(body) if isinstance(body, bytes) else dict(body)
        if data is None:
            shown = body[:80] if isinstance(body, bytes) else body
            raise CertctlError(
                f"the ACME directory at {directory_url} is not a JSON object ({shown!r}); "
                "a certctl started from a directory that has web/ serves its dashboard "
                "for /acme/*: start it from a directory without web/."
            )
        nonce = data.get("newNonce")
        if not isinstance(nonce, str) or not nonce:
            raise CertctlError(f"the ACME directory at {directory_url} has no newNonce URL.")
        ari = data.get("renewalInfo")
        return cls(directory_url, nonce, ari if isinstance(ari, str) and ari else None)

    def renewal_info_probe(self, cert_id: str = ARI_PROBE_ID) -> str:
        """The renewal-info URL of a certificate id (the probe id by default)."""
        if self.renewal_info is None:
            raise CertctlError(
                f"the ACME directory at {self.directory} advertises no renewalInfo; enable "
                "ARI (CERTCTL_ACME_SERVER_ARI_ENABLED=true, certctl's default)."
            )
        return f"{self.renewal_info.rstrip('/')}/{cert_id}"


class AcmeSurface:
    """One pass over the unauthenticated ACME surface, as certctl's k6 scripts walk it.

    :meth:`walk` GETs the directory and reads it (as an ACME client would, every
    time), HEADs ``newNonce`` and GETs ``renewalInfo`` + ``/aaaa.bbbb``, whose 400 or
    404 is the expected answer, not a failed request. Each step's wall time goes into
    a time Trend (``trends``: directory, new-nonce, renewal-info) and each step records
    a check. The walk stops early at a 429 (a client backs off) or at a directory it
    cannot use, and returns the responses it got.
    """

    def __init__(
        self,
        directory_url: str,
        headers: Mapping[str, str],
        *,
        trends: tuple[str, str, str] = (
            "directory_duration",
            "new_nonce_duration",
            "renewal_info_duration",
        ),
    ) -> None:
        self.directory_url = directory_url
        self.headers = dict(headers)
        self.trends = trends

    @property
    def metrics(self) -> dict[str, str]:
        """The custom metrics to declare on the scenario."""
        return dict.fromkeys(self.trends, "time")

    async def walk(self, vu: VU) -> list[ResponseLike]:
        directory_trend, nonce_trend, ari_trend = self.trends
        got: list[ResponseLike] = []
        started = time.perf_counter_ns()
        response = await vu.http.get(self.directory_url, headers=self.headers, name=ACME_DIRECTORY)
        vu.trend(directory_trend, time.perf_counter_ns() - started)
        got.append(response)
        if not vu.check("directory 200", response.status_code == 200):
            return got
        try:
            endpoints = AcmeEndpoints.from_directory(self.directory_url, response.content)
            renewal_info = endpoints.renewal_info_probe()
        except CertctlError:
            vu.check("directory lists newNonce and renewalInfo", False)
            return got
        started = time.perf_counter_ns()
        response = await vu.http.head(
            endpoints.new_nonce, headers=self.headers, name=ACME_NEW_NONCE
        )
        vu.trend(nonce_trend, time.perf_counter_ns() - started)
        got.append(response)
        if response.status_code == 429:
            return got
        vu.check(
            "new-nonce 200 with Replay-Nonce",
            response.status_code == 200 and bool(_header(response, "replay-nonce")),
        )
        started = time.perf_counter_ns()
        response = await vu.http.get(
            renewal_info, headers=self.headers, name=ACME_RENEWAL_INFO, expected=ARI_PROBE_EXPECTED
        )
        vu.trend(ari_trend, time.perf_counter_ns() - started)
        got.append(response)
        if response.status_code != 429:
            vu.check("renewal-info 400 or 404", response.status_code in ARI_PROBE_EXPECTED)
        return got


# -- setup calls ----------------------------------------------------------------------------


class CertctlSetup:
    """A synchronous httpx client for one-off calls before a load starts.

    ``verify`` is what httpx takes (a fresh ``ssl.SSLContext``, a CA bundle path, or a
    bool). Every method raises :class:`CertctlError` with the URL, status and body when
    certctl answers something unexpected.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        verify: ssl.SSLContext | str | bool = True,
        timeout_s: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.headers = bearer(token)
        self._client = client or httpx.Client(verify=verify, timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CertctlSetup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return self.base_url + path

    def get(self, path: str, *, params: Mapping[str, str | int] | None = None) -> Any:
        """GET ``path`` and return its JSON; anything but 200 is a :class:`CertctlError`."""
        import httpx

        url = self.url(path)
        try:
            response = self._client.get(url, params=params, headers=self.headers)
        except httpx.HTTPError as exc:
            raise CertctlError(f"GET {url} failed: {exc!r}") from exc
        if response.status_code != 200:
            raise CertctlError(self._explain("GET", url, response))
        try:
            return response.json()
        except ValueError:
            raise CertctlError(
                f"GET {url} answered 200 but not JSON: {response.text[:200]!r}"
            ) from None

    def _explain(self, method: str, url: str, response: httpx.Response) -> str:
        text = f"{method} {url} answered {response.status_code}: {response.text[:300]!r}"
        if response.status_code == 401:
            text += "; check the API key (--certctl-token)"
        elif is_api_rate_limit(response):
            text += "; certctl's API rate limiter refused it: set CERTCTL_RATE_LIMIT_ENABLED=false"
        return text

    def paged(
        self, path: str, *, params: Mapping[str, str | int] | None = None, per_page: int = 500
    ) -> Iterator[dict[str, Any]]:
        """Every item of a certctl paged list (page/per_page; cursor mode is broken).

        Stops at ``total`` or at the first short page, whichever comes first.
        """
        if not 1 <= per_page <= 500:
            raise ConfigError(
                f"per_page={per_page} would silently become 50 in certctl; use 1 to 500."
            )
        seen = 0
        for page in itertools.count(1):
            body = self.get(path, params={**(params or {}), "page": page, "per_page": per_page})
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise CertctlError(
                    f"GET {self.url(path)} did not return a paged list: {body!r:.200}"
                )
            yield from (item for item in data if isinstance(item, dict))
            seen += len(data)
            total = body.get("total")
            if len(data) < per_page or (isinstance(total, int) and seen >= total):
                return

    def acme_endpoints(self, profile: str) -> AcmeEndpoints:
        """Read the profile's ACME directory once."""
        import httpx

        url = self.url(acme_directory_path(profile))
        try:
            response = self._client.get(url, headers=self.headers)
        except httpx.HTTPError as exc:
            raise CertctlError(f"GET {url} failed: {exc!r}") from exc
        if response.status_code == 404:
            raise CertctlError(
                f"certctl has no ACME profile {profile!r} ({url} answered 404: "
                f"{response.text[:200]!r}); pick one of its certificate profiles (the demo "
                "seed has prof-standard-tls; prof-test is not seeded anywhere)."
            )
        if response.status_code != 200:
            raise CertctlError(self._explain("GET", url, response))
        return AcmeEndpoints.from_directory(url, response.content)

    def certificate_ids(
        self, name_prefix: str, *, status: str = "Active", limit: int | None = None
    ) -> list[str]:
        """Ids of certificates whose name starts with ``name_prefix``, in name order.

        ``status`` is certctl's exact, case-sensitive filter (``Active`` matches,
        ``active`` does not).
        """
        params: dict[str, str | int] = {"status": status, "sort": "name", "fields": "id,name"}
        ids: list[str] = []
        for item in self.paged(CERTIFICATES, params=params):
            if str(item.get("name", "")).startswith(name_prefix):
                ids.append(str(item["id"]))
                if limit is not None and len(ids) >= limit:
                    break
        return ids

    def agents(self, name_prefix: str) -> list[dict[str, Any]]:
        """Non-retired agents whose name starts with ``name_prefix``, in name order."""
        found = [
            item
            for item in self.paged(AGENTS)
            if str(item.get("name", "")).startswith(name_prefix) and item.get("id")
        ]
        return sorted(found, key=lambda item: str(item["name"]))


class Rotation(Generic[T]):
    """Hands out ``items`` in order and starts over after the last one.

    ``laps`` counts completed passes, so a caller can tell a fresh item from a reused
    one (``rotation.laps == 0``). Safe for the engine's one-thread event loop.
    """

    def __init__(self, items: Sequence[T], *, what: str = "items") -> None:
        if not items:
            raise ConfigError(f"nothing to rotate over: no {what} were found.")
        self._items = tuple(items)
        self._next = 0
        self.laps = 0

    def __len__(self) -> int:
        return len(self._items)

    def next(self) -> T:
        item = self._items[self._next]
        self._next += 1
        if self._next == len(self._items):
            self._next = 0
            self.laps += 1
        return item


def batches(items: Sequence[str], size: int) -> list[tuple[str, ...]]:
    """``items`` cut into consecutive tuples of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ConfigError(f"{size!r} is not a valid batch size; use 1 or more.")
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]
