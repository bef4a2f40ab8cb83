"""The run loop: start every scenario's model, tick, stop, judge.

Usable without pytest::

    import anyio
    from pytest_certload.engine import Scenario, ConstantArrivalRate, run

    async def hit(vu):
        await vu.http.get("https://127.0.0.1:8443/health", name="/health")

    result = anyio.run(run, [Scenario("health", hit, ConstantArrivalRate(50, "10s"))])
    print(result.ok, result.breaches)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import anyio
from anyio import create_task_group

from ..intervals import Interval
from ..metrics import CounterSink, MetricStore, MetricType, RateSink, declare_builtins
from ..thresholds import Threshold, abort_check, threshold_list
from ..units import as_ns
from ..windows import Scope, WindowWatch
from .clock import Clock, RealClock
from .closed_model import ClosedModelRun
from .hiccups import hiccup_meter
from .judging import judge_run
from .keeper import IntervalKeeper
from .open_model import OpenModelRun
from .options import METRIC_KINDS, RunOptions, Scenario, check_scenarios
from .results import Progress, RunResult
from .scenario_run import ScenarioRun, VUIds

__all__ = ["run", "run_sync"]


def _scenario_run(
    sc: Scenario, store: MetricStore, clock: Clock, options: RunOptions, vu_ids: VUIds
) -> ScenarioRun:
    model = OpenModelRun if sc.open_model else ClosedModelRun
    return model(sc, store, clock, options.http, vu_ids, options.shard)


async def run(
    scenarios: Sequence[Scenario],
    *,
    thresholds: Sequence[Threshold] | Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
    clock: Clock | None = None,
    threshold_source: str = "run()",
) -> RunResult:
    """Run ``scenarios`` concurrently and judge ``thresholds`` on what they measured.

    Never raises because of the server: failures are data in the result. The run ends at
    the latest scenario's ``start_time + duration + graceful_stop`` even if the server
    hangs; clients are closed within ``teardown_timeout``.
    """
    options = options or RunOptions()
    clock = clock or RealClock()
    check_scenarios(scenarios, "run()")
    parsed = threshold_list(thresholds, source=threshold_source)
    interval = as_ns(options.interval, "timeline interval")
    progress_every = as_ns(options.progress_every, "progress interval")
    teardown = as_ns(options.teardown_timeout, "teardown timeout", allow_zero=True)
    # VUs record into `live`; every interval it is rotated into an Interval and merged
    # into `store` (what thresholds judge) or, for a scenario still warming up, `warm`
    live = MetricStore()
    declare_builtins(live)
    for sc in scenarios:
        for metric, kind in sc.metrics.items():
            mtype, is_time = METRIC_KINDS[kind]
            live.declare(metric, mtype, time=is_time)
    store = MetricStore()
    declare_builtins(store)
    warm = MetricStore()
    warming_until = {
        sc.name: math.ceil((sc.start_time_ns + sc.warmup_ns) / interval)
        for sc in scenarios
        if sc.warmup_ns
    }
    vu_ids = VUIds()
    runs = [_scenario_run(sc, live, clock, options, vu_ids) for sc in scenarios]
    total_ns = max(sc.end_ns for sc in scenarios)
    planned_ns = max(sc.start_time_ns + sc.executor.duration_ns for sc in scenarios)
    abortable = [t for t in parsed if t.abort_on_fail and not t.windowed]
    watch = WindowWatch(
        parsed,
        interval_ns=interval,
        types=lambda name: _kind(store, live, name),
        min_tail_samples=options.min_tail_samples,
    )
    started_at = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    aborted = ""
    progress_state = {"next": progress_every, "iterations": 0, "at": 0}

    def after_interval(iv: Interval) -> None:
        """Checks that read the judged store, run once an interval is folded into it."""
        elapsed = iv.end_ns
        if abortable:
            for res in abort_check(
                abortable, store, elapsed_ns=elapsed, min_tail_samples=options.min_tail_samples
            ):
                abort_all(f"abortOnFail threshold breached: {res.message()}")
        if watch.thresholds:
            for reason in watch.feed(iv, live_scope()):
                abort_all(f"abortOnFail threshold breached: {reason}")
        if options.progress is not None and elapsed >= progress_state["next"]:
            its = sum(r.ctx.iterations_started for r in runs)
            span = max(elapsed - progress_state["at"], 1)
            options.progress(
                Progress(
                    elapsed_ns=elapsed,
                    total_ns=planned_ns,
                    iterations=its,
                    rate_per_s=(its - progress_state["iterations"]) * 1e9 / span,
                    requests=_count(store, "http_reqs"),
                    failed=_failed_requests(store),
                    dropped=sum(r.dropped for r in runs),
                    vus=sum(len(r.vus) for r in runs),
                )
            )
            progress_state.update(iterations=its, at=elapsed)
            progress_state["next"] += progress_every

    keeper = IntervalKeeper(
        live,
        store,
        warm,
        warming_until,
        spread=isinstance(clock, RealClock),
        on_interval=after_interval,
    )
    for r in runs:
        r.init_vus()
    t0 = clock.now_ns()
    cpu0 = time.process_time_ns()

    def live_scope() -> Scope:
        return Scope.build(
            interval,
            {
                r.sc.name: (r.t_start - t0, (r.t_end or clock.now_ns()) - r.t_start, r.sc.warmup_ns)
                for r in runs
                if r.started
            },
        )

    def abort_all(reason: str) -> None:
        nonlocal aborted
        if not aborted:
            aborted = reason
        for r in runs:
            r.abort()

    async def ticker() -> None:
        next_tick = t0 + interval
        while True:
            await clock.sleep_until(next_tick)
            now = next_tick
            for r in runs:
                if r.started and not r.finished:
                    r.timeline.close_interval(now - t0)
            keeper.cut(now - t0)
            for r in runs:
                if r.unreachable(now, options.health):
                    abort_all(f"unreachable: {r.ctx.first_transport_error}")
            if options.stop is not None and options.stop.is_set():
                abort_all(f"stopped: {options.stop.reason}")
            next_tick += interval

    hard_limit_s = (total_ns + 2 * teardown) / 1e9 + 10
    with _heap_frozen(isinstance(clock, RealClock)), anyio.move_on_after(hard_limit_s) as watchdog:
        async with create_task_group() as outer:
            outer.start_soon(ticker)
            outer.start_soon(keeper.run)
            if options.hiccups and isinstance(clock, RealClock):
                outer.start_soon(hiccup_meter, live)
            async with create_task_group() as inner:
                for r in runs:
                    inner.start_soon(r.run, t0, teardown)
            outer.cancel_scope.cancel()
    if watchdog.cancelled_caught and not aborted:
        aborted = f"hard deadline of {hard_limit_s:.0f} s reached; in-flight work abandoned"
    duration_ns = clock.now_ns() - t0
    keeper.cut(duration_ns)
    keeper.drain()
    intervals = keeper.intervals
    results = {r.sc.name: r.result(t0, options.health, store) for r in runs}
    result = RunResult(
        store=store,
        scenarios=results,
        thresholds=[],
        started_at=started_at,
        duration_ns=duration_ns,
        health_limits=options.health,
        aborted=aborted,
        intervals=intervals,
        interval_ns=interval,
        warmup_store=warm if warming_until else None,
        t0_ns=t0 if isinstance(clock, RealClock) else 0,
        cpu_ns={"local": time.process_time_ns() - cpu0},
    )
    result.thresholds = judge_run(parsed, result, min_tail_samples=options.min_tail_samples)
    return result


@contextlib.contextmanager
def _heap_frozen(enabled: bool) -> Iterator[None]:
    """Keep what the process held before the load out of the garbage collector's sight
    for the run (``gc.freeze``; unfrozen after).

    A full collection walks every object the process holds (pytest, the stack's clients,
    the seed's data): 50-70 ms in a pytest session on the reference machine, often
    mid-run, where it stalls the event loop past the hiccup limit and holds every
    response read meanwhile (``http_req_generator_delay``). Frozen, a collection during
    the run walks only what the run made (acme_burst's full collections went from 52-70
    ms to under 40 ms).
    """
    if not enabled:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _kind(store: MetricStore, live: MetricStore, name: str) -> tuple[MetricType, bool] | None:
    kind = store.type_of(name) or live.type_of(name)
    if kind is None:
        return None
    return kind, store.is_time(name) or live.is_time(name)


def _count(store: MetricStore, name: str) -> int:
    sink = store.select(name, {})
    return int(sink.count) if isinstance(sink, CounterSink) else 0


def _failed_requests(store: MetricStore) -> int:
    sink = store.select("http_req_failed", {})
    return sink.trues if isinstance(sink, RateSink) else 0


def run_sync(
    scenarios: Sequence[Scenario],
    *,
    thresholds: Sequence[Threshold] | Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
    threshold_source: str = "run_sync()",
    clock: Clock | None = None,
) -> RunResult:
    """:func:`run` in a fresh event loop (uvloop when installed and enabled)."""
    options = options or RunOptions()
    use_uvloop = False
    if options.uvloop:
        try:
            import uvloop  # noqa: F401

            use_uvloop = True
        except ImportError:
            use_uvloop = False
    return anyio.run(
        partial(
            run,
            scenarios,
            thresholds=thresholds,
            options=options,
            clock=clock,
            threshold_source=threshold_source,
        ),
        backend="asyncio",
        backend_options={"use_uvloop": use_uvloop},
    )
