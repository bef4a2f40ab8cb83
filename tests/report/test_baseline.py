"""Baselines: save, compare with a noise-aware rule, tabulate; the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_certload.baseline import (
    Baseline,
    Rule,
    ScenarioBaseline,
    baseline_from_results,
    baseline_from_runs,
    compare,
    comparison_lines,
    finding_text,
    load,
    main,
    markdown_table,
    min_samples,
    quantile_interval,
    resolve_path,
    save,
)
from pytest_certload.engine import RunResult
from pytest_certload.errors import BaselineError
from pytest_certload.metrics import TrendSink
from pytest_certload.stack.database import DatabaseSettings, RowCounts
from pytest_certload.units import format_ms
from tests.report.synth import recorder_with

MS = 1_000_000
DOUBLE = {"kind": "double", "version": {"version": "double-0.1.0"}, "label": "double"}


def _baseline(result: RunResult, name: str = "b") -> Baseline:
    return baseline_from_runs(
        [("tests/load/test_api.py::test_api", result)],
        name=name,
        metadata={"target": DOUBLE, "commit": "0123456789abcdef", "captured_at": "2026-11-27"},
    )


def _sink(values: list[int]) -> TrendSink:
    sink = TrendSink(time=True)
    for v in values:
        sink.add(v)
    return sink


def _single(values: list[int], name: str = "x") -> Baseline:
    sc = ScenarioBaseline("s", "http_req_duration", {"http_req_duration": _sink(values)})
    return Baseline(name, "2026-11-27", "abc", {}, {}, "smoke", "fast", "0.1.0", {"s": sc})


# -- statistics ------------------------------------------------------------------------------


def test_quantile_interval_matches_the_textbook_order_statistics() -> None:
    # the distribution-free 95 % interval of the median of 100 samples is X(40)..X(61)
    assert quantile_interval(100, 50, 0.95) == (40, 61)
    # p99 of 100 samples has no upper bound: X(101) does not exist
    assert quantile_interval(100, 99, 0.95)[1] > 100
    # and min_samples says when it starts to exist
    for q, needed in ((50, 6), (95, 72), (99, 368)):
        assert min_samples(q, 0.95) == needed
        assert quantile_interval(needed, q, 0.95)[1] <= needed
        assert quantile_interval(needed - 1, q, 0.95)[1] > needed - 1
    # the normal approximation used above 20,000 samples agrees with the exact walk
    exact = quantile_interval(20_000, 95, 0.95)
    approx = quantile_interval(20_001, 95, 0.95)
    assert abs(exact[0] - approx[0]) <= 2
    assert abs(exact[1] - approx[1]) <= 2


def test_format_ms_uses_three_significant_digits() -> None:
    assert [format_ms(v) for v in (2_123_000, 843_400_000, 1_250_000_000, None)] == [
        "2.12 ms",
        "843 ms",
        "1.25 s",
        "—",
    ]


# -- comparing runs --------------------------------------------------------------------------


def test_a_second_run_of_the_same_load_passes(run_a: RunResult, run_b: RunResult) -> None:
    result = compare(_baseline(run_a), _baseline(run_b))
    assert result.ok, "\n".join(line.text for line in comparison_lines(result))
    judged = {(f.scenario, f.metric, f.quantile) for f in result.findings}
    assert ("list_certificates", "http_req_duration", 99.0) in judged
    assert ("issuance_acceptance", "synthetic_sign_duration", 95.0) in judged
    assert comparison_lines(result)[-1].text == "no regression against baseline 'b'"
    short = [line.text for line in comparison_lines(result, verbose=False)]
    assert (
        "  · 12 more quantile(s) unchanged (within the noise or below the minimum effect; "
        "-v lists them)"
    ) in short
    assert not any("p(95): same" in line for line in short)


def test_clearly_higher_latency_fails_naming_scenario_and_metric(
    run_a: RunResult, run_slow: RunResult
) -> None:
    result = compare(_baseline(run_a), _baseline(run_slow))
    assert not result.ok
    names = {f.selector for f in result.regressions}
    assert "http_req_duration{scenario:issuance_acceptance}" in names
    assert "http_req_duration{scenario:list_certificates}" in names
    p95 = next(
        f
        for f in result.regressions
        if f.selector == "http_req_duration{scenario:list_certificates}" and f.quantile == 95
    )
    assert finding_text(p95).startswith(
        "http_req_duration{scenario:list_certificates} p(95): regression: "
    )
    assert "intervals [" in finding_text(p95)
    last = comparison_lines(result)[-1]
    assert last.text.endswith("regression(s) against baseline 'b'")
    assert last.bad


def test_a_significant_shift_below_the_minimum_effect_is_not_a_regression() -> None:
    base = [(10_000 + i) * 1_000 for i in range(20_000)]  # 10..30 ms, 20,000 samples
    cur = [v * 105 // 100 for v in base]  # +5 %: certain with 20,000 samples, but small
    result = compare(_single(base), _single(cur))
    assert result.ok
    p50 = next(f for f in result.findings if f.quantile == 50)
    assert p50.verdict == "same"
    assert "significant but below the minimum effect" in p50.reason
    # with the floors lowered to 2 % and 0.5 ms the same shift is a regression
    rule = Rule(min_relative=0.02, min_absolute_ns=500_000)
    strict = compare(_single(base), _single(cur), rule)
    assert [f.quantile for f in strict.regressions] == [50.0, 95.0, 99.0]


def test_a_large_relative_shift_under_one_millisecond_is_not_a_regression() -> None:
    base = [100_000 + 100 * i for i in range(5_000)]  # 0.1..0.6 ms
    cur = [v * 3 // 2 for v in base]  # +50 %, at most +0.25 ms
    result = compare(_single(base), _single(cur))
    assert result.ok, "\n".join(line.text for line in comparison_lines(result))
    assert not compare(_single(base), _single(cur), Rule(min_absolute_ns=100_000)).ok


def test_too_few_samples_are_reported_as_not_judged() -> None:
    base = [20 * MS + i * 10_000 for i in range(60)]
    cur = [2 * v for v in base]
    result = compare(_single(base), _single(cur))
    verdicts = {f.quantile: f.verdict for f in result.findings}
    assert verdicts[50.0] == "regression"
    assert verdicts[99.0] == "not judged"
    p99 = next(f for f in result.findings if f.quantile == 99)
    assert finding_text(p99).endswith(
        "too few samples for a 95% interval of p(99): it needs 368 in each run "
        "(baseline 60, current 60)"
    )


def test_missing_scenarios_are_listed(run_a: RunResult) -> None:
    result = compare(_baseline(run_a), _single([MS] * 10))
    assert "scenario 'issuance_acceptance' of the baseline did not run this time" in result.missing
    assert "scenario 's' has no baseline in 'b'" in result.missing


# -- files -----------------------------------------------------------------------------------------


def test_save_and_load_keep_the_full_histograms(run_a: RunResult, tmp_path: Path) -> None:
    original = _baseline(run_a)
    path = save(original, tmp_path / "ci.json")
    loaded = load(path)
    assert loaded.commit == "0123456789abcdef"
    assert loaded.target_kind == "double"
    for name, sc in original.scenarios.items():
        for metric, sink in sc.trends.items():
            other = loaded.scenarios[name].trends[metric]
            assert other.count == sink.count
            assert other.quantiles((1, 50, 99.9)) == sink.quantiles((1, 50, 99.9))
        assert loaded.scenarios[name].error_rate == sc.error_rate
    assert (
        "http_req_duration"
        in json.loads(path.read_text())["scenarios"]["list_certificates"]["trends"]
    )


def test_load_errors_say_what_exists_and_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text(json.dumps({"baseline_format": 0}))
    with pytest.raises(
        BaselineError, match=r"no baseline at .*nope\.json; saved baselines in .*: old"
    ):
        load(tmp_path / "nope.json")
    with pytest.raises(BaselineError, match=r"has baseline_format 0; .* reads format 1"):
        load(tmp_path / "old.json")
    with pytest.raises(BaselineError, match="'a b' is not a valid baseline name"):
        resolve_path("a b")
    assert resolve_path("ci", tmp_path) == tmp_path / "ci.json"
    assert resolve_path("x/y.json") == Path("x/y.json")


def test_table_renders_the_operator_pages_columns(run_a: RunResult) -> None:
    text = markdown_table([_baseline(run_a)])
    lines = text.splitlines()
    assert lines[0] == (
        "| Scenario | Metric | p50 | p95 | p99 | Error rate | Iterations | Captured |"
    )
    row = next(line for line in lines if "`list_certificates` | `http_req_duration`" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    sink = run_a.store.select("http_req_duration", {"scenario": "list_certificates"})
    assert isinstance(sink, TrendSink)
    assert cells[2] == format_ms(sink.quantile(50))
    assert cells[6] == "1,000"
    assert cells[7].startswith("2026-11-27, `0123456789`")
    assert cells[7].endswith("against the certctl reference double 0.1.0")


# -- command line ---------------------------------------------------------------------------------


def _results(tmp_path: Path, name: str, result: RunResult) -> Path:
    out = tmp_path / name
    recorder_with(out, [("tests/load/test_api.py::test_api", result)])
    return out


def test_cli_save_compare_and_table(
    run_a: RunResult,
    run_b: RunResult,
    run_slow: RunResult,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "baselines"
    first = _results(tmp_path, "first", run_a)
    assert main(["save", "ci", "--results", str(first), "--dir", str(store)]) == 0
    assert f"to {store / 'ci.json'}" in capsys.readouterr().out
    assert baseline_from_results(first).scenarios.keys() == load(store / "ci.json").scenarios.keys()

    assert main(["save", "ci", "--results", str(first), "--dir", str(store)]) == 2
    assert "exists; pass --force to replace it" in capsys.readouterr().err

    same = _results(tmp_path, "same", run_b)
    assert main(["compare", "ci", "--results", str(same), "--dir", str(store)]) == 0
    assert "no regression against baseline 'ci'" in capsys.readouterr().out

    slow = _results(tmp_path, "slow", run_slow)
    assert main(["compare", "ci", "--results", str(slow), "--dir", str(store)]) == 1
    out = capsys.readouterr().out
    assert "✗ http_req_duration{scenario:issuance_acceptance} p(95): regression:" in out

    # a looser rule from the command line lets the same slowdown through
    loose = ["--min-relative", "80%", "--min-ms", "50"]
    assert main(["compare", "ci", "--results", str(slow), "--dir", str(store), *loose]) == 0
    capsys.readouterr()

    assert main(["table", "--dir", str(store), "--markdown"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| Scenario | Metric | p50 |")
    assert main(["table", "--results", str(slow)]) == 0
    assert capsys.readouterr().out.startswith("Scenario ")


def test_cli_errors_name_the_missing_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", "ci", "--dir", str(tmp_path), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no baseline at ")
    assert main(["table", "--dir", str(tmp_path / "empty")]) == 2
    assert "no saved baseline in" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", "ci", "--min-relative", "lots"])
    assert "'lots' is not a valid fraction" in capsys.readouterr().err


def test_a_damaged_histogram_in_a_baseline_is_named(run_a: RunResult, tmp_path: Path) -> None:
    path = save(_baseline(run_a), tmp_path / "b.json")
    data = json.loads(path.read_text())
    trend = data["scenarios"]["issuance_acceptance"]["trends"]["http_req_duration"]
    trend["hdr"] = trend["hdr"][:12] + "AAAA" + trend["hdr"][16:]
    path.write_text(json.dumps(data))
    with pytest.raises(BaselineError, match=r"is not a valid baseline: .*damaged HDR histogram"):
        load(path)


# -- what makes two runs comparable -------------------------------------------------------

CERTCTL = {
    "kind": "certctl",
    "label": "certctl 2.0.9 (commit 1a2b3c4d5e6f) at https://127.0.0.1:8443",
    "version": {"version": "2.0.9", "commit": "1a2b3c4d5e6f7a8b"},
}
FSYNC_OFF = DatabaseSettings(
    {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}, "16.4"
)


def _measured(
    result: RunResult,
    *,
    profile: str = "canonical",
    rows: int = 10_032,
    settings: DatabaseSettings = FSYNC_OFF,
) -> Baseline:
    counts = RowCounts(("managed_certificates",), {"managed_certificates": rows})
    return baseline_from_runs(
        [("tests/load/test_api.py::test_api", result)],
        name="b",
        metadata={
            "target": CERTCTL,
            "profile": profile,
            "database": settings,
            "commit": "0123456789abcdef",
            "captured_at": "2026-11-27",
        },
        rows={"list_certificates": counts},
    )


def test_runs_of_another_profile_are_refused(
    run_a: RunResult, run_b: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(BaselineError) as info:
        compare(_measured(run_a, profile="canonical"), _measured(run_b, profile="smoke"))
    assert str(info.value).startswith(
        "baseline 'b' was captured with the canonical profile and this run used smoke "
        "(indicative: every scenario shortened to its smoke duration, so its figures are not "
        "comparable with the contract's canonical runs): their scenarios ran for different "
        "durations, so the figures are not compared."
    )
    assert compare(_measured(run_a, profile="smoke"), _measured(run_b, profile="smoke")).ok
    # the command line refuses too: exit 2, the reason on stderr
    store = tmp_path / "baselines"
    save(_measured(run_a), store / "ci.json")
    smoke = _results(tmp_path, "smoke", run_b)  # recorder_with records profile smoke
    assert main(["compare", "ci", "--results", str(smoke), "--dir", str(store)]) == 2
    assert "error: baseline 'b' was captured with the canonical profile" in (
        capsys.readouterr().err
    )


def test_a_database_of_another_size_or_settings_is_flagged(
    run_a: RunResult, run_b: RunResult
) -> None:
    same = compare(_measured(run_a), _measured(run_b, rows=10_040))  # within 10 rows
    assert same.flags == []
    result = compare(_measured(run_a), _measured(run_b, rows=21_032))
    assert result.ok  # flagged, not failed
    assert result.flags == [
        "list_certificates ran on a database of another size than the baseline's: "
        "managed_certificates 10,032 -> 21,032 rows (+110%); a latency that grows with a "
        "table's size is not comparable"
    ]
    durable = DatabaseSettings({**FSYNC_OFF.settings, "fsync": "on"}, "16.4")
    flagged = compare(_measured(run_a), _measured(run_b, settings=durable))
    assert flagged.flags == [
        "the database's settings differ from the baseline's: fsync off -> on; what a write "
        "costs differs with them"
    ]
    lines = [line.text for line in comparison_lines(result)]
    assert lines[0].endswith("target certctl 2.0.9 (commit 1a2b3c4d5e6f), profile canonical")
    assert lines[1] == "this run: target certctl 2.0.9 (commit 1a2b3c4d5e6f), profile canonical"
    assert f"! {result.flags[0]}" in lines


def test_a_baseline_records_certctls_version_and_the_database(
    run_a: RunResult, tmp_path: Path
) -> None:
    path = save(_measured(run_a, profile="smoke"), tmp_path / "b.json")
    data = json.loads(path.read_text())
    assert data["commit"] == "0123456789abcdef"  # pytest-certload's
    assert data["target"]["version"] == {"version": "2.0.9", "commit": "1a2b3c4d5e6f7a8b"}
    assert data["database"]["settings"]["fsync"] == "off"
    assert data["scenarios"]["list_certificates"]["rows"]["rows"] == {
        "managed_certificates": 10_032
    }
    assert "rows" not in data["scenarios"]["issuance_acceptance"]
    again = load(path)
    assert again.database == FSYNC_OFF
    assert (
        again.scenarios["list_certificates"].rows
        == _measured(run_a).scenarios["list_certificates"].rows
    )
    # a baseline saved before these existed still loads, with none of them
    for key in ("database",):
        data.pop(key)
    data["scenarios"]["list_certificates"].pop("rows")
    path.write_text(json.dumps(data))
    old = load(path)
    assert (old.database, old.scenarios["list_certificates"].rows) == (None, None)
    # the table says the run was indicative, on a database that did not wait for the disk
    cell = markdown_table([again]).splitlines()[2].rsplit("|", 2)[-2].strip()
    assert cell.endswith(
        "; against certctl 2.0.9 (commit 1a2b3c4d5e6f); smoke profile (indicative); "
        "fsync, synchronous_commit, full_page_writes off"
    )
