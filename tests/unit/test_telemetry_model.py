"""What telemetry keeps and how it reads: ticks on the run's time axis, the context line
of a span, the summary's keys, statement texts that may be kept, certctl's metrics
parsed, and the option's grammar."""

from __future__ import annotations

import json

import pytest

from pytest_certload.errors import ConfigError
from pytest_certload.settings import resolve
from pytest_certload.telemetry import GENERATOR, ServerTelemetry, Tick
from pytest_certload.telemetry.postgres import kept_query
from pytest_certload.telemetry.prometheus import metric_changes, parse_metrics

S = 1_000_000_000


def _server() -> ServerTelemetry:
    ticks = [
        Tick(0, S, cpu_ns={"certctl": S // 10, "postgres": S // 20}, sessions={"waiting": 0}),
        Tick(
            S,
            2 * S,
            cpu_ns={"certctl": 19 * S // 10, "postgres": S // 2},
            sessions={"waiting": 4, "active": 5},
            wait_events={"Lock:transactionid": 4},
            db_time_ms=100.0,
            statements=[(1, 10, 61.0), (2, 50, 39.0)],
        ),
        Tick(2 * S, 3 * S, cpu_ns={"certctl": S // 10}, sessions={"waiting": 0}),
    ]
    return ServerTelemetry(
        interval_ns=S,
        ticks=ticks,
        services=["certctl", "postgres", GENERATOR],
        texts={1: "INSERT INTO audit_events (id) VALUES ($1)", 2: "SELECT 1"},
        top=[(1, 10, 61.0), (2, 50, 39.0), (3, 1, 1.0)],
    )


def test_the_context_of_a_span_names_cpu_waits_and_the_top_statement() -> None:
    line = _server().context(S, 2 * S)
    assert line.startswith("during 1s–2s: certctl 190 % CPU, postgres 50 % CPU")
    assert "postgres 4 session(s) waiting (most on Lock:transactionid)" in line
    assert "top statement 61 % of DB time: INSERT INTO audit_events (id) VALUES ($1)" in line


def test_a_span_weighs_the_ticks_it_covers_in_part() -> None:
    line = _server().context(S // 2, 3 * S // 2)  # half of tick 0, half of tick 1
    assert "certctl 100 % CPU" in line  # (0.05 + 0.95) s over 1 s
    assert _server().context(10 * S, 11 * S) == ""  # no tick there


def test_a_quiet_span_says_no_session_waited() -> None:
    assert "no postgres session waiting" in _server().context(0, S)


def test_the_summary_has_the_documented_keys_and_survives_json() -> None:
    server = _server()
    summary = server.summary()
    assert summary["certctl"]["cpu_s"] == pytest.approx(2.1)
    assert summary["postgres"]["waiting_max"] == 4
    assert summary["postgres"]["wait_events_max"] == {"Lock:transactionid": 4}
    # a statement without a kept text (3) is left out
    assert [r["query"] for r in summary["postgres"]["top_statements"]] == [
        "INSERT INTO audit_events (id) VALUES ($1)",
        "SELECT 1",
    ]
    assert summary["postgres"]["top_statements"][0]["mean_ms"] == pytest.approx(6.1)
    assert set(summary[GENERATOR]) == {"cpu_s", "processes", "telemetry_cpu_s"}
    again = ServerTelemetry.from_dict(json.loads(json.dumps(server.to_dict())))
    assert again.summary() == summary
    assert again.context(S, 2 * S) == server.context(S, 2 * S)


def test_a_service_not_sampled_has_null_figures() -> None:
    summary = ServerTelemetry(interval_ns=S, services=[GENERATOR]).summary()
    assert summary["certctl"]["cpu_s"] is None
    assert summary["postgres"]["rss_max_bytes"] is None
    assert summary["postgres"]["top_statements"] == []


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("SELECT * FROM managed_certificates WHERE id = $1", True),
        ("  with x as (select 1) select * from x", True),
        ("INSERT INTO t VALUES ($1)", True),
        ("ALTER ROLE certctl PASSWORD 'hunter2'", False),
        ("CREATE ROLE x LOGIN PASSWORD 'secret'", False),
        ("SELECT count(*) FROM pg_stat_activity", False),  # the sampler's own
        ("SELECT queryid FROM pg_stat_statements(false)", False),
    ],
)
def test_only_plain_dml_that_is_not_the_samplers_own_is_kept(text: str, kept: bool) -> None:
    assert (kept_query(text) is not None) is kept


def test_a_long_statement_is_cut_and_flattened() -> None:
    text = kept_query("SELECT\n   " + "a, " * 200 + "b FROM t")
    assert text is not None
    assert len(text) == 300
    assert "\n" not in text
    assert text.endswith("…")


def test_certctl_metrics_are_parsed_into_changes_and_end_values() -> None:
    start = parse_metrics(
        "# TYPE certctl_issuance_total counter\ncertctl_issuance_total 5\n"
        "# TYPE certctl_certificate_total gauge\ncertctl_certificate_total 100\n"
    )
    end = parse_metrics(
        "# TYPE certctl_issuance_total counter\ncertctl_issuance_total 12\n"
        "# TYPE certctl_certificate_total gauge\ncertctl_certificate_total 107\n"
        "# TYPE certctl_issuance_duration_seconds histogram\n"
        'certctl_issuance_duration_seconds_bucket{le="1"} 3\n'
        'certctl_issuance_duration_seconds_bucket{le="+Inf"} 7\n'
        "certctl_issuance_duration_seconds_count 7\n"
        "certctl_issuance_duration_seconds_sum 2.5\n"
    )
    changes = metric_changes(start, end)
    assert changes["counters"] == {
        "certctl_issuance_duration_seconds_count": 7.0,
        "certctl_issuance_duration_seconds_sum": 2.5,
        "certctl_issuance_total": 7.0,
    }
    assert changes["gauges"] == {"certctl_certificate_total": 107.0}


@pytest.mark.parametrize(("raw", "ns"), [("off", 0), ("1s", S), ("250ms", S // 4)])
def test_the_telemetry_option_takes_off_or_a_duration(raw: str, ns: int) -> None:
    assert resolve({}, {"certload_telemetry": raw}, environ={}).telemetry_ns == ns


@pytest.mark.parametrize("raw", ["10ms", "often", "-1s"])
def test_a_bad_telemetry_interval_names_the_value_and_what_is_valid(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve({}, {}, environ={"CERTLOAD_TELEMETRY": raw})
    message = str(caught.value)
    assert repr(raw) in message
    assert "environment variable CERTLOAD_TELEMETRY" in message
    assert "at least 100ms" in message
