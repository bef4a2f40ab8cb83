"""The f5 iControl mock (:mod:`pytest_certload.stack.f5mock`) as a Service."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ServiceError
from ..units import NS_PER_S
from .f5mock import MOCK_TOKEN
from .helpers import free_port
from .probes import wait_for_http
from .processes import LocalProcess
from .services import ProcessService

__all__ = ["MOCK_TOKEN", "F5Mock"]


class F5Mock(ProcessService):
    """The f5 mock as a :class:`~pytest_certload.stack.protocols.Service`."""

    name = "f5"

    def __init__(
        self,
        cert: Path,
        key: Path,
        *,
        ca: Path,
        https_port: int | None = None,
        http_port: int | None = None,
        base_dir: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        self.cert, self.key, self.ca = cert, key, ca
        self._https_arg, self._http_arg = https_port, http_port
        self.https_port = https_port or 0
        self.http_port = http_port or 0
        self._base_dir = base_dir
        self._python = python
        super().__init__()

    def url(self) -> str:
        if not self.https_port:
            raise ServiceError("f5.url() needs a started mock; call start() first.")
        return f"https://127.0.0.1:{self.https_port}"

    def http_url(self) -> str:
        if not self.http_port:
            raise ServiceError("f5.http_url() needs a started mock; call start() first.")
        return f"http://127.0.0.1:{self.http_port}"

    async def start(self) -> None:
        if self._proc is not None:
            raise ServiceError("f5.start() was called twice.")
        directory = self._open_workdir("certload-f5-", "f5mock.log", self._base_dir)
        self.https_port = self._https_arg or free_port()
        self.http_port = self._http_arg or free_port()
        argv = [
            self._python,
            "-I",  # isolated: the script needs the standard library only
            str(Path(__file__).with_name("f5mock.py")),
            "--https-port",
            str(self.https_port),
            "--http-port",
            str(self.http_port),
            "--cert",
            str(self.cert),
            "--key",
            str(self.key),
        ]
        await self._spawn(lambda: LocalProcess("f5", argv, log_path=directory / "f5mock.log"))

    async def wait_ready(self, timeout_ns: int) -> None:
        if self._proc is None:
            raise ServiceError("f5.wait_ready() needs start() first.")
        await wait_for_http(
            self.url() + "/healthz", verify=self.ca, timeout_ns=timeout_ns, target=self._proc
        )
        await wait_for_http(self.http_url() + "/healthz", timeout_ns=NS_PER_S, target=self._proc)
