"""Every registered demo is run by at least one integration test, so CI runs every demo.

The demos are what a candidate runs in front of an interviewer; one that breaks silently is a bug.
Each is run by a test next to its neighbours (sharing a state folder, in the order a learner would
run them), not by one giant test; this test reads those test files (parsed, never imported) and
fails when a demo in ``lab/demos/__init__.py`` ``DEMOS`` has no test that runs it. A test "runs"
a demo when it calls the ``run_demo`` fixture (or a helper given it) with the demo module's name,
or imports the demo's module (or its ``run``) to call it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from lab.demos import DEMOS

TESTS = Path(__file__).resolve().parents[3] / "integration"


def _names(call: ast.Call) -> list[str]:
    """String constants among a call's positional arguments."""
    return [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]


def _runs_demo(call: ast.Call) -> bool:
    """The call runs a demo: ``run_demo("x", ...)`` or ``helper(run_demo, "x", ...)``."""
    func = call.func.id if isinstance(call.func, ast.Name) else ""
    return func == "run_demo" or any(isinstance(a, ast.Name) and a.id == "run_demo" for a in call.args)


def _imported_demo(node: ast.ImportFrom) -> list[str]:
    """``from lab.demos.x import run`` or ``from lab.demos import x``: the demo module it brings in."""
    module = node.module or ""
    if module.startswith("lab.demos.") and any(alias.name == "run" for alias in node.names):
        return [module.removeprefix("lab.demos.")]
    if module == "lab.demos":
        return [alias.name for alias in node.names if alias.name not in ("DEMOS", "run_demo")]
    return []


def demos_run_by_tests(folder: Path = TESTS) -> dict[str, list[str]]:
    """Demo module name (``canary``, ``ab_test``) -> the test functions that run it."""
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("test_*.py")):  # the integration tests sit in one folder per package
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")):
            for node in ast.walk(fn):
                modules: list[str] = []
                if isinstance(node, ast.Call) and _runs_demo(node):
                    modules = _names(node)
                elif isinstance(node, ast.ImportFrom):
                    modules = _imported_demo(node)
                for module in modules:
                    found.setdefault(module, []).append(f"{path.relative_to(folder).as_posix()}::{fn.name}")
    return found


def test_every_registered_demo_is_run_by_an_integration_test() -> None:
    runs = demos_run_by_tests()
    missing = [name for name, module in DEMOS.items() if module.removeprefix("lab.demos.") not in runs]
    assert not missing, f"demos no test runs: {missing}; run each from a test in tests/integration/"


def test_the_scan_finds_demos_run_through_a_helper_and_by_import(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(
        "def test_a(run_demo, ctx):\n    run_demo('canary', ctx)\n"
        "def test_b(run_demo, ctx):\n    run_clean(run_demo, 'anomaly', ctx)\n"
        "def test_c(ctx):\n    from lab.demos.data_validation import run\n    run(None, ctx)\n"
        "def test_d(ctx):\n    from lab.demos import rollback as demo\n    demo.run(None, ctx)\n"
        "def helper(run_demo):\n    run_demo('shadow', None)\n"  # not a test: does not count
    )
    runs = demos_run_by_tests(tmp_path)
    assert runs == {
        "canary": ["test_sample.py::test_a"],
        "anomaly": ["test_sample.py::test_b"],
        "data_validation": ["test_sample.py::test_c"],
        "rollback": ["test_sample.py::test_d"],
    }
