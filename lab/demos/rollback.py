"""Demo ``rollback``: promote a challenger, then restore the previous champion in one alias move.

Concepts: model registry (C12), rollback (C15), governance (C16). Serving loads
``models:/<name>@champion``; the registry decides which version that is. So promotion and rollback
never rebuild or redeploy anything: they re-point an alias at a version that was already built,
tested and registered, and the audit log records who did it and why.

Works on a fresh or an existing state folder: if the registry lacks a champion or a usable
challenger, the demo trains tiny LogisticRegression pipelines on iris and registers them (with a
model card and the minimum-metric floor of the quality gate) before promoting and rolling back.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pipelines.data import build_raw_frame, file_md5, split_features_target, write_csv
from pipelines.model_card import ModelCardInfo, dataset_fields, render_model_card
from pipelines.registry import (
    CHALLENGER,
    CHAMPION,
    RegistryError,
    current_aliases,
    ensure_experiment,
    list_versions,
    mlflow_client,
    promote,
    register_candidate,
    rollback,
)

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator
    from pipelines.registry import RegisteredVersion


def train_candidate(ctx: LabContext, c: float) -> RegisteredVersion:
    """Fit scaler + LogisticRegression(C=c), log it to MLflow with a model card and register it."""
    from datetime import UTC, datetime

    import mlflow
    import sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    s, p = ctx.settings, ctx.params
    frame = build_raw_frame(p.dataset, p.ingest)
    data_path = write_csv(frame, s.state / "demo-rollback" / "iris.csv", p.dataset.decimals)
    x, y = split_features_target(frame, p.dataset)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=p.train.test_size, stratify=y, random_state=p.train.seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(x_tr, y_tr)
    accuracy = float(model.score(x_te, y_te))
    floor = p.gate.min_metric
    passed = accuracy >= floor
    gate: dict[str, Any] = {
        "passed": passed,
        "reasons": [f"demo candidate: only the minimum-metric floor is checked (accuracy {accuracy:.3f} vs {floor})"],
        "checks": {"min_metric": {"passed": passed, "detail": f"accuracy {accuracy:.3f} >= {floor}"}},
    }
    params = {"estimator": "logistic_regression", "C": c, "max_iter": 1000, "seed": p.train.seed}
    with mlflow.start_run(experiment_id=ensure_experiment(s), run_name=f"rollback-demo-C{c}") as run:
        mlflow.log_params(params)
        mlflow.log_metric("test_accuracy", accuracy)
        mlflow.set_tags({"data_md5": file_md5(data_path), "params_hash": p.digest(), "source": "demo rollback"})
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x_tr, model.predict(x_tr)),
            input_example=x_tr.head(3),
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
        )
    card = render_model_card(
        ModelCardInfo(
            model_name=s.model_name,
            version=None,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            **dataset_fields(p.dataset),
            data_path=str(data_path),
            data_md5=file_md5(data_path),
            data_rows=len(frame),
            params=params,
            test_metrics={"accuracy": accuracy},
            gate=gate,
            run_id=run.info.run_id,
            params_hash=p.digest(),
            library_versions={"scikit-learn": sklearn.__version__, "mlflow": mlflow.__version__},
        )
    )
    return register_candidate(s, run.info.run_id, info.model_uri, gate, card, s.actor, f"rollback demo, C={c}")


def _show_aliases(n: Narrator, ctx: LabContext) -> None:

    rows: list[list[object]] = [
        [v.version, ", ".join(v.aliases) or "-", v.status, "-" if v.accuracy is None else f"{v.accuracy:.3f}"]
        for v in list_versions(ctx.settings)
    ]
    n.table(f"{ctx.settings.model_name} versions", ["version", "aliases", "status", "accuracy"], rows)


def run(n: Narrator, ctx: LabContext) -> None:
    """Promote, roll back, and show the audit trail."""
    s = ctx.settings
    n.title(
        "Rollback: restoring the previous champion is an alias move",
        "C12 model registry · C15 rollback · C16 governance",
    )

    n.step("Make sure the registry holds a champion and a challenger")
    aliases = current_aliases(s)
    challenger = aliases.get(CHALLENGER)
    rejected = (
        challenger is not None
        and mlflow_client(s).get_model_version(s.model_name, challenger).tags.get("status") == "rejected"
    )
    needed = [c for c, missing in ((1.0, CHAMPION not in aliases), (0.3, challenger is None or rejected)) if missing]
    for c in needed:
        try:
            reg = train_candidate(ctx, c)
        except RegistryError as err:  # the gate floor refused it: say so, never promote it
            n.bad(str(err))
            return
        n.say(f"trained LogisticRegression(C={c}) and registered it as v{reg.version} → alias [bold]{reg.alias}[/bold]")
    if not needed:
        n.say("the registry already has both; nothing to train")
    n.why("the first version ever becomes champion; every later one waits as challenger until promoted")
    _show_aliases(n, ctx)

    n.step("Promote the challenger (in the full loop the quality gate and a canary decide; here a person approves)")
    promoted = promote(s, s.actor, "demo: manual approval after review")
    before, after = promoted.champion_before, promoted.champion_after
    n.ok(f"champion v{before} → v{after}; v{before} kept as `previous`, the challenger alias is cleared")
    _show_aliases(n, ctx)

    n.step("Production looks wrong: roll back")
    started = time.perf_counter()
    back = rollback(s, s.actor, "demo: error rate rose after the promotion")
    elapsed_ms = (time.perf_counter() - started) * 1000
    restored = str(mlflow_client(s).get_model_version_by_alias(s.model_name, CHAMPION).version)
    if restored == back.champion_after == promoted.champion_before:
        n.ok(f"models:/{s.model_name}@champion resolves to v{restored} again ({elapsed_ms:.0f} ms, no rebuild)")
    else:
        n.bad(f"champion is v{restored}, expected v{promoted.champion_before}")
    n.why(
        "serving loads models:/<name>@champion, so a rollback only re-points an alias at a version that was "
        "already built, tested and registered: instant, nothing retrained, rebuilt or redeployed"
    )
    n.say(
        f"v{back.champion_before} is tagged rolled_back=true with the reason; `previous` is cleared (one level of undo)"
    )
    _show_aliases(n, ctx)

    n.step("The audit trail: who moved which alias, when and why")
    entries = [*promoted.entries, *back.entries]
    n.table(
        "audit entries from this demo (registered-model tags audit/<seq>)",
        ["seq", "actor", "action", "alias", "from → to", "reason"],
        [
            [e.seq, e.actor, e.action, e.alias, f"{e.from_version or '-'} → {e.to_version or '-'}", e.reason]
            for e in entries
        ],
    )
    n.why("governance: every alias move is recorded in the registry itself, so it survives backups and shows in the UI")
    n.code("pipelines/registry.py (promote, rollback, audit trail)", "pipelines/model_card.py", "cli/registry.py")
    n.say("try: `mlops-lab registry list`, `mlops-lab registry audit`, `mlops-lab registry rollback --reason ...`")
