"""The curated public API: ``__all__`` is exact and importing it needs no pytest."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import pytest_certload
import pytest_certload.certctl
import pytest_certload.engine
import pytest_certload.http


@pytest.mark.parametrize(
    "module",
    [pytest_certload, pytest_certload.engine, pytest_certload.http, pytest_certload.certctl],
    ids=lambda m: m.__name__,
)
def test_all_is_exact(module: object) -> None:
    exported = set(module.__all__)  # type: ignore[attr-defined]
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"  # from __future__ import annotations
    }
    assert exported == public
    for name in exported:
        assert getattr(module, name) is not None


def test_engine_metrics_thresholds_stack_and_client_import_without_pytest() -> None:
    code = (
        "import sys\n"
        "sys.modules['pytest'] = None\n"  # any import of pytest now fails
        "import pytest_certload, pytest_certload.engine, pytest_certload.metrics,"
        " pytest_certload.thresholds, pytest_certload.http, pytest_certload.stack.local,"
        " pytest_certload.seed, pytest_certload.certctl, pytest_certload.double,"
        " pytest_certload.distributed, pytest_certload.baseline, pytest_certload.report.summary\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr
