"""An interrupted run (SIGTERM, Ctrl-C) leaves no process and no directory behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO, pid_alive

# Boots a real nginx sidecar (own process group, worker processes) and a temp dir, prints
# what it made, then blocks until a signal arrives. Its log is kept in sys.argv[1].
SCRIPT = """
import json, sys, anyio
from pathlib import Path
from pytest_certload.stack.sidecars import NginxSidecar
from pytest_certload.stack.tls import make_tls_material
from pytest_certload.stack.processes import make_temp_dir

async def main():
    work = make_temp_dir("certload-interrupt-")
    tls = make_tls_material(work / "tls", server_names={"nginx": []})
    nginx = NginxSidecar(*tls.server_pair("nginx"), ca=tls.ca_cert, base_dir=work)
    nginx.keep_log(Path(sys.argv[1]))
    await nginx.start()
    await nginx.wait_ready(20_000_000_000)
    print(json.dumps({"pid": nginx.pid, "dirs": [str(work), str(nginx.directory)]}), flush=True)
    await anyio.sleep(60)

anyio.run(main)
"""


def _children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry))
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_cleans_up_children_and_directories(signum: int, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    logs = tmp_path / "logs"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(logs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read().decode() if proc.stderr else ""
        made = json.loads(line)
        nginx = made["pid"]
        workers = _children_of(nginx)
        assert pid_alive(nginx)
        assert workers
        proc.send_signal(signum)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    time.sleep(0.1)
    assert not pid_alive(nginx)
    assert not [w for w in workers if pid_alive(w)]
    for directory in made["dirs"]:
        assert not Path(directory).exists(), directory
    # the service's log was copied out before its directory went
    assert (logs / "nginx.log").is_file()
    if signum == signal.SIGTERM:
        assert proc.returncode == -signal.SIGTERM  # still reports death by SIGTERM
