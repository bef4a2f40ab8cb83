"""``--certload-http-version`` and the ``proto`` tag, without a server.

The option resolves CLI > ini > env > default and refuses a bad value naming it and its
source; a response's ``http_version`` becomes k6's ``proto`` tag on every ``http_req_*``
sample (none on a request that got no response); ``vu.http.batch`` sends its requests
at once and returns them in order, and refuses a malformed item with the fix.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from pytest_certload.engine import VU, VirtualClock
from pytest_certload.engine.vu import ScenarioContext
from pytest_certload.errors import ConfigError, TransportError
from pytest_certload.http import proto_tag
from pytest_certload.metrics import MetricStore, declare_builtins
from pytest_certload.settings import resolve

MS = 1_000_000


def test_the_http_version_resolves_cli_over_ini_over_env_over_default() -> None:
    assert resolve({}, {}, environ={}).http_version == "auto"
    env = {"CERTLOAD_HTTP_VERSION": "2"}
    assert resolve({}, {}, environ=env).http_version == "2"
    ini = {"certload_http_version": "1.1"}
    assert resolve({}, ini, environ=env).http_version == "1.1"
    settings = resolve({"certload_http_version": "auto"}, ini, environ=env)
    assert settings.http_version == "auto"
    assert settings.sources["certload_http_version"] == "command line --certload-http-version"


def test_a_bad_http_version_names_the_value_its_source_and_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        resolve({}, {}, environ={"CERTLOAD_HTTP_VERSION": "3"})
    assert str(info.value) == (
        "'3' is not a valid choice for certload_http_version (from environment variable "
        "CERTLOAD_HTTP_VERSION); use one of auto, 1.1, 2."
    )


def test_proto_tags_are_k6s() -> None:
    assert proto_tag("HTTP/2") == "HTTP/2.0"
    assert proto_tag("HTTP/1.1") == "HTTP/1.1"
    assert proto_tag("HTTP/1.0") == "HTTP/1.0"


class Answer:
    status_code = 200
    content = b"ok"
    timings = None

    def __init__(self, url: str, http_version: str) -> None:
        self.url = url
        self.http_version = http_version


def _context(client: Any, clock: VirtualClock) -> tuple[ScenarioContext, MetricStore]:
    store = MetricStore()
    declare_builtins(store)
    ctx = ScenarioContext(
        name="s",
        tags={"scenario": "s"},
        store=store,
        client_factory=lambda: client,
        open_model=False,
        clock=clock,
    )
    return ctx, store


def _drive(clock: VirtualClock, body: Any) -> None:
    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run)
            try:
                await body()
            finally:
                clock.stop()

    anyio.run(main)


def test_every_request_sample_carries_the_protocol_spoken() -> None:
    clock = VirtualClock()

    class Client:
        async def request(self, method: str, url: str, **kwargs: Any) -> Answer:
            if url.endswith("/down"):
                raise TransportError("cannot connect", url=url, kind="connect")
            return Answer(url, "HTTP/1.1" if url.endswith("/one") else "HTTP/2")

        async def aclose(self) -> None:
            return None

    ctx, store = _context(Client(), clock)
    vu = VU(ctx, 1, 1)

    async def body() -> None:
        await vu.http.get("https://sut.invalid/two")
        await vu.http.get("https://sut.invalid/one")
        await vu.http.get("https://sut.invalid/down")

    _drive(clock, body)
    for metric in ("http_reqs", "http_req_duration", "http_req_failed"):
        protos = {dict(tags)["name"]: dict(tags).get("proto") for tags in store.series(metric)}
        assert protos == {
            "https://sut.invalid/two": "HTTP/2.0",
            "https://sut.invalid/one": "HTTP/1.1",
            "https://sut.invalid/down": None,
        }, metric


def test_a_batch_runs_at_once_and_answers_in_order() -> None:
    clock = VirtualClock()

    class Client:
        async def request(self, method: str, url: str, **kwargs: Any) -> Answer:
            await clock.sleep((10 if url.endswith("/slow") else 1) * MS)
            return Answer(url, "HTTP/2")

        async def aclose(self) -> None:
            return None

    ctx, store = _context(Client(), clock)
    vu = VU(ctx, 1, 1)
    got: list[Any] = []

    async def body() -> None:
        started = clock.now_ns()
        got.extend(
            await vu.http.batch(
                [
                    ("GET", "https://sut.invalid/slow"),
                    ("POST", "https://sut.invalid/fast", {"name": "/fast", "json": {}}),
                    ("GET", "https://sut.invalid/fast"),
                ]
            )
        )
        got.append(clock.now_ns() - started)

    _drive(clock, body)
    assert [r.url for r in got[:3]] == [
        "https://sut.invalid/slow",
        "https://sut.invalid/fast",
        "https://sut.invalid/fast",
    ]
    assert got[3] == 10 * MS  # at once: the batch takes as long as its slowest request
    names = {dict(tags)["name"] for tags in store.series("http_reqs")}
    assert names == {"https://sut.invalid/slow", "/fast", "https://sut.invalid/fast"}


@pytest.mark.parametrize("item", [("GET",), "GET /x", ("GET", "/x", "json"), (1, "/x")])
def test_a_malformed_batch_item_is_refused_with_the_fix(item: Any) -> None:
    clock = VirtualClock()
    ctx, _ = _context(object(), clock)
    vu = VU(ctx, 1, 1)

    async def body() -> None:
        with pytest.raises(ConfigError) as info:
            await vu.http.batch([("GET", "https://sut.invalid/"), item])
        raised.append(info.value)

    raised: list[ConfigError] = []
    _drive(clock, body)
    assert str(raised[0]) == (
        f"{item!r} is not a request for vu.http.batch; give (method, url) or (method, url, "
        "{keyword arguments}), e.g. ('GET', url, {'name': '/x'})."
    )
