"""JWS parsing and verification for the ACME server (RS256, ES256 and EdDSA only)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "ALLOWED_ALGS",
    "SIGNATURE_INVALID",
    "JWSError",
    "ParsedJWS",
    "PublicKey",
    "b64u_decode",
    "b64u_encode",
    "jwk_thumbprint",
    "parse_jws",
    "public_key_from_jwk",
    "verify_signature",
]

ALLOWED_ALGS = frozenset({"RS256", "ES256", "EdDSA"})
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class JWSError(Exception):
    """A JWS problem; ``kind`` is the ACME error type suffix (``malformed`` ...)."""

    def __init__(self, kind: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status


def b64u_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(str(exc)) from None


@dataclass(frozen=True)
class ParsedJWS:
    protected: dict[str, Any]
    protected_b64: str
    payload_b64: str
    signature: bytes

    @property
    def signing_input(self) -> bytes:
        return f"{self.protected_b64}.{self.payload_b64}".encode("ascii")

    def payload_json(self) -> Any:
        """The payload as JSON; an empty payload (POST-as-GET) is ``None``."""
        if self.payload_b64 == "":
            return None
        try:
            return json.loads(b64u_decode(self.payload_b64))
        except (ValueError, UnicodeDecodeError) as exc:
            raise JWSError("malformed", f"payload is not base64url JSON: {exc}") from None


def parse_jws(body: bytes) -> ParsedJWS:
    """Parse flattened, general (one signature) or compact serialization."""
    text = body.strip()
    parts: tuple[str, str, str]
    try:
        if text.startswith(b"{"):
            obj = json.loads(text)
            if not isinstance(obj, dict):
                raise ValueError("not an object")
            if "signatures" in obj:
                sigs = obj["signatures"]
                if not isinstance(sigs, list) or len(sigs) != 1:
                    raise JWSError("malformed", "JWS must carry exactly one signature")
                sig_obj = sigs[0]
            else:
                sig_obj = obj
            if not isinstance(sig_obj, dict):
                raise ValueError("signature entry is not an object")
            parts = (sig_obj.get("protected"), obj.get("payload"), sig_obj.get("signature"))  # type: ignore[assignment]
        else:
            pieces = text.decode("ascii").split(".")
            if len(pieces) != 3:
                raise ValueError("compact JWS needs three parts")
            parts = (pieces[0], pieces[1], pieces[2])
        protected_b64, payload_b64, signature_b64 = parts
        if not all(isinstance(p, str) for p in parts):
            raise ValueError("protected, payload and signature must be strings")
        protected = json.loads(b64u_decode(protected_b64))
        if not isinstance(protected, dict):
            raise ValueError("protected header is not an object")
        signature = b64u_decode(signature_b64)
    except JWSError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise JWSError("malformed", f"failed to parse JWS: {exc}") from None
    alg = protected.get("alg")
    if alg not in ALLOWED_ALGS:
        raise JWSError(
            "malformed", f"unsupported JWS algorithm {alg!r}; allowed: RS256, ES256, EdDSA"
        )
    typ = protected.get("typ")
    if typ is not None and typ != "application/jose+json":
        raise JWSError("malformed", f"unsupported JWS typ {typ!r}")
    return ParsedJWS(protected, protected_b64, payload_b64, signature)


def _b64_int(jwk: dict[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise ValueError(f"jwk member {name!r} missing")
    return int.from_bytes(b64u_decode(value), "big")


def public_key_from_jwk(jwk: Any) -> PublicKey:
    """Build a public key from a JWK (RSA, EC P-256, OKP Ed25519)."""
    if not isinstance(jwk, dict):
        raise JWSError("malformed", "jwk is not an object")
    try:
        kty = jwk.get("kty")
        if kty == "RSA":
            return rsa.RSAPublicNumbers(_b64_int(jwk, "e"), _b64_int(jwk, "n")).public_key()
        if kty == "EC":
            if jwk.get("crv") != "P-256":
                raise ValueError(f"unsupported curve {jwk.get('crv')!r}")
            return ec.EllipticCurvePublicNumbers(
                _b64_int(jwk, "x"), _b64_int(jwk, "y"), ec.SECP256R1()
            ).public_key()
        if kty == "OKP" and jwk.get("crv") == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(b64u_decode(str(jwk.get("x"))))
        raise ValueError(f"unsupported key type {kty!r}")
    except (ValueError, TypeError) as exc:
        raise JWSError("malformed", f"invalid jwk: {exc}") from None


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of a JWK."""
    required = {
        "RSA": ("e", "kty", "n"),
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
    }
    members = required.get(str(jwk.get("kty")))
    if members is None:
        raise JWSError("malformed", "invalid jwk: unsupported key type")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64u_encode(hashlib.sha256(canonical.encode()).digest())


#: certctl's answer to a signature that does not verify (``internal/api/acme/jws.go``,
#: ``VerifyJWS`` and ``MapJWSErrorToProblem``): 401 unauthorized, on the jwk and kid paths
SIGNATURE_INVALID = "signature did not verify"


def verify_signature(jws: ParsedJWS, key: PublicKey) -> None:
    """Check the signature with ``key``. A signature that does not verify, or an algorithm
    that does not fit the key (go-jose's ``Verify`` fails both), is 401 unauthorized."""
    alg = jws.protected.get("alg")
    data = jws.signing_input
    try:
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(jws.signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(jws.signature) != 64:
                raise InvalidSignature
            r = int.from_bytes(jws.signature[:32], "big")
            s = int.from_bytes(jws.signature[32:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        elif alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(jws.signature, data)
        else:
            raise InvalidSignature
    except InvalidSignature:
        raise JWSError("unauthorized", SIGNATURE_INVALID, 401) from None
