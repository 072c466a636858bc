"""Shared fixtures of the CLI tests: a throwaway project folder the commands run in."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from rich.console import Console

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def cli_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """``cli_project(*modules)``: a project folder (params.yaml copy) with its own state; the named command
    modules print on a wide console so table cells stay unwrapped. The environment is restored afterwards."""
    saved = dict(os.environ)

    def make(*modules: ModuleType) -> Path:
        root = tmp_path / "project"
        root.mkdir()
        shutil.copy(REPO / "params.yaml", root / "params.yaml")
        monkeypatch.setenv("MLOPS_PROJECT_DIR", str(root))
        monkeypatch.setenv("MLOPS_STATE_DIR", str(root / ".state"))
        for module in modules:
            monkeypatch.setattr(module, "console", Console(width=200))
        return root

    yield make
    os.environ.clear()
    os.environ.update(saved)
