"""Lineage facts stamped on every run: which code, which data, which knobs, which libraries.

Concept: lineage (C13) and reproducibility (C04). With these tags any registered version answers
"where did you come from?": git sha (code), the DVC md5 of the training file (data), a hash of
the shaping params, and the versions of the libraries that produced it.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

TRACKED_LIBRARIES = ("scikit-learn", "numpy", "pandas", "mlflow", "skops")


def git_revision(repo: Path) -> tuple[str, bool]:
    """(commit sha, dirty?) of the repository, or ("unknown", False) outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return sha, bool(status)


def library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str]:
    """Python and the installed versions of `names` (read from package metadata, nothing imported)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def lineage_tags(repo: Path, data_path: Path, data_md5: str, params_hash: str) -> dict[str, str]:
    """The tags every training run carries (keys are stable: reproduce and the model card read them)."""
    sha, dirty = git_revision(repo)
    try:
        shown_path = str(data_path.resolve().relative_to(repo.resolve()))
    except ValueError:
        shown_path = str(data_path)
    tags = {
        "git_sha": sha,
        "git_dirty": str(dirty).lower(),
        "data_path": shown_path,
        "data_md5": data_md5,
        "params_hash": params_hash,
    }
    tags.update({f"lib.{name}": version for name, version in library_versions().items()})
    return tags
