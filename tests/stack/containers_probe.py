"""A pytest plugin for ``test_containers_engine.py`` (loaded there with ``-p``): once the
session's stack is up, it writes what the engine holds of it -- each labelled container's
service, image, state, published ports, volumes and networks, and the labelled networks
-- as JSON to the file named by ``CERTLOAD_TEST_ENGINE_RECORD``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_certload.stack import StackInfo
from pytest_certload.stack.containers import STACK_LABEL


def engine_snapshot(client: Any) -> dict[str, Any]:
    """Every container and network carrying :data:`STACK_LABEL`, as the engine shows them."""
    containers = []
    for container in client.containers.list(all=True, filters={"label": STACK_LABEL}):
        attrs = container.attrs
        containers.append(
            {
                "id": container.id,
                "stack": attrs["Config"]["Labels"][STACK_LABEL],
                "service": attrs["Config"]["Labels"].get("io.pytest-certload.service"),
                "image": attrs["Config"]["Image"],
                "status": attrs["State"]["Status"],
                "pid": attrs["State"]["Pid"],
                "ports": attrs["NetworkSettings"]["Ports"],
                "volumes": [m["Name"] for m in attrs.get("Mounts") or [] if m["Type"] == "volume"],
                "networks": sorted(attrs["NetworkSettings"]["Networks"] or {}),
            }
        )
    networks = [
        {"id": n.id, "name": n.name, "stack": (n.attrs.get("Labels") or {}).get(STACK_LABEL)}
        for n in client.networks.list(filters={"label": STACK_LABEL})
    ]
    return {"containers": containers, "networks": networks}


@pytest.fixture(scope="session", autouse=True)
def record_the_engine(certload_stack: StackInfo) -> None:
    import docker

    client = docker.from_env()
    try:
        snapshot = engine_snapshot(client)
    finally:
        client.close()
    snapshot["certctl_url"] = certload_stack.certctl_url
    snapshot["targets"] = dict(certload_stack.targets)
    Path(os.environ["CERTLOAD_TEST_ENGINE_RECORD"]).write_text(json.dumps(snapshot, indent=2))
