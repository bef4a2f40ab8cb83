"""Client SSL contexts: built from ``verify`` and a minimum TLS version."""

from __future__ import annotations

import functools
import os
import ssl
from typing import TypeAlias

from ..errors import ConfigError

__all__ = ["TLSVersionSpec", "VerifyTypes", "client_context", "parse_min_tls_version"]

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


def parse_min_tls_version(value: TLSVersionSpec | None) -> ssl.TLSVersion | None:
    """``None``, an ``ssl.TLSVersion`` or ``"1.2"``/``"1.3"`` (also ``"TLSv1.3"``)."""
    if value is None or isinstance(value, ssl.TLSVersion):
        return value
    version = _TLS_NAMES.get(str(value).strip().lower())
    if version is None:
        raise ConfigError(
            f"{value!r} is not a valid min_tls_version; use '1.2' or '1.3' "
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
    verify: bool | str, min_tls: ssl.TLSVersion | None, alpn: tuple[str, ...]
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
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


@functools.lru_cache(maxsize=64)
def _cached(
    verify: bool | str, min_tls: ssl.TLSVersion | None, alpn: tuple[str, ...]
) -> ssl.SSLContext:
    return _build(verify, min_tls, alpn)


def client_context(
    verify: VerifyTypes,
    *,
    min_tls_version: TLSVersionSpec | None = None,
    alpn: tuple[str, ...] = (),
    cached: bool = False,
) -> ssl.SSLContext:
    """An SSL context for ``verify`` (True, False, a CA path, or a context to use as is).

    ``cached=True`` shares one context per ``(verify, min_tls, alpn)`` in the
    process (loading a CA bundle costs milliseconds); only for backends that
    never modify the context. A caller-supplied ``SSLContext`` is returned
    unchanged (a ``min_tls_version`` is then applied to it).
    """
    min_tls = parse_min_tls_version(min_tls_version)
    if isinstance(verify, ssl.SSLContext):
        if min_tls is not None:
            verify.minimum_version = min_tls
        return verify
    if isinstance(verify, os.PathLike):
        verify = os.fspath(verify)
    if not isinstance(verify, bool | str):
        raise ConfigError(
            f"verify={verify!r} is not valid; use True, False, a CA bundle path "
            f"or an ssl.SSLContext."
        )
    if cached:
        if isinstance(verify, str):
            verify = os.path.abspath(verify)
        return _cached(verify, min_tls, alpn)
    return _build(verify, min_tls, alpn)
