"""Server-side telemetry against the embedded stack (PostgreSQL and the reference double):
a loaded run records the double's and PostgreSQL's CPU, database activity and top
statements; a lock held in PostgreSQL by the test shows up as waiting sessions in the
ticks it was held, and in the breach message of the window it broke; a database without
pg_stat_statements gives a note, not an error.

Where the lock lands is asserted from when it was actually taken and released (measured),
not from when it was asked for; bounds are generous: the machine is shared.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from anyio.from_thread import start_blocking_portal

from pytest_certload.engine import (
    VU,
    ConstantArrivalRate,
    HTTPOptions,
    RunOptions,
    Scenario,
    run_sync,
)
from pytest_certload.engine.health import HealthLimits
from pytest_certload.loadtest import breach_message
from pytest_certload.stack import StackInfo
from pytest_certload.stack.local import LocalStack
from pytest_certload.telemetry import GENERATOR, Sampler, ServerTelemetry, TelemetrySources
from pytest_certload.telemetry.postgres import kept_query

S = 1_000_000_000
OPTIONS = RunOptions(health=HealthLimits(max_lag_p99_ns=2 * S, max_delay_p99_ns=2 * S))


class Stack:
    def __init__(self, local: LocalStack, info: StackInfo) -> None:
        self.local = local
        self.info = info

    def sources(self, **changes: object) -> TelemetrySources:
        fields: dict[str, object] = {
            "processes": self.local.process_ids(),
            "dsn": self.info.dsn,
            "certctl_url": self.info.certctl_url,
            "token": self.info.token,
            "verify": self.info.verify(),
        }
        fields.update(changes)
        return TelemetrySources(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with start_blocking_portal(backend="asyncio") as portal:
        local = LocalStack(targets=(), base_dir=tmp_path_factory.mktemp("telemetry"))
        try:
            info = portal.call(local.start)
            yield Stack(local, info)
        finally:
            portal.call(local.stop)


def _listing(info: StackInfo) -> Scenario:
    headers = {"Authorization": f"Bearer {info.token}"}

    async def list_certificates(vu: VU) -> None:
        await vu.http.get(
            info.certctl_url + "/api/v1/certificates?per_page=20", headers=headers, name="list"
        )

    return Scenario("list", list_certificates, ConstantArrivalRate(30, "4s", pre_allocated_vus=40))


def _run(stack: Stack, *scenarios: Scenario, thresholds: object = None) -> tuple:
    sampler = Sampler(stack.sources())
    sampler.start()
    options = RunOptions(
        health=OPTIONS.health, http=HTTPOptions(verify=stack.info.verify(), backend="fast")
    )
    result = run_sync(list(scenarios), thresholds=thresholds, options=options)  # type: ignore[arg-type]
    server = sampler.stop(t0_ns=result.t0_ns, generator_cpu_ns=result.cpu_ns)
    return result, server


def test_a_loaded_run_records_certctl_postgres_and_generator(stack: Stack) -> None:
    result, server = _run(stack, _listing(stack.info))
    assert result.trustworthy, result.untrustworthy
    assert {"certctl", "postgres", GENERATOR} <= set(server.services)
    assert server.cpu_ns("certctl") > 0
    assert server.cpu_ns("postgres") > 0
    summary = server.summary()
    assert summary["certctl"]["cpu_s"] > 0
    assert summary["certctl"]["rss_max_bytes"] > 10_000_000
    assert summary["postgres"]["cpu_s"] > 0
    assert summary["generator"]["cpu_s"] > 0
    assert summary["postgres"]["database"]["xact_commit"] > 0
    top = summary["postgres"]["top_statements"]
    assert top, summary["notes"]
    assert any("managed_certificates" in row["query"] for row in top)
    for row in top:  # normalised texts only, never the sampler's own
        assert kept_query(row["query"]) is not None
        assert row["calls"] > 0
        assert row["total_ms"] >= 0
    # the ticks cover the run on its own time axis
    assert server.ticks[0].start_ns < 0.5 * S
    assert server.ticks[-1].end_ns >= result.duration_ns
    assert sum(1 for t in server.ticks if t.cpu_ns.get("certctl")) >= 2
    # certctl's metrics were read at the start and the end
    assert "certctl_certificate_total" in server.metrics["gauges"], server.notes
    # what is kept survives the run file
    again = ServerTelemetry.from_dict(json.loads(json.dumps(server.to_dict())))
    assert again.summary() == summary
    # secrets never reach what is kept
    text = json.dumps(server.to_dict())
    assert stack.info.token not in text
    assert stack.info.dsn
    assert stack.local.postgres is not None
    assert stack.local.postgres.password not in text


def test_a_lock_held_in_postgres_shows_in_its_window_and_in_the_breach(stack: Stack) -> None:
    info = stack.info
    take, release = threading.Event(), threading.Event()
    held: dict[str, int] = {}

    def locker() -> None:
        assert info.dsn is not None
        with psycopg.connect(info.dsn) as conn:
            take.wait(30)
            conn.execute("LOCK TABLE managed_certificates IN ACCESS EXCLUSIVE MODE")
            held["from"] = time.perf_counter_ns()
            release.wait(30)
            held["until"] = time.perf_counter_ns()
            conn.rollback()

    async def lock(vu: VU) -> None:
        take.set()

    async def unlock(vu: VU) -> None:
        release.set()

    thread = threading.Thread(target=locker)
    thread.start()
    try:
        result, server = _run(
            stack,
            Scenario(
                "list", _listing(info).exec, ConstantArrivalRate(20, "7s", pre_allocated_vus=80)
            ),
            Scenario(
                "lock", lock, ConstantArrivalRate(1, "1s", pre_allocated_vus=1), start_time="2s"
            ),
            Scenario(
                "unlock",
                unlock,
                ConstantArrivalRate(1, "1s", pre_allocated_vus=1),
                start_time="4500ms",
            ),
            thresholds={
                "http_req_duration{scenario:list}": [{"threshold": "p(95)<400", "window": "1s"}]
            },
        )
    finally:
        take.set()
        release.set()
        thread.join(30)
    assert "from" in held
    assert "until" in held
    start, end = held["from"] - result.t0_ns, held["until"] - result.t0_ns
    # a tick that ended while the lock was held saw sessions waiting on it
    during = [t for t in server.ticks if start + 0.2 * S < t.end_ns < end]
    assert during, (start, end, [(t.start_ns, t.end_ns) for t in server.ticks])
    assert all(t.sessions["waiting"] > 0 for t in during), [t.sessions for t in during]
    assert all(any(k.startswith("Lock:") for k in t.wait_events) for t in during)
    # ...and none that ended before it was taken
    before = [t for t in server.ticks if t.end_ns < start]
    assert before
    assert all(t.sessions["waiting"] == 0 for t in before)
    # the breach names the window and ends with what postgres was doing in it
    (breach,) = result.breaches
    message = breach_message(breach, result, server)
    assert "waiting (most on Lock:" in message, message
    assert "certctl" in message
    assert "% CPU" in message
    summary = server.summary()
    assert summary["postgres"]["waiting_max"] > 0
    assert any(k.startswith("Lock:") for k in summary["postgres"]["wait_events_max"])


def test_a_database_without_pg_stat_statements_gives_a_note(stack: Stack) -> None:
    pg = stack.local.postgres
    assert pg is not None
    with start_blocking_portal(backend="asyncio") as portal:
        dsn = portal.call(pg.create_database, "plain_telemetry")
    try:
        sampler = Sampler(stack.sources(dsn=dsn, processes={}, certctl_url=""))
        sampler.start()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT 1").fetchall()
        server = sampler.stop()
    finally:
        with start_blocking_portal(backend="asyncio") as portal:
            portal.call(pg.drop_database, "plain_telemetry")
    assert any("pg_stat_statements extension is not installed" in n for n in server.notes)
    summary = server.summary()
    assert summary["postgres"]["top_statements"] == []
    assert summary["postgres"]["cpu_s"] is None  # no process figures asked for
    assert "database" in summary["postgres"]  # the other statistics are still read
    assert dsn not in json.dumps(server.to_dict())
