"""Which state folder `mlops-lab ui` shows: the one the last run wrote, unless told otherwise.

Every demo runs in a state folder of its own (``<state>/demos/<name>``, see `lab.demos.own_state`), so
after ``make demo`` the learner's own ``<state>/mlflow.db`` may not even exist, and an MLflow UI pointed
at it is empty. The UI therefore follows the MLflow store written last: the learner's own or a demo's,
by the store file's modification time, and says which one it chose, why, and how to pick another
(``--demo NAME`` or ``--own``). A tracking server (``MLOPS_TRACKING_URI``) is always what it shows: it
is shared, so there is nothing to choose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.ui_ports import MLFLOW_UI_PORT

if TYPE_CHECKING:
    from core.settings import Settings

STORE = "mlflow.db"
MLFLOW_PORT = MLFLOW_UI_PORT  # not 5000: macOS gives port 5000 to AirPlay Receiver


class UnknownStateError(ValueError):
    """``--demo NAME`` names a demo that has no state folder yet; the message lists the ones that do."""


@dataclass(frozen=True)
class UiState:
    settings: Settings  # the settings whose stores the UIs should open
    reason: str  # one sentence: which state and why
    demos: list[str]  # demos that have an MLflow store, newest first (the alternatives)


def demo_stores(settings: Settings) -> dict[str, Path]:
    """Demo name -> its MLflow store file, for every demo that has run in this state, newest first."""
    root = settings.state / "demos"
    found = [(p.parent.name, p) for p in root.glob(f"*/{STORE}")] if root.is_dir() else []
    return dict(sorted(found, key=lambda item: item[1].stat().st_mtime, reverse=True))


def choose_state(settings: Settings, demo: str | None = None, own: bool = False) -> UiState:
    """The state whose UIs to open: ``demo``'s, the learner's own (``own``), or the store written last.

    Raises:
        UnknownStateError: ``demo`` has not run in this state (no ``<state>/demos/<demo>/mlflow.db``).
    """
    demos = demo_stores(settings)
    if settings.tracking_uri:
        return UiState(settings, f"the tracking server {settings.tracking_uri} (MLOPS_TRACKING_URI)", list(demos))
    if demo is not None:
        if demo not in demos:
            ran = ", ".join(demos) or "none yet"
            raise UnknownStateError(f"demo {demo!r} has not run here (demos with a store: {ran}); run it first")
        return UiState(_demo_settings(settings, demo), f"demo {demo!r}, as asked (--demo)", list(demos))
    own_store = settings.state / STORE
    if own or not demos:
        why = "as asked (--own)" if own else "no demo has run here"
        return UiState(settings, f"your own state, {why}", list(demos))
    newest, path = next(iter(demos.items()))
    if own_store.is_file() and own_store.stat().st_mtime >= path.stat().st_mtime:
        return UiState(settings, "your own state: its MLflow store was written last", list(demos))
    why = "your own state has no MLflow store yet" if not own_store.is_file() else "its store was written last"
    return UiState(_demo_settings(settings, newest), f"demo {newest!r}: {why}", list(demos))


def _demo_settings(settings: Settings, demo: str) -> Settings:
    return settings.model_copy(update={"state_dir": settings.state / "demos" / demo})
