"""DSNs and URLs shown without their passwords; passwords scrubbed from error texts."""

from __future__ import annotations

import pytest

from pytest_certload.redaction import MASK, dsn_passwords, redact_dsn, redact_url, scrub_secrets


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        (
            "postgresql://certctl:s3cr%40t@127.0.0.1:5432/certctl?sslmode=disable",
            "postgresql://certctl:***@127.0.0.1:5432/certctl?sslmode=disable",
        ),
        ("postgres://u:pw@h:notaport/db", "postgres://u:***@h:notaport/db"),
        (
            "postgresql://h/db?password=zz9x&sslmode=require",
            "postgresql://h/db?password=***&sslmode=require",
        ),
        ("postgresql://certctl@h/db", "postgresql://certctl@h/db"),
        ("host=h port=5 password=abc user=u", "host=h port=5 password=*** user=u"),
        ("host=h password='a b\\' c' user=u", "host=h password=*** user=u"),
        ("password='unterminated and more", "password=***"),
        ("host=h password=two words user=u", "host=h password=*** user=u"),
    ],
)
def test_redact_dsn_hides_only_the_password(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown
    for password in dsn_passwords(dsn):
        assert password not in redact_dsn(dsn) or password == MASK


def test_dsn_passwords_knows_every_spelling() -> None:
    assert dsn_passwords("postgresql://u:s3cr%40t@h/db") == ["s3cr%40t", "s3cr@t", "s3cr%2540t"]
    assert "a b' c" in dsn_passwords("host=h password='a b\\' c'")
    assert dsn_passwords("postgresql://u@h/db") == []
    assert dsn_passwords("host=h user=u") == []


def test_redact_url_strips_user_and_password() -> None:
    assert redact_url("https://admin:hunter22@certctl.example:8443/api") == (
        "https://certctl.example:8443/api"
    )
    assert redact_url("https://127.0.0.1:8443") == "https://127.0.0.1:8443"
    assert redact_url("not a url") == "not a url"


def test_scrub_secrets_masks_whole_secrets_and_quoted_fragments() -> None:
    text = 'missing "=" after "def" in connection info string; password abc def'
    assert scrub_secrets(text, ["abc def"]) == (
        'missing "=" after "def" in connection info string; password ***'
    )
    assert scrub_secrets(text, ["abc def"], fragments=True) == (
        'missing "=" after "***" in connection info string; password ***'
    )
    assert scrub_secrets("nothing secret", [None, ""]) == "nothing secret"
