"""--certload-baseline: CLI > ini > env > default, and its bad values."""

from __future__ import annotations

import pytest

from pytest_certload.baseline import baseline_from_runs, save
from pytest_certload.engine import RunResult
from pytest_certload.errors import ConfigError
from pytest_certload.settings import resolve


def test_baseline_resolves_cli_then_ini_then_env() -> None:
    env = {"CERTLOAD_BASELINE": "from-env"}
    ini = {"certload_baseline": "from-ini"}
    cli = {"certload_baseline": "from-cli"}
    assert resolve({}, {}, environ={}).baseline is None
    assert resolve({}, {}, environ=env).baseline == "from-env"
    assert resolve({}, ini, environ=env).baseline == "from-ini"
    settings = resolve(cli, ini, environ=env)
    assert settings.baseline == "from-cli"
    assert settings.sources["certload_baseline"] == "command line --certload-baseline"
    assert resolve({}, {"certload_baseline": "dir/run.json"}, environ={}).baseline == (
        "dir/run.json"
    )


def test_a_bad_baseline_name_says_what_is_valid() -> None:
    with pytest.raises(ConfigError) as info:
        resolve({}, {"certload_baseline": "a b"}, ini_source="pytest.ini", environ={})
    assert str(info.value) == (
        "'a b' is not a valid baseline for certload_baseline (from pytest.ini); use a baseline "
        "name (letters, digits, '_', '-', '.') or a path ending in .json."
    )


def test_a_missing_baseline_stops_pytest_before_any_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTLOAD_BASELINE", "nightly")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--certload-baseline (from environment variable CERTLOAD_BASELINE): no baseline at "
            "*baselines/nightly.json; saved baselines in *baselines: none. Save one with "
            "'python -m pytest_certload.baseline save NAME'."
        ]
    )


def test_a_baseline_of_another_profile_is_refused_before_any_test(
    pytester: pytest.Pytester, run_a: RunResult
) -> None:
    baseline = baseline_from_runs(
        [("t.py::test_api", run_a)], name="nightly", metadata={"profile": "canonical"}
    )
    save(baseline, pytester.path / "baselines" / "nightly.json")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--certload-baseline=nightly", "--certload-profile=smoke"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--certload-baseline (from command line --certload-baseline): baseline 'nightly' "
            "was captured with the canonical profile and this run used smoke (indicative: *): "
            "their scenarios ran for different durations, so the figures are not compared. "
            "Compare with a baseline captured with --certload-profile smoke *, or run with "
            "--certload-profile canonical."
        ]
    )
    ok = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--certload-baseline=nightly", "--certload-profile=canonical"
    )
    assert ok.ret == pytest.ExitCode.OK
