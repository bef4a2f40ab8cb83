"""ACME tier: certctl's k6 ``acme_flow`` over the unauthenticated ACME surface.

100 closed-model VUs for 5 minutes; each iteration reads the profile's directory, HEADs
newNonce, probes renewal-info with a certificate id that names nothing (400 or 404 is
the expected answer) and sleeps a second. JWS-signed flows are out of scope, as in k6.

The iteration function is module-level and its input, the :class:`AcmeSurface` (the
directory URL, the headers, the Trend names), is plain data: ``--certload-tx`` workers
import the function and get the surface by value.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from pytest_certload.certctl import AcmeDirectory, AcmeSurface, count_rate_limit
from pytest_certload.engine import VU, ConstantVUs, RunResult, Scenario

pytestmark = pytest.mark.acme

#: ~100 iterations/s, so 5 s would judge p(95) (it needs 20 samples), but 100 VUs open
#: 100 TLS connections in the first second and a run that short judges that warm-up;
#: 10 s keeps it under a tenth of the samples
SMOKE = "10s"


async def acme_flow(surface: AcmeSurface, vu: VU) -> None:
    for response in await surface.walk(vu):
        count_rate_limit(vu, response)
    await vu.sleep(1)


@pytest.mark.certload(smoke_duration=SMOKE, tables=["acme_nonces"])
def test_acme_flow(
    certload_run: Callable[..., RunResult],
    acme_directory: AcmeDirectory,
    certctl_headers: dict[str, str],
) -> None:
    surface = AcmeSurface(acme_directory.url, certctl_headers)
    certload_run(
        Scenario(
            "acme_flow",
            partial(acme_flow, surface),
            # not k6's stampede: 100 VUs opening 100 TLS connections in one millisecond
            # queue their responses behind each other on our one event loop (generator
            # delay p99 66-150 ms, p95 123 ms on the 10 s smoke, so an untrustworthy
            # run); spread over 1 s they measure the server (p95 ~3 ms). A deviation
            # from certctl's k6 script for its first second (docs/writing-scenarios.md)
            ConstantVUs(100, "5m", start_spread="1s"),
            graceful_stop="30s",
            metrics=surface.metrics,
        ),
        thresholds={
            "directory_duration": ["p(95)<500"],
            "new_nonce_duration": ["p(95)<300"],
            "renewal_info_duration": ["p(95)<800"],
            "http_req_failed": ["rate<0.01"],
        },
    )
