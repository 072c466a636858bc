"""Demo "features" (C08): derived features are computed inside the logged model."""

from __future__ import annotations

from core.context import LabContext
from lab.demos.prep import ensure_raw_data
from lab.narrate import Narrator
from pipelines.data import read_csv, split_features_target
from pipelines.features import build_pipeline


def run(n: Narrator, ctx: LabContext) -> None:

    n.title("Feature engineering inside the model", "C08")
    path = ensure_raw_data(ctx, n)
    X, y = split_features_target(read_csv(path), ctx.params.dataset)
    pipe = build_pipeline(ctx.params.features, ctx.params.train).fit(X, y)

    n.step("The pipeline that gets logged to MLflow is one object:")
    for name, step in pipe.steps:
        n.say(f"[bold]{name}[/bold]: {step.__class__.__name__}")
    n.code("pipelines/features.py::build_pipeline", "params.yaml (features:)")

    n.step("Raw request fields in, engineered features out (before scaling):")
    row = X.head(1)
    derived = pipe[:2].transform(row)[0]
    names = pipe[:2].get_feature_names_out()
    n.table("one row", ["feature", "value"], [[c, round(float(v), 3)] for c, v in zip(names, derived, strict=True)])
    n.why(
        "areas and ratios are declared in params.yaml and computed by a transformer inside the Pipeline, "
        "so serving sends only the four measurements and can never compute the features differently."
    )
    n.ok(f"prediction for that row: {pipe.predict(row)[0]} (true: {y.iloc[0]})")
