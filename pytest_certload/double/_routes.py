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
    add("GET", "/health", _api.health)
    add("GET", "/ready", _api.ready)
    add("GET", "/api/v1/auth/info", _api.auth_info)
    add("GET", "/api/v1/version", _api.version)
    add("GET", "/api/v1/auth/check", _api.auth_check)
    add("POST", "/api/v1/certificates", _api.create_certificate)
    add("GET", "/api/v1/certificates", _api.list_certificates)
    add("POST", "/api/v1/certificates/bulk-renew", _api.bulk_renew)
    add("POST", "/api/v1/certificates/bulk-revoke", _api.bulk_revoke)
    add("GET", "/api/v1/certificates/{id}", _api.get_certificate)
    add("POST", "/api/v1/agents", _api.register_agent)
    add("GET", "/api/v1/agents", _api.list_agents)
    add("GET", "/api/v1/agents/{id}", _api.get_agent)
    add("POST", "/api/v1/agents/{id}/heartbeat", _api.heartbeat)
    add("GET", "/api/v1/jobs", _api.list_jobs)
    add("GET", "/api/v1/jobs/{id}", _api.get_job)
    add("GET", FAULTS_PATH, _api.faults_get)
    add("POST", FAULTS_PATH, _api.faults_set)
    add("DELETE", FAULTS_PATH, _api.faults_clear)
    for method, path, handler in _acme.routes():
        add(method, path, handler)
    return router
