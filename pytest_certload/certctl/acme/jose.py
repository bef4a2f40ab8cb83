"""JOSE for ACME: base64url, account keys and their JWKs, thumbprints, flattened JWS.

certctl accepts only ``ES256`` (default), ``RS256`` and ``EdDSA``; the protected
header's ``url`` must equal ``https://`` + Host + path; new-account carries ``jwk``,
every other POST ``kid``. Imports no pytest.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ...errors import ConfigError

__all__ = [
    "ACCOUNT_ALGS",
    "AccountAlg",
    "AccountKey",
    "PrivateKey",
    "b64url",
    "jwk_thumbprint",
    "sign_jws",
]

AccountAlg = Literal["ES256", "RS256", "EdDSA"]
#: the JWS algorithms certctl accepts (anything else is ``malformed``)
ACCOUNT_ALGS: tuple[AccountAlg, ...] = ("ES256", "RS256", "EdDSA")
PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


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
