"""Rebuild a registered model version from its lineage and prove it is the same model.

Concept: reproducibility (C04) and lineage (C13). A registered version points to its run; the run
holds the exact params (as logged), the seed, the data md5 and the code sha. We find the data by
its md5 (working tree, DVC cache, or the DVC remote), retrain with the logged params, and compare
metrics and predictions with the registered artefact. Equality, not closeness, is the bar. The
verdict is recorded on the version (tags ``reproduced``, ``reproduced_at``, ``reproduced_by``), so
an auditor or a lab checker can see that a version was rebuilt, when, by whom, and with what result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.mlflow_config import mlflow_client
from core.params import Params
from pipelines.data import file_md5, read_csv
from pipelines.fit import fit_and_evaluate
from pipelines.lineage import library_versions
from pipelines.registry import load_version_model

if TYPE_CHECKING:
    from core.settings import Settings


REPRODUCED_TAGS = ("reproduced", "reproduced_at", "reproduced_by")


class ReproductionError(RuntimeError):
    """The version cannot be rebuilt (missing lineage or data); the message says how to fix it."""


@dataclass(frozen=True)
class ReproductionReport:
    version: str
    run_id: str
    data_path: Path
    data_md5: str
    git_sha: str
    logged_metrics: dict[str, float]
    rebuilt_metrics: dict[str, float]
    max_probability_diff: float
    predictions_identical: bool
    library_drift: dict[str, tuple[str, str]]  # name -> (logged, current), only where they differ

    @property
    def metrics_identical(self) -> bool:
        return all(self.rebuilt_metrics.get(k) == v for k, v in self.logged_metrics.items())

    @property
    def identical(self) -> bool:
        return self.metrics_identical and self.predictions_identical


def dvc_cache_candidates(project_dir: Path, md5: str) -> list[Path]:
    """Where DVC 3 keeps a file with this md5: the repo cache, then the in-repo local remote."""
    rel = Path("files", "md5", md5[:2], md5[2:])
    return [project_dir / ".dvc" / "cache" / rel, project_dir / ".dvc-remote" / rel]


def locate_data(project_dir: Path, data_path: str, md5: str) -> Path:
    """Find the exact bytes a model was trained on, by content hash."""
    working = Path(data_path) if Path(data_path).is_absolute() else project_dir / data_path
    for candidate in [working, *dvc_cache_candidates(project_dir, md5)]:
        if candidate.is_file() and file_md5(candidate) == md5:
            return candidate
    raise ReproductionError(
        f"training data with md5 {md5} ({data_path}) is not in the working tree, the DVC cache or the local "
        "DVC remote; restore it with `dvc pull` (or `git checkout <git_sha> -- dvc.lock && dvc checkout`)"
    )


def logged_params(text: str) -> Params:
    """The params a run logged (``evaluation/params.json``), readable by today's schema.

    Runs logged before the search replaced the grid sweep carry ``train.sweep``; it never shaped the logged
    model by itself (a sweep's winner has its values in ``hyperparams.json``), so it is dropped, not refused.
    """
    raw = json.loads(text)
    if isinstance(raw.get("train"), dict):
        raw["train"].pop("sweep", None)
    return Params.model_validate(raw)


def reproduce_version(settings: Settings, version: str) -> ReproductionReport:
    """Retrain registered `version` from its logged lineage and compare with the registered model."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings)
    try:
        mv = client.get_model_version(settings.model_name, str(version))
    except MlflowException as err:
        raise ReproductionError(
            f"no version {version} of {settings.model_name}; see `mlops-lab registry list`"
        ) from err
    if not mv.run_id:
        raise ReproductionError(
            f"version {version} has no source run: it was not registered by this project's training"
        )
    run_id: str = mv.run_id
    run = client.get_run(run_id)
    tags = run.data.tags
    if "data_md5" not in tags:
        raise ReproductionError(f"run {mv.run_id} has no data_md5 tag: it was not logged by this project's training")
    artifacts = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="evaluation")
    params = logged_params(Path(artifacts, "params.json").read_text())
    hyperparams = json.loads(Path(artifacts, "hyperparams.json").read_text())

    data_path = locate_data(settings.project_dir, tags["data_path"], tags["data_md5"])
    frame = read_csv(data_path)
    if "holdout_md5" in tags:  # trained without the gate's holdout rows: rebuild the same way
        from pipelines.holdout import load_holdout, without_holdout

        holdout = load_holdout(settings, params)
        if holdout.md5 != tags["holdout_md5"]:
            raise ReproductionError(
                f"run {run_id} was trained without holdout {tags['holdout_md5']}, but {holdout.path} is "
                f"{holdout.md5}; check out the matching data/holdout.csv (`dvc checkout`) first"
            )
        frame = without_holdout(frame, holdout.frame, params.dataset)
    rebuilt = fit_and_evaluate(frame, params, hyperparams)
    registered = load_version_model(settings, version)
    X_test = rebuilt.split.X_test
    same_labels = bool(np.array_equal(registered.predict(X_test), rebuilt.pipeline.predict(X_test)))
    proba_diff = float(np.max(np.abs(registered.predict_proba(X_test) - rebuilt.pipeline.predict_proba(X_test))))

    logged = {k: v for k, v in run.data.metrics.items() if k in rebuilt.metrics}
    current = library_versions()
    drift = {
        name: (tags[f"lib.{name}"], current.get(name, "missing"))
        for name in current
        if f"lib.{name}" in tags and tags[f"lib.{name}"] != current.get(name)
    }
    return ReproductionReport(
        version=str(version),
        run_id=run_id,
        data_path=data_path,
        data_md5=tags["data_md5"],
        git_sha=tags.get("git_sha", "unknown"),
        logged_metrics=logged,
        rebuilt_metrics=rebuilt.metrics,
        max_probability_diff=proba_diff,
        predictions_identical=same_labels and proba_diff == 0.0,
        library_drift=drift,
    )


def record_reproduction(settings: Settings, report: ReproductionReport, actor: str) -> dict[str, str]:
    """Tag the version with the rebuild's verdict (``identical`` or ``different``), time and actor."""
    from datetime import UTC, datetime

    verdict = {
        "reproduced": "identical" if report.identical else "different",
        "reproduced_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reproduced_by": actor,
    }
    client = mlflow_client(settings)
    for key, value in verdict.items():
        client.set_model_version_tag(settings.model_name, report.version, key, value)
    return verdict
