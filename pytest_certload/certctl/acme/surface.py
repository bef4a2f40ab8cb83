"""One walk over certctl's unauthenticated ACME surface, as its k6 scripts walk it.

No JWS: the directory, ``HEAD newNonce`` and a renewal-info probe, on a VU's recording
client. Imports no pytest.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ...errors import AcmeError
from ..responses import ResponseLike, header
from ..routes import (
    ACME_DIRECTORY,
    ACME_NEW_NONCE,
    ACME_RENEWAL_INFO,
    ARI_PROBE_EXPECTED,
    ARI_PROBE_ID,
)
from .directory import AcmeDirectory

if TYPE_CHECKING:
    from ...engine import VU

__all__ = ["AcmeSurface"]


class AcmeSurface:
    """One pass over the unauthenticated ACME surface, as certctl's k6 scripts walk it.

    :meth:`walk` GETs the directory and reads it (as an ACME client would, every
    time), HEADs ``newNonce`` and GETs ``renewalInfo`` + ``/aaaa.bbbb``, whose 400 or
    404 is the expected answer, not a failed request. Each step's wall time goes into
    a time Trend (``trends``: directory, new-nonce, renewal-info) and each step records
    a check. The walk stops early at a 429 (a client backs off) or at a directory it
    cannot use, and returns the responses it got.
    """

    def __init__(
        self,
        directory_url: str,
        headers: Mapping[str, str],
        *,
        trends: tuple[str, str, str] = (
            "directory_duration",
            "new_nonce_duration",
            "renewal_info_duration",
        ),
    ) -> None:
        self.directory_url = directory_url
        self.headers = dict(headers)
        self.trends = trends

    @property
    def metrics(self) -> dict[str, str]:
        """The custom metrics to declare on the scenario."""
        return dict.fromkeys(self.trends, "time")

    async def walk(self, vu: VU) -> list[ResponseLike]:
        directory_trend, nonce_trend, ari_trend = self.trends
        got: list[ResponseLike] = []
        started = time.perf_counter_ns()
        response = await vu.http.get(self.directory_url, headers=self.headers, name=ACME_DIRECTORY)
        vu.trend(directory_trend, time.perf_counter_ns() - started)
        got.append(response)
        if not vu.check("directory 200", response.status_code == 200):
            return got
        try:
            directory = AcmeDirectory.from_json(self.directory_url, response.content)
            renewal_info = directory.renewal_info_url(ARI_PROBE_ID)
        except AcmeError:
            vu.check("directory lists newNonce and renewalInfo", False)
            return got
        started = time.perf_counter_ns()
        response = await vu.http.head(
            directory.new_nonce, headers=self.headers, name=ACME_NEW_NONCE
        )
        vu.trend(nonce_trend, time.perf_counter_ns() - started)
        got.append(response)
        if response.status_code == 429:
            return got
        vu.check(
            "new-nonce 200 with Replay-Nonce",
            response.status_code == 200 and bool(header(response, "replay-nonce")),
        )
        started = time.perf_counter_ns()
        response = await vu.http.get(
            renewal_info, headers=self.headers, name=ACME_RENEWAL_INFO, expected=ARI_PROBE_EXPECTED
        )
        vu.trend(ari_trend, time.perf_counter_ns() - started)
        got.append(response)
        if response.status_code != 429:
            vu.check("renewal-info 400 or 404", response.status_code in ARI_PROBE_EXPECTED)
        return got
