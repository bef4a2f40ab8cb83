"""certctl's misleading 500s, named where they surface: the causes of failed requests and
the set-up client's ACME directory read (issue 19)."""

from __future__ import annotations

import httpx
import pytest

from pytest_certload.certctl.setup_client import CertctlSetup
from pytest_certload.engine.causes import KNOWN_ANSWERS, RequestErrors, body_sample, known_answer
from pytest_certload.errors import CertctlError

HEARTBEAT_500 = (
    b'{"error":"Internal Server Error","message":"Failed to record heartbeat",'
    b'"request_id":"5f0c6d1e-8d1f-4c59-9a53-0d1c2b3a4f5e"}\n'
)
SPACED_ACME_500 = (
    b'{"type": "urn:ietf:params:acme:error:serverInternal", "detail": "ACME server error", '
    b'"status": 500}'
)
ACME_500 = (
    b'{"type":"urn:ietf:params:acme:error:serverInternal","detail":"ACME server error",'
    b'"status":500}\n'
)


def test_a_heartbeat_500_is_explained_with_certctls_source_and_what_to_check() -> None:
    errors = RequestErrors()
    for _ in range(3):
        errors.add_status(500, HEARTBEAT_500)
    status_line, meaning = errors.lines("agent_storm", 3)
    assert status_line.startswith("agent_storm: 3 of 3 requests answered 500 (body: ")
    assert meaning.startswith(
        "agent_storm: what that 500 means: certctl answers a heartbeat for an agent id it "
        "does not have with this 500, not with 404 'Agent not found': "
        "internal/repository/postgres/agent.go::scanAgent wraps sql.ErrNoRows"
    )
    assert "internal/api/handler/agents.go::Heartbeat" in meaning
    assert "most likely they do not exist in this certctl" in meaning
    assert "fixtures/sql/02_agent_fleet.sql" in meaning
    assert "--certctl-dsn" in meaning


def test_an_acme_server_error_names_the_profile_lookup_and_the_fixture() -> None:
    errors = RequestErrors()
    errors.add_status(500, ACME_500)
    _, meaning = errors.lines("acme_flow", 1)
    assert "internal/repository/postgres/profile.go::scanProfile" in meaning
    assert "internal/service/acme.go::resolveProfile" in meaning
    assert "internal/service/acme.go::FinalizeOrder" in meaning
    assert "the certload_acme_profile fixture" in meaning


@pytest.mark.parametrize(
    ("status", "content", "which"),
    [
        (500, HEARTBEAT_500, 0),
        (500, ACME_500, 1),
        # a JSON encoder that writes spaces still matches: fragments, not exact text
        (500, SPACED_ACME_500, 1),
        (404, HEARTBEAT_500, None),  # the status matters
        (500, b'{"error":"Internal Server Error","message":"Failed to list certificates"}', None),
        (500, b"", None),
        (500, b'{"type":"urn:ietf:params:acme:error:serverInternal","detail":"other"}', None),
    ],
)
def test_known_answers_need_the_status_and_every_fragment(
    status: int, content: bytes, which: int | None
) -> None:
    found = known_answer(status, body_sample(content))
    assert found is (None if which is None else KNOWN_ANSWERS[which])


def test_an_unexplained_status_gets_no_second_line() -> None:
    errors = RequestErrors()
    errors.add_status(500, b"")
    assert errors.lines("s", 1) == ["s: 1 of 1 request answered 500 (empty body)"]


def _setup(status: int, content: bytes, content_type: str) -> CertctlSetup:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            status, content=content, headers={"content-type": content_type}
        )
    )
    return CertctlSetup("https://certctl", "k", client=httpx.Client(transport=transport))


def test_the_setup_client_reads_certctls_500_as_a_missing_profile() -> None:
    with (
        _setup(500, ACME_500, "application/problem+json") as setup,
        pytest.raises(CertctlError) as caught,
    ):
        setup.acme_directory("prof-missing")
    message = str(caught.value)
    assert message.startswith(
        "certctl has no ACME profile 'prof-missing' "
        "(https://certctl/acme/profile/prof-missing/directory answered 500: "
    )
    assert "internal/repository/postgres/profile.go::scanProfile" in message
    assert "overriding the certload_acme_profile fixture" in message


def test_any_other_500_on_the_directory_is_not_called_a_missing_profile() -> None:
    with (
        _setup(500, b'{"error":"Internal Server Error"}\n', "text/plain") as setup,
        pytest.raises(CertctlError) as caught,
    ):
        setup.acme_directory("prof-standard-tls")
    assert "has no ACME profile" not in str(caught.value)
    assert "answered 500" in str(caught.value)
