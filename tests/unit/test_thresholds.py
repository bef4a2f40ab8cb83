"""k6 threshold grammar, error messages and conservative judgement."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from pytest_certload.errors import ConfigError, ThresholdSyntaxError
from pytest_certload.metrics import MetricStore, MetricType, declare_builtins, tagset
from pytest_certload.thresholds import (
    Threshold,
    ThresholdResult,
    abort_check,
    evaluate,
    parse_thresholds,
)

SRC = "tests/load/test_api.py:42"
GRAMMAR = (
    "use AGG OP VALUE, e.g. 'p(95)<2000' or 'rate<0.01' "
    "(AGG: avg min max med p(N) count rate value; OP: < <= > >= == !=)"
)
UNITS = (
    "VALUE is a number (ms for time trends), optionally with a unit ns us µs ms s m h, "
    "or % for rate"
)
SELECTOR = "use METRIC or METRIC{TAG:VALUE,...}, e.g. 'http_req_duration{scenario:issuance}'"


def one(expression: str | dict[str, Any], selector: str = "http_req_duration") -> Threshold:
    (threshold,) = parse_thresholds({selector: [expression]}, source=SRC)
    return threshold


def syntax_error(spec: Any) -> str:
    with pytest.raises(ThresholdSyntaxError) as info:
        parse_thresholds(spec, source=SRC)
    assert isinstance(info.value, ConfigError)
    return str(info.value)


def store_with(
    durations_ns: Iterable[int] = (),
    tags: dict[str, str] | None = None,
    failed: Iterable[bool] = (),
) -> MetricStore:
    store = MetricStore(clock=lambda: 0)
    declare_builtins(store)
    ts = tagset(tags or {})
    for value in durations_ns:
        store.add_trend("http_req_duration", value, ts)
    for bad in failed:
        store.add_rate("http_req_failed", bad, ts)
    return store


def judge(
    expression: str,
    store: MetricStore,
    selector: str = "http_req_duration",
    **kwargs: Any,
) -> ThresholdResult:
    (result,) = evaluate([one(expression, selector)], store, **kwargs)
    return result


# -- grammar ---------------------------------------------------------------------------


def test_parse_k6_spec_verbatim() -> None:
    spec = {
        "http_req_duration{scenario:issuance_acceptance}": ["p(95)<2000", "p(99)<5000"],
        "http_req_failed": ["rate<0.01"],
        "x": [{"threshold": "p(95)<500", "abortOnFail": True, "delayAbortEval": "10s"}],
    }
    first, second, third, fourth = parse_thresholds(spec, source=SRC)
    assert first == Threshold(
        metric="http_req_duration",
        tags={"scenario": "issuance_acceptance"},
        selector="http_req_duration{scenario:issuance_acceptance}",
        expression="p(95)<2000",
        aggregation="p(95)",
        percentile=95.0,
        op="<",
        limit=2000.0,
        source=SRC,
    )
    assert (second.aggregation, second.limit) == ("p(99)", 5000.0)
    assert (third.metric, third.tags, third.aggregation, third.limit) == (
        "http_req_failed",
        {},
        "rate",
        0.01,
    )
    assert (fourth.abort_on_fail, fourth.delay_abort_eval_ns) == (True, 10_000_000_000)
    assert not first.abort_on_fail
    assert hash(first)  # usable in sets despite the tags mapping


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_every_operator(op: str) -> None:
    assert one(f"avg{op}5").op == op
    assert one(f" avg {op} 5 ").op == op


@pytest.mark.parametrize(
    ("expression", "aggregation", "percentile"),
    [
        ("avg<1", "avg", None),
        ("min<1", "min", None),
        ("max<1", "max", None),
        ("med<1", "med", 50.0),
        ("p(90)<1", "p(90)", 90.0),
        ("p( 99.9 )<1", "p(99.9)", 99.9),
        ("p(99.90)<1", "p(99.9)", 99.9),
        ("p(0)<1", "p(0)", 0.0),
        ("p(100)<1", "p(100)", 100.0),
        ("count>1", "count", None),
        ("rate<1", "rate", None),
        ("value<1", "value", None),
    ],
)
def test_every_aggregation(expression: str, aggregation: str, percentile: float | None) -> None:
    threshold = one(expression)
    assert (threshold.aggregation, threshold.percentile) == (aggregation, percentile)


@pytest.mark.parametrize(
    ("expression", "limit", "unit"),
    [
        ("p(95)<2000", 2000.0, ""),
        ("p(95)<2s", 2000.0, "s"),
        ("p(95)<2 s", 2000.0, "s"),
        ("avg<1.5m", 90_000.0, "m"),
        ("max<1h", 3_600_000.0, "h"),
        ("avg<250ms", 250.0, "ms"),
        ("avg<250us", 0.25, "us"),
        ("avg<250µs", 0.25, "µs"),
        ("avg<250μs", 0.25, "µs"),  # Greek mu
        ("avg<250ns", 0.00025, "ns"),
        ("avg<0.0015ms", 0.0015, "ms"),
        ("rate<1%", 0.01, "%"),
        ("rate<0.5%", 0.005, "%"),
        ("rate<0.01", 0.01, ""),
        ("count>=1e3", 1000.0, ""),
        ("value>-1", -1.0, ""),
    ],
)
def test_values_and_units(expression: str, limit: float, unit: str) -> None:
    threshold = one(expression)
    assert (threshold.limit, threshold.unit) == (limit, unit)


@pytest.mark.parametrize(
    ("selector", "tags", "normalised"),
    [
        ("http_req_duration", {}, "http_req_duration"),
        ("  http_req_duration  ", {}, "http_req_duration"),
        (
            'http_req_duration{name:"/api/v1/certificates/{id}"}',
            {"name": "/api/v1/certificates/{id}"},
            'http_req_duration{name:"/api/v1/certificates/{id}"}',
        ),
        (
            "http_req_duration{ scenario : issue , status:201 }",
            {"scenario": "issue", "status": "201"},
            "http_req_duration{scenario:issue,status:201}",
        ),
        (
            'http_req_duration{name:"/certs?a=1,b=2",scenario:x}',
            {"name": "/certs?a=1,b=2", "scenario": "x"},
            'http_req_duration{name:"/certs?a=1,b=2",scenario:x}',
        ),
        (
            "http_req_duration{name:'a}b'}",
            {"name": "a}b"},
            'http_req_duration{name:"a}b"}',
        ),
        (
            'http_req_duration{expected_response:""}',
            {"expected_response": ""},
            'http_req_duration{expected_response:""}',
        ),
        (
            "http_req_duration{url:http://x:8443/a b}",
            {"url": "http://x:8443/a b"},
            "http_req_duration{url:http://x:8443/a b}",
        ),
    ],
)
def test_selectors(selector: str, tags: dict[str, str], normalised: str) -> None:
    threshold = one("avg<1", selector)
    assert (threshold.metric, threshold.tags, threshold.selector) == (
        "http_req_duration",
        tags,
        normalised,
    )


def test_object_form_defaults_and_ms_delay() -> None:
    threshold = one({"threshold": "rate<0.01"}, "http_req_failed")
    assert (threshold.abort_on_fail, threshold.delay_abort_eval_ns) == (False, 0)
    threshold = one({"threshold": "rate<0.01", "delayAbortEval": "250ms", "abortOnFail": True})
    assert threshold.delay_abort_eval_ns == 250_000_000


# -- grammar errors --------------------------------------------------------------------


def test_bad_expression_message_names_expression_selector_source_and_grammar() -> None:
    message = syntax_error({"http_req_duration{scenario:x}": ["p(95)<<2s"]})
    assert message == (
        "'p(95)<<2s' is not a valid threshold for http_req_duration{scenario:x} "
        f"(declared at {SRC}); {GRAMMAR}"
    )


@pytest.mark.parametrize(
    ("expression", "detail", "grammar"),
    [
        ("p95<1", "", GRAMMAR),
        ("avg", "", GRAMMAR),
        ("avg<", "", GRAMMAR),
        ("avg=1", "", GRAMMAR),
        ("avg=<1", "", GRAMMAR),
        ("<1", "", GRAMMAR),
        ("", "", GRAMMAR),
        ("avgx<1", ": unknown aggregation 'avgx'", GRAMMAR),
        ("p(101)<1", ": p(N) needs a number N from 0 to 100, e.g. p(95) or p(99.9)", GRAMMAR),
        ("p()<1", ": p(N) needs a number N from 0 to 100, e.g. p(95) or p(99.9)", GRAMMAR),
        ("p<1", ": p(N) needs a number N from 0 to 100, e.g. p(95) or p(99.9)", GRAMMAR),
        ("avg(3)<1", ": only p(N) takes an argument, not avg", GRAMMAR),
        ("avg<1sec", ": unknown unit 'sec'", UNITS),
        ("avg<1%", ": '%' applies only to rate, e.g. 'rate<1%'", UNITS),
        ("count<1s", ": unit 's' applies only to avg min max med p(N) of a time trend", UNITS),
        ("rate<1ms", ": unit 'ms' applies only to avg min max med p(N) of a time trend", UNITS),
    ],
)
def test_bad_expressions(expression: str, detail: str, grammar: str) -> None:
    message = syntax_error({"http_req_duration": [expression]})
    assert message == (
        f"{expression!r} is not a valid threshold for http_req_duration "
        f"(declared at {SRC}){detail}; {grammar}"
    )


@pytest.mark.parametrize(
    ("selector", "detail"),
    [
        ("http_req_duration{scenario}", "tag 'scenario' has no value"),
        (
            "http_req_duration{scenario:}",
            "tag 'scenario' has an empty value (quote it, scenario:\"\", to mean '')",
        ),
        ("http_req_duration{:x}", "a tag name is missing before ':'"),
        ("http_req_duration{a:b,,c:d}", "an empty TAG:VALUE pair"),
        ("http_req_duration{a:b", "the tag filter has no closing '}'"),
        ("http_req_duration{a:b}x", "the tag filter has no closing '}'"),
        ("http_req_duration{}", "the tag filter '{}' is empty"),
        ("http_req_duration{a:b,}", "the tag filter ends with ','"),
        ("http_req_duration{a:1,a:2}", "tag 'a' is given twice"),
        ('http_req_duration{a:"b}', "cannot read a TAG:VALUE pair at 'a:\"b'"),
        (
            "http_req_duration{scenario:x,name:/api/v1/certificates/{id}}",
            "tag 'name' has '{' or '}' in its unquoted value; quote the value, "
            'e.g. name:"/api/v1/certificates/{id}"',
        ),
        ("{a:b}", "the metric name is missing"),
        ("", "the metric name is missing"),
        (
            "9xx",
            "'9xx' is not a metric name (letters, digits, '_', '.', '-'; "
            "starting with a letter or '_')",
        ),
        (
            "http req",
            "'http req' is not a metric name (letters, digits, '_', '.', '-'; "
            "starting with a letter or '_')",
        ),
    ],
)
def test_bad_selectors(selector: str, detail: str) -> None:
    message = syntax_error({selector: ["avg<1"]})
    assert message == (
        f"{selector!r} is not a valid metric selector (declared at {SRC}): {detail}; {SELECTOR}"
    )


def test_bad_object_forms() -> None:
    assert syntax_error({"x": [{"threshold": "avg<1", "abortonfail": True, "delay": 1}]}) == (
        "threshold {'threshold': 'avg<1', 'abortonfail': True, 'delay': 1} for x "
        f"(declared at {SRC}) has unknown keys 'abortonfail', 'delay'; "
        "the keys are threshold, abortOnFail, delayAbortEval, window and windowsToAbort"
    )
    assert syntax_error({"x": [{"abortOnFail": True}]}) == (
        f"threshold {{'abortOnFail': True}} for x (declared at {SRC}) needs 'threshold': "
        "an expression string such as 'p(95)<2000'"
    )
    assert syntax_error({"x": [{"threshold": "avg<1", "abortOnFail": "yes"}]}) == (
        f"abortOnFail of x 'avg<1' (declared at {SRC}) must be true or false, not 'yes'"
    )
    assert syntax_error({"x": [{"threshold": "avg<1", "delayAbortEval": "10x"}]}) == (
        f"'10x' is not a valid delayAbortEval of x 'avg<1' (from {SRC}); "
        "use a number with ns, us, ms, s, m or h, e.g. '30s', '1.5m' or '250ms'."
    )
    assert syntax_error({"x": [{"threshold": "avg<<1"}]}).startswith(
        "'avg<<1' is not a valid threshold for x"
    )


def test_bad_spec_shapes() -> None:
    assert syntax_error({"x": "avg<1"}) == (
        f"thresholds for x (declared at {SRC}) must be a list of expressions, "
        "e.g. ['p(95)<2000']; got 'avg<1'"
    )
    assert syntax_error({"x": [42]}) == (
        f"42 is not a valid threshold for x (declared at {SRC}): use an expression string or "
        "{'threshold': ..., 'abortOnFail': ..., 'delayAbortEval': ..., 'window': ..., "
        "'windowsToAbort': ...}"
    )
    assert syntax_error(["avg<1"]).startswith(
        f"thresholds (declared at {SRC}) must be a mapping of metric selector"
    )


def test_message_without_source() -> None:
    with pytest.raises(ThresholdSyntaxError) as info:
        parse_thresholds({"x": ["bad"]}, source="")
    assert str(info.value) == f"'bad' is not a valid threshold for x; {GRAMMAR}"


# -- judgement -------------------------------------------------------------------------


def test_message_names_selector_expression_observed_limit_count_and_source() -> None:
    store = store_with([100_000_000] * 1424 + [912_400_000] * 76, {"scenario": "list"})
    result = judge("p(95)<800", store, "http_req_duration{scenario:list}")
    assert not result.ok
    assert result.breached
    assert result.count == 1500
    assert result.observed == 912.785407  # 912.4 ms reported at its bucket's top
    assert result.message() == (
        "http_req_duration{scenario:list} p(95)<800: observed 912.785 ms over 1,500 samples "
        f"(limit 800 ms) — declared at {SRC}"
    )


@pytest.mark.parametrize(
    ("expression", "ok"),
    [
        ("max<1000ns", False),
        ("max<=1000ns", True),
        ("max>1000ns", False),
        ("max>=1000ns", True),
        ("max==1000ns", True),
        ("max!=1000ns", False),
        ("min==1us", False),
        ("min==10ns", True),
        ("p(100)==0.001ms", True),
        ("count==100", True),
        ("count!=100", False),
    ],
)
def test_every_operator_at_the_boundary(expression: str, ok: bool) -> None:
    store = store_with(range(10, 1001, 10))  # 10..1000 ns: exact in HDR
    assert judge(expression, store).ok is ok


def test_avg_is_judged_exactly() -> None:
    store = store_with([1, 2])  # avg 1.5 ns
    assert not judge("avg<1.5ns", store).ok
    assert judge("avg<=1.5ns", store).ok
    assert judge("avg<=0.0000015", store).observed == 1.5e-6


def test_percentile_is_conservative_nearest_rank() -> None:
    store = store_with(range(1, 101))  # 1..100 ns
    # rank ceil(90.3) = 91; hdrh's half-up rounding would report 90 and pass.
    result = judge("p(90.3)<91ns", store)
    assert (result.ok, result.observed) == (False, 0.000091)
    assert judge("p(90.3)<=91ns", store).ok
    assert judge("med==50ns", store).ok


def test_time_values_are_reported_high_never_low() -> None:
    store = store_with([800_000_000] * 100)  # exactly 800 ms
    result = judge("p(95)<=800", store)
    assert not result.ok  # 800 ms reads as 800.063 ms, the top of its HDR bucket
    assert result.observed == 800.063487
    assert judge("p(95)<=800.1", store).ok


def test_rates_including_percent() -> None:
    store = store_with(failed=[True] + [False] * 99)
    result = judge("rate<1%", store, "http_req_failed")
    assert not result.ok  # 1 of 100 is exactly 1%
    assert result.reason == "observed 1% = 1 of 100 samples (limit 1%)"
    assert judge("rate<=0.01", store, "http_req_failed").ok
    assert judge("rate<0.0101", store, "http_req_failed").reason == (
        "observed 0.01 = 1 of 100 samples (limit 0.0101)"
    )


def test_counters_count_and_rate() -> None:
    store = store_with()
    for _ in range(120):
        store.add_counter("http_reqs", 1, tagset({"scenario": "a"}))
    rate = judge("rate>=2", store, "http_reqs", duration_ns=60_000_000_000)
    assert (rate.ok, rate.observed) == (True, 2.0)
    assert rate.reason == "observed 2/s over 120 samples (limit 2/s)"
    assert judge("count==120", store, "http_reqs{scenario:a}").ok
    no_duration = judge("rate>1", store, "http_reqs")  # the fake clock never moves
    assert (no_duration.ok, no_duration.observed) == (False, None)
    assert no_duration.reason == (
        "a counter rate needs the run duration and none is known for http_reqs; "
        "pass duration_ns to evaluate()"
    )


def test_gauge_value() -> None:
    store = store_with()
    store.set_gauge("vus", 7)
    store.set_gauge("vus", 3)
    assert judge("value==3", store, "vus").ok
    assert not judge("value>3", store, "vus").ok


@pytest.mark.parametrize(
    ("samples", "expression", "min_tail", "reason"),
    [
        (99, "p(99)<1s", 1, "p(99) needs at least 100 samples (got 99)"),
        (19, "p(95)<1s", 1, "p(95) needs at least 20 samples (got 19)"),
        (999, "p(99.9)<1s", 1, "p(99.9) needs at least 1,000 samples (got 999)"),
        (499, "p(99)<1s", 5, "p(99) needs at least 500 samples (got 499)"),
        (1, "med<1s", 1, "med needs at least 2 samples (got 1)"),
    ],
)
def test_too_few_samples_for_a_percentile_is_refused(
    samples: int, expression: str, min_tail: int, reason: str
) -> None:
    store = store_with([5] * samples, {"scenario": "x"})
    result = judge(expression, store, "http_req_duration{scenario:x}", min_tail_samples=min_tail)
    assert (result.ok, result.observed, result.count, result.breached) == (
        False,
        None,
        samples,
        False,
    )
    assert result.reason == f"insufficient samples: {reason}; run longer or at a higher rate"
    store.add_trend("http_req_duration", 5, tagset({"scenario": "x"}))  # one more is enough
    assert judge(expression, store, "http_req_duration{scenario:x}", min_tail_samples=min_tail).ok


def test_max_and_p100_and_p0_need_one_sample() -> None:
    store = store_with([5])
    for expression in ("p(100)<1s", "p(0)<1s", "max<1s", "min<1s", "avg<1s"):
        assert judge(expression, store).ok, expression


def test_no_samples_for_selected_series_is_a_failure() -> None:
    store = store_with([5], {"scenario": "a"})
    result = judge("p(95)<1s", store, "http_req_duration{scenario:x}")
    assert (result.ok, result.judged) == (False, False)
    assert result.message() == (
        "http_req_duration{scenario:x} p(95)<1s: no samples recorded for "
        "http_req_duration{scenario:x}; check the scenario ran and the tag filter matches "
        f"— declared at {SRC}"
    )


def test_unknown_metric_wrong_aggregation_and_unit_are_failures_not_crashes() -> None:
    store = store_with([5])
    store.declare("cert_bytes", MetricType.TREND)
    store.add_trend("cert_bytes", 1200)
    assert judge("p(95)<1", store, "http_req_duraton").reason == (
        "no metric named 'http_req_duraton' is recorded (did you mean 'http_req_duration'?); "
        "check the selector"
    )
    assert judge("rate<1", store).reason == (
        "rate does not apply to http_req_duration, a time trend; use avg min max med p(N) count"
    )
    assert judge("p(95)<1", store, "http_req_failed").reason == (
        "p(95) does not apply to http_req_failed, a rate; use rate"
    )
    assert judge("avg<1", store, "http_reqs").reason == (
        "avg does not apply to http_reqs, a counter; use count rate"
    )
    assert judge("count<1", store, "vus").reason == (
        "count does not apply to vus, a gauge; use value"
    )
    assert judge("max<2s", store, "cert_bytes").reason == (
        "unit 's' applies only to time trends; cert_bytes is a trend"
    )
    assert judge("max<1300", store, "cert_bytes").ok  # plain trends compare raw values


def test_evaluate_keeps_order_and_checks_min_tail_samples() -> None:
    store = store_with([5] * 100)
    thresholds = parse_thresholds({"http_req_duration": ["p(99)<1s", "avg>1s"]}, source=SRC)
    assert [r.ok for r in evaluate(thresholds, store)] == [True, False]
    with pytest.raises(ValueError, match="min_tail_samples must be >= 1, got 0"):
        evaluate(thresholds, store, min_tail_samples=0)


def test_abort_check_returns_due_breaches_only() -> None:
    store = store_with([2_000_000_000] * 10, failed=[True] * 10)
    for _ in range(10):
        store.add_counter("http_reqs", 1, ())
    thresholds = parse_thresholds(
        {
            "http_req_failed": [
                {"threshold": "rate<0.5", "abortOnFail": True, "delayAbortEval": "10s"},
                "rate<0.1",  # not abortOnFail
            ],
            "http_req_duration": [
                {"threshold": "avg<1s", "abortOnFail": True},
                {"threshold": "p(99)<1s", "abortOnFail": True},  # 10 samples: not judged
            ],
            "http_reqs": [{"threshold": "rate>=1", "abortOnFail": True}],
        },
        source=SRC,
    )
    early = abort_check(thresholds, store, elapsed_ns=5_000_000_000)
    assert [r.threshold.expression for r in early] == ["avg<1s"]  # http_reqs 2/s is fine
    late = abort_check(thresholds, store, elapsed_ns=20_000_000_000)
    assert [r.threshold.expression for r in late] == ["rate<0.5", "avg<1s", "rate>=1"]
    assert all(r.breached for r in late)


def test_a_declared_counter_nothing_incremented_counts_zero() -> None:
    from pytest_certload.metrics import MetricStore, MetricType
    from pytest_certload.thresholds import evaluate, parse_thresholds

    store = MetricStore()
    store.declare("shape_bad", MetricType.COUNTER)
    store.declare("latency", MetricType.TREND, time=True)
    results = evaluate(
        parse_thresholds(
            {"shape_bad": ["count==0", "count>0"], "latency": ["p(95)<1"]}, source="here"
        ),
        store,
        duration_ns=10**9,
    )
    assert [r.ok for r in results] == [True, False, False]
    assert (
        results[0].message()
        == "shape_bad count==0: observed 0 over 0 samples (limit 0) — declared at here"
    )
    assert "no samples recorded for latency" in results[2].reason


# -- nothing about a threshold fails after the load ------------------------------------------

FINITE = (
    "VALUE must be a finite number that fits a float (up to about 1.8e308, in ms for a "
    "time trend), e.g. 'p(95)<2000' or 'max<1e6'; there is no infinite or NaN limit: to "
    "put no limit on a metric, leave the threshold out"
)


@pytest.mark.parametrize(
    ("expression", "detail"),
    [
        ("max<1e999", "the limit 1e999 is too large for a float"),
        ("max<-1e999", "the limit -1e999 is too large for a float"),
        ("p(95)<1e306h", "the limit 1e306h is too large for a float"),
        ("avg<1e99999999999s", "the limit 1e99999999999 is too large for a float"),
        ("max<inf", "the limit is not a number"),
        ("max<-Infinity", "the limit is not a number"),
        ("p(99)<nan", "the limit is not a number"),
        ("avg<NaN ms", "the limit is not a number"),
    ],
)
def test_infinite_and_nan_limits_are_syntax_errors_at_parse_time(
    expression: str, detail: str
) -> None:
    message = syntax_error({"http_req_duration": [expression]})
    assert message == (
        f"{expression!r} is not a valid threshold for http_req_duration "
        f"(declared at {SRC}): {detail}; {FINITE}"
    )


def test_a_hand_made_threshold_with_a_non_finite_limit_is_refused_when_made() -> None:
    good = one("max<5")
    with pytest.raises(ThresholdSyntaxError) as info:
        Threshold(**{**good.__dict__, "limit": float("inf")})
    assert str(info.value) == (
        f"the limit inf of http_req_duration 'max<5' is not a finite number; {FINITE}"
    )
    with pytest.raises(ThresholdSyntaxError, match="'=<' is not a comparison"):
        Threshold(**{**good.__dict__, "op": "=<"})


def test_a_non_finite_observation_is_unjudged_not_raised() -> None:
    store = store_with()
    store.declare("queue_depth", MetricType.GAUGE)
    store.declare("bytes", MetricType.COUNTER)
    store.set_gauge("queue_depth", float("nan"))
    store.add_counter("bytes", float("inf"), ())
    (gauge,) = evaluate(parse_thresholds({"queue_depth": ["value<10"]}, source=SRC), store)
    (counter,) = evaluate(parse_thresholds({"bytes": ["count<10"]}, source=SRC), store)
    assert (gauge.ok, gauge.observed) == (False, None)
    assert gauge.reason == (
        "queue_depth holds nan, not a finite number: an iteration added or set a non-finite "
        "value (inf or NaN), so there is nothing to compare with the limit"
    )
    assert (counter.ok, counter.observed) == (False, None)
    assert counter.reason.startswith("bytes holds inf, not a finite number")


def test_judging_never_raises_whatever_goes_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_with([5_000_000] * 10)
    thresholds = parse_thresholds({"http_req_duration": ["max<1", "avg<100"]}, source=SRC)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in judging")

    monkeypatch.setattr("pytest_certload.thresholds._observe", broken)
    results = evaluate(thresholds, store)
    assert [(r.ok, r.observed) for r in results] == [(False, None), (False, None)]
    assert results[0].reason == (
        "could not be judged (RuntimeError: a bug in judging); the run's data is kept in the "
        "run file"
    )


def test_a_bad_limit_stops_the_run_before_any_load() -> None:
    from pytest_certload.engine import ConstantArrivalRate, RunOptions, Scenario, run_sync

    calls: list[int] = []

    async def work(vu: Any) -> None:
        calls.append(1)

    scenario = Scenario("s", work, ConstantArrivalRate(10, "1s"))
    with pytest.raises(ThresholdSyntaxError, match="'max<1e999' is not a valid threshold"):
        run_sync([scenario], thresholds={"iteration_duration": ["max<1e999"]})
    with pytest.raises(ConfigError) as info:
        RunOptions(min_tail_samples=0)
    assert str(info.value) == (
        "0 is not a valid min_tail_samples (RunOptions); use a whole number of samples, 1 or "
        "more, e.g. 5."
    )
    assert calls == []
