"""Experiment tracking: every training run logged with what it needs to be judged and rebuilt.

Concept: experiment tracking (C11) and packaging (C17). One MLflow run holds the params, test and
CV metrics, per-class metrics, the confusion matrix, lineage tags and the model itself: the whole
scikit-learn Pipeline as an MLflow model with a signature and an input example, so serving gets
exactly the artefact that was evaluated.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.evaluate import confusion_figure
from pipelines.registry import ensure_experiment

if TYPE_CHECKING:
    from core.params import Params
    from core.settings import Settings
    from pipelines.fit import TrainResult


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    model_uri: str
    metrics: dict[str, float]


def flat_params(params: Params, hyperparams: dict[str, Any]) -> dict[str, Any]:
    """The knobs that shaped this model, as MLflow params."""
    out: dict[str, Any] = {
        "dataset": params.dataset.name,
        "estimator": params.train.estimator,
        "seed": params.train.seed,
        "test_size": params.train.test_size,
        "cv_folds": params.train.cv_folds,
        "features.products": json.dumps(params.features.products),
        "features.ratios": json.dumps(params.features.ratios),
    }
    out.update({f"model.{k}": v for k, v in hyperparams.items()})
    return out


def _trusted_types(model: Any) -> list[str]:
    """Types skops must trust to load this model: the ones we just wrote ourselves."""
    import skops.io as sio

    return list(sio.get_untrusted_types(data=sio.dumps(model)))


def log_training_run(
    settings: Settings,
    params: Params,
    result: TrainResult,
    tags: dict[str, str],
    run_name: str | None = None,
    nested: bool = False,
) -> LoggedRun:
    """Log one fitted candidate: params, metrics, artifacts, lineage tags and the model."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    experiment_id = ensure_experiment(settings)
    X_train = result.split.X_train
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, nested=nested) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(flat_params(params, result.hyperparams))
        mlflow.log_metrics(result.metrics)
        with warnings.catch_warnings():
            # A local path matches two equivalent source types; MLflow warns and picks one. Harmless.
            warnings.filterwarnings(
                "ignore", message="The specified dataset source can be interpreted", category=UserWarning
            )
            data = from_pandas(
                X_train.assign(**{params.dataset.target: result.split.y_train}),
                source=tags.get("data_path", "unknown"),
                name=params.dataset.name,
                targets=params.dataset.target,
                digest=tags.get("data_md5"),
            )
        mlflow.log_input(data, context="training")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            confusion_figure(result.evaluation, folder / "confusion_matrix.png")
            report = {
                "metrics": result.evaluation.metrics,
                "per_class": result.evaluation.per_class,
                "confusion": result.evaluation.confusion,
                "classes": result.evaluation.classes,
                "cv_scores": result.cv_scores,
            }
            (folder / "evaluation.json").write_text(json.dumps(report, indent=2))
            (folder / "params.json").write_text(params.model_dump_json(indent=2))
            (folder / "hyperparams.json").write_text(json.dumps(result.hyperparams, indent=2))
            mlflow.log_artifacts(str(folder), artifact_path="evaluation")
        model_info = mlflow.sklearn.log_model(
            result.pipeline,
            name="model",
            signature=infer_signature(X_train, result.pipeline.predict(X_train)),
            input_example=X_train.head(3),
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            skops_trusted_types=_trusted_types(result.pipeline),
        )
        return LoggedRun(run_id=run.info.run_id, model_uri=model_info.model_uri, metrics=result.metrics)
