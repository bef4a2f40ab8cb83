"""What a k6 or pytest user writes works or is refused clearly (issue 23, points 5 and 6).

* a k6 scenario object as written in k6 becomes a Scenario (``scenario_from_k6``);
  ``executor_from_dict`` takes the executor's options and points elsewhere for the rest;
* ``http2=True`` gets HTTP/2 from the default (fast) backend, and contradicts
  ``http_version='1.1'`` (refused, naming where the version came from);
* a bare int where a duration goes is nanoseconds, and one under 1 ms is refused as a
  number of seconds written without its unit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import pytest_certload
from pytest_certload import (
    ConstantArrivalRate,
    ConstantVUs,
    HTTPOptions,
    LoadTest,
    RampingArrivalRate,
    RampingVUs,
    Scenario,
    Settings,
    Stage,
    executor_from_dict,
    scenario_from_k6,
)
from pytest_certload.errors import ConfigError
from pytest_certload.record import SessionRecord
from pytest_certload.settings import resolve
from pytest_certload.units import MIN_BARE_NS, NS_PER_S, as_ns, exact_ns

S = NS_PER_S


async def _noop(vu: object) -> None:
    return None


# -- a k6 scenario object as written ------------------------------------------------------

#: certctl's k6.js scenario for the list endpoint, as k6 writes it (plus ``exec``)
K6_LIST = {
    "executor": "constant-arrival-rate",
    "rate": 50,
    "timeUnit": "1s",
    "duration": "5m",
    "preAllocatedVUs": 50,
    "maxVUs": 200,
    "startTime": "5s",
    "gracefulStop": "10s",
    "exec": "listCertificates",
    "tags": {"tier": "api"},
}


def test_a_k6_scenario_object_as_written_becomes_a_scenario() -> None:
    sc = scenario_from_k6("list_certificates", K6_LIST, _noop, source="k6.js")
    assert sc.name == "list_certificates"
    assert sc.exec is _noop
    assert sc.executor == ConstantArrivalRate(50, "5m", "1s", 50, 200)
    assert sc.start_time_ns == 5 * S
    assert sc.graceful_stop_ns == 10 * S
    assert sc.tags == {"tier": "api"}


def test_k6_defaults_apply_when_the_scenario_keys_are_absent() -> None:
    sc = scenario_from_k6("v", {"executor": "constant-vus", "vus": 2, "duration": "30s"}, _noop)
    assert (sc.start_time_ns, sc.graceful_stop_ns, dict(sc.tags)) == (0, 30 * S, {})
    assert sc.executor == ConstantVUs(2, "30s")


def test_scenario_from_k6_passes_our_own_fields_on() -> None:
    http = HTTPOptions(fresh_connection=True)
    sc = scenario_from_k6(
        "h",
        {"executor": "ramping-vus", "stages": [{"duration": "10s", "target": 5}]},
        _noop,
        metrics={"d": "time"},
        http=http,
        expected_statuses={201},
        warmup="2s",
    )
    assert sc.executor == RampingVUs([Stage("10s", 5)])
    assert (dict(sc.metrics), sc.http, sc.expected_statuses, sc.warmup_ns) == (
        {"d": "time"},
        http,
        {201},
        2 * S,
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"env": {"BASE": "x"}},
            "'env' of the k6 scenario 's' (at k6.js): k6's per-scenario environment variables "
            "have no equivalent here; bind the values to the iteration function with "
            "functools.partial(fn, values).",
        ),
        (
            {"options": {"browser": {}}},
            "'options' of the k6 scenario 's' (at k6.js): k6's per-scenario browser options "
            "have no equivalent here (no browser module); drop the key.",
        ),
        (
            {"iterations": 10},
            "unknown option 'iterations' of constant-vus (at the k6 scenario 's' at k6.js); "
            "its options are vus, duration, startSpread (start_spread)",
        ),
        (
            {"startTime": "5x"},
            "'5x' is not a valid startTime of the k6 scenario 's' (at k6.js); use a number "
            "with ns, us, ms, s, m or h",
        ),
        (
            {"gracefulStop": 30},
            "30 is not a valid gracefulStop of the k6 scenario 's' (at k6.js): a bare int is "
            "nanoseconds, so 30 means 30 ns; write '30s'",
        ),
        (
            {"tags": {"n": 1}},
            "tags of the k6 scenario 's' (at k6.js) is {'n': 1}; use a mapping of strings to "
            "strings",
        ),
        ({"exec": print}, "exec of the k6 scenario 's' (at k6.js) is <built-in function print>"),
    ],
    ids=["env", "browser", "unknown", "bad-start", "bare-int", "tags", "exec-not-a-name"],
)
def test_a_k6_scenario_key_we_cannot_honour_is_refused_by_name(
    extra: dict[str, Any], message: str
) -> None:
    options = {"executor": "constant-vus", "vus": 1, "duration": "1s", **extra}
    with pytest.raises(ConfigError) as info:
        scenario_from_k6("s", options, _noop, source="k6.js")
    assert str(info.value).startswith(message)


def test_executor_from_dict_points_scenario_keys_to_scenario_from_k6() -> None:
    with pytest.raises(ConfigError) as info:
        executor_from_dict(K6_LIST, source="k6.js")
    assert str(info.value) == (
        "'startTime', 'gracefulStop', 'exec', 'tags' (at k6.js): keys of the k6 scenario, not "
        "of its executor's options; pass the whole k6 scenario object to "
        "scenario_from_k6(name, options, fn), or keep only the executor's options here and "
        "give Scenario(start_time=..., graceful_stop=..., tags=...)."
    )
    # the snake_case spelling is not dropped silently either (it used to be)
    with pytest.raises(ConfigError, match=r"^'start_time': a key of the k6 scenario"):
        executor_from_dict(
            {"executor": "constant-vus", "vus": 1, "duration": "1s", "start_time": 0}
        )


def test_executor_from_dict_names_an_unknown_option_and_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        executor_from_dict({"executor": "ramping-arrival-rate", "stages": [], "maxVU": 3})
    assert str(info.value) == (
        "unknown option 'maxVU' of ramping-arrival-rate; its options are stages, startRate "
        "(start_rate), timeUnit (time_unit), preAllocatedVUs (pre_allocated_vus), maxVUs "
        "(max_vus) (a k6 scenario's startTime, gracefulStop, exec and tags go to "
        "scenario_from_k6())."
    )
    with pytest.raises(ConfigError, match=r"^bad options for constant-vus: .*'duration'"):
        executor_from_dict({"executor": "constant-vus", "vus": 1})


def test_the_k6_converters_are_importable_from_the_top() -> None:
    assert {"executor_from_dict", "scenario_from_k6"} <= set(pytest_certload.__all__)


# -- HTTP/2 -------------------------------------------------------------------------------------


def test_http2_is_served_by_the_fast_backend() -> None:
    assert HTTPOptions(http2=True).effective_backend == "fast"
    assert HTTPOptions().effective_backend == "fast"
    assert HTTPOptions().http_version == "auto"
    assert HTTPOptions(backend="httpx").effective_backend == "httpx"
    assert HTTPOptions(http2=True).factory()().backend == "fast"
    assert HTTPOptions(backend="fast", http2=True).factory()().backend == "fast"


def test_http2_beside_http_version_1_1_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError) as info:
        HTTPOptions(http2=True, http_version="1.1")
    assert str(info.value) == (
        "HTTPOptions: http2=True asks for HTTP/2 but http_version='1.1' allows only "
        "HTTP/1.1; drop http2=True (http_version alone decides), or use "
        "http_version='auto' or '2'."
    )
    with pytest.raises(ConfigError) as bad:
        HTTPOptions(http_version="3")
    assert str(bad.value) == (
        "'3' is not a valid http_version (HTTPOptions); use 'auto' (what TLS ALPN "
        "negotiates: HTTP/2 when the server offers it, as k6), '1.1' or '2'."
    )
    with pytest.raises(ConfigError, match=r"^'curl' is not an HTTP backend \(HTTPOptions"):
        HTTPOptions(backend="curl")


class _Item:
    nodeid = "test_x.py::test_x"

    def __init__(self) -> None:
        self.user_properties: list[tuple[str, object]] = []

    def iter_markers(self, name: str) -> Iterator[object]:
        return iter(())


def _load(settings: Settings, tmp_path: Path) -> LoadTest:
    return LoadTest(_Item(), settings, SessionRecord(output_dir=tmp_path))


def test_the_fixture_takes_the_sessions_http_version(tmp_path: Path) -> None:
    default = _load(Settings.defaults(), tmp_path)
    assert default.http_options().http_version == "auto"
    assert default.http_options(http2=True).effective_backend == "fast"
    assert default.http_options(http_version="1.1").http_version == "1.1"
    two = resolve({}, {}, environ={"CERTLOAD_HTTP_VERSION": "2"})
    assert _load(two, tmp_path).http_options().http_version == "2"
    assert _load(two, tmp_path).http_options(http_version="1.1").http_version == "1.1"
    chosen = resolve({"certload_http_version": "1.1"}, {}, environ={})
    with pytest.raises(ConfigError) as info:
        _load(chosen, tmp_path).http_options(http2=True)
    assert str(info.value).endswith(
        "The HTTP version '1.1' comes from command line --certload-http-version; give "
        "--certload-http-version auto (or 2), or drop http2=True."
    )


# -- units: a bare int is nanoseconds ---------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "what"),
    [
        (lambda: ConstantArrivalRate(50, 300), "duration of constant-arrival-rate"),
        (lambda: ConstantArrivalRate(50, "5m", time_unit=1), "time_unit of constant-arrival-rate"),
        (lambda: ConstantVUs(5, 30), "duration of constant-vus"),
        (lambda: ConstantVUs(5, "30s", start_spread=1), "start_spread of constant-vus"),
        (lambda: RampingVUs([Stage(30, 5)]), "stage duration"),
        (lambda: RampingVUs([Stage("3s", 5)], graceful_ramp_down=30), "graceful_ramp_down"),
        (lambda: RampingArrivalRate([Stage("3s", 5)], time_unit=60), "time_unit of ramping"),
        (lambda: Scenario("s", _noop, ConstantVUs(1, "1s"), start_time=5), "start_time of"),
        (lambda: Scenario("s", _noop, ConstantVUs(1, "1s"), graceful_stop=30), "graceful_stop"),
        (lambda: Scenario("s", _noop, ConstantVUs(1, "9s"), warmup=5), "warmup of scenario 's'"),
        (lambda: HTTPOptions(timeout=30), "timeout of HTTPOptions"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_bare_int_under_a_millisecond_is_refused_as_a_missing_unit(build: Any, what: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    message = str(info.value)
    assert what in message
    value = re.match(r"^(\d+) is not a valid", message)
    assert value is not None, message
    n = value.group(1)
    assert f": a bare int is nanoseconds, so {n} means {n} ns; write '{n}s'" in message


def test_nanoseconds_from_a_millisecond_up_and_zero_where_allowed_are_taken() -> None:
    assert as_ns(MIN_BARE_NS, "d") == MIN_BARE_NS
    assert ConstantVUs(1, 30 * S).duration_ns == 30 * S
    assert Scenario("s", _noop, ConstantVUs(1, "1s"), start_time=0).start_time_ns == 0
    with pytest.raises(ConfigError, match="999999 means 999999 ns"):
        as_ns(MIN_BARE_NS - 1, "d")


def test_durations_the_code_computes_below_a_millisecond_still_work() -> None:
    """``--certload-duration 500us`` or a short stage scaled down are nanoseconds the code
    computed, not a user's bare number: they pass through as ``"<n>ns"``."""
    assert exact_ns(500_000) == "500000ns"
    assert exact_ns(0) == 0
    assert exact_ns(2 * S) == 2 * S
    assert ConstantVUs(1, "30s", start_spread="1s").with_duration(500_000).duration_ns == 500_000
    ramp = RampingVUs([Stage("100ms", 2), Stage("299900ms", 2)]).with_duration(S)
    assert [s.duration_ns for s in ramp.stages] == [333_333, 999_666_667]
    sc = Scenario("s", _noop, ConstantArrivalRate(5, "1s"))
    assert replace(sc, warmup=exact_ns(1_000)).warmup_ns == 1_000
    described = ConstantVUs(1, "30s").with_duration(500_000).describe()
    assert executor_from_dict(described).duration_ns == 500_000


def test_vu_sleep_and_a_request_timeout_are_seconds() -> None:
    """The two places a bare number is seconds, as in k6's ``sleep(1)`` and httpx's
    ``timeout=``: their docstrings say so (the only record of the unit users read)."""
    from pytest_certload.engine.vu import VU
    from pytest_certload.http import Client

    assert "seconds" in (VU.sleep.__doc__ or "")
    assert "``timeout`` is in seconds" in (Client.__doc__ or "")


@pytest.mark.parametrize("value", [20, 20.0, 20_000_000_000])
def test_a_bare_number_as_a_markers_smoke_duration_is_refused_with_the_fix(value: float) -> None:
    """k6 users write ``"20s"``; ``smoke_duration=20`` is refused, never read as 20 ns
    (nor guessed to be seconds), and the message gives the spelling to use."""
    from pytest_certload.loadtest import validate_marker_kwargs

    with pytest.raises(ConfigError) as info:
        validate_marker_kwargs((), {"smoke_duration": value}, "test_x.py::test_x")
    assert str(info.value).startswith(
        f"{value!r} is not a valid smoke_duration of @pytest.mark.certload at "
        f"test_x.py::test_x: a duration needs a unit (a bare number is nanoseconds in the "
        f"engine, so {value} would mean {value} ns); write '{value}s', or a number with ns"
    )
    validate_marker_kwargs((), {"smoke_duration": "20s"}, "test_x.py::test_x")
