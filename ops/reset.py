"""Reset: remove the local state folder, so the next command starts from nothing.

Concept: repeatable workshops. Between groups an instructor needs every laptop back to a clean
start (no registry, no prediction log, no reports) without remembering which folders the tools
wrote. The state folder holds all of it, so a reset removes that one folder. Because
``MLOPS_STATE_DIR`` can point anywhere, the reset only removes a folder that proves it is ours:
``configure_runtime`` drops a marker file in every state folder it creates or finds empty (never in
one that already held other files), and a folder without it (or one that holds the project or the
home folder) is refused; the default ``<project>/.state`` is always
ours. Stores outside the folder (an MLflow server, a PostgreSQL prediction log) are named and left
alone: they belong to whoever runs them.
A running service holds the folder's lease (`core.state_lease`): the reset is refused until it stops.
Pure planning, one small removal at the edge; stdlib only.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.state_lease import LEASE_FILE, StateInUseError, exclusive_lease

if TYPE_CHECKING:
    from core.settings import Settings

MARKER = ".mlops-lab-state"


class ResetRefusedError(RuntimeError):
    """The folder is not one this project created; the message says why and what to do."""


@dataclass(frozen=True)
class Entry:
    """One top-level item of the state folder and its size on disk."""

    name: str
    bytes: int


@dataclass(frozen=True)
class ResetPlan:
    """What a reset removes and which configured stores it does not touch."""

    state: Path
    entries: tuple[Entry, ...]
    kept: tuple[str, ...]

    @property
    def total_bytes(self) -> int:
        return sum(e.bytes for e in self.entries)


def _size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def external_stores(settings: Settings) -> tuple[str, ...]:
    """Configured stores that live outside the state folder (not removed by a reset)."""
    kept = []
    state_uri = settings.state.as_posix()
    for label, uri in (
        ("MLflow tracking", settings.mlflow_tracking_uri),
        ("MLflow registry", settings.registry_uri or settings.mlflow_tracking_uri),
        ("prediction log", settings.prediction_log_uri),
    ):
        if state_uri not in uri:
            kept.append(f"{label}: {uri.split('@')[-1]}")  # never print a password from a URL
    return tuple(dict.fromkeys(kept))


def plan_reset(settings: Settings) -> ResetPlan:
    """The reset of ``settings.state``, after checking the folder is a state folder of this project.

    Raises:
        ResetRefusedError: the folder holds the project or the home folder, or has files but no marker.
    """
    state = settings.state
    project = settings.project_dir.resolve()
    if state == project or state in project.parents:
        raise ResetRefusedError(f"{state} holds the project itself; point MLOPS_STATE_DIR at a folder of its own")
    home = Path.home().resolve()
    if state == home or state in home.parents:
        raise ResetRefusedError(f"{state} is your home folder or holds it; nothing was removed")
    entries: tuple[Entry, ...] = ()
    if state.is_dir():
        items = sorted(p for p in state.iterdir() if p.name not in (MARKER, LEASE_FILE))
        default = state == project / ".state"  # the default folder is ours even if made before the marker
        if items and not default and not (state / MARKER).exists():
            raise ResetRefusedError(
                f"{state} has no {MARKER} marker, so it was not created by mlops-lab; "
                "nothing was removed (delete it by hand if it is really a state folder)"
            )
        entries = tuple(Entry(p.name, _size(p)) for p in items)
    return ResetPlan(state=state, entries=entries, kept=external_stores(settings))


def apply_reset(plan: ResetPlan) -> None:
    """Remove the planned state folder (all of it, marker included), unless a service is using it.

    Raises:
        ResetRefusedError: a running service holds the state's lease (`core.state_lease`).
    """
    if plan.state.is_dir():
        try:
            with exclusive_lease(plan.state, "reset"):
                shutil.rmtree(plan.state)
        except StateInUseError as err:
            raise ResetRefusedError(str(err)) from err
