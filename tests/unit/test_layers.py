"""The packages import in one direction and hold no import circles (docs/architecture.md, "Layers").

import-linter checks the contracts in pyproject.toml ([tool.importlinter]): the layers
cli > lab > bench > ops > flows > monitoring > serving > pipelines > core, where a module may import
only from layers below its own (function-local and TYPE_CHECKING imports included), and no circle
between the modules of any package. The repository keeps both; a copy of it with one import planted
against the direction, and one with a circle, breaks them and the report names the offending import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
PACKAGES: list[str] = CONFIG["root_packages"]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "lint-imports"
    if not exe.exists():
        pytest.fail("lint-imports is missing: it ships in the dev group (import-linter); run `uv sync --frozen`")
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy's packages, not the installed ones
    return subprocess.run([str(exe)], cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)


def copy_of_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root)
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_the_layers_are_the_packages_and_every_package_is_in_them() -> None:
    layers = next(c for c in CONFIG["contracts"] if c["type"] == "layers")["layers"]
    assert sorted(layers) == sorted(PACKAGES)
    on_disk = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "docs", "data"}
    assert on_disk == set(PACKAGES), "a new package must take its place in the layers"


def test_the_repository_keeps_every_import_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_import_against_the_direction_breaks_the_layers(tmp_path: Path) -> None:
    root = copy_of_repo(tmp_path)
    with (root / "core" / "paths.py").open("a") as f:  # a bottom-layer module reaching for the CLI, inside a function
        f.write("\n\ndef planted() -> None:\n    from cli.app import app  # noqa: F401\n")
    result = lint_imports(root)
    assert result.returncode != 0
    assert "core is not allowed to import cli" in result.stdout
    assert "core.paths -> cli.app" in result.stdout


def test_an_import_circle_inside_a_package_is_refused(tmp_path: Path) -> None:
    root = copy_of_repo(tmp_path)
    with (root / "serving" / "contract.py").open("a") as f:  # contract <- headers already; now both ways
        f.write("\n\ndef planted() -> None:\n    from serving.headers import NAMES  # noqa: F401\n")
    result = lint_imports(root)
    assert result.returncode != 0
    assert "No cycles are allowed in serving" in result.stdout
