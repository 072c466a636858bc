"""The DVC pipeline's train and evaluate stages: tiny wrappers over the same core as the Prefect flow.

Concept: data + model version control (C05) and reproducibility (C04). ``dvc.yaml`` declares each
stage's inputs (data, code, params) and outputs (model, metrics, plots); ``dvc repro`` reruns only
the stages whose inputs changed and records every hash in ``dvc.lock``. The stages call
``fit_and_evaluate``, ``split_data`` and ``evaluate_model``, the functions the Prefect flow uses,
so there is one implementation of training whichever orchestrator runs it.

Metrics files are written byte-for-byte deterministically (sorted keys, fixed rounding, ``\\n``
endings): the same data + params + locked environment give the same ``metrics/*.json`` in every
clone, which ``dvc metrics diff`` and the integration test rely on. The model is saved with skops
(no pickle): loading it executes no code from the file beyond an explicit list of trusted types.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from core.params import Params
from pipelines.data import read_csv
from pipelines.evaluate import confusion_rows, evaluate_model
from pipelines.fit import fit_and_evaluate, split_data
from pipelines.holdout import without_holdout
from pipelines.model_files import load_skops_file

METRIC_DECIMALS = 6


def write_metrics(metrics: dict[str, float | int], path: str | Path) -> Path:
    """Write metrics as JSON with the same bytes on every run (sorted keys, floats rounded, ints kept)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rounded = {
        key: value if isinstance(value, int) else round(float(value), METRIC_DECIMALS) for key, value in metrics.items()
    }
    out.write_text(json.dumps(rounded, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    return out


def save_model(model: Any, path: str | Path) -> Path:
    """Save a fitted pipeline with skops (a zip of arrays + a JSON schema, no pickle)."""
    import skops.io as sio

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model, out)
    return out


def load_model(path: str | Path) -> Any:
    """Load a pipeline saved by :func:`save_model`, trusting only this project's own types.

    skops lists the types outside its built-in safe set (here ``numpy.dtype`` and our
    ``DerivedFeatures`` transformer); we trust them only if they come from sklearn, numpy or this
    project's ``pipelines`` package.

    Raises:
        FileNotFoundError: no model at ``path``; run ``dvc repro train`` first.
        pipelines.model_files.UntrustedModelError: the file asks for types from other modules.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"model file not found: {p}; build it with `dvc repro train` (or `mlops-lab stage train`)"
        )
    return load_skops_file(p)


def training_frame(params: Params, data_path: str | Path, holdout_path: str | Path | None) -> Any:
    """The data file minus the gate's holdout rows (``mlops-lab stage`` always passes the holdout)."""
    frame = read_csv(data_path)
    return frame if holdout_path is None else without_holdout(frame, read_csv(holdout_path), params.dataset)


def train_stage(
    params: Params,
    data_path: str | Path,
    model_path: str | Path,
    metrics_path: str | Path,
    holdout_path: str | Path | None = None,
) -> Path:
    """DVC stage ``train``: fit the pipeline on the seeded split (holdout rows removed), save it and the CV metrics.

    Returns:
        The path of the saved model.
    """
    result = fit_and_evaluate(training_frame(params, data_path, holdout_path), params)
    write_metrics(
        {
            "cv_accuracy_mean": result.metrics["cv_accuracy_mean"],
            "cv_accuracy_std": result.metrics["cv_accuracy_std"],
            "n_train_rows": len(result.split.X_train),
        },
        metrics_path,
    )
    return save_model(result.pipeline, model_path)


def write_confusion_rows(rows: list[dict[str, str]], path: str | Path) -> Path:
    """Write (actual, predicted) rows as the CSV DVC's ``confusion`` plot template reads."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["actual", "predicted"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out


def evaluate_stage(
    params: Params,
    data_path: str | Path,
    model_path: str | Path,
    metrics_path: str | Path,
    plot_path: str | Path,
    holdout_path: str | Path | None = None,
) -> dict[str, float]:
    """DVC stage ``evaluate``: score the saved model on the same seeded held-out rows.

    The split is recomputed with ``split_data`` (same data + seed → same rows), so the model file
    is the only thing passed between the stages.

    Returns:
        The flat test metrics (``test_accuracy``, ...), before rounding for the file.
    """
    split = split_data(training_frame(params, data_path, holdout_path), params)
    evaluation = evaluate_model(load_model(model_path), split.X_test, split.y_test, params.dataset.classes)
    metrics = evaluation.flat_metrics()
    write_metrics(metrics, metrics_path)
    write_confusion_rows(confusion_rows(split.y_test, evaluation.predictions), plot_path)
    return metrics
