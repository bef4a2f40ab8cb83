"""certctl's default rate limiter, met as certctl's k6 meets it, is reported everywhere.

One embedded stack for the module with the double's API rate limiter on at certctl's
defaults (50 requests/s per client IP, burst 100; nothing but
CERTCTL_RATE_LIMIT_ENABLED=true is set). The API pair of ``tests/load`` runs as k6.js
runs it, both scenarios at once in the shared run ``k6`` (100 requests/s once the
listing starts), and the limiter's 429 share must be in every output: the failure
message, the certload terminal table, report.html, summary.json and the junit
properties. The ACME surface (``acme_flow``) then shows every 429 counted, its HEAD
new-nonce ones included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from pytest_certload.certctl import API_LIMITER_SHAPE
from pytest_certload.stack import StackInfo
from tests.support.load_suite import LoadSuite, local_stack, properties

PAIR = ("issuance_acceptance", "list_certificates")
METHODS = {"issuance_acceptance": "POST", "list_certificates": "GET"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    # certctl's default: on, 50 rps, burst 100 (CERTCTL_RATE_LIMIT_RPS/_BURST unset)
    with local_stack(tmp_path_factory.mktemp("limited"), CERTCTL_RATE_LIMIT_ENABLED="true") as info:
        yield info


@pytest.fixture
def suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, stack: StackInfo
) -> LoadSuite:
    return LoadSuite(pytester, monkeypatch, stack)


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_the_api_pair_as_k6_runs_it_reports_the_limiters_share_everywhere(
    suite: LoadSuite,
) -> None:
    # issuance 0-10 s, listing 5-15 s: 100 requests/s for 5 s against 50/s, burst 100.
    # Both arrive on the same 20 ms ticks, so which one the bucket refuses is not even
    # (the listing wins most ties): each test reports its own scenario's share.
    result = suite.run("-m", "api", "--certload-duration=10s", out="pair")
    summary = suite.summary("pair")
    tests = {t["ran_with"][0]: t for t in summary["tests"]}  # keyed by the other scenario
    html = suite.html("pair").replace("&#x27;", "'")
    cases = suite.junit("pair")
    out = result.stdout.str()
    limited_total = failed_tests = 0
    for name in PAIR:
        other = next(n for n in PAIR if n != name)
        test = tests[other]
        assert test["group"] == "k6"
        assert list(test["scenarios"]) == [name]
        requests = test["scenarios"][name]["requests"]
        limits = [d for d in test["diagnoses"] if d["kind"] == "rate-limit"]
        if not limits:  # this scenario won every tie: nothing of it to report
            assert test["scenarios"][name].get("errors") is None
            continue
        # summary.json: the rate-limit diagnosis, with the 429s out of the responses
        (limit,) = limits
        limited = limit["statuses"]["429"]
        assert 0 < limited < requests == limit["requests"]
        limited_total += limited
        share = f"{limited / requests:.1%}"
        expected = (
            f"{name}: certctl's API rate limiter (429, Retry-After: 1) answered "
            f"{limited:,} of {requests:,} responses ({share}; {METHODS[name]} {limited:,})"
        )
        assert limit["summary"] == expected
        assert "CERTCTL_RATE_LIMIT_ENABLED=false" in limit["details"][0]
        # every 429 of the scenario is the limiter's, each one a failed request
        (failed,) = [d for d in test["diagnoses"] if d["kind"] == "failed-requests"]
        assert failed["statuses"] == {"429": limited}
        assert test["scenarios"][name]["errors"]["throttled"] == {API_LIMITER_SHAPE: limited}
        # the verdict follows: http_req_failed rate<0.01
        if limited > 0.01 * requests:
            assert test["outcome"] == "failed"
            assert test["verdict"] == "breached"
            failed_tests += 1
        # the failure message (when it failed), then the certload terminal table
        assert out.count(expected) >= (2 if test["outcome"] == "failed" else 1), expected
        assert f"! {name}: {limited:,} of {requests:,} requests failed: 429: {limited:,} of " in out
        # report.html
        assert expected in html
        assert f"by status: 429: {limited:,} of {requests:,}" in html
        # junit properties
        props = properties(cases[f"test_{name}"])
        assert props[f"certload.diagnosis.rate-limit.{name}"].startswith(expected)
        assert props[f"certload.{name}.statuses"] == f"429: {limited:,} of {requests:,}"
    # k6.js's mix trips the limiter: 5 s at 100/s against 50/s, less the burst of 100
    assert limited_total >= 50, limited_total
    result.assert_outcomes(failed=failed_tests, passed=2 - failed_tests)
    result.stdout.fnmatch_lines(
        ["*responses (*%, limit 5%; *) were certctl's API rate limiter (429, Retry-After: 1)*"]
    )


def test_every_429_of_the_acme_surface_is_counted_head_new_nonce_included(
    suite: LoadSuite,
) -> None:
    # 100 VUs walking directory, HEAD new-nonce and renewal-info about every second
    result = suite.run("-k", "acme_flow", "--certload-duration=4s", out="acme")
    result.assert_outcomes(failed=1)
    (test,) = suite.summary("acme")["tests"]
    metrics = suite.summary("acme")["metrics"]
    (limit,) = [d for d in test["diagnoses"] if d["kind"] == "rate-limit"]
    methods = dict(re.findall(r"(GET|HEAD) ([\d,]+)", limit["summary"]))
    assert _number(methods.get("HEAD", "0")) > 0, limit["summary"]
    # the 429s answered, by method (the engine's http_reqs tags)
    answered = sum(_number(n) for n in methods.values())
    # every one is counted: by the diagnosis, the failed requests and the scenario's own
    # Counter (which used to miss the HEAD ones: their answer has no body)
    assert limit["statuses"]["429"] == answered
    (failed,) = [d for d in test["diagnoses"] if d["kind"] == "failed-requests"]
    assert failed["statuses"]["429"] == answered
    assert metrics["certctl_rate_limited"]["values"]["count"] == answered
    assert test["scenarios"]["acme_flow"]["errors"]["throttled"] == {API_LIMITER_SHAPE: answered}
