"""Demo "registry-gate" (C12, C14, C40, C41): only a model that passes the gate gets an alias."""

from __future__ import annotations

from core.context import LabContext
from lab.demos.prep import (
    VERSION_COLUMNS,
    ensure_champion,
    ensure_raw_data,
    show_outcome,
    version_rows,
    with_hyperparams,
)
from lab.narrate import Narrator
from pipelines.registry import current_aliases
from pipelines.training_steps import run_training


def run(n: Narrator, ctx: LabContext) -> None:

    n.title("Model registry and the quality gate", "C12 C14 C40 C41")
    data = ensure_raw_data(ctx, n)
    champion = ensure_champion(ctx, n)
    n.say(f"champion today: version {champion}")

    n.step("A new candidate with the same recipe: compared with the champion on the SAME holdout rows")
    n.why(
        f"gate mode {ctx.params.gate.mode}: both models are scored on the holdout (never trained on) and compared "
        f"row by row; the candidate is rejected if McNemar's exact one-sided test says it is significantly worse "
        f"(alpha {ctx.params.gate.alpha}). It must also clear the floor {ctx.params.gate.min_metric} "
        f"{ctx.params.gate.metric} and pass behavioural checks (minimum functionality, invariance, directional) "
        "and slice parity."
    )
    good = run_training(ctx.settings, ctx.params, data)
    show_outcome(n, good)
    for check in good.gate.get("checks", []):
        (n.ok if check["passed"] else n.bad)(f"{check['name']}: {check['detail']}")

    n.step("A worse candidate (over-regularised: C=0.001) tries the same gate")
    bad = run_training(ctx.settings, with_hyperparams(ctx.params, C=0.001), data)
    show_outcome(n, bad)
    n.why("it is logged for the record (run tagged gate.status=rejected) but never registered or aliased.")

    n.step("The registry: versions and aliases")
    n.table(ctx.settings.model_name, VERSION_COLUMNS, version_rows(ctx.settings))
    n.ok(f"aliases now: {current_aliases(ctx.settings)}")
    n.code("pipelines/quality_gate.py", "pipelines/behavioural.py", "pipelines/slices.py", "pipelines/registry.py")
