"""Keeping secrets out of what pytest-certload shows: reprs, messages, reports, junit.

* :func:`redact_dsn` -- a PostgreSQL DSN (URL form or ``key=value`` form) with its
  password replaced by ``***``: ``postgresql://certctl:***@127.0.0.1:5432/certctl``.
* :func:`redact_url` -- a URL without its ``user:password@`` part.
* :func:`dsn_passwords` -- what in a DSN is a password, even when the DSN is malformed.
* :func:`scrub_secrets` -- a text with every given secret replaced by ``***``; with
  ``fragments=True`` a double-quoted fragment of a secret is masked too (libpq quotes
  the piece of a connection string it could not parse).
* :class:`SecretHeaders` -- a ``dict`` of HTTP headers whose repr masks credentials, so a
  failing test that holds ``{"Authorization": "Bearer …"}`` shows ``Bearer ***``.
* :func:`secret_variable` / :func:`redact_environment` -- whether an environment
  variable's name says its value is a secret (``..._KEY``, ``..._TOKEN``, ``..._SECRET``,
  ``..._PASSWORD``, ...), and a mapping of variables with those values shown as ``***``.
* :class:`Redactor` -- this session's secrets (API tokens, the password of a DSN or of a
  URL): the plugin runs every failure text, captured output, junit property and result
  file through it.

Every message that names a database or a URL with credentials goes through these.
Imports nothing of this package (and no pytest).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = [
    "CREDENTIAL_HEADERS",
    "MASK",
    "MIN_SECRET_LENGTH",
    "SECRET_NAME_WORDS",
    "Redactor",
    "SecretHeaders",
    "dsn_passwords",
    "redact_dsn",
    "redact_environment",
    "redact_url",
    "scrub_secrets",
    "secret_variable",
]

#: what a hidden secret is shown as
MASK = "***"
#: shorter values are not treated as secrets: masking every "ab" would wreck the text
MIN_SECRET_LENGTH = 4
#: headers whose values are credentials (lower case)
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-f5-auth-token"}
)

#: words of an environment variable's name (split at '_') that make its value a secret
SECRET_NAME_WORDS = frozenset(
    {
        "KEY",
        "KEYS",
        "SECRET",
        "SECRETS",
        "TOKEN",
        "TOKENS",
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PWD",
        "CREDENTIAL",
        "CREDENTIALS",
        "PRIVATE",
        "DSN",
    }
)


#: ``password=VALUE`` in a key=value DSN: a quoted value (possibly unterminated), or the
#: words up to the next ``key=`` (an unquoted password with a space is a malformed DSN
#: whose second half libpq quotes in its error)
_KEYWORD_PASSWORD = re.compile(
    r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*(?:'|$)|\S+(?:\s+(?![A-Za-z_]+\s*=)\S+)*)", re.I
)
_QUOTED = re.compile(r'"([^"]*)"')


def _url_form(dsn: str) -> bool:
    return "://" in dsn.split("?", 1)[0].split(" ", 1)[0]


def _userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    """``(user, password, host part)`` of a netloc, without urllib's port parsing (which
    raises on a bad port)."""
    userinfo, at, host = netloc.rpartition("@")
    if not at:
        return None, None, netloc
    user, colon, password = userinfo.partition(":")
    return user, (password if colon else None), host


def redact_url(url: str) -> str:
    """``url`` without its ``user:password@`` part (``https://host:8443/path``).

    A URL with no user information comes back unchanged; so does text that is not a URL.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    _, _, host = _userinfo(parts.netloc)
    return urlunsplit(parts._replace(netloc=host))


def redact_dsn(dsn: str) -> str:
    """``dsn`` with its password shown as ``***``; everything else (user, host, port,
    database, options) is kept so the message still says where.

    Handles the URL form (``postgresql://user:pw@host:port/db?password=pw``) and the
    ``key=value`` form (``host=h password=pw``), also when malformed.
    """
    if not _url_form(dsn):
        return _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + MASK, dsn)
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return _mask_all(dsn, dsn_passwords(dsn))
    user, password, host = _userinfo(parts.netloc)
    netloc = parts.netloc
    if password is not None:
        netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query and "password" in query.lower():
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() == "password" else v) for k, v in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def dsn_passwords(dsn: str) -> list[str]:
    """Every spelling of the password(s) ``dsn`` holds: as written, URL-decoded and
    URL-encoded; for a ``key=value`` DSN with and without quotes. Empty when there is
    none. Works on malformed DSNs (that is when error texts echo them)."""
    found: list[str] = []
    if _url_form(dsn):
        try:
            parts = urlsplit(dsn)
            netloc, query = parts.netloc, parts.query
        except ValueError:
            netloc = dsn.split("://", 1)[1].split("/", 1)[0]
            query = dsn.partition("?")[2]
        _, password, _ = _userinfo(netloc)
        if password:
            found.append(password)
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key.lower() == "password" and value:
                found.append(value)
    else:
        for match in _KEYWORD_PASSWORD.finditer(dsn):
            raw = match.group(2)
            found.append(raw)
            inner = raw[1:-1] if raw.endswith("'") and len(raw) > 1 else raw[1:]
            if raw.startswith("'") and inner:
                found.append(inner)
                found.append(re.sub(r"\\(.)", r"\1", inner))
    spellings: list[str] = []
    for password in found:
        for spelling in (password, unquote(password), quote(password, safe="")):
            if spelling and spelling not in spellings:
                spellings.append(spelling)
    return spellings


def _mask_all(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def scrub_secrets(text: str, secrets: Iterable[str | None], *, fragments: bool = False) -> str:
    """``text`` with every secret in ``secrets`` replaced by ``***``.

    With ``fragments=True``, a double-quoted fragment (``"..."``, two characters or more)
    that is part of a secret is masked too: libpq's parse errors quote the piece of the
    connection string they stopped at (``missing "=" after "pw" in connection info
    string``).
    """
    known = [s for s in secrets if s]
    text = _mask_all(text, known)
    if fragments and known:

        def mask(match: re.Match[str]) -> str:
            piece = match.group(1)
            if len(piece) >= 2 and any(piece in secret for secret in known):
                return f'"{MASK}"'
            return match.group(0)

        text = _QUOTED.sub(mask, text)
    return text


def secret_variable(name: str) -> bool:
    """Whether the environment variable ``name`` holds a secret, judged by its name:
    ``CERTCTL_CONFIG_ENCRYPTION_KEY``, ``CERTCTL_AUTH_SECRET``,
    ``CERTCTL_AGENT_BOOTSTRAP_TOKEN`` do; ``CERTCTL_KEYGEN_MODE`` does not."""
    return any(word in SECRET_NAME_WORDS for word in name.upper().split("_"))


def redact_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the value of every :func:`secret_variable` shown as ``***`` and any
    ``user:password@`` of a URL value shown as ``user:***@``."""
    shown = {}
    for name, value in env.items():
        if secret_variable(name):
            shown[name] = MASK
        elif "://" in value and "@" in value:
            shown[name] = redact_dsn(value)
        else:
            shown[name] = value
    return shown


class SecretHeaders(dict[str, str]):
    """HTTP headers whose repr (and str) masks the values of credential headers."""

    def __repr__(self) -> str:
        shown = {k: _masked_header(k, v) for k, v in self.items()}
        return repr(shown)

    __str__ = __repr__


def _masked_header(name: str, value: str) -> str:
    if name.lower() not in CREDENTIAL_HEADERS:
        return value
    scheme, sep, _ = value.partition(" ")
    return f"{scheme} {MASK}" if sep else MASK


class Redactor:
    """The secrets of one session, and a scrubber for any text that may show them."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """A value never to show (ignored when shorter than :data:`MIN_SECRET_LENGTH`)."""
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            self._secrets.add(secret)

    def add_dsn(self, dsn: str | None) -> None:
        """Every spelling of the password(s) in ``dsn``."""
        for password in dsn_passwords(dsn or ""):
            self.add(password)

    def add_url(self, url: str | None) -> None:
        """The password of ``scheme://user:password@host/...``, if there is one."""
        if url and "://" in url:
            _, password, _ = _userinfo(url.split("://", 1)[1].split("/", 1)[0])
            self.add(password)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret replaced by :data:`MASK`."""
        return _mask_all(text, self._secrets)

    def __repr__(self) -> str:
        return f"<Redactor of {len(self._secrets)} secret(s)>"
