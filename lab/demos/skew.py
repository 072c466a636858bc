"""Demo "skew" (C09): the registered artefact predicts exactly what training computed."""

from __future__ import annotations

from core.context import LabContext
from lab.demos.prep import ensure_champion
from lab.narrate import Narrator
from pipelines.data import read_csv, split_features_target
from pipelines.fit import split_data
from pipelines.registry import load_version_model


def run(n: Narrator, ctx: LabContext) -> None:
    import mlflow
    import numpy as np

    n.title("Training-serving skew: one artefact, two paths, identical answers", "C09")
    version = ensure_champion(ctx, n)
    uri = f"models:/{ctx.settings.model_name}@champion"

    n.step(f"Load the champion (version {version}) the way serving does: its skops file, digest checked")
    trained = load_version_model(ctx.settings, version)  # the scikit-learn Pipeline training evaluated
    n.step(f"Load it the way any MLflow client would: pyfunc from `{uri}` (its file is checked above)")
    served = mlflow.pyfunc.load_model(uri)

    frame = read_csv(ctx.settings.resolve(ctx.params.dataset.path))
    X_test = split_data(frame, ctx.params).X_test
    X_all, _ = split_features_target(frame, ctx.params.dataset)
    same_test = np.array_equal(np.asarray(served.predict(X_test)), trained.predict(X_test))
    same_all = np.array_equal(np.asarray(served.predict(X_all)), trained.predict(X_all))
    (n.ok if same_test and same_all else n.bad)(
        f"identical predictions on {len(X_test)} held-out rows and all {len(X_all)} rows: {same_test and same_all}"
    )
    n.why(
        "skew comes from re-implementing preprocessing in the service. Here the feature code is part of the "
        "logged model and the signature pins the input columns, so there is nothing to re-implement."
    )
    n.code("pipelines/features.py", "pipelines/tracking.py::log_training_run", "pipelines/model_files.py")
