"""The knee of a capacity search in the HTML report: one chart per searched scenario."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_certload.engine import RunResult
from pytest_certload.report import html
from tests.report.synth import knee_search, synthetic_run, with_capacity

STORM = "tests/load/test_scale.py::test_agent_storm"
BULK = "tests/load/test_scale.py::test_bulk_renewal"
PLAIN = "tests/load/test_api.py::test_api_tier"


class _Knees(HTMLParser):
    """The knee figures: their data attributes, caption, <svg> count and step rows."""

    def __init__(self) -> None:
        super().__init__()
        self.knees: list[dict[str, str | None]] = []
        self.svgs: list[int] = []
        self.captions: list[str] = []
        self.steps: list[list[str]] = []
        self._in: int | None = None
        self._caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "figure" and "knee" in (a.get("class") or "").split():
            self.knees.append(a)
            self.svgs.append(0)
            self.captions.append("")
            self.steps.append([])
            self._in = len(self.knees) - 1
        elif self._in is not None:
            if tag == "svg":
                self.svgs[self._in] += 1
            elif tag == "figcaption":
                self._caption = True
            elif tag == "tr" and (a.get("class") or "").startswith("step-"):
                self.steps[self._in].append(str(a["class"]).removeprefix("step-"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._in = None
        elif tag == "figcaption":
            self._caption = False

    def handle_data(self, data: str) -> None:
        if self._caption and self._in is not None:
            self.captions[self._in] += data


def _knees(text: str) -> _Knees:
    parser = _Knees()
    parser.feed(text)
    return parser


@pytest.fixture(scope="module")
def storm() -> RunResult:
    return synthetic_run(seed=5, scenarios=("agent_storm",), duration="4s", rate=50)


@pytest.fixture(scope="module")
def report(storm: RunResult, run_a: RunResult, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Three tests: a knee the server sets, one the generator sets, and none."""
    session = with_capacity(
        tmp_path_factory.mktemp("knee"),
        [
            (STORM, storm, [knee_search(730, contract=50)]),
            (BULK, storm, [knee_search(10_000, scenario="bulk", contract=50, generator=500)]),
            (PLAIN, run_a, []),
        ],
    )
    return html.write_report(session).read_text()


def test_one_knee_per_searched_scenario_none_without_a_search(report: str) -> None:
    found = _knees(report)
    assert [k["data-scenario"] for k in found.knees] == ["agent_storm", "bulk"]
    assert found.svgs == [1, 1]
    assert report.count("<h3>Capacity</h3>") == 2
    # the test without a search has its figures and charts, and no knee
    plain = report[report.index(f"<code>{PLAIN}</code>") :]
    assert "<h3>Capacity</h3>" not in plain
    assert 'class="chart knee"' not in plain


def test_the_knee_marks_the_bracket_the_contract_and_the_verdicts(report: str) -> None:
    found = _knees(report)
    server = found.knees[0]
    search = knee_search(730, contract=50)
    assert found.captions[0] == search.line()
    assert server["data-contract"] == "50"
    assert server["data-capacity"] == "700"
    assert (server["data-bound"], server["data-bound-rate"]) == ("fail", "750")
    assert server["data-steps"] == str(len(search.steps))
    # one table row per step, in the order run
    assert found.steps[0] == [s.verdict for s in search.steps]
    assert found.steps[0] == ["pass", "pass", "pass", "pass", "fail", "pass", "pass", "fail"]
    first = report[report.index('id="knee-') : report.index("</figure>", report.index('id="knee-'))]
    for label in (
        "p50",
        "p95",
        "p99",
        "pass",
        "fail (the server)",
        "bracket 700–750/s (capacity–first fail)",
        "contract rate 50/s",
        "http_req_duration per step (after its ramp)",
        "failed requests per step",
        "offered rate (iterations/s)",
        "p(95)&lt;40",  # the contract's own limits, where the knee crosses them
        "rate&lt;0.01",
    ):
        assert label in first, label
    assert "generator-bound" not in first


def test_a_generator_bound_knee_says_so(report: str) -> None:
    found = _knees(report)
    knee = found.knees[1]
    assert (knee["data-bound"], knee["data-bound-rate"]) == ("generator", "800")
    assert found.captions[1].startswith("capacity bulk: 400/s (generator-bound at 800/s")
    assert "--certload-tx" in found.captions[1]
    assert found.steps[1] == ["pass", "pass", "pass", "pass", "generator"]
    second = report[report.index(f"<code>{BULK}</code>") :]
    assert "bracket 400–800/s (generator-bound)" in second
    assert "schedule lag p99 80 ms (limit 50 ms)" in second


def test_without_matplotlib_the_knee_keeps_its_caption_and_steps(
    storm: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(html, "charts_available", lambda: False)
    session = with_capacity(tmp_path, [(STORM, storm, [knee_search(730, contract=50)])])
    text = html.render(session)
    found = _knees(text)
    assert found.svgs == [0]
    assert found.captions[0].startswith("capacity agent_storm: 700/s (first fail 750/s")
    assert len(found.steps[0]) == 8
    knee = text[text.index("<h3>Capacity</h3>") :]
    assert html.INSTALL_HINT.replace("'", "&#x27;") in knee
