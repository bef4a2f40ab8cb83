"""The HTML report: content, offline self-containment, a real browser render, the plugin."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_certload.engine import RunResult
from pytest_certload.report import html
from tests.report.synth import SCENARIO_FILE, recorder_with, synthetic_run, synthetic_server

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((p for p in map(shutil.which, _BROWSERS) if p), None)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


class _Charts(HTMLParser):
    """Counts chart figures, and the <svg> elements inside each, by scenario (a run's
    server chart is counted apart, in ``servers``: the number of <svg> in each)."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: list[str] = []
        self.servers: list[int] = []
        self._server = False
        self.svgs: dict[int, int] = {}
        self._depth = 0
        self._in: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "figure" and "server" in classes:
            self.servers.append(0)
            self._server = True
        elif tag == "svg" and self._server:
            self.servers[-1] += 1
        elif tag == "figure" and "chart" in classes:
            self.charts.append(a.get("data-scenario") or "")
            self._in = len(self.charts) - 1
        elif tag == "svg" and self._in is not None:
            self.svgs[self._in] = self.svgs.get(self._in, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._in = None
            self._server = False


def _charts(text: str) -> _Charts:
    parser = _Charts()
    parser.feed(text)
    return parser


@pytest.fixture(scope="module")
def report(run_a: RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of two tests: two scenarios, then one (three charts in all); the first
    has telemetry (its server chart)."""
    single = synthetic_run(seed=5, scenarios=("agent_storm",), duration="4s", rate=50)
    api = "tests/load/test_api.py::test_api_tier"
    recorder = recorder_with(
        tmp_path_factory.mktemp("report"),
        [(api, run_a), ("tests/load/test_scale.py::test_agent_storm", single)],
        servers={api: synthetic_server(run_a.duration_ns)},
    )
    return html.write_report(recorder)


def test_one_chart_per_scenario_each_an_inline_svg(report: Path) -> None:
    assert report.name == "report.html"
    found = _charts(report.read_text())
    assert found.charts == ["issuance_acceptance", "list_certificates", "agent_storm"]
    assert all(found.svgs.get(i) == 1 for i in range(3)), found.svgs
    assert found.servers == [1]  # only the run with telemetry has a server chart


def test_the_server_section_tables_services_statements_and_notes(
    run_a: RunResult, tmp_path: Path
) -> None:
    server = synthetic_server(run_a.duration_ns)
    server.notes.append(
        "certctl metrics not read: GET https://x/api/v1/metrics/prometheus answered 401"
    )
    recorder = recorder_with(tmp_path, [("t::x", run_a)], servers={"t::x": server})
    text = html.render(recorder)
    assert "<h3>Server</h3>" in text
    cpu_s = 0.4 * len(server.ticks)  # 0.4 s a tick
    assert f'<td class="l">certctl</td><td>{cpu_s:.2f}</td>' in text
    assert "SELECT id FROM managed_certificates WHERE status = $1" in text
    assert "answered 401" in text


def test_the_report_is_self_contained(report: Path) -> None:
    text = report.read_text()
    # nothing is fetched: no script, stylesheet, image or font from anywhere
    assert not re.search(r"<(script|link|img|iframe)\b", text)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text)
    assert not re.search(r"@import", text)


def test_the_report_names_the_target_machine_and_verdicts(report: Path) -> None:
    text = report.read_text()
    assert "<dt>target</dt><dd>the certctl reference double 0.1.0</dd>" in text
    assert "not certctl" in text
    assert "<dt>machine</dt><dd>" in text
    assert "<code>tests/load/test_api.py::test_api_tier</code>" in text
    assert "<code>http_req_duration{scenario:issuance_acceptance}</code>" in text
    assert "<code>p(95)&lt;40</code>" in text
    assert text.count('<span class="ok">✓</span>') >= 3
    # the panels of each chart
    for title in (
        "latency per interval (from intended start)",
        "http_req_duration distribution (HDR percentile plot)",
        "iterations per second: achieved vs target",
        "failed requests and dropped iterations per interval",
    ):
        assert text.count(title) == 3, title


def test_without_matplotlib_the_tables_remain_with_an_install_hint(
    run_a: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(html, "charts_available", lambda: False)
    recorder = recorder_with(tmp_path, [("t::x", run_a)], double=False)
    text = html.render(recorder)
    hint = escape(html.INSTALL_HINT)
    assert text.count(hint) == 3  # the header and one per scenario
    assert "<svg" not in text
    assert "not recorded (the tests did not use the certload stack)" in text


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no headless browser: chromium is not installed (apt-get install chromium)",
)
def test_headless_chromium_renders_one_chart_per_scenario(report: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    profile = tmp_path / "chromium-profile"
    url = report.resolve().as_uri()
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = _charts(dom.stdout)
    assert found.charts == ["issuance_acceptance", "list_certificates", "agent_storm"]
    assert all(found.svgs.get(i) == 1 for i in range(3)), found.svgs
    # the server chart of the run with telemetry: its three panels on one time axis
    assert found.servers == [1]
    for title in (
        "p95 latency per interval, by scenario",
        "CPU per service (% of one core)",
        "PostgreSQL sessions at each sample",
    ):
        assert dom.stdout.count(title) == 1, title
    assert "SELECT id FROM managed_certificates WHERE status = $1" in dom.stdout

    shot = report.parent / "report.png"  # kept beside the report as the test's artifact
    done = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'chromium-profile-2'}",
            "--window-size=1280,2400",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000  # a blank 1280x2400 page compresses to a few kB
    print(f"screenshot: {shot}")


def test_the_plugin_writes_the_report_beside_the_summary(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_work=SCENARIO_FILE.format(delay=0.005))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--certload-progress=off")
    result.assert_outcomes(passed=1)
    out = pytester.path / "certload-results"
    result.stdout.fnmatch_lines(
        [f"JSON summary: {out / 'summary.json'}", f"HTML report: {out / 'report.html'}"]
    )
    found = _charts((out / "report.html").read_text())
    assert found.charts == ["work"]
    # telemetry is on by default: the run's server chart (the generator, no stack here)
    assert found.servers == [1]
    summary = json.loads((out / "summary.json").read_text())
    server = summary["tests"][0]["server"]
    assert server["generator"]["cpu_s"] > 0
    assert server["certctl"]["cpu_s"] is None
    assert any("no stack in this session" in n for n in server["notes"])


def test_a_regression_against_a_saved_baseline_fails_the_session(
    pytester: pytest.Pytester,
) -> None:
    from pytest_certload.baseline import main

    pytester.makepyfile(test_work=SCENARIO_FILE.format(delay=0.005))
    first = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--certload-progress=off")
    first.assert_outcomes(passed=1)
    results = pytester.path / "certload-results"
    store = pytester.path / "baselines"
    assert main(["save", "fast", "--results", str(results), "--dir", str(store)]) == 0

    missing = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--certload-baseline=nope")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(
        [
            "*--certload-baseline (from command line --certload-baseline): no baseline at "
            "*nope.json; saved baselines in *: fast. Save one with*"
        ]
    )

    pytester.makepyfile(test_work=SCENARIO_FILE.format(delay=0.05))
    slow = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--certload-progress=off", "--certload-baseline=fast"
    )
    slow.assert_outcomes(passed=1)  # the test passed its thresholds; the session fails
    assert slow.ret == pytest.ExitCode.TESTS_FAILED
    slow.stdout.fnmatch_lines(
        [
            "baseline 'fast': captured *",
            "*✗ iteration_duration{scenario:work} p(50): regression: *",
            "* regression(s) against baseline 'fast'",
        ]
    )


def test_a_real_certctl_is_named_with_its_version(run_a: RunResult, tmp_path: Path) -> None:
    recorder = recorder_with(tmp_path, [("t::x", run_a)], double=False)
    recorder.target = "certctl v2.4.1 at https://certctl.test:8443 (external provider)"
    recorder.target_details = {
        "url": "https://certctl.test:8443",
        "provider": "external",
        "version": {"version": "v2.4.1", "commit": "abc1234"},
        "kind": "certctl",
    }
    text = html.render(recorder)
    assert "<dt>target</dt><dd>certctl v2.4.1 (commit abc1234)</dd>" in text
    assert "<dt>target build</dt><dd>commit=abc1234</dd>" in text
    assert "reference double" not in text


def test_a_report_that_cannot_be_written_never_fails_the_session(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        "import pytest_certload.report.html as report\n\n"
        "def _boom(*args, **kwargs):\n"
        "    raise RuntimeError('boom')\n\n"
        "report.write_report = _boom\n"
    )
    pytester.makepyfile(test_work=SCENARIO_FILE.format(delay=0.001))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--certload-progress=off")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "JSON summary: *summary.json",
            "pytest-certload could not write its HTML report: RuntimeError('boom')",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
