"""The ONNX file of a registered version: exported and parity-checked at registration, verified at load.

Concept: packaging (C17), model optimisation (C54) and model supply-chain security (C44). Between the gate
and the registration, training exports the fitted Pipeline (`pipelines.onnx_export`) and runs the parity
check (`pipelines.onnx_parity`). The outcome never rejects the model; it decides whether the version
carries an ONNX file:

- ``passed``: the file is logged in the version's run at ``onnx/model.onnx``, its sha256 is a version tag;
- ``diverged``: exported, but another class or a probability beyond the tolerance somewhere; no file;
- ``export_failed``: skl2onnx (or ONNX Runtime) refused it, e.g. a step without a converter; no file;
- ``skipped``: ``gate.onnx.enabled`` is false; no file.

Version tags (every one a string): ``onnx.status``, ``onnx.reason`` (one line, always), ``onnx_sha256``
and ``onnx.artifact`` (passed only), ``onnx.opset`` and ``onnx.converters`` (JSON, once exported),
``onnx.max_abs_diff`` and ``onnx.rows_checked`` (once checked).

`load_version_onnx` is the only reader: no file unless the status is ``passed``; the bytes' sha256 must
be the one registered (a replaced file is refused like a replaced skops file), the file must use only
the standard operator domains, and its input must be the contract's features, in the contract's order (the
names are stored in the file's metadata ``features``: the graph takes a bare matrix, columns by position).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from core.mlflow_config import mlflow_client
from pipelines.behavioural import CheckResult
from pipelines.model_files import UntrustedModelError
from pipelines.onnx_export import ExportedModel, OnnxExportError, OnnxModel, UnsafeOnnxError, export_onnx
from pipelines.onnx_parity import ParityResult, check_parity

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient

    from core.params import Params
    from core.settings import Settings

ONNX_ARTIFACT = "onnx/model.onnx"
PASSED, DIVERGED, EXPORT_FAILED, SKIPPED = "passed", "diverged", "export_failed", "skipped"
STATUS_TAG, REASON_TAG = "onnx.status", "onnx.reason"
SHA_TAG, ARTIFACT_TAG = "onnx_sha256", "onnx.artifact"
OPSET_TAG, CONVERTERS_TAG = "onnx.opset", "onnx.converters"
DIFF_TAG, ROWS_TAG = "onnx.max_abs_diff", "onnx.rows_checked"
CHECK_NAME = "onnx_parity"


@dataclass(frozen=True)
class OnnxOutcome:
    """What export and parity check gave for one candidate (the file only when it passed)."""

    status: str  # passed | diverged | export_failed | skipped
    reason: str  # one line
    exported: ExportedModel | None = None
    parity: ParityResult | None = None
    seconds: float = 0.0
    variants: list[dict[str, Any]] = field(default_factory=list)  # quantised variants, for the card

    @property
    def servable(self) -> bool:
        return self.status == PASSED and self.exported is not None

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.exported.onnx_bytes).hexdigest() if self.servable and self.exported else None

    def tags(self) -> dict[str, str]:
        """The version tags (see the module docstring); file tags only for a passed model."""
        tags = {STATUS_TAG: self.status, REASON_TAG: _one_line(self.reason)}
        if self.exported is not None:
            tags[OPSET_TAG] = str(self.exported.opset)
            tags[CONVERTERS_TAG] = json.dumps(self.exported.converter_versions, sort_keys=True)
        if self.parity is not None:
            tags[DIFF_TAG] = f"{self.parity.max_abs_diff:.3g}"
            tags[ROWS_TAG] = str(self.parity.rows_checked)
        if self.servable and (digest := self.sha256):
            tags[SHA_TAG], tags[ARTIFACT_TAG] = digest, ONNX_ARTIFACT
        return tags

    def check(self) -> CheckResult:
        """The outcome as a gate check (advisory: shown with the gate, never a reason to reject)."""
        return CheckResult(CHECK_NAME, self.status == PASSED, f"{self.status}: {_one_line(self.reason)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the model card and ``onnx/parity.json``."""
        return {
            "status": self.status,
            "reason": _one_line(self.reason),
            "opset": None if self.exported is None else self.exported.opset,
            "converters": {} if self.exported is None else dict(self.exported.converter_versions),
            "size_bytes": None if self.exported is None else len(self.exported.onnx_bytes),
            "sha256": self.sha256,
            "parity": None if self.parity is None else self.parity.to_dict(),
            "seconds": round(self.seconds, 3),
            "variants": list(self.variants),
        }


def _one_line(text: str, limit: int = 500) -> str:
    return " ".join(text.split())[:limit]


def skipped_outcome() -> OnnxOutcome:
    return OnnxOutcome(SKIPPED, "ONNX export is off (gate.onnx.enabled: false); served by scikit-learn only")


FEATURES_META = "features"  # the contract's feature names, in the order the graph's input columns take them


def _with_feature_names(exported: ExportedModel, names: Sequence[str] | None) -> ExportedModel:
    """Record the column order in the file: the graph takes a bare matrix, so an order change would go unseen."""
    if names is None:
        return exported
    import onnx

    model = onnx.load_from_string(exported.onnx_bytes)
    meta = model.metadata_props.add()
    meta.key, meta.value = FEATURES_META, json.dumps([str(n) for n in names])
    return dataclasses.replace(exported, onnx_bytes=model.SerializeToString())


def _stored_features(data: bytes) -> list[str] | None:
    import onnx

    meta = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    return None if FEATURES_META not in meta else [str(n) for n in json.loads(meta[FEATURES_META])]


def export_and_check(
    pipeline: Any, n_features: int, groups: dict[str, np.ndarray], tolerance: float
) -> tuple[OnnxOutcome, OnnxModel | None]:
    """Export the fitted Pipeline and compare the graph with it on ``groups``; never raises for a bad model.

    Returns the outcome and, when the graph loaded, its `OnnxModel` (the caller may build variants from it).
    """
    started = time.perf_counter()
    try:
        exported = _with_feature_names(export_onnx(pipeline, n_features), getattr(pipeline, "feature_names_in_", None))
    except OnnxExportError as err:
        return OnnxOutcome(EXPORT_FAILED, str(err), seconds=time.perf_counter() - started), None
    try:
        model = OnnxModel(exported.onnx_bytes)
    except Exception as err:  # ONNX Runtime refuses a graph with many exception types
        reason = f"ONNX Runtime could not load the export: {type(err).__name__}: {err}"
        return OnnxOutcome(EXPORT_FAILED, reason, exported, seconds=time.perf_counter() - started), None
    parity = check_parity(pipeline, model, groups, tolerance)
    status = PASSED if parity.passed else DIVERGED
    reason = parity.reason if parity.passed else f"{parity.reason}: registered without ONNX, served by scikit-learn"
    return OnnxOutcome(status, reason, exported, parity, time.perf_counter() - started), model


def onnx_for_candidate(pipeline: Any, params: Params, holdout: pd.DataFrame, reference: pd.DataFrame) -> OnnxOutcome:
    """Export + parity check of a gated candidate as ``gate.onnx`` configures it; never raises.

    Args:
        holdout: the gate's holdout (features used; labels too, for the variants' accuracy).
        reference: labelled training rows the batch generator fits to.
    """
    from pipelines.data import split_features_target
    from pipelines.onnx_parity import parity_rows
    from pipelines.onnx_variants import build_variants

    knobs = params.gate.onnx
    if not knobs.enabled:
        return skipped_outcome()
    started = time.perf_counter()
    try:
        groups = parity_rows(params, holdout, reference, knobs.rows_per_kind, seed=params.train.seed)
        outcome, _model = export_and_check(pipeline, len(params.dataset.feature_names), groups, knobs.tolerance)
        if knobs.int8 and outcome.servable and outcome.exported is not None:
            X, y = split_features_target(holdout, params.dataset)
            served = len(outcome.exported.onnx_bytes)
            variants = build_variants(pipeline, served, X.to_numpy(dtype="float64"), y.to_numpy())
            outcome = dataclasses.replace(outcome, variants=[v.to_dict() for v in variants])
    except Exception as err:  # the ONNX step must never stop a registration: it only decides the ONNX file
        reason = f"the ONNX step failed: {type(err).__name__}: {err}; registered without ONNX"
        return OnnxOutcome(EXPORT_FAILED, reason, seconds=time.perf_counter() - started)
    return dataclasses.replace(outcome, seconds=time.perf_counter() - started)


def log_onnx(client: MlflowClient, run_id: str, outcome: OnnxOutcome) -> dict[str, str]:
    """Log the outcome to the run (``onnx/parity.json``; the file itself only when it passed); its version tags."""
    with tempfile.TemporaryDirectory(prefix="mlops-lab-onnx-") as tmp:
        folder = Path(tmp) / "onnx"
        folder.mkdir()
        (folder / "parity.json").write_text(json.dumps(outcome.to_dict(), indent=2), encoding="utf-8")
        if outcome.servable and outcome.exported is not None:
            (folder / PurePosixPath(ONNX_ARTIFACT).name).write_bytes(outcome.exported.onnx_bytes)
        client.log_artifacts(run_id, str(folder), "onnx")
    tags = outcome.tags()
    for key in (STATUS_TAG, REASON_TAG):
        client.set_tag(run_id, key, tags[key])
    return tags


def _artifact_path(tags: dict[str, str], label: str) -> str:
    """The ``onnx.artifact`` tag, refused unless it is a plain relative path inside the run's ``onnx/`` folder."""
    artifact = tags.get(ARTIFACT_TAG, "")
    parts = PurePosixPath(artifact).parts
    if not artifact or artifact.startswith("/") or ".." in parts or parts[0] != "onnx" or "\\" in artifact:
        raise UntrustedModelError(f"{label}: onnx.artifact {artifact!r} is not a file inside the run's onnx/ folder")
    return artifact


def load_version_onnx(settings: Settings, version: str, features: Sequence[str] | None = None) -> OnnxModel | None:
    """The parity-checked ONNX model of one registered version; None when the version has none.

    None unless the version's ``onnx.status`` is ``passed`` (diverged, failed, skipped, or registered
    before ONNX existed): such a version is served by its scikit-learn Pipeline.

    Raises:
        UntrustedModelError: no recorded sha256, a file whose sha256 is not the registered one, a file
            using non-standard operator domains, or an input other than ``features`` in that order.
    """
    from mlflow.artifacts import download_artifacts

    client = mlflow_client(settings)
    mv = client.get_model_version(settings.model_name, version)
    tags = dict(mv.tags)
    if tags.get(STATUS_TAG) != PASSED:
        return None
    label = f"{settings.model_name} v{version} (ONNX)"
    artifact = _artifact_path(tags, label)
    expected = tags.get(SHA_TAG)
    if not expected:
        raise UntrustedModelError(f"{label} has no {SHA_TAG} tag: its file cannot be checked and is not loaded")
    with tempfile.TemporaryDirectory(prefix="mlops-lab-onnx-") as tmp:
        local = download_artifacts(
            run_id=mv.run_id, artifact_path=artifact, dst_path=tmp, tracking_uri=settings.mlflow_tracking_uri
        )
        data = Path(local).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise UntrustedModelError(
            f"{label}: {artifact} has sha256 {actual[:12]}…, but {expected[:12]}… was registered; the file was "
            "replaced after registration and is not loaded"
        )
    try:
        model = OnnxModel(data)
    except UnsafeOnnxError as err:
        raise UntrustedModelError(f"{label}: {err}") from err
    if features is not None and model.n_features_in_ != len(features):
        raise UntrustedModelError(
            f"{label} takes {model.n_features_in_} features, the data contract has {len(features)}; it is not served"
        )
    stored = _stored_features(data)
    if features is not None and stored is not None and stored != list(features):
        raise UntrustedModelError(
            f"{label} takes its columns in the order {stored}, the data contract's is {list(features)}; a matrix "
            "in the contract's order would feed it the wrong columns, so it is not served"
        )
    return model
