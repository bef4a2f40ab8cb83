"""Verdicts over time in every report: windowed thresholds window by window, the warm-up
left out of the verdict, and the generator's stalls; none of it for an ordinary run, and
run files written before any of it existed still render."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_certload.engine import RunResult
from pytest_certload.record import SessionRecord
from pytest_certload.report import html, terminal
from pytest_certload.report.junit import run_properties
from pytest_certload.report.meta import (
    breached_windows_text,
    hiccup_text,
    warmup_text,
    window_text,
)
from pytest_certload.report.stats import (
    breached_window_spans,
    hiccup_stats,
    scenario_stats,
    warmup_stats,
    window_origin_ns,
)
from pytest_certload.report.summary import SCHEMA_PATH, build_summary
from pytest_certload.thresholds import ThresholdResult
from tests.report.synth import STALL, STALL_MS, recorder_with

S = 1_000_000_000
MS = 1_000_000
NODEID = "tests/load/test_api.py::test_over_time"
ISSUANCE = "http_req_duration{scenario:issuance}"
LISTING = "http_req_duration{scenario:listing}"
#: the words that only a run with windows, a warm-up or a stall has
OVER_TIME_WORDS = ("warm-up", "windows", "generator stalled", "generator_stalled")


def _threshold(result: RunResult, selector: str) -> ThresholdResult:
    return next(r for r in result.thresholds if r.threshold.selector == selector)


def _figure(text: str, scenario: str) -> str:
    """The chart figure of ``scenario`` in a report."""
    start = text.index(f'<figure class="chart" data-scenario="{scenario}"')
    return text[start : text.index("</figure>", start)]


# -- the synthetic run itself -------------------------------------------------------------


def test_the_synthetic_run_has_what_the_reports_show(run_windowed: RunResult) -> None:
    issuance = _threshold(run_windowed, ISSUANCE)
    listing = _threshold(run_windowed, LISTING)
    # the server's breach at 5s-6s of the run and the generator's at 8s-9s; windows
    # count from the end of the 2 s warm-up
    assert [(w.span(), w.stalled) for w in issuance.breached_windows] == [
        ("3s–4s", False),
        ("6s–7s", True),
    ]
    assert not issuance.stalled
    assert [w.span() for w in listing.breached_windows] == ["6s–7s"]
    assert listing.stalled
    assert run_windowed.verdict == "untrustworthy"
    assert window_origin_ns(run_windowed, issuance.threshold) == 2 * S
    assert breached_window_spans(run_windowed, "issuance") == [
        (5 * S, 6 * S, False),
        (8 * S, 9 * S, True),
    ]
    assert run_windowed.warmup_excluded_ns("issuance") == 2 * S


def test_the_request_rate_leaves_the_warm_up_out_of_its_time_too(run_windowed: RunResult) -> None:
    # 100/s for 10 s, 2 s of it warm-up: the judged requests over the judged time
    for name in run_windowed.scenarios:
        assert scenario_stats(run_windowed, name)["rps"] == pytest.approx(100, rel=0.02)


# -- terminal -----------------------------------------------------------------------------


def test_the_terminal_shows_warm_up_windows_and_the_stall(
    run_windowed: RunResult, tmp_path: Path
) -> None:
    lines = terminal.render(recorder_with(tmp_path, [(NODEID, run_windowed)]))
    warm = warmup_stats(run_windowed, "issuance")
    assert warm is not None
    assert warm["requests"] == 199  # 2 s at 100/s, less the one still in flight at 2 s
    assert warm["failed"] == 0
    assert warm["p95_ms"] > 100  # the cold start: slow, and not judged
    row = next(i for i, line in enumerate(lines) if line.startswith("  issuance "))
    assert lines[row + 1] == (
        f"    warm-up 2s excluded from the verdict: 199 requests, "
        f"p95 {warm['p95_ms']:.0f} ms, p99 {warm['p99_ms']:.0f} ms, 0 failed"
    )
    mark = next(i for i, line in enumerate(lines) if line.startswith(f"    ✗ {ISSUANCE} "))
    assert lines[mark].startswith(
        f"    ✗ {ISSUANCE} p(95)<40 per 1s window: breached in 2 of 8 windows of 1s; worst 3s–4s"
    )
    strip = lines[mark + 1]
    assert re.fullmatch(
        r"        breached windows \(counted from 2s into the run\): 3s–4s \d+ ms; "
        rf"6s–7s \d+ ms \(generator stalled: {STALL_MS} ms late\)",
        strip,
    ), strip
    assert (
        f"    ! generator stalled: max {STALL_MS} ms late (limit 50 ms) in 1 of 11 intervals; "
        f"p99 {STALL_MS} ms"
    ) in lines
    assert any(
        line.startswith(f"    ! untrustworthy: {LISTING} p(95)<40 per 1s window: breached only")
        for line in lines
    )


def test_the_terminal_lists_five_breached_windows_then_how_many_more(
    run_windowed: RunResult,
) -> None:
    r = _threshold(run_windowed, ISSUANCE)
    slow = r.windows[3]  # breached, the server's
    many = replace(
        r, windows=tuple(replace(slow, start_ns=k * S, end_ns=(k + 1) * S) for k in range(8))
    )
    text = breached_windows_text(run_windowed, many)
    assert text.count("–") == 5
    assert text.endswith("; and 3 more")
    assert breached_windows_text(run_windowed, many, most=8).count("–") == 8


def test_an_ordinary_run_has_no_over_time_lines(run_a: RunResult, tmp_path: Path) -> None:
    lines = terminal.render(recorder_with(tmp_path, [(NODEID, run_a)]))
    assert not [line for line in lines if any(word in line for word in OVER_TIME_WORDS)]


def test_a_hiccup_within_the_limit_is_not_reported_as_a_stall(
    run_windowed: RunResult, tmp_path: Path
) -> None:
    calm = RunResult.from_dict(run_windowed.to_dict())
    calm.health_limits = replace(calm.health_limits, max_hiccup_ns=(STALL_MS + 1) * MS)
    figures = hiccup_stats(calm)
    assert figures is not None
    assert not figures["stalled"]
    assert figures["stalled_intervals"] == 0
    lines = terminal.render(recorder_with(tmp_path, [(NODEID, calm)]))
    assert not [line for line in lines if line.startswith("    ! generator stalled")]
    assert "certload.generator_stalled" not in dict(run_properties(calm))
    assert "generator stalled: max" not in html.render(recorder_with(tmp_path, [(NODEID, calm)]))
    doc = build_summary(recorder_with(tmp_path, [(NODEID, calm)]))
    assert doc["tests"][0]["generator_hiccup"]["stalled"] is False


# -- junit --------------------------------------------------------------------------------


def test_junit_properties_carry_windows_warm_up_and_the_stall(run_windowed: RunResult) -> None:
    props = dict(run_properties(run_windowed))
    warm = warmup_stats(run_windowed, "listing")
    assert warm is not None
    assert props["certload.listing.warmup"] == warmup_text(warm).removeprefix("warm-up ")
    assert props["certload.listing.warmup"].startswith("2s excluded from the verdict: 199 requests")
    key = f"certload.threshold.{ISSUANCE}.p(95)<40 per 1s window"
    assert props[key].startswith("breached: ")
    assert props[f"{key}.windows"] == "breached 2/8, 1 stalled"
    worst = _threshold(run_windowed, ISSUANCE).worst_window()
    assert worst is not None
    assert props[f"{key}.worst_window"] == window_text(
        run_windowed, _threshold(run_windowed, ISSUANCE), worst
    )
    # the server's own breach is the worst, not the one where the generator stalled
    assert re.fullmatch(r"3s–4s: \d+ ms over \d+ samples", props[f"{key}.worst_window"])
    assert props[f"certload.threshold.{LISTING}.p(95)<40 per 1s window.windows"] == (
        "breached 1/8, 1 stalled"
    )
    figures = hiccup_stats(run_windowed)
    assert figures is not None
    assert props["certload.generator_stalled"] == hiccup_text(figures).removeprefix(
        "generator stalled: "
    )
    # a whole-run threshold keeps its name and gets no window properties
    assert props["certload.threshold.http_req_failed.rate<0.01"].startswith("ok: ")
    assert not [k for k in props if k.startswith("certload.threshold.http_req_failed.rate<0.01.")]


def test_junit_properties_of_an_ordinary_run_have_none_of_it(run_a: RunResult) -> None:
    props = run_properties(run_a)
    assert not [k for k, _ in props if k.endswith((".warmup", ".windows", ".worst_window"))]
    assert "certload.generator_stalled" not in dict(props)


# -- JSON summary -------------------------------------------------------------------------


def test_the_summary_has_each_window_the_warm_up_and_the_hiccups(
    run_windowed: RunResult, tmp_path: Path
) -> None:
    doc = build_summary(recorder_with(tmp_path, [(NODEID, run_windowed)]))
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(doc, schema)
    assert doc["schema_version"] == 1
    assert "tests[].thresholds[].window_ns" in schema["description"]
    (test,) = doc["tests"]
    by_metric = {t["metric"]: t for t in test["thresholds"]}
    issuance = by_metric[ISSUANCE]
    result = _threshold(run_windowed, ISSUANCE)
    assert issuance["window_ns"] == S
    assert issuance["window_origin_ns"] == 2 * S
    assert [
        (w["start_ns"], w["end_ns"], w["ok"], w["observed"], w["count"], w["partial"])
        for w in issuance["windows"]
    ] == [(w.start_ns, w.end_ns, w.ok, w.observed, w.count, w.partial) for w in result.windows]
    stalled = [w for w in issuance["windows"] if w["stalled"]]
    assert [(w["start_ns"], w["hiccup_ns"] // MS) for w in stalled] == [(6 * S, STALL_MS)]
    assert "stalled" not in issuance  # its breach at 3s-4s was the server's
    assert by_metric[LISTING]["stalled"].startswith("breached only in windows where the generator")
    whole = by_metric["http_req_failed"]
    assert whole["window_ns"] == 0
    assert "windows" not in whole
    assert "window_origin_ns" not in whole

    warm = test["scenarios"]["issuance"]["warmup"]
    assert warm == warmup_stats(run_windowed, "issuance")
    assert (warm["warmup_ns"], warm["excluded_ns"], warm["start_ns"], warm["end_ns"]) == (
        2 * S,
        2 * S,
        0,
        2 * S,
    )
    assert (warm["requests"], warm["failed"], warm["latency_metric"]) == (
        199,
        0,
        "http_req_duration",
    )
    hiccup = test["generator_hiccup"]
    assert hiccup["max_ms"] == pytest.approx(STALL_MS, rel=1e-3)
    assert (hiccup["limit_ms"], hiccup["stalled"], hiccup["stalled_intervals"]) == (50, True, 1)
    assert hiccup["intervals"] == len(run_windowed.intervals)

    # the untagged process metric is one more time trend among the metrics
    metric = doc["metrics"]["generator_hiccup"]
    assert (metric["type"], metric["contains"]) == ("trend", "time")
    assert metric["values"]["max"] == pytest.approx(STALL_MS, rel=1e-3)
    assert metric["values"]["count"] == 1
    # k6's thresholds map names a windowed threshold with its window
    assert doc["metrics"][ISSUANCE]["thresholds"] == {"p(95)<40 per 1s window": {"ok": False}}


def test_a_summary_of_an_ordinary_run_has_none_of_it(run_a: RunResult, tmp_path: Path) -> None:
    doc = build_summary(recorder_with(tmp_path, [(NODEID, run_a)]))
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    (test,) = doc["tests"]
    assert "generator_hiccup" not in test  # a virtual clock: nothing measured
    assert all("warmup" not in sc for sc in test["scenarios"].values())
    for entry in test["thresholds"]:
        assert entry["window_ns"] == 0
        assert not {"windows", "window_origin_ns", "stalled"} & set(entry)


# -- HTML ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def windowed_html(run_windowed: RunResult, tmp_path_factory: pytest.TempPathFactory) -> str:
    recorder = recorder_with(tmp_path_factory.mktemp("over-time"), [(NODEID, run_windowed)])
    return html.render(recorder)


def test_the_html_report_has_a_strip_per_windowed_threshold(
    run_windowed: RunResult, windowed_html: str
) -> None:
    strips = re.findall(r'<div class="wstrip" data-windows="(\d+)">(.*?)</div>', windowed_html)
    assert [n for n, _ in strips] == ["8", "8"]
    classes = [re.findall(r'<span class="(w-[a-z]+)"', blocks) for _, blocks in strips]
    # 8 judged windows (the milliseconds the run's end cuts past its last whole interval
    # make no window of their own)
    assert classes[0] == ["w-ok"] * 3 + ["w-breached"] + ["w-ok"] * 2 + ["w-stalled", "w-ok"]
    assert classes[1] == ["w-ok"] * 6 + ["w-stalled", "w-ok"]
    # each block says its window, its figures and where it lies in the run
    assert re.search(r'title="3s–4s: \d+ ms over \d+ samples \(5s–6s of the run\)"', strips[0][1])
    issuance = _threshold(run_windowed, ISSUANCE)
    listed = breached_windows_text(run_windowed, issuance)
    assert escape(f"windows of 1s: breached 2/8, 1 stalled; {listed}") in windowed_html
    assert "<code>p(95)&lt;40 per 1s window</code>" in windowed_html


def test_the_html_report_states_the_warm_up_and_the_stall(
    run_windowed: RunResult, windowed_html: str
) -> None:
    for name in run_windowed.scenarios:
        warm = warmup_stats(run_windowed, name)
        assert warm is not None
        assert f"<li><code>{name}</code>: {escape(warmup_text(warm))}</li>" in windowed_html
    figures = hiccup_stats(run_windowed)
    assert figures is not None
    assert f'<p class="warn stall">{escape(hiccup_text(figures))}</p>' in windowed_html


@pytest.mark.skipif(not html.charts_available(), reason="charts need matplotlib")
def test_the_latency_chart_shades_warm_up_breached_windows_and_the_stall(
    windowed_html: str,
) -> None:
    issuance = _figure(windowed_html, "issuance")
    listing = _figure(windowed_html, "listing")
    for label in (html.WARMUP_LABEL, html.BREACHED_LABEL, html.STALLED_LABEL):
        assert issuance.count(f">{label}<") == 1, label  # one legend entry each
    # listing breached only where the generator stalled: hatched, never red
    assert listing.count(f">{html.WARMUP_LABEL}<") == 1
    assert listing.count(f">{html.STALLED_LABEL}<") == 1
    assert f">{html.BREACHED_LABEL}<" not in listing
    assert "<pattern" in issuance  # the hatch, inline: nothing is fetched
    assert ">p(95)&lt;40 per 1s window ✗<" in issuance


def test_an_ordinary_html_report_has_none_of_it(run_a: RunResult, tmp_path: Path) -> None:
    text = html.render(recorder_with(tmp_path, [(NODEID, run_a)]))
    assert 'class="wstrip"' not in text
    assert 'class="warmup"' not in text
    assert "generator stalled" not in text
    for label in (html.WARMUP_LABEL, html.BREACHED_LABEL, html.STALLED_LABEL):
        assert label not in text


# -- run files --------------------------------------------------------------------------


def _strip_new_fields(result: dict[str, Any]) -> None:
    """A run as written before windows, warm-up, intervals and hiccups existed."""
    for key in ("intervals", "interval_ns", "warmup_metrics", "scope"):
        result.pop(key, None)
    result["health_limits"].pop("max_hiccup_ns", None)
    result["metrics"]["metrics"].pop("generator_hiccup", None)
    for sc in result["scenarios"].values():
        sc.pop("warmup_ns", None)
    for r in result["thresholds"]:
        for key in ("windows", "stalled"):
            r.pop(key, None)
        for key in ("window_ns", "windows_to_abort"):
            r["threshold"].pop(key, None)


def test_a_run_file_reads_back_to_the_same_reports(run_windowed: RunResult, tmp_path: Path) -> None:
    written = recorder_with(tmp_path, [(NODEID, run_windowed)])
    again = SessionRecord.read(tmp_path)
    again.outcomes = written.outcomes
    assert terminal.render(again) == terminal.render(written)
    assert run_properties(again.records[0].result) == run_properties(run_windowed)


@pytest.mark.parametrize("which", ["run_a", "run_windowed"])
def test_an_old_run_file_still_renders_in_every_report(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    recorder_with(tmp_path, [(NODEID, request.getfixturevalue(which))])
    (path,) = (tmp_path / "runs").glob("*.json")
    data = json.loads(path.read_text())
    _strip_new_fields(data["result"])
    path.write_text(json.dumps(data))
    old = SessionRecord.read(tmp_path)
    result = old.records[0].result
    assert not result.intervals
    assert result.warmup_store is None
    assert all(not r.threshold.windowed and not r.windows for r in result.thresholds)

    # (the windowed run's stored reasons still speak of windows: only what the reports
    # add is checked here)
    lines = terminal.render(old)
    added = ("warm-up", "breached windows", "generator stalled")
    assert not [line for line in lines if any(word in line for word in added)]
    props = run_properties(result)
    assert not [k for k, _ in props if k.endswith((".warmup", ".windows", ".worst_window"))]
    assert "certload.generator_stalled" not in dict(props)
    doc = build_summary(old)
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    assert "generator_hiccup" not in doc["tests"][0]
    assert all("warmup" not in sc for sc in doc["tests"][0]["scenarios"].values())
    text = html.render(old)
    assert 'class="wstrip"' not in text
    assert 'class="warmup"' not in text
    assert "chart failed" not in text
    assert text.count('<figure class="chart"') == 2


def test_a_stall_outside_any_window_is_still_hatched(run_windowed: RunResult) -> None:
    """The stalled interval lies in the run even where no window breached; the chart's
    hatch comes from the intervals, so whole-run thresholds get it too."""
    from pytest_certload.report.stats import stalled_interval_spans

    assert stalled_interval_spans(run_windowed) == [(int(STALL[0] * S), int(STALL[0] * S) + S)]
