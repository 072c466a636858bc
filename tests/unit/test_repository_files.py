"""The repository's own files agree with each other: licence, pre-commit hooks, contributor guide."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _lint_recipe() -> list[str]:
    """The commands of the Makefile's `lint` target, without `$(RUN)` and trailing comments."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = lines.index("lint: setup") + 1
    commands = []
    for line in lines[start:]:
        if not line.startswith("\t"):
            break
        command = line.strip().split("#", 1)[0].strip()
        commands.append(command.removeprefix("$(RUN) "))
    return commands


def test_the_licence_file_is_the_licence_pyproject_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert licence.startswith("MIT License\n")
    assert "WITHOUT WARRANTY OF ANY KIND" in licence


def test_pre_commit_runs_exactly_the_make_lint_checks_with_the_locked_tools() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert all(repo["repo"] == "local" for repo in config["repos"]), "hooks must use the locked .venv tools"
    entries = [hook["entry"].removeprefix("uv run --frozen ") for hook in hooks]
    assert entries == _lint_recipe()
    assert all(hook["entry"].startswith("uv run --frozen ") for hook in hooks)


def test_contributing_names_only_make_targets_that_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z-]+):", makefile, flags=re.MULTILINE))
    named = set(re.findall(r"\bmake ([a-z-]+)", (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")))
    assert named, "CONTRIBUTING.md should say which make targets to run"
    assert named <= targets, f"CONTRIBUTING.md names missing make targets: {sorted(named - targets)}"
