"""The curated public API: ``__all__`` is exact and importing it needs no pytest."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

import pytest_certload
import pytest_certload.baseline
import pytest_certload.certctl
import pytest_certload.cleanup
import pytest_certload.distributed
import pytest_certload.engine
import pytest_certload.errors
import pytest_certload.http
import pytest_certload.record

PUBLIC_MODULES = [
    pytest_certload,
    pytest_certload.engine,
    pytest_certload.http,
    pytest_certload.certctl,
    pytest_certload.errors,
    pytest_certload.record,
    pytest_certload.baseline,
    pytest_certload.distributed,
    pytest_certload.cleanup,
]


def _defined_publicly(module: types.ModuleType) -> set[str]:
    """Public names a package re-exports, or a plain module defines at its top level."""
    if hasattr(module, "__path__"):  # a package: what its __init__ imports
        return {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and not isinstance(value, types.ModuleType)
            and name != "annotations"  # from __future__ import annotations
        }
    tree = ast.parse(Path(str(module.__file__)).read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_is_exact(module: types.ModuleType) -> None:
    exported = set(module.__all__)
    assert exported == _defined_publicly(module)
    for name in exported:
        assert getattr(module, name) is not None


def test_engine_metrics_thresholds_stack_and_client_import_without_pytest() -> None:
    code = (
        "import sys\n"
        "sys.modules['pytest'] = None\n"  # any import of pytest now fails
        "import pytest_certload, pytest_certload.engine, pytest_certload.metrics,"
        " pytest_certload.thresholds, pytest_certload.http, pytest_certload.stack.local,"
        " pytest_certload.stack.session, pytest_certload.seed, pytest_certload.certctl,"
        " pytest_certload.double, pytest_certload.distributed, pytest_certload.baseline,"
        " pytest_certload.record, pytest_certload.settings, pytest_certload.loadtest,"
        " pytest_certload.report.summary, pytest_certload.report.html,"
        " pytest_certload.report.terminal, pytest_certload.report.junit,"
        " pytest_certload.cleanup, pytest_certload.cleanup.cli\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr


def test_the_types_users_annotate_with_are_at_the_top() -> None:
    from pytest_certload.errors import ThresholdBreach, UntrustworthyRun
    from pytest_certload.loadtest import LoadTest
    from pytest_certload.settings import Settings
    from pytest_certload.stack.info import StackInfo

    assert pytest_certload.LoadTest is LoadTest
    assert pytest_certload.Settings is Settings
    assert pytest_certload.StackInfo is StackInfo
    assert pytest_certload.ThresholdBreach is ThresholdBreach
    assert pytest_certload.UntrustworthyRun is UntrustworthyRun
    assert issubclass(ThresholdBreach, AssertionError)


def test_nothing_imports_the_pytest_glue() -> None:
    """plugin.py and fixtures.py are the top of the package: no module imports them."""
    root = Path(pytest_certload.__file__).parent
    glue = {"pytest_certload.plugin", "pytest_certload.fixtures", "pytest_certload.hookspecs"}
    offenders = []
    for path in root.rglob("*.py"):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        if module in glue:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = module.rsplit(".", node.level)[0] if node.level else ""
                target = ".".join(p for p in (base, node.module or "") if p)
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            offenders += [f"{module} imports {n}" for n in names if n in glue]
    assert offenders == []
