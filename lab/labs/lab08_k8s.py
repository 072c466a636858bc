"""Lab 8 checker: render the Kubernetes overlays yourself and read what prod would really run.

Concepts: Kubernetes and scaling (C47), infrastructure as code (C48), cost and capacity (C51). A
cluster never sees the files under ``k8s/``: it sees what ``kubectl kustomize k8s/overlays/<env>``
renders from them. The learner saves both renders into the lab folder of the state
(``<state>/labs/prod.yaml`` and ``dev.yaml``), reads them, and answers with the range the prod
autoscaler may scale the API between (``MIN-MAX``).

The checker renders the overlays again (``ops.k8s_objects.render``) and compares objects, not
bytes, so a saved file counts only while it is what the repository renders *now*; it runs the same
policy checks and schema validation as the test suite (``ops.k8s_checks``) on the saved prod file;
and it reads the answer's expected value from the freshly rendered HorizontalPodAutoscaler.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.labs import Check
from lab.labs.progress import counts
from ops.k8s_checks import run_checks, validate_schemas
from ops.k8s_objects import KubectlMissingError, RenderError, kind_name, render

if TYPE_CHECKING:
    from core.context import LabContext
    from core.settings import Settings
    from ops.k8s_objects import K8sObject

OVERLAYS = ("prod", "dev")
CONDITIONS = (
    "kubectl can render the overlays",
    "prod.yaml is the current prod render",
    "dev.yaml is the current dev render",
    "the saved prod render passes the policy checks and schemas",
    "your answer is the prod API autoscaler's range",
)


def saved_path(settings: Settings, overlay: str) -> Path:
    """Where the lab asks the learner to save an overlay's render."""
    return settings.state / "labs" / f"{overlay}.yaml"


def render_command(settings: Settings, overlay: str) -> str:
    """The exact command that saves an overlay's render where the checker looks."""
    return f"kubectl kustomize k8s/overlays/{overlay} > {saved_path(settings, overlay)}"


def load_saved(path: Path) -> list[K8sObject]:
    """The objects in a saved render (empty documents skipped)."""
    import yaml

    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def first_difference(saved: list[K8sObject], fresh: list[K8sObject]) -> str | None:
    """None when both renders hold the same objects; else the first object that differs, named."""
    by_name = {kind_name(o): o for o in saved}
    for obj in fresh:
        name = kind_name(obj)
        if name not in by_name:
            return f"{name} is missing from your file"
        if by_name.pop(name) != obj:
            return f"{name} differs"
    return f"{next(iter(by_name))} is not in the current render" if by_name else None


def autoscaler_range(objects: list[K8sObject]) -> tuple[int, int] | None:
    """(minReplicas, maxReplicas) of the HPA that scales the API, or None when there is none."""
    for obj in objects:
        spec: dict[str, Any] = obj.get("spec", {})
        if obj.get("kind") == "HorizontalPodAutoscaler" and "api" in spec["scaleTargetRef"]["name"]:
            return int(spec.get("minReplicas", 1)), int(spec["maxReplicas"])
    return None


def parse_range(answer: str) -> tuple[int, int] | None:
    """``"2-4"``, ``"2..4"`` or ``"2 to 4"`` as (2, 4); None unless the answer holds exactly two numbers."""
    numbers = re.findall(r"\d+", answer)
    return (int(numbers[0]), int(numbers[1])) if len(numbers) == 2 else None


def setup(ctx: LabContext) -> list[str]:
    """A clean slate: renders saved by an earlier attempt are removed, so the learner renders them again."""
    removed = [path for path in (saved_path(ctx.settings, o) for o in OVERLAYS) if path.is_file()]
    for path in removed:
        path.unlink()
    return [f"removed {path}, saved by an earlier attempt" for path in removed]


def _compare(settings: Settings, overlay: str, fresh: list[K8sObject], index: int, since: datetime) -> Check:
    path, command = saved_path(settings, overlay), render_command(settings, overlay)
    if not path.is_file():
        return Check(CONDITIONS[index], False, f"no file at {path}", f"run `mkdir -p {path.parent} && {command}`")
    if not counts(path.stat().st_mtime, since):
        return Check(CONDITIONS[index], False, f"{path.name} was saved before this lab started", f"run `{command}`")
    import yaml

    try:
        saved = load_saved(path)
    except yaml.YAMLError as err:
        return Check(CONDITIONS[index], False, f"{path.name} is not YAML ({err})", f"run `{command}` again")
    difference = first_difference(saved, fresh)
    if difference:
        return Check(
            CONDITIONS[index], False, f"{difference} (the repo changed since you rendered?)", f"run `{command}`"
        )
    return Check(CONDITIONS[index], True, f"{len(saved)} objects, identical to a fresh render")


def check(ctx: LabContext, answer: str | None, since: datetime) -> list[Check]:
    """Both renders saved since the start and current, prod passes the policy checks, the answer matches the HPA."""
    s = ctx.settings
    try:
        fresh = {overlay: render(overlay) for overlay in OVERLAYS}
    except (KubectlMissingError, RenderError) as err:
        return [Check(CONDITIONS[0], False, str(err), "install kubectl (see the message), then check again")] + [
            Check(name, False, "nothing rendered", "kubectl must work first") for name in CONDITIONS[1:]
        ]
    rendered = ", ".join(f"{o} {len(objs)} objects" for o, objs in fresh.items())
    checks = [Check(CONDITIONS[0], True, rendered)]
    checks.append(_compare(s, "prod", fresh["prod"], 1, since))
    checks.append(_compare(s, "dev", fresh["dev"], 2, since))

    if checks[1].passed:
        saved = load_saved(saved_path(s, "prod"))
        found = [v for vs in run_checks(saved).values() for v in vs] + validate_schemas(saved)
        detail = "no violation" if not found else f"{len(found)} violation(s), first: {found[0]}"
        hint = "fix the overlay (`uv run --frozen pytest tests/unit/ops/test_k8s_manifests.py` shows each), re-render"
        checks.append(Check(CONDITIONS[3], not found, detail, hint))
    else:
        checks.append(Check(CONDITIONS[3], False, "no current prod render saved", "save the prod render first"))

    expected = autoscaler_range(fresh["prod"])
    how = "read the HorizontalPodAutoscaler in prod.yaml (minReplicas, maxReplicas)"
    if answer is None:
        checks.append(
            Check(CONDITIONS[4], False, "no answer given", f"{how}, then `mlops-lab lab check 8 --answer MIN-MAX`")
        )
    else:
        given = parse_range(answer)
        ok = expected is not None and given == expected
        shown = f"you answered {answer.strip()!r}" + ("" if given else " (expected two numbers, e.g. 1-9)")
        checks.append(Check(CONDITIONS[4], ok, shown, how))
    return checks
