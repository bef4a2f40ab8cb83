"""The connector tier: targets not given are skipped naming ``--certload-targets``, and the
reports name the targets measured and their URLs, not certctl when no run contacted it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_certload import LoadTest, Settings
from pytest_certload.engine import ConstantArrivalRate, RunResult, Scenario
from pytest_certload.loadtest import shared_members
from pytest_certload.record import RunRecord, SessionRecord
from pytest_certload.report import html, terminal
from pytest_certload.report.meta import measured_text
from pytest_certload.report.summary import SCHEMA_PATH, build_summary
from pytest_certload.stack import StackInfo

from .synth import synthetic_run

ROOT = Path(__file__).resolve().parents[2]
CERTCTL = "certctl reference double 0.1.0 at https://127.0.0.1:8443 (local provider)"
URLS = {
    "nginx": "https://127.0.0.1:8441",
    "apache": "https://127.0.0.1:8442",
    "f5": "https://127.0.0.1:8444",
}


def _connector_run(*kinds: str, api: bool = False) -> RunResult:
    """A run of the handshakes of ``kinds`` (tagged as test_connector.py tags them), with
    the API pair beside them when ``api``."""
    names = [f"{kind}_handshake" for kind in kinds]
    if api:
        names = ["issuance_acceptance", *names]
    result = synthetic_run(seed=3, scenarios=tuple(names), rate=20, duration="2s")
    for kind in kinds:
        result.scenarios[f"{kind}_handshake"].tags["target_type"] = kind
    return result


def _session(tmp_path: Path, *results: RunResult) -> SessionRecord:
    session = SessionRecord(output_dir=tmp_path, profile="smoke", http_backend="fast")
    session.target = CERTCTL
    session.target_details = {
        "url": "https://127.0.0.1:8443",
        "provider": "local",
        "kind": "double",
        "version": {"version": "double-0.1.0"},
        "targets": URLS,
    }
    for i, result in enumerate(results):
        session.add(RunRecord(f"test_{i}", "", result, session.target))
        session.outcomes[f"test_{i}"] = "passed"
    return session


def test_the_header_names_the_targets_a_run_measured() -> None:
    record = {"targets": URLS}
    both = measured_text(CERTCTL, record, [_connector_run("nginx", "f5", api=True)])
    assert both == (CERTCTL, "nginx https://127.0.0.1:8441, f5 https://127.0.0.1:8444")
    alone = measured_text(CERTCTL, record, [_connector_run("apache")])
    assert alone == (
        "connector targets apache https://127.0.0.1:8442 (certctl was not contacted)",
        "",
    )
    api = measured_text(CERTCTL, record, [synthetic_run(seed=1, duration="1s")])
    assert api == (CERTCTL, "")
    assert measured_text(CERTCTL, record, []) == (CERTCTL, "")
    unknown = measured_text(CERTCTL, {}, [_connector_run("nginx")])
    assert unknown[0] == "connector targets nginx (URL not recorded) (certctl was not contacted)"


def test_terminal_html_and_summary_say_certctl_was_not_contacted(tmp_path: Path) -> None:
    session = _session(tmp_path, _connector_run("nginx", "apache"))
    lines = terminal.render(session)
    assert lines[0] == (
        "target: connector targets nginx https://127.0.0.1:8441, apache https://127.0.0.1:8442 "
        "(certctl was not contacted)"
    )
    assert not any(line.startswith("connector targets:") for line in lines)
    page = html.render(session)
    assert (
        "<dt>target</dt><dd>connector targets nginx https://127.0.0.1:8441, apache "
        "https://127.0.0.1:8442 (certctl was not contacted)</dd>"
    ) in page
    doc = build_summary(session)
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    assert doc["target"]["connector_targets"] == {
        "nginx": "https://127.0.0.1:8441",
        "apache": "https://127.0.0.1:8442",
    }
    assert doc["target"]["certctl_contacted"] is False
    assert doc["target"]["targets"] == URLS


def test_a_shared_run_with_certctl_names_both(tmp_path: Path) -> None:
    session = _session(tmp_path, _connector_run("f5", api=True))
    lines = terminal.render(session)
    assert lines[:2] == [f"target: {CERTCTL}", "connector targets: f5 https://127.0.0.1:8444"]
    page = html.render(session)
    assert "<dt>connector targets</dt><dd>f5 https://127.0.0.1:8444</dd>" in page
    doc = build_summary(session)
    assert doc["target"]["certctl_contacted"] is True
    assert doc["target"]["connector_targets"] == {"f5": "https://127.0.0.1:8444"}


class _Mark:
    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs


class _Item:
    nodeid = "test_connector.py::test_handshake[nginx_handshake]"

    def __init__(self, **marks: Any) -> None:
        self.user_properties: list[tuple[str, object]] = []
        self.marks = {"certload": [_Mark(**marks)], "skip": []}

    def iter_markers(self, name: str) -> Iterator[object]:
        return iter(self.marks.get(name, []))


def test_a_connector_only_run_records_its_targets_not_certctl(tmp_path: Path) -> None:
    async def idle(vu: object) -> None:
        return None

    stack = StackInfo(
        certctl_url="https://127.0.0.1:8443",
        token="t",
        admin_token="t",
        targets={"nginx": "https://user:pw@127.0.0.1:8441"},
    )
    session = SessionRecord(output_dir=tmp_path)
    session.target = CERTCTL
    load = LoadTest(_Item(), Settings.defaults(), session, stack=stack)  # type: ignore[arg-type]
    scenario = Scenario(
        "nginx_handshake", idle, ConstantArrivalRate(10, "1s"), tags={"target_type": "nginx"}
    )
    load.run(scenario)
    load.run(Scenario("issuance_acceptance", idle, ConstantArrivalRate(10, "1s")))
    assert [r.target for r in session.records] == [
        "connector targets nginx https://127.0.0.1:8441 (certctl was not contacted)",
        CERTCTL,
    ]


def test_a_skipped_member_is_no_member_of_the_shared_run() -> None:
    kept = _Item(group="k6", scenario="nginx_handshake")
    skipped = _Item(group="k6", scenario="f5_handshake")
    skipped.marks["skip"] = [_Mark(reason="no f5 target")]
    assert list(shared_members([kept, skipped], "k6")) == ["nginx_handshake"]


MEMBERS = """
import pytest


@pytest.mark.certload(connector_target="nginx")
def test_nginx():
    pass


@pytest.mark.certload(connector_target="f5")
def test_f5():
    pass
"""


@pytest.mark.parametrize(
    ("args", "outcomes"),
    [
        ((), {"passed": 2}),  # the local stack has every target
        (
            ("--certctl-url=https://127.0.0.1:9", "--certload-targets=nginx=https://127.0.0.1:9"),
            {"passed": 1, "skipped": 1},
        ),
    ],
    ids=["local", "external-without-f5"],
)
def test_a_target_the_stack_lacks_is_skipped_naming_the_option(
    pytester: pytest.Pytester, args: tuple[str, ...], outcomes: dict[str, int]
) -> None:
    pytester.makepyfile(test_members=MEMBERS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs", *args)
    result.assert_outcomes(**outcomes)
    if "skipped" in outcomes:
        result.stdout.fnmatch_lines(
            [
                "SKIPPED [[]1[]] test_members.py:*: no f5 target to measure: an external stack "
                "has only the connector targets --certload-targets names (nginx, from command "
                "line --certload-targets); add f5=https://HOST:PORT to --certload-targets (ini "
                "certload_targets, env CERTLOAD_TARGETS) to measure it"
            ]
        )


def test_a_bad_connector_target_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="import pytest\n\n@pytest.mark.certload(connector_target='iis')\n"
        "def test_iis():\n    pass\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*'iis' is not a valid connector_target of @pytest.mark.certload at "
            "test_bad.py::test_iis; use one of nginx, apache, haproxy, f5."
        ]
    )


def test_the_shipped_f5_scenario_is_skipped_without_an_f5_target(
    pytester: pytest.Pytester,
) -> None:
    """tests/load as shipped, against an external stack given no f5 URL: the f5 test is
    skipped before any stack is needed (no certctl answers at the URL given)."""
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "__init__.py").write_text("")
    shutil.copytree(ROOT / "tests" / "load", pytester.path / "tests" / "load")
    result = pytester.runpytest_subprocess(
        "tests/load",
        "-p",
        "no:cacheprovider",
        "-rs",
        "-k",
        "f5_handshake",
        "--certctl-url=https://127.0.0.1:9",
        "--certload-targets=nginx=https://127.0.0.1:9,apache=https://127.0.0.1:9",
        timeout=60,
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * no f5 target to measure: *--certload-targets*"])
