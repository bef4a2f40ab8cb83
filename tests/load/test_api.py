"""API tier: certctl's k6 ``issuance_acceptance`` and ``list_certificates``.

50 requests/s each for 5 minutes in the canonical profile, ``list_certificates`` starting
5 s later. As in k6.js they run at the same time, with the connector tier, in the shared
run ``k6`` (``k6.py`` builds its six scenarios); each test judges only its own scenario's
share, so a breach fails the test of the scenario that breached. ``-k`` selects one
scenario (it then runs alone); ``--certload-isolate`` runs each alone.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_certload.engine import RunResult, Scenario

from .k6 import GROUP

#: xdist_group keeps the shared run's tests on one pytest-xdist worker (--dist loadgroup)
pytestmark = [pytest.mark.api, pytest.mark.certload(group=GROUP), pytest.mark.xdist_group(GROUP)]

#: 50/s for 20 s is 1,000 samples (p(99) needs 100). Long enough that the listing (from
#: 5 s) runs while certificates are being created, as in k6.js; free in wall time, since
#: the connector targets keep the shared run going for 75 s anyway
SMOKE = "20s"


@pytest.mark.certload(
    scenario="issuance_acceptance", smoke_duration=SMOKE, tables=["managed_certificates"]
)
def test_issuance_acceptance(
    certload_run_shared: Callable[..., RunResult], k6_scenarios: dict[str, Scenario]
) -> None:
    certload_run_shared(
        k6_scenarios,
        thresholds={
            "http_req_duration{scenario:issuance_acceptance}": ["p(95)<2000", "p(99)<5000"],
            # this test's share of the run: its own scenario's requests only
            "http_req_failed": ["rate<0.01"],
        },
    )


# certctl counts and pages the table ordered by created_at, which has no index
@pytest.mark.certload(
    scenario="list_certificates", smoke_duration=SMOKE, tables=["managed_certificates"]
)
def test_list_certificates(
    certload_run_shared: Callable[..., RunResult], k6_scenarios: dict[str, Scenario]
) -> None:
    certload_run_shared(
        k6_scenarios,
        thresholds={
            "http_req_duration{scenario:list_certificates}": ["p(95)<800", "p(99)<2000"],
            "http_req_failed": ["rate<0.01"],
        },
    )
