"""Baselines keep each test's capacity answer and compare it by its bracket."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pytest_certload.baseline import (
    CAPACITY_RULE,
    Baseline,
    CapacityBaseline,
    baseline_from_runs,
    baseline_from_session,
    capacity_finding_text,
    compare,
    compare_capacity,
    comparison_lines,
    load,
    main,
    save,
)
from pytest_certload.engine import RunResult
from pytest_certload.engine.capacity import CapacityResult, CapacityStep, search
from tests.report.synth import knee_search, knee_step, with_capacity

STORM = "tests/load/test_scale.py::test_agent_storm"
META = {"target": {"kind": "double"}, "commit": "0123456789abcdef", "captured_at": "2026-11-27"}


def _baseline(run: RunResult, *found: CapacityResult, name: str = "b") -> Baseline:
    return baseline_from_runs(
        [(STORM, run)], name=name, metadata=META, capacity=[(STORM, f) for f in found]
    )


def _cap(
    capacity: float | None,
    first_fail: float | None,
    *,
    generator: float | None = None,
    precision: float = 0.1,
    stopped: str = "",
) -> CapacityBaseline:
    return CapacityBaseline(
        STORM,
        "agent_storm",
        100.0,
        capacity,
        first_fail,
        "http_req_duration p(95)<40: observed 61 ms" if first_fail else "",
        generator,
        "schedule lag p99 80 ms" if generator else "",
        precision,
        2000.0,
        stopped,
    )


# -- storing --------------------------------------------------------------------------------


def test_a_baseline_keeps_each_tests_capacity_answer(run_a: RunResult, tmp_path: Path) -> None:
    found = knee_search(730)
    base = _baseline(run_a, found)
    (kept,) = base.capacity
    assert (kept.test, kept.scenario) == (STORM, "agent_storm")
    assert (kept.contract_rps, kept.capacity_rps, kept.first_fail_rps) == (100, 700, 750)
    assert kept.first_fail_reason.startswith("http_req_duration{scenario:agent_storm} p(95)<40")
    assert (kept.generator_bound_rps, kept.precision, kept.max_rps) == (None, 0.1, 2000)
    assert not kept.generator_bound
    assert kept.width_rps == 70  # max(750 - 700, 10 % of 700)
    path = save(base, tmp_path / "b.json")
    assert json.loads(path.read_text())["capacity"][0]["capacity_rps"] == 700
    assert load(path).capacity == [kept]


def test_the_last_answer_per_test_and_scenario_is_kept(run_a: RunResult) -> None:
    base = _baseline(run_a, knee_search(300), knee_search(730))
    assert [c.capacity_rps for c in base.capacity] == [700]


def test_baselines_without_capacity_write_and_read_none(run_a: RunResult, tmp_path: Path) -> None:
    path = save(_baseline(run_a), tmp_path / "old.json")
    data = json.loads(path.read_text())
    assert "capacity" not in data  # as baselines saved before capacity searches existed
    assert data["baseline_format"] == 1
    assert load(path).capacity == []


def test_a_session_baseline_carries_its_capacity(run_a: RunResult, tmp_path: Path) -> None:
    session = with_capacity(tmp_path, [(STORM, run_a, [knee_search(730)])])
    assert [c.capacity_rps for c in baseline_from_session(session).capacity] == [700]


# -- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize("knee", [150.0, 333.0, 730.0, 1000.0, 1750.0])
@pytest.mark.parametrize("precision", [0.05, 0.1, 0.2])
def test_the_same_server_searched_twice_is_never_a_regression(
    knee: float, precision: float
) -> None:
    # two searches of one knee from other contract rates: other steps, other brackets
    one = knee_search(knee, contract=100, precision=precision, max_rate=5000)
    other = knee_search(knee, contract=70, max_rate=5000)
    a, b = (CapacityBaseline.from_result(STORM, found) for found in (one, other))
    for base, now in ((a, b), (b, a)):
        assert compare_capacity(base, now).verdict == "same"


def _noisy(knee: float, band: float, seed: int) -> CapacityResult:
    """A search of ``knee`` whose steps within ``band`` x knee around it pass or fail at
    random (a server that holds about that much, some seconds more, some less)."""
    rng = random.Random(seed)

    def run_step(rate: float, _previous: float) -> CapacityStep:
        if abs(rate - knee) <= band / 2 * knee:
            return knee_step(rate, knee=rate + (1 if rng.random() < 0.5 else -1))
        return knee_step(rate, knee=knee)

    return search(run_step, scenario="agent_storm", contract=100, max_rate=5000)


@pytest.mark.parametrize("knee", [333.0, 730.0, 1000.0, 1750.0])
def test_step_verdicts_flipping_within_the_precision_are_never_a_regression(
    knee: float,
) -> None:
    found = [CapacityBaseline.from_result(STORM, _noisy(knee, 0.1, seed)) for seed in range(40)]
    assert len({(c.capacity_rps, c.first_fail_rps) for c in found}) > 1  # the noise shows
    verdicts = {compare_capacity(a, b).verdict for a in found for b in found}
    assert verdicts == {"same"}
    # a knee 30 % lower is a regression from every one of them
    lower = [CapacityBaseline.from_result(STORM, _noisy(knee * 0.7, 0.1, s)) for s in range(10)]
    assert {compare_capacity(a, b).verdict for a in found for b in lower} == {"regression"}


@pytest.mark.parametrize(
    ("base", "now", "verdict"),
    [
        # w = max(F - C, 10 % of C): (700, 750) is 70 wide
        ((700, 750), (700, 750), "same"),
        ((700, 750), (650, 700), "same"),  # failed at the baseline's capacity itself
        ((700, 750), (590, 640), "same"),  # 590 + 59 + 70 = 719, not below 700
        ((700, 750), (550, 600), "regression"),  # 550 + 55 + 70 = 675 < 700
        ((700, 750), (400, 440), "regression"),
        ((400, 440), (700, 750), "improvement"),
        ((700, 750), (850, 900), "same"),  # 700 + 70 + 85 = 855, not below 850
        ((700, 750), (900, 950), "improvement"),
        ((None, 100), (700, 750), "improvement"),  # the baseline's contract rate failed
    ],
)
def test_a_capacity_regression_needs_a_gap_beyond_both_brackets(
    base: tuple[float | None, float], now: tuple[float | None, float], verdict: str
) -> None:
    assert compare_capacity(_cap(*base), _cap(*now)).verdict == verdict


def test_the_regression_says_where_this_run_failed() -> None:
    found = compare_capacity(_cap(700, 750), _cap(400, 440))
    assert capacity_finding_text(found) == (
        f"capacity agent_storm ({STORM}): regression: 700/s (first fail 750/s) -> 400/s "
        "(first fail 440/s); 400/s is more than both brackets (40/s + 70/s) below the "
        "baseline's 700/s; this run failed at 440/s"
    )


@pytest.mark.parametrize("side", ["baseline", "current"])
def test_a_generator_bound_answer_is_not_comparable(side: str) -> None:
    bound = _cap(400, None, generator=800)
    server = _cap(700, 750)
    base, now = (bound, server) if side == "baseline" else (server, bound)
    found = compare_capacity(base, now)
    assert found.verdict == "not comparable"
    whose = "the baseline's" if side == "baseline" else "this run's"
    assert found.reason == (
        f"{whose} search was generator-bound at 800/s (schedule lag p99 80 ms): its capacity "
        "is a lower bound of the server's; search again with more generator processes "
        "(--certload-tx)"
    )
    # however far apart: the generator's limit says nothing about the server's
    assert compare_capacity(_cap(5000, 5500), _cap(400, None, generator=800)).verdict == (
        "not comparable"
    )


def test_a_lower_answer_without_a_failing_rate_is_not_judged() -> None:
    # the search stopped (ceiling or time) before any rate failed: only a lower bound
    stopped = "the rate ceiling of 400/s was reached"
    found = compare_capacity(_cap(700, 750), _cap(400, None, stopped=stopped))
    assert found.verdict == "not judged"
    assert found.reason == (
        f"this run's search found no failing rate ({stopped}): its 400/s is only a lower "
        "bound, below the baseline's 700/s"
    )
    # and an open baseline can never show an improvement
    assert compare_capacity(_cap(400, None), _cap(2000, 2200)).verdict == "same"


def test_comparisons_show_the_capacity_rule_and_fail_on_a_capacity_regression(
    run_a: RunResult,
) -> None:
    result = compare(_baseline(run_a, knee_search(730)), _baseline(run_a, knee_search(400)))
    assert not result.ok
    assert result.regressions == []  # the latency is the same run's
    assert [f.verdict for f in result.capacity_regressions] == ["regression"]
    lines = comparison_lines(result)
    texts = [line.text for line in lines]
    assert CAPACITY_RULE in texts
    bad = [line.text for line in lines if line.bad]
    assert bad[0].startswith(f"  ✗ capacity agent_storm ({STORM}): regression: 700/s")
    assert bad[-1] == "1 regression(s) against baseline 'b'"

    same = compare(_baseline(run_a, knee_search(730)), _baseline(run_a, knee_search(730)))
    assert same.ok
    assert f"  · capacity agent_storm ({STORM}): same: 700/s (first fail 750/s) -> 700/s " in (
        "\n".join(line.text for line in comparison_lines(same, verbose=False))
    )


def test_searches_on_one_side_only_are_listed(run_a: RunResult) -> None:
    with_search = _baseline(run_a, knee_search(730))
    without = _baseline(run_a)
    result = compare(with_search, without)
    assert result.ok
    assert result.missing == [
        f"the capacity of 'agent_storm' in {STORM} was not searched this time "
        "(run with --certload-capacity)"
    ]
    assert compare(without, with_search).missing == [
        f"the capacity of 'agent_storm' in {STORM} has no baseline in 'b'"
    ]
    # and a comparison without any search says nothing of capacity
    assert CAPACITY_RULE not in [line.text for line in comparison_lines(compare(without, without))]


def test_cli_compare_fails_on_a_capacity_regression(
    run_a: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "baselines"
    with_capacity(tmp_path / "before", [(STORM, run_a, [knee_search(730)])])
    with_capacity(tmp_path / "after", [(STORM, run_a, [knee_search(400)])])
    args = ["--dir", str(store), "--results"]
    assert main(["save", "scale", *args, str(tmp_path / "before")]) == 0
    assert f"with the capacity of agent_storm ({STORM})" in capsys.readouterr().out
    assert main(["compare", "scale", *args, str(tmp_path / "before")]) == 0
    assert "same: 700/s (first fail 750/s) -> 700/s" in capsys.readouterr().out
    assert main(["compare", "scale", *args, str(tmp_path / "after")]) == 1
    out = capsys.readouterr().out
    assert "✗ capacity agent_storm" in out
    assert "-> 400/s (first fail 425/s)" in out
