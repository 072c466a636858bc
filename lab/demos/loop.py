"""Demo "loop" (C01, what `make demo` runs): the lifecycle as far as it is built, narrated.

ingest → validate → train (Prefect flow) → gate → register champion → a corrupted batch is refused →
new labelled data → retrain → gated challenger → promote → roll back, with a summary at the end.
Serving, monitoring and the automatic retrain/canary loop join this story as they land.
"""

from __future__ import annotations

import pandas as pd

from lab.context import LabContext
from lab.narrate import Narrator


def run(n: Narrator, ctx: LabContext) -> None:
    from lab.demos.prep import VERSION_COLUMNS, display_path, ensure_raw_data, show_outcome, version_rows
    from pipelines.batches import generate_batch, write_batch
    from pipelines.data import file_md5, read_csv, write_csv
    from pipelines.flows import training_flow
    from pipelines.registry import audit_log, current_aliases, promote, rollback
    from pipelines.validation import validate_file

    s, p = ctx.settings, ctx.params
    decisions: list[list[str]] = []
    n.title("The MLOps loop, end to end, offline", "C01")

    n.step("Ingest: raw data from scikit-learn's bundled iris (the first DVC stage)")
    raw = ensure_raw_data(ctx, n)
    n.say(f"{display_path(ctx, raw)}  md5 {file_md5(raw)} (the hash dvc.lock records)")

    n.step("Validate it with Great Expectations before anything trains")
    result = validate_file(raw, p.dataset, docs_dir=s.gx_dir)
    (n.ok if result.success else n.bad)(f"{result.statistics} → Data Docs {result.docs_path}")

    n.step("Train through the Prefect `training` flow: load → validate → train → gate → register")
    outcome = training_flow(data_path=str(raw))
    show_outcome(n, outcome)
    decisions.append(["train on raw data", outcome.status, f"v{outcome.version} → {outcome.alias}"])

    n.step("A production batch arrives corrupted (a sensor switched to millimetres)")
    batches = s.state / "batches"
    reference = read_csv(raw)
    bad = write_batch(generate_batch("out-of-range", reference, p, seed=11), batches / "mm.csv", "out-of-range")
    refused = validate_file(bad, p.dataset, docs_dir=s.gx_dir)
    for failure in refused.failures[:3]:
        n.bad(f"{failure.expectation} on {failure.column}: e.g. {failure.examples[:3]}")
    n.why("invalid data never reaches training: the flow would stop at `validate`; the registry is untouched.")
    decisions.append(["corrupted batch", "refused", f"{len(refused.failures)} failed expectations"])

    n.step("A clean labelled batch arrives: retrain on reference + new data")
    fresh = generate_batch("clean", reference, p, seed=12)
    combined = pd.concat([reference, fresh], ignore_index=True).drop_duplicates(ignore_index=True)
    training_set = write_csv(combined, batches / "train-v2.csv", p.dataset.decimals)
    second = training_flow(data_path=str(training_set))
    show_outcome(n, second)
    decisions.append(["retrain with new data", second.status, f"v{second.version} → {second.alias}"])

    if second.alias == "challenger":
        n.step("Promote the challenger (audited alias move), then roll back (one more alias move)")
        change = promote(s, s.actor, "demo: challenger passed the gate")
        n.ok(f"champion v{change.champion_before} → v{change.champion_after}; previous = v{change.champion_before}")
        decisions.append(["promote", "done", f"champion v{change.champion_after}"])
        back = rollback(s, s.actor, "demo: roll back to the previous champion")
        n.ok(f"rollback: champion v{back.champion_before} → v{back.champion_after}")
        decisions.append(["rollback", "done", f"champion v{back.champion_after}"])
        n.why("promotion and rollback are registry alias moves: instant, no rebuild, each one audited.")

    n.step("Summary")
    n.table("decisions", ["step", "result", "detail"], decisions)
    n.table(f"registry: {s.model_name}", VERSION_COLUMNS, version_rows(s))
    n.say(f"aliases: {current_aliases(s)}; audit entries: {len(audit_log(s))}")
    n.say(f"MLflow UI:  uv run mlflow ui --backend-store-uri {s.mlflow_tracking_uri}")
    n.say(f"Prefect UI: PREFECT_HOME={s.prefect_home} uv run prefect server start")
    n.say(f"Data Docs:  {result.docs_path}")
    n.say("serving: `mlops-lab serve`; its demos: canary, blue-green, shadow, ab-test, bandit, serving-rollback")
    n.say("next in the loop (the monitoring issue): drift detection and the automatic, canaried retrain")
