"""pytest-certload's hooks. Everything of substance lives in pytest-free modules."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Generator
from typing import Any

import pytest

from . import fixtures, hookspecs
from .baseline import (
    Baseline,
    ReportLine,
    baseline_from_session,
    compare,
    comparison_lines,
    profile_mismatch,
)
from .baseline import load as load_baseline
from .baseline import resolve_path as baseline_path
from .errors import BaselineError, CertloadError, ConfigError, OptionValueError, RecordError
from .fixtures import INTERRUPTS_KEY, LOADTEST_KEY, REDACTOR_KEY, SESSION_KEY, SETTINGS_KEY
from .interrupts import Interrupts
from .loadtest import MARKER_KWARGS, marker_kwargs, validate_marker_kwargs
from .record import RUNS_DIR, RunRecord, SessionRecord, now_iso, set_aside_previous
from .redaction import Redactor, secret_variable
from .report import html, summary, terminal
from .settings import OPTIONS, Option, check_settings, resolve
from .stack.database import DatabaseSettings

__all__ = ["CertloadWarning"]

#: the key of pytest-certload's data in a pytest-xdist worker's ``workeroutput``
WORKER_OUTPUT = "certload"


class CertloadWarning(pytest.PytestWarning):
    """A warning issued by pytest-certload (e.g. TLS verification turned off)."""


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


MARKERS = {
    "api": "certctl API tier scenarios (issuance_acceptance, list_certificates)",
    "connector": "connector tier: TLS handshakes against nginx, apache, haproxy and the f5 mock",
    "acme": "ACME server scenarios (directory, new-nonce, renewal-info, JWS enrollment)",
    "scale": "scale tier: bulk_renewal, acme_burst, agent_storm (seeds PostgreSQL)",
    f"certload({', '.join(MARKER_KWARGS)})": "per-test "
    "overrides of pytest-certload (keyword arguments), validated at collection",
}


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)
    # the fixtures live in a module of their own, registered beside this one
    pluginmanager.register(fixtures, "certload-fixtures")


def _argparse_type(option: Option) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            return option.parse(raw)
        except OptionValueError as exc:
            raise argparse.ArgumentTypeError(
                f"{exc.value_text(raw)} is not a valid {exc.kind}; use {exc.grammar}."
            ) from None

    parse.__name__ = option.metavar.lower()
    return parse


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("certload", "load testing certctl (pytest-certload)")
    for opt in OPTIONS:
        text = f"{opt.help}. ini {opt.dest}, env {opt.env}. Default: {opt.default_text}."
        if opt.flag:
            group.addoption(opt.cli, dest=opt.dest, action="store_const", const=True, help=text)
        elif opt.repeat:
            group.addoption(
                opt.cli,
                dest=opt.dest,
                default=None,
                action="append",
                type=_argparse_type(opt),
                metavar=opt.metavar,
                help=text,
            )
        else:
            group.addoption(
                opt.cli,
                dest=opt.dest,
                default=None,
                type=_argparse_type(opt),
                metavar=opt.metavar,
                help=text,
            )
        about = f"{opt.help} (see {opt.cli})"
        if opt.repeat:  # one item per line
            parser.addini(opt.dest, about, type="linelist", default=None)
        else:
            parser.addini(opt.dest, about, type="string", default=None)


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    cli = {opt.dest: config.getoption(opt.dest) for opt in OPTIONS}
    ini: dict[str, str | None] = {}
    for opt in OPTIONS:
        raw = config.getini(opt.dest)
        if isinstance(raw, list):  # a repeatable option's ini key: one item per line
            raw = "\n".join(str(line) for line in raw)
        ini[opt.dest] = raw if isinstance(raw, str) and raw != "" else None
    ini_source = config.inipath.name if config.inipath is not None else "the ini file"
    try:
        settings = resolve(cli, ini, ini_source=ini_source)
        check_settings(settings, rootpath=config.rootpath)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SETTINGS_KEY] = settings
    redactor = Redactor([settings.certctl_token])
    redactor.add_dsn(settings.certctl_dsn)
    redactor.add_url(settings.certctl_url)
    for name, value in (settings.certctl_env or {}).items():
        if secret_variable(name):
            redactor.add(value)
        redactor.add_url(value)
    config.stash[REDACTOR_KEY] = redactor
    interrupts = Interrupts()
    interrupts.install()
    config.stash[INTERRUPTS_KEY] = interrupts
    output_dir = settings.output_dir
    if not output_dir.is_absolute():
        output_dir = config.rootpath / output_dir
    session = SessionRecord(
        output_dir=output_dir,
        profile=settings.profile,
        http_backend=settings.http_backend,
        scrub=redactor.scrub,
        keeps_index=not _is_xdist_worker(config),
    )
    config.stash[SESSION_KEY] = session
    if settings.ca == "insecure":
        source = settings.sources.get("certload_ca", "the settings")
        config.issue_config_time_warning(
            CertloadWarning(
                f"TLS verification is off (--certload-ca insecure, from {source}): no "
                "certificate is checked, so a wrong or intercepted target goes unnoticed; "
                "give the CA bundle that signed the servers' certificates instead."
            ),
            stacklevel=2,
        )
    reporter = _SessionReporter(config, session)
    if settings.baseline is not None:
        source = settings.sources.get("certload_baseline", "the settings")
        try:
            path = baseline_path(settings.baseline, config.rootpath / "baselines")
            reporter.baseline = load_baseline(
                path if path.is_absolute() else config.rootpath / path
            )
        except BaselineError as exc:
            raise pytest.UsageError(f"--certload-baseline (from {source}): {exc}") from None
        refused = profile_mismatch(reporter.baseline, settings.profile)
        if refused:  # known before any load: refuse now, not after the whole session
            raise pytest.UsageError(f"--certload-baseline (from {source}): {refused}")
    config.pluginmanager.register(reporter, "certload-reporter")


def pytest_unconfigure(config: pytest.Config) -> None:
    interrupts = config.stash.get(INTERRUPTS_KEY, None)
    if interrupts is not None:
        interrupts.uninstall()


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
    settings = config.stash[SETTINGS_KEY]
    have = settings.target_types()
    for item in items:
        kind = marker_kwargs(item).get("connector_target")
        if kind and kind not in have:
            item.add_marker(pytest.mark.skip(reason=settings.missing_target(kind)))
    if not _is_xdist_worker(config) and any("certload" in _fixtures(i) for i in items):
        # this session will record load: the last session's outputs must not mix in
        set_aside_previous(config.stash[SESSION_KEY].output_dir)


def _fixtures(item: pytest.Item) -> list[str]:
    names = getattr(item, "fixturenames", ())
    return list(names)


def _scrubbed(value: Any, scrub: Callable[[str], str], depth: int) -> Any:
    """``value`` with every string inside it scrubbed (reprs of pytest's failure text)."""
    if isinstance(value, str):
        return scrub(value)
    if depth <= 0 or isinstance(value, int | float | bool | type(None)):
        return value
    if isinstance(value, list):
        value[:] = [_scrubbed(v, scrub, depth - 1) for v in value]
        return value
    if isinstance(value, tuple):
        return (
            type(value)(*(_scrubbed(v, scrub, depth - 1) for v in value))
            if hasattr(value, "_fields")
            else tuple(_scrubbed(v, scrub, depth - 1) for v in value)
        )
    if isinstance(value, dict):
        return {k: _scrubbed(v, scrub, depth - 1) for k, v in value.items()}
    for name, attr in list(vars(value).items()) if hasattr(value, "__dict__") else ():
        object.__setattr__(value, name, _scrubbed(attr, scrub, depth - 1))
    return value


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Scrub the session's secrets from what the report shows: failure text (also with
    ``--showlocals``), captured output and junit properties."""
    report = yield
    redactor = item.config.stash.get(REDACTOR_KEY, None)
    if not redactor:
        return report
    if report.longrepr is not None and redactor.scrub(text := str(report.longrepr)) != text:
        # scrub the repr's own strings (its layout, colours and crash line stay); whatever
        # a structure we do not know still shows, replace the repr by its scrubbed text
        report.longrepr = _scrubbed(report.longrepr, redactor.scrub, depth=12)
        if redactor.scrub(text := str(report.longrepr)) != text:
            report.longrepr = redactor.scrub(text)
    report.sections = [(title, redactor.scrub(body)) for title, body in report.sections]
    report.user_properties = [
        (name, redactor.scrub(value) if isinstance(value, str) else value)
        for name, value in report.user_properties
    ]
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Let progress lines of a running scenario reach the terminal despite capturing;
    report a failure that is a known certctl defect's as xfail, and a test expecting a
    defect that no longer shows as a strict XPASS (``--certload-known-defects``)."""
    load = item.stash.get(LOADTEST_KEY, None)
    if load is not None:
        load.progress_sink = _progress_writer(item.config)
    try:
        outcome = yield
    except (pytest.skip.Exception, pytest.xfail.Exception, pytest.exit.Exception):
        raise
    except (Exception, pytest.fail.Exception) as exc:
        reason = load.known_defect_reason() if load is not None else ""
        if reason:
            raise pytest.xfail.Exception(reason) from exc
        raise
    finally:
        if load is not None:
            load.progress_sink = None
    missing = load.missing_defects() if load is not None else ""
    if missing:
        pytest.fail(missing, pytrace=False)
    return outcome


def _progress_writer(config: pytest.Config) -> Callable[[str], None] | None:
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


class _SessionReporter:
    """Session-end reporting, registered only once settings resolved (xdist style)."""

    def __init__(self, config: pytest.Config, session: SessionRecord) -> None:
        self.config = config
        self.session = session
        self.summary_path = ""
        self.write_error = ""
        self.html_path = ""
        self.html_error = ""
        #: the saved baseline ``--certload-baseline`` names, to compare with
        self.baseline: Baseline | None = None
        self.baseline_lines: list[ReportLine] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome: str = report.outcome
        if hasattr(report, "wasxfail"):  # pytest's xfail: a known certctl defect's failure
            outcome = "xfailed" if report.skipped else "xpassed"
        self.session.set_outcome(report.nodeid, report.when, outcome)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """pytest-xdist: adopt a finished worker's runs (their files are written)."""
        output = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
        if not output:
            return
        record = self.session
        if output.get("target") and not record.target:
            record.target = str(output["target"])
            record.target_details = dict(output.get("target_details") or {})
        if output.get("database") and record.database is None:
            record.database = DatabaseSettings.from_dict(output["database"])
        for name in output.get("runs", ()):
            path = record.output_dir / RUNS_DIR / str(name)
            try:
                record.adopt(RunRecord.read(path))
            except RecordError as exc:
                record.write_errors.append(f"a worker's run file could not be read: {exc}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        record = self.session
        if _is_xdist_worker(self.config):
            # the controller indexes and reports every worker's runs
            workeroutput: dict[str, Any] = getattr(self.config, "workeroutput", {})
            workeroutput[WORKER_OUTPUT] = {
                "runs": [r.path.name for r in record.records if r.path is not None],
                "target": record.target,
                "target_details": record.target_details,
                "database": record.database.to_dict() if record.database is not None else None,
            }
            return
        if not record.records:
            return
        record.finished_at = now_iso()
        record.write_index()
        self._write_html()
        self._compare_baseline(session)
        try:
            doc = summary.build_summary(record)
            self.config.hook.pytest_certload_update_summary(config=self.config, summary=doc)
            self.summary_path = str(summary.write_summary(doc, record))
        except (OSError, CertloadError) as exc:
            self.write_error = f"pytest-certload could not write its JSON summary: {exc}"
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def _write_html(self) -> None:
        """The HTML report beside summary.json; a failure is reported, never raised."""
        try:
            self.html_path = str(html.write_report(self.session))
            if not html.charts_available():
                self.html_error = f"HTML report without charts: {html.INSTALL_HINT}"
        except Exception as exc:
            self.html_error = f"pytest-certload could not write its HTML report: {exc!r}"

    def _compare_baseline(self, session: pytest.Session) -> None:
        """``--certload-baseline``: a regression fails the session (run-level problem)."""
        if self.baseline is None:
            return
        try:
            result = compare(self.baseline, baseline_from_session(self.session))
        except Exception as exc:
            self.baseline_lines = [
                ReportLine(f"could not compare with the baseline: {exc!r}", bad=True)
            ]
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        self.baseline_lines = comparison_lines(result, verbose=self.config.get_verbosity() > 0)
        if not result.ok and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.session.records:
            return
        try:
            lines = terminal.render(self.session)
        except Exception as exc:
            lines = [f"pytest-certload could not render its summary table: {exc!r}"]
        terminalreporter.section("certload", sep="=")
        scrub = self.session.scrub
        for line in lines:
            terminalreporter.write_line(scrub(line))
        for report_line in self.baseline_lines:
            terminalreporter.write_line(report_line.text, red=report_line.bad)
        if self.summary_path:
            terminalreporter.write_line(f"JSON summary: {self.summary_path}")
        if self.html_path:
            terminalreporter.write_line(f"HTML report: {self.html_path}")
        if self.write_error:
            terminalreporter.write_line(self.write_error, red=True)
        if self.html_error:
            terminalreporter.write_line(self.html_error, yellow=True)
