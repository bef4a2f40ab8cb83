"""The JWS-signing ACME client (RFC 8555 + ARI, RFC 9773): one session per VU.

It runs on top of a VU's recording HTTP client (``vu.http``), so every request is
measured and tagged with a URL template (``/acme/profile/{profile}/new-order``), or on
anything with the same ``get``/``head``/``post`` shape (:class:`~.transport.PlainTransport`
adapts an engine :class:`~pytest_certload.http.Client` for setup code). Imports no
pytest.

The facts it encodes are certctl's:

* a nonce is consumed before the signature is checked, and **error responses carry no
  Replay-Nonce** (certctl's ``internal/api/acme/jws.go``, ``VerifyJWS``): after any
  error the client fetches a fresh nonce with ``HEAD newNonce``; a ``badNonce`` is
  retried once with a fresh nonce (RFC 8555 §6.5);
* with ``trust_authenticated`` (every seeded profile) a new order is ``ready`` at once
  (``internal/service/acme.go::CreateOrder``).

Failures never raise out of an iteration: every step returns its result or an
:class:`~.problems.AcmeProblem` naming the step, the HTTP status and the problem type.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio

from ...errors import AcmeError, ConfigError
from ..responses import ResponseLike, header, json_value, media_type
from .csr import ari_cert_id, check_csr_key_type, make_csr, pem_certificates
from .directory import AcmeDirectory, route_prefix
from .jose import AccountKey, b64url, sign_jws
from .models import AcmeAccount, AcmeOrder, Enrollment, RenewalWindow
from .problems import BAD_NONCE, UNEXPECTED, AcmeProblem
from .transport import AcmeTransport

__all__ = ["JOSE_JSON", "PEM_CHAIN", "AcmeClient"]

JOSE_JSON = "application/jose+json"
PEM_CHAIN = "application/pem-certificate-chain"


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
        check_csr_key_type(csr_key_type)
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
            name=route_prefix(directory_url) + "/directory",
        )
        if response.status_code != 200:
            problem = AcmeProblem.from_response("directory", response, directory_url)
            raise AcmeError(f"GET {directory_url} failed: {problem}", problem)
        directory = AcmeDirectory.from_json(directory_url, response.content)
        client = cls(transport, directory, headers, **options)
        client._keep_nonce(response)
        return client

    # -- nonces ---------------------------------------------------------------------------
    def _keep_nonce(self, response: ResponseLike) -> None:
        self._nonce = header(response, "replay-nonce") or None

    async def _take_nonce(self, step: str) -> str | AcmeProblem:
        nonce, self._nonce = self._nonce, None
        if nonce:
            return nonce
        self.nonce_fetches += 1
        url = self.directory.new_nonce
        response = await self.transport.head(
            url, headers=self.headers, name=self.directory.name("new-nonce"), expected=(200, 204)
        )
        fresh = header(response, "replay-nonce")
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
    ) -> ResponseLike | AcmeProblem:
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
        kid = header(response, "location")
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
        location = header(response, "location")
        order = AcmeOrder.parse(location, json_value(response.content))
        if order is None or not location:
            return AcmeProblem(
                "new_order", response.status_code, UNEXPECTED, "no order object or Location", url
            )
        return order

    async def post_as_get(
        self, step: str, account: AcmeAccount, url: str, *, name: str, accept: str | None = None
    ) -> ResponseLike | AcmeProblem:
        return await self.post(
            step, url, None, name=name, key=account.key, kid=account.kid, accept=accept
        )

    async def authorization(self, account: AcmeAccount, url: str) -> dict[str, Any] | AcmeProblem:
        response = await self.post_as_get(
            "authz", account, url, name=self.directory.name("authz/{id}")
        )
        if isinstance(response, AcmeProblem):
            return response
        body = json_value(response.content)
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
        updated = AcmeOrder.parse(order.url, json_value(response.content))
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
            again = AcmeOrder.parse(order.url, json_value(polled.content))
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
        media = media_type(response)
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
        if self.directory.renewal_info is None:
            return AcmeProblem("ari", 0, UNEXPECTED, "the directory has no renewalInfo", "")
        url = self.directory.renewal_info_url(cert_id)
        response = await self.transport.get(
            url,
            headers=self.headers,
            name=self.directory.name("renewal-info/{id}"),
            expected=(200,),
        )
        if response.status_code != 200:
            return AcmeProblem.from_response("ari", response, url)
        body = json_value(response.content)
        window = RenewalWindow.parse(body, header(response, "retry-after"))
        if window is None:
            return AcmeProblem(
                "ari", 200, UNEXPECTED, f"no valid suggestedWindow: {body!r:.120}", url
            )
        return window

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
            leaf = pem_certificates(chain)[0]
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
