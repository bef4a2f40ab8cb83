"""The route table: certctl's paths mapped to the double's handlers, and which of them
are on certctl's no-auth chain."""

from __future__ import annotations

from . import _acme, _api
from ._http import Router

__all__ = ["FAULTS_PATH", "PUBLIC_PATHS", "build_router"]

#: Routes on certctl's no-auth chain (with their own rate-limit bucket).
PUBLIC_PATHS = frozenset({"/health", "/ready", "/api/v1/auth/info", "/api/v1/version"})
#: The double's own control endpoint: admin only, never rate limited, faulted or audited.
FAULTS_PATH = "/api/v1/_double/faults"


def build_router() -> Router:
    router = Router()
    add = router.add
    # HEAD on a GET route reaches the handler in Go's mux; most of certctl's handlers
    # accept GET only and refuse it with 405 (auth/info and auth/check do not check).
    text_405, json_405 = _api.head_refused_text, _api.head_refused_json
    add("GET", "/health", _api.health, head=text_405)
    add("GET", "/ready", _api.ready, head=text_405)
    add("GET", "/api/v1/auth/info", _api.auth_info)
    add("GET", "/api/v1/version", _api.version, head=text_405)
    add("GET", "/api/v1/auth/check", _api.auth_check)
    add("POST", "/api/v1/certificates", _api.create_certificate)
    add("GET", "/api/v1/certificates", _api.list_certificates, head=json_405)
    add("POST", "/api/v1/certificates/bulk-renew", _api.bulk_renew)
    add("POST", "/api/v1/certificates/bulk-revoke", _api.bulk_revoke)
    add("GET", "/api/v1/certificates/{id}", _api.get_certificate, head=json_405)
    add("POST", "/api/v1/agents", _api.register_agent)
    add("GET", "/api/v1/agents", _api.list_agents, head=json_405)
    add("GET", "/api/v1/agents/{id}", _api.get_agent, head=json_405)
    add("POST", "/api/v1/agents/{id}/heartbeat", _api.heartbeat)
    add("GET", "/api/v1/jobs", _api.list_jobs, head=json_405)
    add("GET", "/api/v1/jobs/{id}", _api.get_job, head=json_405)
    add("GET", "/api/v1/metrics/prometheus", _api.prometheus_metrics, head=json_405)
    add("GET", FAULTS_PATH, _api.faults_get)
    add("POST", FAULTS_PATH, _api.faults_set)
    add("DELETE", FAULTS_PATH, _api.faults_clear)
    for method, path, handler in _acme.routes():
        add(method, path, handler)
    return router
