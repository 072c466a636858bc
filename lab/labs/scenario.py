"""What the lab setups share: narration as plain lines, registry lookups, a free router.

The setups of labs 3 to 6 prepare scenarios through the demos' own helpers (which narrate), so
`LineNarrator` turns that narration into the lines ``mlops-lab lab setup`` prints. A new scenario
needs the router free, so `abort_stale_rollout` ends a rollout a previous lab left running, and
the checkers of labs comparing two models count only traffic served after the newer one was
registered (`registered_at`).
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from core.mlflow_config import mlflow_client
from lab.narrate import Narrator
from pipelines.registry import RegistryError
from serving.rollout import ACTIVE
from serving.rollout_controller import operate
from serving.state_store import StateStore

if TYPE_CHECKING:
    from core.context import LabContext


class LineNarrator(Narrator):
    """A narrator that collects what a demo helper says as plain lines (for ``lab setup`` output)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def say(self, text: str) -> None:
        self.lines.append(text)

    def ok(self, text: str) -> None:
        self.lines.append(text)

    def bad(self, text: str) -> None:
        self.lines.append(text)

    def why(self, text: str) -> None:
        """Explanations stay in the lab page; setup output lists what was done."""


def version_tags(ctx: LabContext, version: str) -> dict[str, str]:
    """The registry tags of one version; empty when the registry or the version does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(mlflow_client(ctx.settings).get_model_version(ctx.settings.model_name, version).tags)
    except (MlflowException, RegistryError):
        return {}


def registered_at(ctx: LabContext, version: str) -> datetime | None:
    """When a version was registered (UTC); None when the registry or the version does not exist.

    Labs that compare two models count only the traffic served after the newer one was registered.
    """
    from mlflow.exceptions import MlflowException

    try:
        created = mlflow_client(ctx.settings).get_model_version(ctx.settings.model_name, version).creation_timestamp
    except (MlflowException, RegistryError):
        return None
    return datetime.fromtimestamp(created / 1000, UTC)


def abort_stale_rollout(ctx: LabContext, n: LineNarrator, why: str) -> None:
    """Abort a rollout still running or paused (a new scenario needs the router free), saying so."""
    store = StateStore(ctx.settings.prediction_log_uri, ctx.params.routing)
    try:
        stale = store.rollout()
        if stale.status not in ACTIVE:
            return
        with suppress(RegistryError):  # its challenger alias is already gone: nothing left to reject
            operate(ctx.settings, store, "abort", ctx.settings.actor, why)
        n.lines.append(f"aborted the rollout of v{stale.challenger_version} that was still {stale.status} ({why})")
    finally:
        store.close()
