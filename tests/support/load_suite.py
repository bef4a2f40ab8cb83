"""The shipped load suite (``tests/load``) run by pytester against an embedded stack.

:func:`local_stack` boots PostgreSQL and the certctl reference double (``certctl_env``
as given) for a test module; :class:`LoadSuite` copies ``tests/load`` and
``fixtures/sql`` into a pytester directory and runs pytest there in a subprocess against
that stack as an external one (token and DSN through the environment, as the docs
recommend); :class:`Faults` puts the double's fault rules in force. Imports pytest only
for its types.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from anyio.from_thread import start_blocking_portal

from pytest_certload.stack import StackInfo
from pytest_certload.stack.local import LocalStack

if TYPE_CHECKING:
    import pytest

__all__ = ["FAULTS", "Faults", "LoadSuite", "local_stack", "properties"]

ROOT = Path(__file__).resolve().parents[2]
FAULTS = "/api/v1/_double/faults"
#: the runs measure outcomes, not the generator: tolerate a busy shared machine
HEALTH = "lag_p99=400ms,delay_p99=400ms"


@contextmanager
def local_stack(work: Path, **certctl_env: str) -> Iterator[StackInfo]:
    """PostgreSQL and the reference double, torn down on exit."""
    with start_blocking_portal(backend="asyncio") as portal:
        local = LocalStack(targets=(), base_dir=work, certctl_env=certctl_env)
        try:
            yield portal.call(local.start)
        finally:
            portal.call(local.stop)


class Faults:
    """The double's fault rules (``/api/v1/_double/faults``), cleared by :meth:`close`."""

    def __init__(self, info: StackInfo) -> None:
        self.client = httpx.Client(
            base_url=info.certctl_url,
            verify=info.verify(),
            headers={"Authorization": f"Bearer {info.admin_token}"},
            timeout=10,
        )

    def apply(self, *rules: dict[str, Any]) -> None:
        response = self.client.post(FAULTS, json={"rules": list(rules)})
        assert response.status_code == 200, response.text

    def close(self) -> None:
        self.client.delete(FAULTS)
        self.client.close()


@dataclass
class LoadSuite:
    """``tests/load`` in a pytester directory, run against ``info``."""

    pytester: pytest.Pytester
    monkeypatch: pytest.MonkeyPatch
    info: StackInfo

    def __post_init__(self) -> None:
        tests = self.pytester.path / "tests"
        tests.mkdir(exist_ok=True)
        (tests / "__init__.py").write_text("")
        shutil.copytree(ROOT / "tests" / "load", tests / "load", dirs_exist_ok=True)
        shutil.copytree(
            ROOT / "fixtures" / "sql", self.pytester.path / "fixtures" / "sql", dirs_exist_ok=True
        )

    def run(self, *args: str, out: str, timeout: float = 180) -> pytest.RunResult:
        """pytest ``tests/load`` with ``args``, results in ``out`` (and ``out``.xml)."""
        self.monkeypatch.setenv("CERTLOAD_CERTCTL_TOKEN", self.info.token)
        self.monkeypatch.setenv("CERTLOAD_CERTCTL_DSN", self.info.dsn or "")
        assert self.info.ca is not None
        return self.pytester.runpytest_subprocess(
            "tests/load",
            *args,
            f"--certload-health={HEALTH}",
            f"--certctl-url={self.info.certctl_url}",
            f"--certload-ca={self.info.ca}",
            "--certload-progress=off",
            f"--certload-output-dir={out}",
            f"--junitxml={out}.xml",
            "-p",
            "no:cacheprovider",
            "-rxX",
            timeout=timeout,
        )

    def summary(self, out: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.pytester.path / out / "summary.json").read_text())
        return data

    def html(self, out: str) -> str:
        return (self.pytester.path / out / "report.html").read_text()

    def junit(self, out: str) -> dict[str, ET.Element]:
        """Each testcase of ``out``.xml by its name."""
        root = ET.parse(self.pytester.path / f"{out}.xml").getroot()
        return {str(case.get("name")): case for case in root.iter("testcase")}


def properties(case: ET.Element) -> dict[str, str]:
    """A junit testcase's properties (name -> value)."""
    return {str(p.get("name")): str(p.get("value")) for p in case.iter("property")}
