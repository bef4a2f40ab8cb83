"""Scale tier: certctl's k6 ``bulk_renewal``, ``acme_burst`` and ``agent_storm``.

``bulk_renewal`` and ``agent_storm`` need the rows fixtures/sql seeds (10,000
``loadtest-bulk-*`` certificates, 5,000 ``loadtest-agent-*`` agents), so they need a
PostgreSQL DSN for certctl's database (the local provider has one; an external stack
needs ``--certctl-dsn``).

Iteration functions are module-level and their inputs plain data, so ``--certload-tx``
workers import them by name: the seeded ids (bulk-renew batches, heartbeat URLs and
bodies) travel by value, and each process walks its own copy from a random offset
(:func:`_rotation`); ``acme_burst``'s :class:`AcmeSurface` travels by value too.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import pytest

from pytest_certload.certctl import (
    ACME_RATE_LIMITED,
    AGENT_HEARTBEAT,
    API_RATE_LIMITED,
    BULK_RENEW,
    AcmeDirectory,
    AcmeSurface,
    Rotation,
    batches,
    count_rate_limit,
    expand,
    parse_bulk_renew,
)
from pytest_certload.engine import VU, ConstantArrivalRate, ConstantVUs, RunResult, Scenario
from pytest_certload.redaction import SecretHeaders

pytestmark = pytest.mark.scale

#: certctl's criteria mode matches at most 50 certificates a call: a batch of ids this
#: size is the most one bulk-renew call can be asked to do by criteria
BULK_BATCH = 50

T = TypeVar("T")

#: each process's walk over each scenario's items, made on first use (never pickled)
_rotations: weakref.WeakKeyDictionary[Any, Rotation[Any]] = weakref.WeakKeyDictionary()


def _rotation(inputs: Any, items: Sequence[T], what: str) -> Rotation[T]:
    """This process's :class:`Rotation` over ``items`` for ``inputs``, from a random
    offset: two processes sharing one run's load do not start on the same rows."""
    rotation = _rotations.get(inputs)
    if rotation is None:
        start = random.randrange(len(items)) if items else 0
        rotation = _rotations[inputs] = Rotation([*items[start:], *items[:start]], what=what)
    return rotation


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, one rotation per copy
class BulkRenewal:
    """What ``bulk_renewal`` needs: the URL, the Bearer header, the seeded id batches."""

    url: str
    headers: Mapping[str, str] = field(repr=False)
    batches: tuple[tuple[str, ...], ...] = field(repr=False)


@dataclass(frozen=True, eq=False)
class AgentStorm:
    """What ``agent_storm`` needs: each seeded agent's heartbeat URL and body."""

    heartbeats: tuple[tuple[str, bytes], ...] = field(repr=False)
    headers: Mapping[str, str] = field(repr=False)


async def bulk_renewal(inputs: BulkRenewal, vu: VU) -> None:
    batch = _rotation(inputs, inputs.batches, "seeded certificates").next()
    response = await vu.http.post(
        inputs.url,
        json={"certificate_ids": list(batch)},
        headers=inputs.headers,
        name=BULK_RENEW,
        expected=(200,),
    )
    count_rate_limit(vu, response)
    if not vu.check("bulk-renew 200", response.status_code == 200):
        return
    try:
        result = parse_bulk_renew(response.content)
    except ValueError:
        vu.check("bulk-renew answer parses", False)
        return
    vu.check("every id matched a seeded certificate", result.total_matched == len(batch))
    vu.check("matched = enqueued + skipped + failed", result.consistent)
    vu.check("no certificate failed", result.total_failed == 0)
    vu.counter("bulk_matched", result.total_matched)
    vu.counter("bulk_enqueued", result.total_enqueued)
    vu.counter("bulk_skipped", result.total_skipped)
    vu.counter("bulk_failed", result.total_failed)


async def acme_burst(surface: AcmeSurface, vu: VU) -> None:
    # the seed gives 200 VUs and the thresholds but no pause; we keep acme_flow's 1 s
    # think time, so the burst is twice acme_flow's load (~600 req/s). Without a
    # pause 200 closed-loop VUs measure the generator host's ceiling, not the
    # server's handlers (on 2 shared cores p95 then sits at the 300 ms threshold).
    shape_ok = shape_bad = 0
    for response in await surface.walk(vu):
        status = response.status_code
        # 5xx, or no HTTP answer at all; 4xx (ARI probe, ACME 429) is expected
        vu.rate("server_errors", status >= 500 or status == 0)
        kind = count_rate_limit(vu, response)
        if kind == ACME_RATE_LIMITED:
            shape_ok += 1
        elif kind is not None and kind != API_RATE_LIMITED:
            shape_bad += 1
    if shape_ok:
        vu.counter("acme_rate_limit_shape_ok", shape_ok)
    if shape_bad:
        vu.counter("acme_rate_limit_shape_bad", shape_bad)
    await vu.sleep(1)


async def agent_storm(inputs: AgentStorm, vu: VU) -> None:
    url, body = _rotation(inputs, inputs.heartbeats, "seeded agents").next()
    response = await vu.http.post(
        url, content=body, headers=inputs.headers, name=AGENT_HEARTBEAT, expected=(200,)
    )
    vu.check("heartbeat recorded (200)", response.status_code == 200)
    count_rate_limit(vu, response)


# 5/s: 125 calls, p(99) needs 100; renews certificates and enqueues their jobs
@pytest.mark.certload(smoke_duration="25s", tables=["managed_certificates", "jobs"])
def test_bulk_renewal(
    certload_run: Callable[..., RunResult],
    certctl_url: str,
    certctl_headers: dict[str, str],
    bulk_renewal_ids: list[str],
) -> None:
    # Criteria mode would match the same 50 oldest certificates on every call, and after
    # the first call flipped them to RenewalInProgress every later call would only skip.
    # Instead each iteration takes the next unused batch of seeded ids; after the last
    # batch the rotation starts over, and those calls still match real rows but skip
    # them (counted in bulk_skipped, not as errors).
    inputs = BulkRenewal(
        certctl_url + BULK_RENEW,
        certctl_headers,
        tuple(batches(bulk_renewal_ids, BULK_BATCH)),
    )
    certload_run(
        Scenario(
            "bulk_renewal",
            partial(bulk_renewal, inputs),
            ConstantArrivalRate(5, "5m", pre_allocated_vus=10, max_vus=30),
            metrics=dict.fromkeys(
                ("bulk_matched", "bulk_enqueued", "bulk_skipped", "bulk_failed"), "counter"
            ),
        ),
        thresholds={
            "http_req_duration{scenario:bulk_renewal}": ["p(95)<2000", "p(99)<5000"],
            "http_req_failed{scenario:bulk_renewal}": ["rate<0.01"],
        },
    )


# thousands of samples a second, but 200 VUs open 200 TLS connections at once: under
# ~20 s the warm-up is more than 5 % of the samples and the p(95)s judge it, not the burst
@pytest.mark.certload(smoke_duration="20s", tables=["acme_nonces"])
def test_acme_burst(
    certload_run: Callable[..., RunResult],
    acme_directory: AcmeDirectory,
    certctl_headers: dict[str, str],
) -> None:
    surface = AcmeSurface(
        acme_directory.url,
        certctl_headers,
        trends=("acme_directory_duration", "acme_new_nonce_duration", "acme_renewal_info_duration"),
    )

    certload_run(
        Scenario(
            "acme_burst",
            partial(acme_burst, surface),
            # spread as acme_flow (see tests/load/test_acme.py): together, 200 VUs' first
            # TLS round made a generator delay p99 of 118 ms and p95s of 65-285 ms on the
            # smoke run; spread over 1 s, p95 ~4 ms. Not in k6
            ConstantVUs(200, "5m", start_spread="1s"),
            graceful_stop="30s",
            metrics={
                **surface.metrics,
                "server_errors": "rate",
                "acme_rate_limit_shape_ok": "counter",
                "acme_rate_limit_shape_bad": "counter",
            },
        ),
        thresholds={
            "acme_directory_duration": ["p(95)<500"],
            "acme_new_nonce_duration": ["p(95)<300"],
            "acme_renewal_info_duration": ["p(95)<800"],
            "server_errors": ["rate<0.001"],
            "acme_rate_limit_shape_bad": ["count==0"],
        },
    )


@pytest.mark.certload(smoke_duration="3s", tables=["agents"])  # 167/s: ~500 samples
def test_agent_storm(
    certload_run: Callable[..., RunResult],
    certctl_url: str,
    certctl_headers: dict[str, str],
    agent_fleet: list[tuple[str, bytes]],
) -> None:
    # 5,000 agents heartbeating every 30 s offer 167/s: walk the fleet round-robin so
    # every row takes its share of the UPDATEs
    heartbeats = tuple(
        (certctl_url + expand(AGENT_HEARTBEAT, id=i), body) for i, body in agent_fleet
    )
    headers = SecretHeaders({**certctl_headers, "Content-Type": "application/json"})
    inputs = AgentStorm(heartbeats, headers)

    certload_run(
        Scenario(
            "agent_storm",
            partial(agent_storm, inputs),
            ConstantArrivalRate(167, "5m", pre_allocated_vus=50, max_vus=200),
        ),
        thresholds={
            "http_req_duration{scenario:agent_storm}": ["p(95)<500", "p(99)<1000"],
            "http_req_failed{scenario:agent_storm}": ["rate<0.001"],
        },
    )
