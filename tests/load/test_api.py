"""API tier: certctl's k6 ``issuance_acceptance`` and ``list_certificates``.

50 requests/s each for 5 minutes in the canonical profile. Each test runs one scenario so
its verdict names one scenario; ``list_certificates`` keeps k6's 5 s stagger.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pytest_certload.certctl import (
    CERTIFICATES,
    UniqueNames,
    certificate_payload,
    count_rate_limit,
)
from pytest_certload.engine import VU, ConstantArrivalRate, RunResult, Scenario

pytestmark = pytest.mark.api

#: 50/s for 4 s is 200 samples: p(99) needs at least 100
SMOKE = "4s"


@pytest.mark.certload(smoke_duration=SMOKE)
def test_issuance_acceptance(
    certload_run: Callable[..., RunResult], certctl_url: str, certctl_headers: dict[str, str]
) -> None:
    url = certctl_url + CERTIFICATES
    # certctl's name is globally unique (a duplicate is a 500): never reuse one
    names = UniqueNames("loadtest-issuance")

    async def create_certificate(vu: VU) -> None:
        response = await vu.http.post(
            url,
            json=certificate_payload(names.next()),
            headers=certctl_headers,
            name=CERTIFICATES,
            expected=(201,),
        )
        vu.check("certificate created (201)", response.status_code == 201)
        count_rate_limit(vu, response)

    certload_run(
        Scenario(
            "issuance_acceptance",
            create_certificate,
            ConstantArrivalRate(50, "5m", pre_allocated_vus=50, max_vus=200),
        ),
        thresholds={
            "http_req_duration{scenario:issuance_acceptance}": ["p(95)<2000", "p(99)<5000"],
            "http_req_failed": ["rate<0.01"],
        },
    )


@pytest.mark.certload(smoke_duration=SMOKE)
def test_list_certificates(
    certload_run: Callable[..., RunResult], certctl_url: str, certctl_headers: dict[str, str]
) -> None:
    # page/per_page (certctl's cursor mode is broken; per_page above 500 becomes 50)
    url = certctl_url + CERTIFICATES + "?per_page=50"

    async def list_certificates(vu: VU) -> None:
        response = await vu.http.get(
            url, headers=certctl_headers, name=CERTIFICATES, expected=(200,)
        )
        vu.check("certificates listed (200)", response.status_code == 200)
        count_rate_limit(vu, response)

    certload_run(
        Scenario(
            "list_certificates",
            list_certificates,
            ConstantArrivalRate(50, "5m", pre_allocated_vus=50, max_vus=200),
            start_time="5s",
        ),
        thresholds={
            "http_req_duration{scenario:list_certificates}": ["p(95)<800", "p(99)<2000"],
            "http_req_failed": ["rate<0.01"],
        },
    )
