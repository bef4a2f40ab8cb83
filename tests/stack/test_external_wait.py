"""The plugin's external provider waits for certctl's ``/ready`` before the first run.

A local HTTP server plays an external certctl that is still starting: ``/ready`` answers
503 until the server has answered it a set number of times (or until the test sets an
event), then 200. The waits are driven by those answers, never by sleeps.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import anyio
import pytest

from pytest_certload.errors import ServiceTimeout
from pytest_certload.stack.external import wait_for_certctl
from pytest_certload.stack.info import StackInfo
from pytest_certload.stack.session import StackRequest, open_stack


@dataclass
class Certctl:
    """What the fake certctl answered, and the switches the test holds."""

    #: ``/ready`` answers 503 this many times, then 200 (None: until ``ready`` is set)
    not_ready_for: int | None = None
    #: the status ``/ready`` answers when not ready
    not_ready_status: int = 503
    ready: threading.Event = field(default_factory=threading.Event)
    #: set when ``/ready`` has answered "not ready" once
    answered_not_ready: threading.Event = field(default_factory=threading.Event)
    #: ``(path, status)`` in the order they were answered
    log: list[tuple[str, int]] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str) -> tuple[int, bytes]:
        if path == "/ready":
            asked = sum(1 for p, _ in self.log if p == "/ready")
            if self.not_ready_for is not None and asked >= self.not_ready_for:
                self.ready.set()
            if not self.ready.is_set():
                self.answered_not_ready.set()
                return self.not_ready_status, b'{"status":"db_unavailable"}'
            return 200, b'{"status":"ready"}'
        if path in ("/api/v1/auth/check", "/api/v1/version"):
            return 200, b'{"version":"v-test"}'
        return 404, b"not found"


@pytest.fixture
def certctl() -> Iterator[Certctl]:
    state = Certctl()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                status, body = state.answer(self.path)
                state.log.append((self.path, status))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _info(url: str) -> StackInfo:
    return StackInfo(certctl_url=url, token="t", admin_token="t", provider="external")


@pytest.mark.anyio
async def test_the_wait_ends_when_certctl_becomes_ready(certctl: Certctl) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: wait_for_certctl(_info(certctl.url), timeout_ns=30_000_000_000))
        # certctl becomes ready only after it has told the waiter it is not
        await anyio.to_thread.run_sync(certctl.answered_not_ready.wait)
        certctl.ready.set()
    statuses = [status for path, status in certctl.log if path == "/ready"]
    assert statuses[0] == 503
    assert statuses[-1] == 200
    assert statuses.count(200) == 1  # it stopped asking once ready


@pytest.mark.anyio
async def test_a_certctl_that_never_gets_ready_times_out_naming_what_where_and_how_long(
    certctl: Certctl,
) -> None:
    with pytest.raises(ServiceTimeout) as info:
        await wait_for_certctl(_info(certctl.url), timeout_ns=300_000_000)
    message = str(info.value)
    assert message.startswith(
        f"service: certctl answering GET with 200 at {certctl.url}/ready did not succeed "
        "within 0.3 s ("
    )
    assert 'last: status 503: b\'{"status":"db_unavailable"}\')' in message
    assert any("this stack is external" in note for note in info.value.__notes__)


@pytest.mark.anyio
async def test_an_answer_waiting_cannot_change_ends_the_wait_at_once(certctl: Certctl) -> None:
    """A 404 (not certctl at that URL) is left to the pre-flight check to explain."""
    certctl.not_ready_status = 404
    with anyio.fail_after(10):
        await wait_for_certctl(_info(certctl.url), timeout_ns=30_000_000_000)
    assert certctl.log == [("/ready", 404)]


def test_the_external_provider_waits_before_it_hands_the_stack_over(certctl: Certctl) -> None:
    """``open_stack`` (the ``certload_stack`` fixture's provider) returns only once
    ``/ready`` answered 200, so the pre-flight check and the first run find it ready."""
    certctl.not_ready_for = 3
    request = StackRequest(provider="external", certctl_url=certctl.url, certctl_token="t")
    with open_stack(request) as opened:
        ready = [(p, s) for p, s in certctl.log if p == "/ready"]
        assert ready == [("/ready", 503)] * 3 + [("/ready", 200)]
        assert certctl.log.index(("/ready", 200)) < certctl.log.index(("/api/v1/version", 200))
        opened.preflight()  # passes: certctl is ready and the key is accepted
    assert "v-test" in opened.label


@pytest.mark.anyio
async def test_a_refused_connection_is_waited_for_not_reported_at_once() -> None:
    """Nothing listens yet (a container still starting): the wait keeps asking."""
    from pytest_certload.stack.helpers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceTimeout) as info:
        await wait_for_certctl(_info(url), timeout_ns=300_000_000)
    message = str(info.value)
    assert f"at {url}/ready did not succeed within 0.3 s (" in message
    assert "last: connect: cannot connect to 127.0.0.1:" in message
    attempts = int(message.split(" s (", 1)[1].split(" attempts", 1)[0])
    assert attempts >= 2
