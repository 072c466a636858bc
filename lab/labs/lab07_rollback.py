"""Lab 7: release a bad model, then roll it back, and let the audit log tell the story.

Concepts: rollback (C15), governance (C16), hot reload (C28). ``setup`` makes sure a champion exists
and registers a bad release candidate as challenger: the planted model of the traffic demos
(``lab.demos.traffic.plant_bad_challenger``), trained on labels with two classes swapped, so it
looks fine on its own numbers and is wrong in production. The learner promotes it (the bad
release), sees the service answer with it, and rolls back with ``mlops-lab registry rollback``.

The checker reads only the registry: the audit trail (registered-model tags ``audit/<seq>``) must
show a promotion over a champion followed by a rollback to that same earlier champion, the
champion alias must point at it now, and the rolled-back release must carry ``status=rolled_back``
with a reason somebody wrote (not the CLI's default text), because "who undid what, and why" is the
point of governance.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import TYPE_CHECKING

from core.mlflow_config import mlflow_client
from lab.demos.prep import ensure_champion
from lab.demos.traffic import plant_bad_challenger
from lab.labs import Check
from lab.labs.progress import counts
from lab.narrate import Narrator
from pipelines.registry import RegistryError, audit_log, current_aliases, rollback

if TYPE_CHECKING:
    from core.context import LabContext
    from pipelines.audit import AuditEntry

DEFAULT_REASON = "manual rollback (CLI)"  # the default of `mlops-lab registry rollback --reason`
CONDITIONS = (
    "a release was promoted over a champion",
    "a rollback put the earlier champion back",
    "the earlier champion is the champion now",
    "the rolled-back release is marked rolled_back with its reason",
    "the rollback reason says why",
)


def find_release(entries: list[AuditEntry]) -> tuple[AuditEntry | None, AuditEntry | None]:
    """The last promotion that replaced a champion, and the first rollback after it that undid it."""
    promotions = [e for e in entries if e.action == "promote" and e.alias == "champion" and e.from_version]
    if not promotions:
        return None, None
    release = promotions[-1]
    undone = next(
        (
            e
            for e in entries
            if e.seq > release.seq
            and e.action == "rollback"
            and e.alias == "champion"
            and e.from_version == release.to_version
            and e.to_version == release.from_version
        ),
        None,
    )
    return release, undone


def setup(ctx: LabContext) -> list[str]:
    """A champion that is not the bad release, plus a bad release candidate as challenger (reused if waiting)."""
    from rich.console import Console

    s = ctx.settings
    lines = []
    had_champion = "champion" in current_aliases(s)
    champion = ensure_champion(ctx)
    lines.append(f"champion is v{champion}" + ("" if had_champion else " (trained now: the registry had none)"))
    client = mlflow_client(s)
    if client.get_model_version(s.model_name, champion).tags.get("planted") == "true":
        try:  # an earlier attempt promoted it: that promotion does not count now, so start over from before it
            rollback(s, s.actor, "lab 7 setup: starting over; an earlier attempt left the bad release as champion")
        except RegistryError as err:
            lines.append(f"v{champion}, the planted bad release, is champion and cannot be rolled back: {err}")
            return lines
        lines.append(f"rolled back v{champion}, the bad release an earlier attempt left as champion")
    challenger = current_aliases(s).get("challenger")
    tags = client.get_model_version(s.model_name, challenger).tags if challenger else {}
    if challenger and tags.get("planted") == "true" and tags.get("status") == "candidate":
        lines.append(f"the bad release candidate v{challenger} is already waiting as challenger")
        return lines
    quiet = Narrator(Console(file=io.StringIO()))
    version = plant_bad_challenger(ctx, quiet)
    lines.append(f"registered v{version} as challenger: the release candidate you will promote (it is bad)")
    return lines


def check(ctx: LabContext, answer: str | None, since: datetime) -> list[Check]:
    """Promotion, then a rollback to the earlier champion, visible in aliases, tags and the audit log.

    Only audit entries since the lab started count.
    """
    s = ctx.settings
    release, undone = find_release([e for e in audit_log(s) if counts(e.ts, since)])
    if release is None:
        hint = 'run `mlops-lab lab setup 7`, then `mlops-lab registry promote --reason "..."`'
        return [Check(CONDITIONS[0], False, "no promotion over a champion since the start", hint)] + [
            Check(name, False, "nothing released yet", "promote the release candidate first") for name in CONDITIONS[1:]
        ]
    new, old = release.to_version or "", release.from_version
    checks = [Check(CONDITIONS[0], True, f"audit #{release.seq}: champion v{old} → v{new} by {release.actor}")]
    rollback_hint = 'run `mlops-lab registry rollback --reason "<what went wrong>"`'
    if undone is None:
        checks.append(Check(CONDITIONS[1], False, f"no rollback of v{new} after audit #{release.seq}", rollback_hint))
    else:
        checks.append(Check(CONDITIONS[1], True, f"audit #{undone.seq}: champion v{new} → v{old} by {undone.actor}"))

    champion = current_aliases(s).get("champion")
    checks.append(
        Check(
            CONDITIONS[2],
            champion == old,
            f"champion is v{champion}, the earlier one was v{old}",
            rollback_hint if champion == new else "`mlops-lab registry audit` shows what moved the alias since",
        )
    )

    tags = mlflow_client(s).get_model_version(s.model_name, new).tags
    reason = tags.get("rollback_reason", "")
    marked = tags.get("status") == "rolled_back" and bool(reason)
    checks.append(
        Check(
            CONDITIONS[3],
            marked,
            f"v{new}: status {tags.get('status', '-')}, reason {reason or '-'!r}",
            rollback_hint,
        )
    )
    explained = undone is not None and undone.reason.strip() not in ("", DEFAULT_REASON)
    checks.append(
        Check(
            CONDITIONS[4],
            explained,
            f"reason {undone.reason!r}" if undone else "no rollback yet",
            "a rollback is a decision others must understand: roll back with "
            '--reason "<what went wrong>" (promote the release again first if you already rolled it back)',
        )
    )
    return checks
