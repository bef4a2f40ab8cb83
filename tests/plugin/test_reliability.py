"""What a hostile or unlucky user meets: secrets, SIGTERM, bad inputs, files, xdist.

Each test runs pytest in a subprocess (pytester) against a latency server in its own
process, and checks what the user sees: the terminal, junit.xml and the result files.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_certload.redaction import MASK, Redactor, SecretHeaders, redact_url
from pytest_certload.settings import resolve
from pytest_certload.stack import StackInfo
from tests.support.servers import LatencyServer, latency_server

TOKEN = "tok-4f1d9c2e-secret"
PASSWORD = "pw-8e1b-secret"

SCENARIO = """
import pytest
from pytest_certload.engine import ConstantArrivalRate, Scenario

URL = "{url}"


async def hit(vu):
    await vu.http.get(URL + "/item", name="/item")


def scenario(name, rate=20, duration="2s"):
    return Scenario(name, hit, ConstantArrivalRate(rate, duration, pre_allocated_vus=5))
"""


@pytest.fixture(scope="module")
def server() -> Iterator[LatencyServer]:
    with latency_server(delay_ms=2) as srv:
        yield srv


def _requests(server: LatencyServer) -> int:
    return int(server.control("stats")["requests"])


# -- secrets ---------------------------------------------------------------------------------


def test_headers_and_settings_never_show_their_secrets() -> None:
    headers = SecretHeaders({"Authorization": f"Bearer {TOKEN}", "Accept": "*/*"})
    assert TOKEN not in repr(headers)
    assert TOKEN not in str(headers)
    assert repr(headers) == "{'Authorization': 'Bearer ***', 'Accept': '*/*'}"
    assert headers["Authorization"] == f"Bearer {TOKEN}"  # the value itself is intact
    settings = resolve(
        {
            "certload_certctl_url": f"https://load:{PASSWORD}@127.0.0.1:8443",
            "certload_certctl_token": TOKEN,
            "certload_certctl_dsn": f"postgresql://certctl:{PASSWORD}@127.0.0.1/certctl",
        },
        {},
        environ={},
    )
    shown = repr(settings)
    assert TOKEN not in shown
    assert PASSWORD not in shown
    assert "certctl_url='https://127.0.0.1:8443'" in shown


def test_the_redactor_finds_passwords_in_every_dsn_and_url_form() -> None:
    redactor = Redactor([TOKEN, "ab"])  # too short to be masked safely: ignored
    redactor.add_dsn(f"host=db port=5432 user=certctl password={PASSWORD} dbname=certctl")
    redactor.add_url(f"https://user:{PASSWORD}x@host/")
    text = f"Bearer {TOKEN}; password={PASSWORD}; {PASSWORD}x; about"
    assert redactor.scrub(text) == f"Bearer {MASK}; password={MASK}; {MASK}; about"
    assert redact_url(f"https://user:{PASSWORD}@host:1/p?q") == "https://host:1/p?q"
    assert redact_url("https://host:1/p") == "https://host:1/p"


def test_a_failing_test_holding_the_token_never_shows_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTLOAD_CERTCTL_TOKEN", TOKEN)
    pytester.makepyfile(
        test_secret="""
import pytest
from pytest_certload.certctl import bearer


@pytest.fixture
def certctl_headers(certload_settings):
    return bearer(certload_settings.certctl_token)


def test_leaky(certctl_headers, certload_settings, record_property):
    token = certload_settings.certctl_token
    record_property("token_used", token)
    print("calling with", token)
    assert certctl_headers == {"Authorization": "Bearer wrong"}, token
"""
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--showlocals",
        "-rA",
        "--junitxml=junit.xml",
        "-o",
        "junit_family=xunit1",
        "-o",
        "junit_logging=all",
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    junit = (pytester.path / "junit.xml").read_text()
    assert TOKEN not in out
    assert TOKEN not in junit
    assert f"Bearer {MASK}" in out  # the headers' repr and the scrubbed assertion
    assert f'name="token_used" value="{MASK}"' in junit
    assert f"calling with {MASK}" in junit  # captured stdout, scrubbed too


# -- bad input before any test ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--certload-ca", "missing-ca.pem"],
            "the CA bundle 'missing-ca.pem' for certload_ca (from command line --certload-ca) "
            "does not exist; give the PEM file of the CA",
        ),
        (["--certload-ca", "."], "the CA bundle '.' for certload_ca * is not a file; give"),
        (["--certload-ca", "notpem.txt"], "the CA bundle 'notpem.txt' * holds no PEM certificate"),
        (["--certload-output-dir", "afile"], "--certload-output-dir 'afile' * is not a directory"),
        (["--certctl-bin", "nope/certctl", "--certctl-migrations", "."], "--certctl-bin *"),
    ],
)
def test_bad_paths_are_usage_errors_before_any_test(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makefile(".txt", notpem="not a certificate")
    (pytester.path / "afile").write_text("")
    pytester.makepyfile(test_nothing="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    result.stdout.no_fnmatch_line("*passed*")


def test_a_malformed_dsn_is_refused_without_showing_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTLOAD_CERTCTL_DSN", f"host=db password={PASSWORD} port=notaport '")
    pytester.makepyfile(test_nothing="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*host=db password=*** port=notaport*, the value of certload_certctl_dsn (from "
            "environment variable CERTLOAD_CERTCTL_DSN), is not a PostgreSQL DSN*"
        ]
    )
    assert PASSWORD not in result.stderr.str() + result.stdout.str()


def test_a_bare_number_is_not_a_duration(pytester: pytest.Pytester, server: LatencyServer) -> None:
    pytester.makepyfile(
        test_load=SCENARIO.format(url=server.url)
        + """

@pytest.mark.certload(smoke_duration=2)
def test_two(certload):
    certload.run(scenario("two"))
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*2 is not a valid smoke_duration of @pytest.mark.certload at *: a duration needs a "
            "unit (a bare number is nanoseconds in the engine, so 2 would mean 2 ns); write "
            "'2s', or a number with ns, us, ms, s, m or h*"
        ]
    )


def test_turning_tls_verification_off_is_warned(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--certload-ca", "insecure")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*CertloadWarning: TLS verification is off*"])


# -- files -----------------------------------------------------------------------------------


def test_a_new_session_sets_the_last_one_aside(
    pytester: pytest.Pytester, server: LatencyServer
) -> None:
    pytester.makepyfile(
        test_load=SCENARIO.format(url=server.url)
        + """

def test_a(certload):
    certload.run(scenario("a", duration="1s"))
"""
    )
    out = pytester.path / "certload-results"
    assert pytester.runpytest_subprocess("-p", "no:cacheprovider").ret == 0
    first = json.loads((out / "summary.json").read_text())["finished_at"]
    (out / "runs" / "stale.1.json").write_text("{}")
    assert pytester.runpytest_subprocess("-p", "no:cacheprovider").ret == 0
    assert not (out / "runs" / "stale.1.json").exists()
    assert (out / "previous" / "runs" / "stale.1.json").exists()
    assert json.loads((out / "previous" / "summary.json").read_text())["finished_at"] == first
    # a session that runs no load test leaves the results alone
    pytester.makepyfile(test_load="def test_x():\n    pass\n")
    assert pytester.runpytest_subprocess("-p", "no:cacheprovider").ret == 0
    assert (out / "summary.json").exists()


def test_xdist_workers_runs_are_all_in_one_summary(
    pytester: pytest.Pytester, server: LatencyServer
) -> None:
    pytester.makepyfile(
        test_load=SCENARIO.format(url=server.url)
        + "".join(
            f"""

def test_{i}(certload):
    certload.run(scenario("s{i}", rate=10, duration="1s"))
"""
            for i in range(4)
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=4)
    out = pytester.path / "certload-results"
    doc = json.loads((out / "summary.json").read_text())
    assert sorted(t["nodeid"] for t in doc["tests"]) == [
        f"test_load.py::test_{i}" for i in range(4)
    ]
    assert {t["outcome"] for t in doc["tests"]} == {"passed"}
    index = json.loads((out / "session.json").read_text())
    assert len(index["runs"]) == 4


# -- SIGTERM -----------------------------------------------------------------------------------


LONG_RUN = """

def test_long(certload):
    certload.run(scenario("long", rate=20, duration="60s"))
"""


def _start(pytester: pytest.Pytester, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--junitxml=junit.xml",
         "--certload-progress=off", *args],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def _wait_for_load(server: LatencyServer, before: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while _requests(server) < before + 20:
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.2)


def _quiet(server: LatencyServer, timeout_s: float = 30) -> int:
    """Wait until the server sees no new request for 2 s; return its count."""
    deadline = time.monotonic() + timeout_s
    last = _requests(server)
    while True:
        time.sleep(2)
        now = _requests(server)
        if now == last:
            return now
        assert time.monotonic() < deadline, f"requests kept arriving: {last} -> {now}"
        last = now


@pytest.mark.parametrize("tx", [[], ["--certload-tx", "2*popen"]], ids=["one-process", "tx"])
def test_sigterm_mid_run_writes_every_report_and_stops_the_load(
    pytester: pytest.Pytester, server: LatencyServer, tx: list[str]
) -> None:
    pytester.makepyfile(test_load=SCENARIO.format(url=server.url) + LONG_RUN)
    before = _requests(server)
    proc = _start(pytester, *tx)
    try:
        _wait_for_load(server, before)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.decode(errors="replace")
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    results = pytester.path / "certload-results"
    for written in (pytester.path / "junit.xml", results / "summary.json", results / "report.html"):
        assert written.is_file(), f"{written} missing:\n{text}"
    (test,) = json.loads((results / "summary.json").read_text())["tests"]
    assert test["aborted"].startswith("stopped: SIGTERM"), test["aborted"]
    assert test["scenarios"]["long"]["requests"] > 0
    settled = _quiet(server)
    time.sleep(2)
    assert _requests(server) == settled  # nothing sends load after the session ended


# -- a service that dies ------------------------------------------------------------------------


class _Item:
    nodeid = "test_x.py::test_x"

    def __init__(self) -> None:
        self.user_properties: list[tuple[str, object]] = []

    def iter_markers(self, name: str) -> Iterator[object]:
        return iter(())


class _Watch:
    """An open stack whose postgres dies during the first run."""

    def __init__(self, logs: Path) -> None:
        self.calls = 0
        self.logs = logs
        self.copied = 0

    def dead_services(self) -> list[str]:
        self.calls += 1
        if self.calls == 1:
            return []
        return ["postgres was killed by signal 9 (SIGKILL); last log lines: FATAL: terminating"]

    def copy_logs(self) -> list[Path]:
        self.copied += 1
        return [self.logs / "postgres.log"]

    #: an external-looking stack: nothing for telemetry to sample but the generator
    info = StackInfo(certctl_url="", token="", admin_token="")

    def process_ids(self) -> dict[str, int]:
        return {}


def test_a_service_that_dies_during_a_run_is_the_named_cause(tmp_path: Path) -> None:
    from pytest_certload import LoadTest, Settings, UntrustworthyRun
    from pytest_certload.engine import ConstantArrivalRate, Scenario
    from pytest_certload.record import SessionRecord

    async def idle(vu: object) -> None:
        return None

    watch = _Watch(tmp_path / "service-logs")
    load = LoadTest(
        _Item(),
        Settings.defaults(),
        SessionRecord(output_dir=tmp_path),
        watch=watch,  # type: ignore[arg-type]
    )
    result = load.run(Scenario("s", idle, ConstantArrivalRate(20, "1s")))
    assert watch.copied == 1
    assert result.verdict == "untrustworthy"
    with pytest.raises(UntrustworthyRun) as caught:
        load.finish()
    message = str(caught.value)
    assert "the stack's service died during the run: postgres was killed by signal 9" in message
    assert f"the service logs are kept in {tmp_path / 'service-logs'}" in message
    # the next run is refused before any load: the stack is still broken
    with pytest.raises(UntrustworthyRun, match="the stack is broken, so this run was not started"):
        load.run(Scenario("t", idle, ConstantArrivalRate(20, "1s")))


def test_a_second_sigterm_kills_at_once(pytester: pytest.Pytester, server: LatencyServer) -> None:
    pytester.makepyfile(test_load=SCENARIO.format(url=server.url) + LONG_RUN)
    before = _requests(server)
    proc = _start(pytester)
    try:
        _wait_for_load(server, before)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGTERM
    _quiet(server)


# -- shared runs ------------------------------------------------------------------------------

SHARED = """
import functools
import pytest
from pytest_certload.engine import ConstantArrivalRate, Scenario

URL = "{url}"


async def hit(path, vu):
    await vu.http.get(URL + path, name=path)


@pytest.fixture
def pair():
    return {{
        "alpha": Scenario("alpha", functools.partial(hit, "/a"), ConstantArrivalRate(20, "3s")),
        "beta": Scenario("beta", functools.partial(hit, "/b"), ConstantArrivalRate(20, "3s"),
                         start_time="1s"),
    }}


@pytest.mark.certload(group="pair", scenario="alpha")
def test_alpha(certload, pair):
    certload.run_shared(pair, thresholds={{"http_req_duration": ["p(95)<5000"]}})


@pytest.mark.certload(group="pair", scenario="beta")
def test_beta(certload, pair):
    certload.run_shared(pair, thresholds={{"http_req_duration": ["{beta_limit}"]}})
"""


def _runs(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    index = json.loads((pytester.path / "certload-results" / "session.json").read_text())
    out = {}
    for run in index["runs"]:
        data = json.loads((pytester.path / "certload-results" / "runs" / run["file"]).read_text())
        out[run["nodeid"].split("::")[1]] = data
    return out


def test_a_shared_run_runs_once_and_each_test_judges_its_own_scenario(
    pytester: pytest.Pytester, server: LatencyServer
) -> None:
    pytester.makepyfile(test_pair=SHARED.format(url=server.url, beta_limit="p(95)<0.001"))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--certload-progress=off", "--junitxml=junit.xml"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*shared run 'pair' with*", "FAILED test_pair.py::test_beta - *"])
    runs = _runs(pytester)
    alpha, beta = runs["test_alpha"], runs["test_beta"]
    assert (alpha["group"], alpha["ran_with"]) == ("pair", ["beta"])
    assert (beta["group"], beta["ran_with"]) == ("pair", ["alpha"])
    # one run: the same start, and beta's window lies inside alpha's run
    a_res, b_res = alpha["result"], beta["result"]
    assert a_res["started_at"] == b_res["started_at"]
    assert list(a_res["scenarios"]) == ["alpha"]
    assert list(b_res["scenarios"]) == ["beta"]
    a_sc, b_sc = a_res["scenarios"]["alpha"], b_res["scenarios"]["beta"]
    assert b_sc["start_offset_ns"] >= a_sc["start_offset_ns"] + 900_000_000
    assert b_sc["start_offset_ns"] < a_sc["start_offset_ns"] + a_sc["elapsed_ns"]
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="certload.shared_run" value="pair: ran with beta"' in junit


def test_selecting_one_member_runs_only_its_scenario(
    pytester: pytest.Pytester, server: LatencyServer
) -> None:
    pytester.makepyfile(test_pair=SHARED.format(url=server.url, beta_limit="p(95)<5000"))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--certload-progress=off", "-k", "beta"
    )
    result.assert_outcomes(passed=1, deselected=1)
    (beta,) = _runs(pytester).values()
    assert (beta["group"], beta["ran_with"]) == ("pair", [])
    assert set(beta["result"]["metrics"]["metrics"]["http_reqs"]["series"][0]["tags"].items()) >= {
        ("scenario", "beta")
    }
    assert all(
        s["tags"]["scenario"] == "beta"
        for s in beta["result"]["metrics"]["metrics"]["http_reqs"]["series"]
    )


def test_isolate_runs_each_member_alone(pytester: pytest.Pytester, server: LatencyServer) -> None:
    pytester.makepyfile(test_pair=SHARED.format(url=server.url, beta_limit="p(95)<5000"))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--certload-progress=off", "--certload-isolate"
    )
    result.assert_outcomes(passed=2)
    runs = _runs(pytester)
    assert [runs[t]["ran_with"] for t in ("test_alpha", "test_beta")] == [[], []]
    assert runs["test_alpha"]["result"]["started_at"] <= runs["test_beta"]["result"]["started_at"]


class _Mark:
    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs


class _Member(_Item):
    def __init__(self, scenario: str) -> None:
        super().__init__()
        self.nodeid = f"test_x.py::test_{scenario}"
        self.mark = _Mark(group="pair", scenario=scenario, health="lag_p99=10s")

    def iter_markers(self, name: str) -> Iterator[object]:
        return iter([self.mark] if name == "certload" else [])


def test_a_shared_run_keeps_what_the_figures_do_not_show(tmp_path: Path) -> None:
    """A service that died during a shared run makes every member untrustworthy, even
    though each member re-judges its generator health by its own limits."""
    from pytest_certload import LoadTest, Settings, UntrustworthyRun
    from pytest_certload.engine import ConstantArrivalRate, Scenario
    from pytest_certload.loadtest import SharedRuns, shared_members
    from pytest_certload.record import SessionRecord

    async def idle(vu: object) -> None:
        return None

    members = [_Member("alpha"), _Member("beta")]
    shared = SharedRuns(lambda group: shared_members(members, group))
    scenarios = {n: Scenario(n, idle, ConstantArrivalRate(20, "1s")) for n in ("alpha", "beta")}
    session = SessionRecord(output_dir=tmp_path)
    watch = _Watch(tmp_path / "service-logs")
    verdicts = []
    for member in members:
        load = LoadTest(member, Settings.defaults(), session, watch=watch, shared=shared)  # type: ignore[arg-type]
        result = load.run_shared(scenarios)
        verdicts.append(result.verdict)
        with pytest.raises(UntrustworthyRun, match="the stack's service died during the run"):
            load.finish()
    assert verdicts == ["untrustworthy", "untrustworthy"]
    assert [r.ran_with for r in session.records] == [("beta",), ("alpha",)]
