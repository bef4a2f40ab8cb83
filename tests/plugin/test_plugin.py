"""The pytest face: verdicts as outcomes, options, markers, junit and the JSON summary.

Each test runs pytest in a subprocess (pytester) against a latency server running in its
own process, whose per-request delay is set to make a threshold pass or breach.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from pytest_certload.report.summary import SCHEMA_PATH
from tests.support.servers import LatencyServer, latency_server

HERE = Path(__file__).parent

SCENARIOS = """
import pytest
from pytest_certload.engine import ConstantArrivalRate, Scenario

URL = "{url}"


async def hit(vu):
    await vu.http.get(URL + "/item", name="/item")


def scenario(name, rate=40, duration="2s", max_vus=20):
    executor = ConstantArrivalRate(
        rate, duration, pre_allocated_vus=min(5, max_vus), max_vus=max_vus
    )
    return Scenario(name, hit, executor)
"""


@pytest.fixture(scope="module")
def server() -> Iterator[LatencyServer]:
    with latency_server(delay_ms=2) as srv:
        yield srv


@pytest.fixture
def slow_server() -> Iterator[LatencyServer]:
    with latency_server(delay_ms=60) as srv:
        yield srv


def _write(pytester: pytest.Pytester, url: str, body: str) -> None:
    pytester.makepyfile(test_load=SCENARIOS.format(url=url) + body)


def _junit(pytester: pytest.Pytester) -> ET.Element:
    return ET.parse(pytester.path / "junit.xml").getroot()


def _case(root: ET.Element, name: str) -> ET.Element:
    (case,) = [c for c in root.iter("testcase") if c.get("name") == name]
    return case


def test_pass_and_breach_each_mark_their_own_testcase(
    pytester: pytest.Pytester, server: LatencyServer, slow_server: LatencyServer
) -> None:
    pytester.makepyfile(
        test_load=SCENARIOS.format(url=server.url)
        + f'''
SLOW = "{slow_server.url}"

async def hit_slow(vu):
    await vu.http.get(SLOW + "/item", name="/item")


def test_fast(certload):
    certload.run(scenario("fast"),
                 thresholds={{"http_req_duration{{scenario:fast}}": ["p(95)<500"],
                             "http_req_failed": ["rate<0.01"]}})


def test_slow(certload):
    certload.run(Scenario("slow", hit_slow, ConstantArrivalRate(40, "2s", pre_allocated_vus=5,
                                                                max_vus=20)),
                 thresholds={{"http_req_duration{{scenario:slow}}": ["p(95)<20", "p(50)<500"]}})
'''
    )
    result = pytester.runpytest_subprocess("--junitxml=junit.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 threshold(s) breached:*",
            "*✗ http_req_duration{scenario:slow} p(95)<20: observed * ms over 80 samples "
            "(limit 20 ms)*",
        ]
    )
    root = _junit(pytester)
    fast, slow = _case(root, "test_fast"), _case(root, "test_slow")
    assert fast.find("failure") is None
    failure = slow.find("failure")
    assert failure is not None
    assert "http_req_duration{scenario:slow} p(95)<20" in (failure.get("message") or "")
    props = {p.get("name"): p.get("value") for p in slow.iter("property")}
    assert float(props["certload.slow.p50_ms"] or 0) >= 60
    assert props["certload.verdict"] == "breached"
    assert props["certload.slow.requests"] == "80"
    fast_props = {p.get("name"): p.get("value") for p in fast.iter("property")}
    assert fast_props["certload.verdict"] == "passed"
    # the terminal table has a row per scenario and a mark per threshold
    result.stdout.fnmatch_lines(
        [
            "*= certload =*",
            "target: *",
            "*scenario*requests*req/s*iter/s*p50 ms*p90 ms*p95 ms*p99 ms*max ms*errors*lag p99*",
            "*  fast*80*",
            "*✓ http_req_duration{scenario:fast} p(95)<500*",
            "*  slow*80*",
            "*✗ http_req_duration{scenario:slow} p(95)<20*",
            "JSON summary: *summary.json",
        ]
    )


def test_untrustworthy_run_is_an_error_with_its_figures(
    pytester: pytest.Pytester, slow_server: LatencyServer
) -> None:
    _write(
        pytester,
        slow_server.url,
        """
def test_starved(certload):
    certload.run(scenario("starved", rate=50, max_vus=1),
                 thresholds={"http_req_duration": ["p(95)<5000"]})
""",
    )
    result = pytester.runpytest_subprocess("--junitxml=junit.xml", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*UntrustworthyRun: the generator could not deliver the load*",
            "*starved: * dropped iterations (*of scheduled; at most 0.10% allowed)*raise max_vus*",
        ]
    )
    case = _case(_junit(pytester), "test_starved")
    assert case.find("error") is not None


def test_unreachable_server_is_an_error_naming_the_url(pytester: pytest.Pytester) -> None:
    from pytest_certload.stack import free_port

    url = f"http://127.0.0.1:{free_port()}"
    _write(
        pytester,
        url,
        """
def test_nobody_home(certload):
    certload.run(scenario("nobody", duration="1s"))
""",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*target unreachable*{url}/item*"])


def test_json_summary_validates_against_its_schema(
    pytester: pytest.Pytester, server: LatencyServer
) -> None:
    _write(
        pytester,
        server.url,
        """
from pytest_certload.engine import Scenario

def test_tagged(certload):
    certload.run(Scenario("nginx_handshake", hit, ConstantArrivalRate(40, "2s"),
                          tags={"target_type": "nginx"}),
                 thresholds={"http_req_duration{target_type:nginx}": ["p(95)<1000"]})
""",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--certload-output-dir=out")
    result.assert_outcomes(passed=1)
    doc = json.loads((pytester.path / "out" / "summary.json").read_text())
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    assert doc["schema_version"] == 1
    nginx = doc["connector_tier"]["nginx"]
    assert nginx["iterations"] == 80
    assert nginx["error_rate"] == 0
    assert 0 < nginx["p50"] <= nginx["p95"] <= nginx["p99"] <= nginx["max"]
    sub = doc["metrics"]["http_req_duration{target_type:nginx}"]
    assert sub["thresholds"] == {"p(95)<1000": {"ok": True}}
    assert set(sub["values"]) >= {"avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"}
    (test,) = doc["tests"]
    assert test["outcome"] == "passed"
    # relative to the output directory: a copied results folder still points at its own
    assert test["run_file"] == "runs/test_load.py_test_tagged.1.json"
    assert (pytester.path / "out" / test["run_file"]).exists()


SHOW_SETTINGS = """
def test_show(certload_settings):
    print("PROFILE", certload_settings.profile, certload_settings.sources["certload_profile"])
    print("DURATION", certload_settings.duration_ns)
"""


@pytest.mark.parametrize(
    ("cli", "ini", "env", "expected"),
    [
        ([], "", {}, "*PROFILE smoke default"),
        (
            [],
            "",
            {"CERTLOAD_PROFILE": "canonical"},
            "*PROFILE canonical environment variable CERTLOAD_PROFILE",
        ),
        (
            [],
            "certload_profile = canonical",
            {"CERTLOAD_PROFILE": "smoke"},
            "*PROFILE canonical pytest.ini",
        ),
        (
            ["--certload-profile=smoke"],
            "certload_profile = canonical",
            {},
            "*PROFILE smoke command line --certload-profile",
        ),
    ],
)
def test_settings_precedence_cli_ini_env_default(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    cli: list[str],
    ini: str,
    env: dict[str, str],
    expected: str,
) -> None:
    monkeypatch.delenv("CERTLOAD_PROFILE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    pytester.makefile(".ini", pytest=f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_show=SHOW_SETTINGS)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *cli)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([expected])


@pytest.mark.parametrize(
    ("cli", "ini", "env", "message"),
    [
        (
            ["--certload-duration=3x"],
            "",
            {},
            "*argument --certload-duration: '3x' is not a valid duration; use a number with ns, "
            "us, ms, s, m or h, e.g. '30s'*",
        ),
        (
            [],
            "certload_duration = 3x",
            {},
            "*'3x' is not a valid duration for certload_duration (from pytest.ini); use a number "
            "with ns, us, ms, s, m or h*",
        ),
        (
            [],
            "",
            {"CERTLOAD_DURATION": "3x"},
            "*'3x' is not a valid duration for certload_duration (from environment variable "
            "CERTLOAD_DURATION); use*",
        ),
        (
            ["--certload-profile=fast"],
            "",
            {},
            "*argument --certload-profile: 'fast' is not a valid choice; use one of smoke, "
            "canonical.*",
        ),
        (
            [],
            "certload_http_backend = curl",
            {},
            "*'curl' is not a valid choice for certload_http_backend (from pytest.ini); use one of "
            "fast, httpx.*",
        ),
        (
            [],
            "",
            {"CERTLOAD_HEALTH": "lag=1"},
            "*'lag=1' is not a valid health limit for certload_health (from environment variable "
            "CERTLOAD_HEALTH); use comma-separated key=value pairs*",
        ),
        (
            ["--certload-warmup=soon"],
            "",
            {},
            "*argument --certload-warmup: 'soon' is not a valid warm-up; use 0s for none, or a "
            "number with ns, us, ms, s, m or h*",
        ),
        (
            ["--certload-images=postgress=pg:16"],
            "",
            {},
            "*argument --certload-images: 'postgress=pg:16' is not a valid image list (unknown "
            "role 'postgress' in 'postgress=pg:16'); use ROLE=IMAGE pairs separated by commas, "
            "ROLE one of postgres, certctl, nginx, apache, haproxy, f5*",
        ),
        (
            ["--certload-provider=external"],
            "",
            {},
            "*the external provider (from command line --certload-provider) needs certctl's URL*",
        ),
    ],
)
def test_bad_option_values_are_usage_errors_naming_value_and_source(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    cli: list[str],
    ini: str,
    env: dict[str, str],
    message: str,
) -> None:
    for key in ("CERTLOAD_DURATION", "CERTLOAD_HEALTH", "CERTLOAD_IMAGES"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    pytester.makefile(".ini", pytest=f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_show=SHOW_SETTINGS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *cli)
    assert result.ret in (pytest.ExitCode.USAGE_ERROR, 2)
    result.stderr.fnmatch_lines([message])


def test_help_of_the_certload_group_is_golden(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    golden = (HERE / "golden_help.txt").read_text()
    monkeypatch.setenv("COLUMNS", "100")
    result = pytester.runpytest_subprocess("--help")
    text = result.stdout.str()
    start = text.index("load testing certctl (pytest-certload):")
    section = text[start:].split("\n\n", 1)[0].rstrip() + "\n"
    assert section == golden


def test_markers_are_registered_and_select(
    pytester: pytest.Pytester, server: LatencyServer
) -> None:
    _write(
        pytester,
        server.url,
        """
@pytest.mark.api
def test_api_thing(certload):
    certload.run(scenario("api_thing", duration="1s"))


@pytest.mark.scale
def test_scale_thing(certload):
    certload.run(scenario("scale_thing", duration="1s"))
""",
    )
    markers = pytester.runpytest_subprocess("--markers")
    markers.stdout.fnmatch_lines(
        [
            "@pytest.mark.api:*",
            "@pytest.mark.connector:*",
            "@pytest.mark.acme:*",
            "@pytest.mark.scale:*",
            "@pytest.mark.certload(*",
        ]
    )
    selected = pytester.runpytest_subprocess(
        "--strict-markers", "-m", "api", "-p", "no:cacheprovider"
    )
    selected.assert_outcomes(passed=1, deselected=1)


def test_certload_marker_arguments_are_checked_at_collection(
    pytester: pytest.Pytester, server: LatencyServer
) -> None:
    _write(
        pytester,
        server.url,
        """
@pytest.mark.certload(smoke_duraton="5s")
def test_typo(certload):
    certload.run(scenario("typo"))
""",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*unknown argument(s) smoke_duraton of @pytest.mark.certload at "
            "test_load.py::test_typo; valid keywords: smoke_duration, thresholds, health, "
            "min_tail_samples, target, group, scenario, known_defects, tables, connector_target.*"
        ]
    )


def test_profiles_shorten_durations_or_keep_them(
    pytester: pytest.Pytester, server: LatencyServer
) -> None:
    _write(
        pytester,
        server.url,
        """
@pytest.mark.certload(smoke_duration="1s")
def test_profiled(certload):
    result = certload.run(scenario("profiled", rate=20, duration="3s"))
    print("SCHEDULED", result.scenarios["profiled"].health.scheduled)
""",
    )
    smoke = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    smoke.stdout.fnmatch_lines(["*SCHEDULED 20*"])
    canonical = pytester.runpytest_subprocess(
        "-s", "-p", "no:cacheprovider", "--certload-profile=canonical"
    )
    canonical.stdout.fnmatch_lines(["*SCHEDULED 60*"])
    override = pytester.runpytest_subprocess(
        "-s", "-p", "no:cacheprovider", "--certload-duration=2s"
    )
    override.stdout.fnmatch_lines(["*SCHEDULED 40*"])


def test_warm_up_option_sets_the_first_seconds_apart(
    pytester: pytest.Pytester, server: LatencyServer
) -> None:
    _write(
        pytester,
        server.url,
        """
def test_warmed(certload):
    result = certload.run(scenario("warmed", rate=20, duration="3s"))
    warm = result.warmup_store.select("http_reqs", {"scenario": "warmed"})
    judged = result.store.select("http_reqs", {"scenario": "warmed"})
    print("WARM", int(warm.count), "JUDGED", int(judged.count))
""",
    )
    run = pytester.runpytest_subprocess(
        "-s", "-p", "no:cacheprovider", "--certload-profile=canonical", "--certload-warmup=1s"
    )
    run.assert_outcomes(passed=1)
    run.stdout.fnmatch_lines(["*WARM 20 JUDGED 40*"])
    too_long = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--certload-profile=canonical", "--certload-warmup=5s"
    )
    too_long.assert_outcomes(failed=1)
    too_long.stdout.fnmatch_lines(
        [
            "*the warmup 5s of scenario 'warmed' is not shorter than its duration (3s), so "
            "nothing would be judged; shorten the warm-up or run longer. (the warm-up comes "
            "from command line --certload-warmup)*"
        ]
    )
