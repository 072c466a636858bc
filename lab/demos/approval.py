"""Demo ``approval`` (C60, C16): production mode puts a person between a challenger and the champion alias.

Trains a champion and a challenger on a fresh state, switches to production mode
(``MLOPS_APPROVAL=required``), then walks every refusal and transition: promotion without approval, a
self-approval, a process as approver, another person's approval that promotes; prints the audit trail
as ``mlops-lab registry audit`` does (80 columns) and the Markdown page attached to the version.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from core.mlflow_config import mlflow_client
from lab.demos.rollback import train_candidate
from pipelines.audit_report import AUDIT_ARTIFACT, compact_lines
from pipelines.registry import (
    RegistryError,
    approve,
    audit_log,
    current_aliases,
    list_versions,
    promote,
    request_approval,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from core.context import LabContext
    from core.settings import Settings
    from lab.narrate import Narrator


def _versions(n: Narrator, settings: Settings, title: str) -> None:
    rows = [
        [v.version, ", ".join(v.aliases) or "-", v.status or "-", v.approval or "-"] for v in list_versions(settings)
    ]
    n.table(title, ["version", "aliases", "status", "approval"], rows)


def _refused(n: Narrator, what: str, attempt: Callable[[], object]) -> None:
    try:
        attempt()
    except RegistryError as err:
        n.ok(f"refused: {what}")
        n.say(f"  {escape(str(err))}")
    else:
        n.bad(f"NOT refused: {what}")


def run(n: Narrator, ctx: LabContext) -> None:
    """Narrate the approval workflow on the demo's own registry."""
    started = time.perf_counter()
    n.title("Model approval workflow and audit trail", "C60")
    settings = ctx.settings.model_copy(update={"approval": "required"})
    n.step("A champion, then a challenger (tiny LogisticRegression pipelines, as in the rollback demo)")
    for c in (0.5, 1.0):
        registered = train_candidate(ctx, c)
        n.say(f"registered v{registered.version} as {registered.alias}")
    challenger = current_aliases(settings).get("challenger")
    if challenger is None:
        raise RuntimeError("no challenger was registered; rerun the demo on a fresh state")
    n.say("the first model became champion at registration (nothing served before); approval gates promotions")
    _versions(n, settings, "registry before")

    n.step("Production mode (MLOPS_APPROVAL=required): nothing promotes without a person's approval")
    _refused(n, "promotion with no approval", lambda: promote(settings, "rollout-controller", "canary passed"))
    request_approval(settings, "alice", "canary passed every step; please review")
    n.ok(f"alice asked for approval of v{challenger}: tag approval=pending, audited")
    _refused(n, "promotion while the request is pending", lambda: promote(settings, "alice", "impatient"))
    _refused(n, "alice approving her own request", lambda: approve(settings, "alice", "looks fine to me"))
    _refused(n, "a process approving", lambda: approve(settings, "rollout-controller", "auto-approve"))
    _versions(n, settings, "registry while it waits (`mlops-lab registry list`)")

    n.step("Another person approves: the approval promotes, in the same audited story")
    change = approve(settings, "bob", "read the canary report and the model card")
    n.ok(f"bob approved: champion v{change.champion_before} → v{change.champion_after}")
    n.say("aliases now: " + ", ".join(f"{a}=v{v}" for a, v in sorted(current_aliases(settings).items())))
    n.why("four eyes: the person who asks is never the one who answers, and the trail names both")

    n.step("The audit trail where people look: `mlops-lab registry audit` (80 columns)")
    lines = compact_lines(audit_log(settings))
    for line in lines:
        n.say(escape(line))
    n.say(f"widest line: {max(len(line) for line in lines)} characters; `registry audit --json` prints the raw entries")

    n.step(f"The Markdown page on the version: {AUDIT_ARTIFACT}")
    client = mlflow_client(settings)
    version = client.get_model_version(settings.model_name, change.champion_after)
    target = settings.state / "demo-approval"
    target.mkdir(parents=True, exist_ok=True)
    page = Path(client.download_artifacts(str(version.run_id), AUDIT_ARTIFACT, str(target))).read_text(encoding="utf-8")
    n.say(f"tag audit_trail = {version.tags.get('audit_trail')}")
    for line in page.splitlines()[:4] + [line for line in page.splitlines() if "| approv" in line]:
        n.say(f"  {escape(line)}")
    n.why("rewritten after every registry operation that names the version, so it is never behind the trail")

    n.step("The same gate in a canary")
    n.say("in production mode the rollout's last passed step asks for approval on behalf of whoever started it")
    n.say("and keeps its traffic share (status awaiting_approval); a breach still aborts it. Answer with")
    n.say("`mlops-lab admin approval approve|reject --reason ...` (POST /v1/admin/approval/...): reject = abort.")
    n.code("pipelines/registry.py", "pipelines/audit_report.py", "serving/rollout_controller.py", "serving/admin.py")
    n.say(f"demo took {time.perf_counter() - started:.1f} s")
