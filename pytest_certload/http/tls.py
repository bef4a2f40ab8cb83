"""The one client TLS-context policy of pytest-certload.

Every client SSL context the project makes comes from :func:`client_context`: the
virtual users' HTTP backends, the stack's readiness probes, the session's target probe
and the certctl set-up client. The policy:

* ``verify`` is ``True`` (the system trust store), ``False`` (no verification: no
  hostname check, no chain check), a CA bundle path (a PEM file or a hashed directory),
  or an ``ssl.SSLContext``, which is used as it is (only a TLS-version bound given
  beside it is applied).
* **Shared** contexts (``shared=True``) are built once per process for each
  ``(verify, TLS versions, ALPN)`` and reused: loading a CA bundle costs milliseconds,
  which would stall the event loop at every new virtual user. A shared context may only
  be used by code that never changes it, or that sets exactly the ALPN list it was keyed
  with (httpcore sets ``http/1.1`` or ``http/1.1, h2`` on every connection, so the
  ``httpx`` backend asks for that list).
* **Fresh** contexts (the default) are for code that keeps or reconfigures the context
  in ways we do not control (a caller-facing ``verify()``, a third-party client).

Imports no pytest.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import TypeAlias

from ..errors import ConfigError

__all__ = ["TLSVersionSpec", "VerifyTypes", "client_context", "parse_tls_version"]

VerifyTypes: TypeAlias = bool | str | os.PathLike[str] | ssl.SSLContext
TLSVersionSpec: TypeAlias = ssl.TLSVersion | str

_TLS_NAMES = {
    "1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tls1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
    "tls1.3": ssl.TLSVersion.TLSv1_3,
}


def parse_tls_version(
    value: TLSVersionSpec | None, what: str = "min_tls_version"
) -> ssl.TLSVersion | None:
    """``None``, an ``ssl.TLSVersion`` or ``"1.2"``/``"1.3"`` (also ``"TLSv1.3"``)."""
    if value is None or isinstance(value, ssl.TLSVersion):
        return value
    version = _TLS_NAMES.get(str(value).strip().lower())
    if version is None:
        raise ConfigError(
            f"{value!r} is not a valid {what}; use '1.2' or '1.3' "
            f"(or ssl.TLSVersion.TLSv1_2 / TLSv1_3), or None for the ssl default."
        )
    return version


def _check_ca_path(path: str) -> None:
    if not os.path.exists(path):
        raise ConfigError(
            f"verify={path!r}: no such CA file or directory; pass the path of a PEM "
            f"CA bundle, True for the system trust store, or False to skip verification."
        )


def _build(
    verify: bool | str,
    min_tls: ssl.TLSVersion | None,
    max_tls: ssl.TLSVersion | None,
    alpn: tuple[str, ...],
) -> ssl.SSLContext:
    if verify is False:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif verify is True:
        ctx = ssl.create_default_context()
    else:
        _check_ca_path(verify)
        try:
            if os.path.isdir(verify):
                ctx = ssl.create_default_context(capath=verify)
            else:
                ctx = ssl.create_default_context(cafile=verify)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"verify={verify!r}: cannot load the CA bundle ({exc}); "
                f"pass a PEM file with one or more CA certificates."
            ) from None
    if min_tls is not None:
        ctx.minimum_version = min_tls
    if max_tls is not None:
        ctx.maximum_version = max_tls
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


@functools.lru_cache(maxsize=64)
def _shared(
    verify: bool | str,
    min_tls: ssl.TLSVersion | None,
    max_tls: ssl.TLSVersion | None,
    alpn: tuple[str, ...],
) -> ssl.SSLContext:
    return _build(verify, min_tls, max_tls, alpn)


def client_context(
    verify: VerifyTypes,
    *,
    min_tls_version: TLSVersionSpec | None = None,
    max_tls_version: TLSVersionSpec | None = None,
    alpn: tuple[str, ...] = (),
    shared: bool = False,
) -> ssl.SSLContext:
    """A client SSL context for ``verify``, following the policy of this module.

    ``min_tls_version``/``max_tls_version`` bound the protocol (give both to pin one
    version); ``alpn`` is the offered protocol list; ``shared=True`` returns the
    process-wide context for these arguments (never modify it).
    """
    min_tls = parse_tls_version(min_tls_version, "min_tls_version")
    max_tls = parse_tls_version(max_tls_version, "max_tls_version")
    if isinstance(verify, ssl.SSLContext):
        if min_tls is not None:
            verify.minimum_version = min_tls
        if max_tls is not None:
            verify.maximum_version = max_tls
        return verify
    if isinstance(verify, os.PathLike):
        verify = os.fspath(verify)
    if not isinstance(verify, bool | str):
        raise ConfigError(
            f"verify={verify!r} is not valid; use True, False, a CA bundle path "
            f"or an ssl.SSLContext."
        )
    if shared:
        if isinstance(verify, str):
            verify = os.path.abspath(verify)
        return _shared(verify, min_tls, max_tls, alpn)
    return _build(verify, min_tls, max_tls, alpn)
