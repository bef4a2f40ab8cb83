"""``--certload-capacity`` end to end, against servers whose capacity is known.

The latency server serves at most ``workers`` requests at once, each taking ``delay``, so
its capacity is workers / delay requests per second; the search must find it within 15 %.
Made faster than the generator can drive (an iteration that burns CPU), the answer must
name the generator, not the server. Bounds are generous; what is asserted is the kind of
answer and its bracket, not a timing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.support.servers import LatencyServer, latency_server

TEST_FILE = """
import time

import pytest
from pytest_certload.engine import ConstantArrivalRate, Scenario

URL = "{url}"
BURN_S = {burn}


async def hit(vu):
    await vu.http.get(URL + "/item", name="/item")
    if BURN_S:
        end = time.perf_counter() + BURN_S
        while time.perf_counter() < end:
            pass


def test_known(certload):
    certload.run(
        Scenario("known", hit, ConstantArrivalRate(50, "2s", pre_allocated_vus=10, max_vus=50)),
        thresholds={{"http_req_duration": ["p(95)<100"], "http_req_failed": ["rate<0.01"]}},
    )
"""


@pytest.fixture
def limited() -> Iterator[LatencyServer]:
    # 4 workers x 20 ms: 200 requests per second at most
    with latency_server(delay_ms=20, workers=4) as srv:
        yield srv


def _capacity(pytester: pytest.Pytester) -> dict[str, object]:
    summary = json.loads((pytester.path / "out" / "summary.json").read_text())
    (test,) = summary["tests"]
    found: dict[str, object] = test["capacity"]["known"]
    return found


ARGS = (
    "-p",
    "no:cacheprovider",
    "--certload-capacity",
    "--certload-capacity-step=2s",
    "--certload-output-dir=out",
    "--certload-progress=off",
)


def test_the_search_finds_a_known_capacity(
    pytester: pytest.Pytester, limited: LatencyServer
) -> None:
    pytester.makepyfile(test_load=TEST_FILE.format(url=limited.url, burn=0))
    # the server's limit is the point here: a busy shared machine must not make the
    # generator's schedule lag end the search first
    result = pytester.runpytest_subprocess(*ARGS, "--certload-health=lag_p99=250ms")
    result.assert_outcomes(passed=1)
    line = next(x for x in result.outlines if x.strip().startswith("capacity known: "))
    assert re.search(r"capacity known: [\d,.]+/s \(first fail [\d,.]+/s: ", line), line
    found = _capacity(pytester)
    capacity = found["capacity_rps"]
    assert isinstance(capacity, float)
    assert 170 <= capacity <= 230, found["steps"]
    first_fail = found["first_fail_rps"]
    assert isinstance(first_fail, float)
    assert first_fail <= capacity * 1.1 + 1
    assert found["generator_bound_rps"] is None


def test_a_server_faster_than_the_generator_is_reported_as_generator_bound(
    pytester: pytest.Pytester,
) -> None:
    with latency_server(delay_ms=1) as fast:
        # 6 ms of CPU per iteration: one process drives ~150 iterations/s at most
        pytester.makepyfile(test_load=TEST_FILE.format(url=fast.url, burn=0.006))
        result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=1)
    found = _capacity(pytester)
    bound = found["generator_bound_rps"]
    assert isinstance(bound, float), found["steps"]
    # a rate above it may have been judged the server's (a busy loop delays every
    # response), but the answer is the generator's, found at the lower rate
    first_fail = found["first_fail_rps"]
    assert first_fail is None or bound < first_fail, found["steps"]
    result.stdout.fnmatch_lines(
        ["*capacity known: *(generator-bound at *add generator processes with --certload-tx)*"]
    )
