"""The pre-flight check against certctl's answers (the reference double): a valid key
passes, a wrong key is named with certctl's own 401 body, a database that is down is
named with certctl's 503 /ready body."""

from __future__ import annotations

import anyio
import pytest
from double_support import ADMIN_KEY, USER_KEY, Double, Stack

from pytest_certload.errors import PreflightError
from pytest_certload.stack.info import StackInfo
from pytest_certload.stack.preflight import check_stack, preflight

WRONG_KEY = "wrong-key-never-shown-5678"


def info_for(double: Double, token: str, *, admin_token: str | None = None) -> StackInfo:
    return StackInfo(
        certctl_url=double.base_url,
        token=token,
        admin_token=admin_token or token,
        dsn=double.dsn,
        ca=double.tls.ca_cert,
        provider="external",
    )


def test_a_valid_key_passes(double: Double) -> None:
    assert anyio.run(check_stack, info_for(double, USER_KEY, admin_token=ADMIN_KEY)) == []


def test_a_wrong_key_names_the_token_option_and_shows_certctls_401_body(double: Double) -> None:
    with pytest.raises(PreflightError) as caught:
        anyio.run(preflight, info_for(double, WRONG_KEY))
    message = str(caught.value)
    assert (
        f"certctl at {double.base_url}: GET /api/v1/auth/check with the API key answered 401 "
        '{"error":"Invalid API key"}: certctl rejected the key; give a valid API key with '
        "--certctl-token"
    ) in message
    assert "CERTLOAD_CERTCTL_TOKEN" in message
    assert WRONG_KEY not in message
    assert "found 1 problem before any load" in message


def test_only_the_wrong_one_of_two_keys_is_named(double: Double) -> None:
    problems = anyio.run(check_stack, info_for(double, USER_KEY, admin_token=WRONG_KEY))
    assert [(p.kind, "admin API key" in p.cause) for p in problems] == [("auth", True)]


def test_a_database_that_is_down_is_named_with_certctls_503_body(stack: Stack) -> None:
    running = stack.start_double()
    try:
        name = running.dsn.rsplit("/", 1)[1]
        anyio.run(stack.postgres.drop_database, name)  # certctl's database is gone
        with pytest.raises(PreflightError) as caught:
            anyio.run(preflight, info_for(running, ADMIN_KEY))
    finally:
        running.stop()
    message = str(caught.value)
    assert (
        f'certctl at {running.base_url}: GET /ready answered 503 {{"status":"db_unavailable",'
        '"error":'
    ) in message
    assert "certctl runs but cannot reach its PostgreSQL database" in message
    assert "start the database or fix certctl's CERTCTL_DATABASE_URL" in message
    assert stack.postgres.password not in message
