"""SUT lifecycle: providers, services, readiness probes, processes, TLS material.

Providers hand scenarios a :class:`StackInfo` whichever way the stack was obtained:

* :class:`LocalStack` -- postgres, certctl (double or binary), nginx, apache, haproxy
  and the f5 mock as child processes (no Docker);
* :class:`ContainerStack` -- the same in containers through testcontainers (optional);
* :class:`ExternalStack` -- a stack somebody else runs.

The modules, each doing one job: ``info`` (StackInfo, TARGET_TYPES), ``protocols``
(Service, Readiness, StackProvider), ``probes`` (readiness waits), ``preflight`` (is the
stack usable before any load: /ready, one authenticated call, TLS and scheme),
``processes`` (child processes, the cleanup registry, temp dirs, kept logs), ``services``
(ProcessService), ``helpers`` (ports, log tails, paths, child environments), ``tls``
(the stack's TLS files), one module per
service (``postgres``, ``certctl``, ``sidecars``, ``f5`` and the standalone ``f5mock``
script), one per provider (``local``, ``containers``, ``external``), ``images`` (the
containers provider's images by role) and ``session`` (the stack of a whole test session).

Names are imported on first use, so importing this package is cheap (the pre-flight
check's entry point is ``pytest_certload.stack.preflight.preflight``: the module has the
function's name). Nothing here imports pytest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .certctl import CertctlServer
    from .containers import ContainerSpec, ContainerStack, container_specs
    from .external import ExternalStack
    from .f5 import F5Mock
    from .helpers import free_port
    from .info import TARGET_TYPES, StackInfo
    from .local import LocalStack
    from .postgres import LocalPostgres
    from .preflight import PreflightProblem, check_stack
    from .probes import wait_for_http, wait_for_port, wait_for_tls
    from .processes import LocalProcess
    from .protocols import Readiness, Service, StackProvider
    from .sidecars import ApacheSidecar, HAProxySidecar, NginxSidecar
    from .tls import TLSMaterial, make_tls_material

_WHERE = {
    "LocalProcess": "processes",
    "Readiness": "protocols",
    "Service": "protocols",
    "StackProvider": "protocols",
    "free_port": "helpers",
    "wait_for_http": "probes",
    "wait_for_port": "probes",
    "wait_for_tls": "probes",
    "PreflightProblem": "preflight",
    "check_stack": "preflight",
    "CertctlServer": "certctl",
    "ContainerSpec": "containers",
    "ContainerStack": "containers",
    "container_specs": "containers",
    "TARGET_TYPES": "info",
    "ExternalStack": "external",
    "StackInfo": "info",
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
    "PreflightProblem",
    "Readiness",
    "Service",
    "StackInfo",
    "StackProvider",
    "TLSMaterial",
    "check_stack",
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
