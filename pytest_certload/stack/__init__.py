"""SUT lifecycle: the Service protocol, local processes, TLS material, providers.

Providers hand scenarios a :class:`StackInfo` whichever way the stack was obtained:

* :class:`LocalStack` -- postgres, certctl (double or binary), nginx, apache, haproxy
  and the f5 mock as child processes (no Docker);
* :class:`ContainerStack` -- the same in containers through testcontainers (optional);
* :class:`ExternalStack` -- a stack somebody else runs.

Names are imported on first use, so ``python -m pytest_certload.stack.f5mock`` (standard
library only) does not pull in the rest. Nothing here imports pytest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import (
        LocalProcess,
        Readiness,
        Service,
        free_port,
        wait_for_http,
        wait_for_port,
        wait_for_tls,
    )
    from .certctl import CertctlServer
    from .containers import ContainerSpec, ContainerStack, container_specs
    from .external import TARGET_TYPES, ExternalStack, StackInfo, StackProvider
    from .f5 import F5Mock
    from .local import LocalStack
    from .postgres import LocalPostgres
    from .sidecars import ApacheSidecar, HAProxySidecar, NginxSidecar
    from .tls import TLSMaterial, make_tls_material

_WHERE = {
    "LocalProcess": "base",
    "Readiness": "base",
    "Service": "base",
    "free_port": "base",
    "wait_for_http": "base",
    "wait_for_port": "base",
    "wait_for_tls": "base",
    "CertctlServer": "certctl",
    "ContainerSpec": "containers",
    "ContainerStack": "containers",
    "container_specs": "containers",
    "TARGET_TYPES": "external",
    "ExternalStack": "external",
    "StackInfo": "external",
    "StackProvider": "external",
    "F5Mock": "f5",
    "LocalStack": "local",
    "LocalPostgres": "postgres",
    "ApacheSidecar": "sidecars",
    "HAProxySidecar": "sidecars",
    "NginxSidecar": "sidecars",
    "TLSMaterial": "tls",
    "make_tls_material": "tls",
}

__all__ = [
    "TARGET_TYPES",
    "ApacheSidecar",
    "CertctlServer",
    "ContainerSpec",
    "ContainerStack",
    "ExternalStack",
    "F5Mock",
    "HAProxySidecar",
    "LocalPostgres",
    "LocalProcess",
    "LocalStack",
    "NginxSidecar",
    "Readiness",
    "Service",
    "StackInfo",
    "StackProvider",
    "TLSMaterial",
    "container_specs",
    "free_port",
    "make_tls_material",
    "wait_for_http",
    "wait_for_port",
    "wait_for_tls",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
