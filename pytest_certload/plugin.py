"""pytest-certload's hooks. Everything of substance lives in pytest-free modules."""

from __future__ import annotations

import argparse
from collections.abc import Generator
from typing import Any

import pytest

from . import _settings
from ._session import (
    LoadTest,
    SessionRecorder,
    ThresholdBreach,
    UntrustworthyRun,
    validate_marker_kwargs,
)
from .errors import CertloadError, ConfigError, OptionValueError
from .fixtures import certload, certload_seed, certload_settings, certload_stack

__all__ = [
    "SETTINGS_KEY",
    "CertloadWarning",
    "ThresholdBreach",
    "UntrustworthyRun",
    "certload",
    "certload_seed",
    "certload_settings",
    "certload_stack",
]

SETTINGS_KEY = pytest.StashKey[_settings.Settings]()
RECORDER_KEY = pytest.StashKey[SessionRecorder]()
SessionRecorder.KEY = RECORDER_KEY

MARKERS = {
    "api": "certctl API tier scenarios (issuance_acceptance, list_certificates)",
    "connector": "connector tier: TLS handshakes against nginx, apache, haproxy and the f5 mock",
    "acme": "ACME server scenarios (directory, new-nonce, renewal-info, JWS enrollment)",
    "scale": "scale tier: bulk_renewal, acme_burst, agent_storm (seeds PostgreSQL)",
    "certload(smoke_duration, thresholds, health, min_tail_samples, target)": "per-test "
    "overrides of pytest-certload (keyword arguments), validated at collection",
}


class CertloadWarning(pytest.PytestWarning):
    """A warning issued by pytest-certload."""


def _argparse_type(option: _settings.Option) -> Any:
    def parse(raw: str) -> Any:
        try:
            return option.parse(raw)
        except OptionValueError as exc:
            raise argparse.ArgumentTypeError(
                f"{raw!r} is not a valid {exc.kind}; use {exc.grammar}."
            ) from None

    parse.__name__ = option.metavar.lower()
    return parse


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("certload", "load testing certctl (pytest-certload)")
    for opt in _settings.OPTIONS:
        group.addoption(
            opt.cli,
            dest=opt.dest,
            default=None,
            type=_argparse_type(opt),
            metavar=opt.metavar,
            help=f"{opt.help}. ini {opt.dest}, env {opt.env}. Default: {opt.default_text}.",
        )
        parser.addini(opt.dest, f"{opt.help} (see {opt.cli})", type="string", default=None)


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    cli = {opt.dest: config.getoption(opt.dest) for opt in _settings.OPTIONS}
    ini: dict[str, str | None] = {}
    for opt in _settings.OPTIONS:
        raw = config.getini(opt.dest)
        ini[opt.dest] = raw if isinstance(raw, str) and raw != "" else None
    ini_source = config.inipath.name if config.inipath is not None else "the ini file"
    try:
        settings = _settings.resolve(cli, ini, ini_source=ini_source)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = settings
    output_dir = settings.output_dir
    if not output_dir.is_absolute():
        output_dir = config.rootpath / output_dir
    recorder = SessionRecorder(output_dir=output_dir)
    config.stash[RECORDER_KEY] = recorder
    reporter = _Reporter(config, recorder)
    if settings.baseline is not None:
        source = settings.sources.get("certload_baseline", "the settings")
        reporter.baseline = _load_baseline(settings.baseline, source, config.rootpath)
    config.pluginmanager.register(reporter, "certload-reporter")


def _load_baseline(name: str, source: str, rootpath: Any) -> Any:
    """The saved baseline ``--certload-baseline`` names, checked before any test runs."""
    from .baseline import BaselineError, load, resolve_path

    try:
        path = resolve_path(name, rootpath / "baselines")
        return load(path if path.is_absolute() else rootpath / path)
    except BaselineError as exc:
        raise pytest.UsageError(f"--certload-baseline (from {source}): {exc}") from None


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    problems = []
    for item in items:
        for marker in item.iter_markers("certload"):
            try:
                validate_marker_kwargs(marker.args, marker.kwargs, item.nodeid)
            except ConfigError as exc:
                problems.append(str(exc))
    if problems:
        raise pytest.UsageError("\n".join(dict.fromkeys(problems)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Let progress lines of a running scenario reach the terminal despite capturing."""
    load = _load_test_of(item)
    if load is not None:
        load.progress_sink = _progress_writer(item.config)
    try:
        return (yield)
    finally:
        if load is not None:
            load.progress_sink = None


def _load_test_of(item: pytest.Item) -> LoadTest | None:
    funcargs = getattr(item, "funcargs", None)
    if not funcargs:
        return None
    value = funcargs.get("certload")
    return value if isinstance(value, LoadTest) else None


def _progress_writer(config: pytest.Config) -> Any:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or config.get_verbosity() < 0:
        return None

    def write(line: str) -> None:
        if capman is not None:
            with capman.global_and_fixture_disabled():
                reporter.write_line(line)
        else:
            reporter.write_line(line)

    return write


class _Reporter:
    """Session-end reporting, registered only once settings resolved (xdist style)."""

    def __init__(self, config: pytest.Config, recorder: SessionRecorder) -> None:
        self.config = config
        self.recorder = recorder
        self.summary_path = ""
        self.write_error = ""
        self.html_path = ""
        self.html_error = ""
        self.baseline: Any = None  # a pytest_certload.baseline.Baseline to compare with
        self.baseline_lines: list[str] = []
        self.regressed = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcomes = self.recorder.outcomes
        if report.failed and report.when != "call":
            outcomes[report.nodeid] = "error"
        elif report.when == "call" and outcomes.get(report.nodeid) != "error":
            outcomes[report.nodeid] = report.outcome

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.recorder.records:
            return
        from .report import summary

        settings = self.config.stash[SETTINGS_KEY]
        self._write_html(settings)
        self._compare_baseline(session, settings)
        try:
            path = summary.write_summary(self.recorder, settings)
        except (OSError, CertloadError) as exc:
            self.write_error = f"pytest-certload could not write its JSON summary: {exc}"
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        self.summary_path = str(path)

    def _write_html(self, settings: _settings.Settings) -> None:
        """The HTML report beside summary.json; a failure is reported, never raised."""
        try:
            from .report import html

            self.html_path = str(html.write_report(self.recorder, settings))
            if not html.charts_available():
                self.html_error = f"HTML report without charts: {html.INSTALL_HINT}"
        except Exception as exc:
            self.html_error = f"pytest-certload could not write its HTML report: {exc!r}"

    def _compare_baseline(self, session: pytest.Session, settings: _settings.Settings) -> None:
        """``--certload-baseline``: a regression fails the session (run-level problem)."""
        if self.baseline is None:
            return
        from .baseline import baseline_from_recorder, compare

        try:
            result = compare(self.baseline, baseline_from_recorder(self.recorder, settings))
        except Exception as exc:
            self.baseline_lines = [f"could not compare with the baseline: {exc!r}"]
            self.regressed = True
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        self.baseline_lines = result.lines(verbose=self.config.get_verbosity() > 0)
        if not result.ok:
            self.regressed = True
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.recorder.records:
            return
        from .report import terminal

        try:
            lines = terminal.render(self.recorder)
        except Exception as exc:
            lines = [f"pytest-certload could not render its summary table: {exc!r}"]
        terminalreporter.section("certload", sep="=")
        for line in lines:
            terminalreporter.write_line(line)
        for line in self.baseline_lines:
            bad = "✗" in line or "regression(s)" in line or line.startswith("could not")
            terminalreporter.write_line(line, red=self.regressed and bad)
        if self.summary_path:
            terminalreporter.write_line(f"JSON summary: {self.summary_path}")
        if self.html_path:
            terminalreporter.write_line(f"HTML report: {self.html_path}")
        if self.write_error:
            terminalreporter.write_line(self.write_error, red=True)
        if self.html_error:
            terminalreporter.write_line(self.html_error, yellow=True)
