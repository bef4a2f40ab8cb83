"""certctl's ``deploy/test/loadtest/k6.js``: the six scenarios it runs in one k6 run.

``issuance_acceptance`` starts at once, ``list_certificates`` 5 s later ("so the DB sees a
balanced mix"), and the four ``<target>_handshake`` scenarios 10 s in; all are
constant-arrival-rate. :func:`k6_scenarios` builds them with k6's rates, durations,
staggers and tags; the tests of ``test_api.py`` and ``test_connector.py`` run them as one
shared run (group :data:`GROUP`) and each judges its own scenario's thresholds.

Every iteration function is a module-level function and its inputs are plain frozen
data (:func:`functools.partial` of the two), so ``--certload-tx`` workers import the
function by name and get the inputs by value. Certificate names come from
:meth:`UniqueNames.for_process`: each process that sends load has its own run id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

from pytest_certload.certctl import (
    CERTIFICATES,
    UniqueNames,
    certificate_payload,
    count_rate_limit,
)
from pytest_certload.engine import VU, ConstantArrivalRate, HTTPOptions, Scenario

__all__ = [
    "GROUP",
    "TARGETS",
    "Handshake",
    "Issuance",
    "Listing",
    "create_certificate",
    "handshake",
    "k6_scenarios",
    "list_certificates",
]

#: the shared run of the six scenarios (``@pytest.mark.certload(group=GROUP)``)
GROUP = "k6"
#: connector target type -> (path, p95 ms, p99 ms); the f5 mock's limits are k6's looser ones
TARGETS = {
    "nginx": ("/", 1000, 3000),
    "apache": ("/", 1000, 3000),
    "haproxy": ("/", 1000, 3000),
    "f5": ("/healthz", 1500, 5000),
}


@dataclass(frozen=True)
class Issuance:
    """What ``createCertificate`` needs: the URL, the Bearer header, the name prefix."""

    url: str
    headers: Mapping[str, str] = field(repr=False)
    #: certctl's name is globally unique (a duplicate is a 500): never reuse one
    prefix: str = "loadtest-issuance"


@dataclass(frozen=True)
class Listing:
    """What ``listCertificates`` needs: the page URL and the Bearer header."""

    url: str
    headers: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class Handshake:
    """One connector target: its URL and the path k6 requests (its name tag)."""

    url: str
    path: str


async def create_certificate(inputs: Issuance, vu: VU) -> None:
    names = UniqueNames.for_process(inputs.prefix)
    response = await vu.http.post(
        inputs.url,
        json=certificate_payload(names.next()),
        headers=inputs.headers,
        name=CERTIFICATES,
        expected=(201,),
    )
    vu.check("certificate created (201)", response.status_code == 201)
    count_rate_limit(vu, response)


async def list_certificates(inputs: Listing, vu: VU) -> None:
    response = await vu.http.get(
        inputs.url, headers=inputs.headers, name=CERTIFICATES, expected=(200,)
    )
    vu.check("certificates listed (200)", response.status_code == 200)
    count_rate_limit(vu, response)


async def handshake(inputs: Handshake, vu: VU) -> None:
    response = await vu.http.get(inputs.url, name=inputs.path, expected=(200,))
    vu.check("target answered 200", response.status_code == 200)


def k6_scenarios(
    certctl_url: str,
    headers: Mapping[str, str],
    targets: Mapping[str, str],
    handshake_http: HTTPOptions,
) -> dict[str, Scenario]:
    """The k6 run's scenarios by name; a handshake for each target type in ``targets``
    (base URLs). ``handshake_http`` should open a new HTTP/1.1 connection per request
    (``certload.http_options(fresh_connection=True, http_version="1.1")``): the handshake
    is the load."""
    scenarios = {
        "issuance_acceptance": Scenario(
            "issuance_acceptance",
            partial(create_certificate, Issuance(certctl_url + CERTIFICATES, headers)),
            ConstantArrivalRate(50, "5m", pre_allocated_vus=50, max_vus=200),
        ),
        "list_certificates": Scenario(
            "list_certificates",
            # page/per_page (certctl's cursor mode is broken; per_page above 500 becomes 50)
            partial(
                list_certificates, Listing(f"{certctl_url}{CERTIFICATES}?per_page=50", headers)
            ),
            ConstantArrivalRate(50, "5m", pre_allocated_vus=50, max_vus=200),
            start_time="5s",
        ),
    }
    for target_type, (path, _, _) in TARGETS.items():
        if target_type not in targets:
            continue
        name = f"{target_type}_handshake"
        scenarios[name] = Scenario(
            name,
            partial(handshake, Handshake(targets[target_type] + path, path)),
            ConstantArrivalRate(100, "5m", time_unit="1m", pre_allocated_vus=10, max_vus=50),
            start_time="10s",
            tags={"target_type": target_type},
            http=handshake_http,
        )
    return scenarios
