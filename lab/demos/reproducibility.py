"""Demo "reproducibility" (C04, C13): any registered version → its lineage → an identical rebuild."""

from __future__ import annotations

from core.context import LabContext
from core.mlflow_config import mlflow_client
from lab.demos.prep import ensure_champion
from lab.narrate import Narrator
from pipelines.reproduce import reproduce_version


def run(n: Narrator, ctx: LabContext) -> None:

    n.title("Lineage and reproducibility", "C04 C13")
    version = ensure_champion(ctx, n)
    client = mlflow_client(ctx.settings)
    mv = client.get_model_version(ctx.settings.model_name, version)
    tags = client.get_run(mv.run_id).data.tags if mv.run_id else {}

    n.step(f"Version {version} → run {mv.run_id} → where it came from")
    n.table(
        "lineage",
        ["what", "value"],
        [
            ["code (git sha)", tags.get("git_sha", "?")[:12] + (" (dirty)" if tags.get("git_dirty") == "true" else "")],
            ["data (DVC md5)", f"{tags.get('data_md5')}  {tags.get('data_path')}"],
            ["params hash", tags.get("params_hash")],
            ["libraries", ", ".join(f"{k[4:]} {v}" for k, v in tags.items() if k.startswith("lib."))],
        ],
    )
    n.why("locked env (uv.lock) + seeds in params.yaml + data found by md5 (DVC) = the same model again.")

    n.step("Rebuild it from that lineage and compare with the registered artefact")
    report = reproduce_version(ctx.settings, version)
    rows = [[k, repr(v), repr(report.rebuilt_metrics.get(k))] for k, v in sorted(report.logged_metrics.items())[:6]]
    n.table("metrics (first six)", ["metric", "logged", "rebuilt"], rows)
    n.say(f"data found at {report.data_path}")
    n.say(f"max |Δ probability| on the test set: {report.max_probability_diff!r}")
    (n.ok if report.identical else n.bad)(f"identical metrics and predictions: {report.identical}")
    n.code("pipelines/reproduce.py", "pipelines/lineage.py", "uv.lock", "dvc.lock")
    n.say(f"CLI: mlops-lab reproduce {version}")
