"""A known certctl defect turns a failure into xfail, by its signature, and back.

One embedded stack (PostgreSQL and the certctl reference double, its rate limiter off)
for the module; each case runs the shipped ``acme_enroll`` of ``tests/load`` in a
pytester subprocess against it. The double's fault injection makes ACME finalize answer
certctl's 500 ``serverInternal`` problem document, as certctl's FinalizeOrder does:

* the failure is reported xfail naming the defect and certctl's file and function, and
  every output (terminal table, report.html, summary.json, junit) carries the diagnosis;
* ``--certload-known-defects fail`` turns it back into a plain failure;
* with the double healthy, a test marked as expecting the defect XPASSes strictly: it
  fails, so the team notices certctl no longer shows it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_certload.stack import StackInfo
from tests.support.load_suite import Faults, LoadSuite, local_stack, properties

FINALIZE = {
    "method": "POST",
    "path": "/acme/profile/*/order/*/finalize",
    "error_rate": 1.0,
    "error_status": 500,
    "error_shape": "acme",
}
NODEID = "tests/load/test_acme_enroll.py::test_acme_enroll"
ONLY = "test_acme_enroll and not order_limit"
#: expects the defect on the shipped test, as a user's conftest.py would
EXPECTING = """
import pytest

def pytest_collection_modifyitems(items):
    for item in items:
        if item.name == "test_acme_enroll":
            item.add_marker(pytest.mark.certload(known_defects=["acme-finalize-500"]))
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    with local_stack(tmp_path_factory.mktemp("defects")) as info:
        yield info


@pytest.fixture
def faults(stack: StackInfo) -> Iterator[Faults]:
    faults = Faults(stack)
    try:
        yield faults
    finally:
        faults.close()


@pytest.fixture
def suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, stack: StackInfo
) -> LoadSuite:
    return LoadSuite(pytester, monkeypatch, stack)


def test_the_finalize_defect_is_reported_xfail_in_every_output(
    suite: LoadSuite, faults: Faults
) -> None:
    faults.apply(FINALIZE)
    result = suite.run("-k", ONLY, "--certload-duration=3s", out="xfail")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(
        [
            f"XFAIL {NODEID} - known certctl defect acme-finalize-500: certctl's ACME finalize "
            "answers 500 serverInternal (internal/service/acme.go::FinalizeOrder); acme_enroll: "
            "* of * finalize requests: * answered 500; see docs/known-defects.md",
        ]
    )
    # the certload table: the test's outcome and the diagnoses under it
    result.stdout.fnmatch_lines(
        [
            f"{NODEID}: breached (test xfailed)",
            "*! acme_enroll: * of * requests failed: 500: * of *",
            '*!   acme_enroll: * of * requests answered 500 (body: {"type":"urn:ietf:params:acme:'
            'error:serverInternal","detail":"ACME server error","status":500})',
            "*! known certctl defect acme-finalize-500: certctl's ACME finalize answers 500 "
            "serverInternal (internal/service/acme.go::FinalizeOrder): acme_enroll: *",
            "*!   watch for: certctl's log for the finalize error*",
        ]
    )
    (test,) = suite.summary("xfail")["tests"]
    assert test["outcome"] == "xfailed"
    defect = next(d for d in test["diagnoses"] if d["kind"] == "known-defect")
    assert defect["id"] == "acme-finalize-500"
    assert defect["source"] == "internal/service/acme.go::FinalizeOrder"
    assert defect["excuses"] is True
    assert set(defect["statuses"]) == {"500"}
    assert defect["statuses"]["500"] == defect["requests"] > 0  # every finalize
    failed = next(d for d in test["diagnoses"] if d["kind"] == "failed-requests")
    assert failed["statuses"]["500"] >= defect["statuses"]["500"]
    # no threshold blames a tag filter for what failed requests never measured
    for threshold in test["thresholds"]:
        assert "check the scenario ran and the tag filter" not in threshold["reason"]
    # the defect explains the 500s: no "unknown profile" meaning is offered for them
    result.stdout.no_fnmatch_line("*what that 500 means*")
    html = suite.html("xfail")
    assert 'data-id="acme-finalize-500"' in html
    assert "(test xfailed)" in html
    case = suite.junit("xfail")["test_acme_enroll"]
    skipped = case.find("skipped")
    assert skipped is not None
    assert skipped.get("type") == "pytest.xfail"
    assert "acme-finalize-500" in str(skipped.get("message"))
    props = properties(case)
    assert props["certload.diagnosis.acme-finalize-500.acme_enroll"].startswith(
        "known certctl defect acme-finalize-500"
    )
    assert props["certload.acme_enroll.statuses"].startswith("500: ")


def test_known_defects_fail_makes_it_a_plain_failure_naming_the_defect(
    suite: LoadSuite, faults: Faults
) -> None:
    # a certctl build whose answer shows the cause: the diagnosis names it
    faults.apply(
        {
            **FINALIZE,
            "error_detail": "pq: duplicate key value violates unique constraint "
            '"certificate_versions_fingerprint_sha256_key"',
        }
    )
    result = suite.run(
        "-k", ONLY, "--certload-duration=3s", "--certload-known-defects=fail", out="fail"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*threshold(s) breached:*",
            "*why requests failed:*",
            "*! known certctl defect acme-finalize-500: *; the answer names the duplicate "
            "certificate fingerprint (certificate_versions_fingerprint_sha256_key)",
        ]
    )
    result.stdout.no_fnmatch_line("XFAIL*")
    (test,) = suite.summary("fail")["tests"]
    assert test["outcome"] == "failed"


def test_a_test_expecting_the_defect_xpasses_strictly_once_it_is_gone(
    suite: LoadSuite, pytester: pytest.Pytester
) -> None:
    # the double's finalize works: 11 s at 10/s gives the 100 enrollments p(99) needs
    pytester.makeconftest(EXPECTING)
    result = suite.run("-k", ONLY, "--certload-duration=11s", out="xpass", timeout=240)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]XPASS(strict)[]] known certctl defect(s) no longer shown: acme-finalize-500 "
            "(certctl's ACME finalize answers 500 serverInternal, "
            "internal/service/acme.go::FinalizeOrder)*remove it from the mark*",
        ]
    )
    (test,) = suite.summary("xpass")["tests"]
    assert test["verdict"] == "passed"  # the run itself passed: the mark is what failed
    assert "diagnoses" not in test
