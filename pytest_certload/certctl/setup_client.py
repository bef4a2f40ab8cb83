""":class:`CertctlSetup`: a synchronous client for the few calls made before a load starts.

Read the ACME directory, list the seeded rows: one-off calls, not measured. Its TLS
context comes from the project's one client policy
(:func:`~pytest_certload.http.tls.client_context`). Imports no pytest; httpx is
imported when a client is made.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import AcmeError, CertctlError, ConfigError
from ..http.tls import VerifyTypes, client_context
from .acme.directory import AcmeDirectory
from .acme.problems import ACME_ERROR
from .ratelimit import is_api_rate_limit
from .responses import json_object
from .routes import AGENTS, CERTIFICATES, acme_directory_path, bearer

if TYPE_CHECKING:
    import httpx

__all__ = ["CertctlSetup"]

_SERVER_INTERNAL = ACME_ERROR + "serverInternal"


def _is_server_internal(response: httpx.Response) -> bool:
    """A 500 problem document of type serverInternal."""
    if response.status_code != 500:
        return False
    body = json_object(response.content)
    return body is not None and body.get("type") == _SERVER_INTERNAL


class CertctlSetup:
    """A synchronous httpx client for one-off calls before a load starts.

    ``verify`` is what :func:`~pytest_certload.http.tls.client_context` takes (True for
    the system trust store, False, a CA bundle path, or an ``ssl.SSLContext``, which
    httpx may modify: give a fresh one). Every method raises :class:`CertctlError` with
    the URL, status and body when certctl answers something unexpected.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        verify: VerifyTypes = True,
        timeout_s: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.headers = bearer(token)
        self._client = client or httpx.Client(verify=client_context(verify), timeout=timeout_s)

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

    def acme_directory(self, profile: str) -> AcmeDirectory:
        """Read the profile's ACME directory once."""
        import httpx

        url = self.url(acme_directory_path(profile))
        try:
            response = self._client.get(url, headers=self.headers)
        except httpx.HTTPError as exc:
            raise CertctlError(f"GET {url} failed: {exc!r}") from exc
        if response.status_code == 404 or _is_server_internal(response):
            # certctl answers an unknown profile with 500 serverInternal (the not-found
            # branch never runs); the 404 is what its code intends
            why = (
                ", certctl's answer for a profile it does not have "
                "(internal/repository/postgres/profile.go::scanProfile wraps sql.ErrNoRows, "
                "so internal/service/acme.go::resolveProfile never reports not found)"
                if response.status_code == 500
                else ""
            )
            raise CertctlError(
                f"certctl has no ACME profile {profile!r} ({url} answered "
                f"{response.status_code}: {response.text[:200]!r}{why}); pick one of its "
                "certificate profiles by overriding the certload_acme_profile fixture (the "
                "demo seed has prof-standard-tls; prof-test is not seeded anywhere)."
            )
        if response.status_code != 200:
            raise CertctlError(self._explain("GET", url, response))
        try:
            return AcmeDirectory.from_json(url, response.content)
        except AcmeError as exc:
            raise CertctlError(str(exc)) from None

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
