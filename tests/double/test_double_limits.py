"""Rate limiting (on by default, per client IP, separate public bucket) and readiness."""

from __future__ import annotations

import anyio
from double_support import ADMIN_KEY, Stack


def test_rate_limiter_buckets(stack: Stack) -> None:
    double = stack.start_double(
        {
            "CERTCTL_RATE_LIMIT_ENABLED": "",  # unset means on, like certctl
            "CERTCTL_RATE_LIMIT_RPS": "0.5",
            "CERTCTL_RATE_LIMIT_BURST": "5",
        }
    )
    try:
        with double.client(ADMIN_KEY) as client, double.client("wrong-key") as stranger:
            # wait_ready spent some of the public bucket; the API bucket is untouched
            statuses = [client.get("/api/v1/auth/check").status_code for _ in range(5)]
            assert statuses == [200] * 5
            limited = stranger.get("/api/v1/auth/check")  # limiter runs before auth
            assert limited.status_code == 429
            assert limited.headers["retry-after"] == "1"
            assert limited.headers["content-type"] == "text/plain; charset=utf-8"
            assert limited.text == '{"error":"Rate limit exceeded"}\n'
            public = [client.get("/api/v1/version").status_code for _ in range(6)]
            assert 200 in public
            assert public[-1] == 429
    finally:
        double.stop()


def test_ready_is_503_when_the_database_goes_away(stack: Stack) -> None:
    double = stack.start_double()
    try:
        name = double.dsn.rsplit("/", 1)[1]
        anyio.run(stack.postgres.drop_database, name)
        with double.client(None) as client:
            response = client.get("/ready")
            assert response.status_code == 503
            body = response.json()
            assert body["status"] == "db_unavailable"
            assert body["error"]
            assert client.get("/health").status_code == 200
    finally:
        double.stop()
