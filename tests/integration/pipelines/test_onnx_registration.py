"""ONNX at registration, against a real MLflow store: the file, its tags, its parity gate, its load checks.

One registry, built in order: a logistic regression (parity passes: file, tags, loadable), then two
planted candidates that pass the quality gate but whose ONNX must not be served: one whose converter
ignores an option of the estimator (diverged) and one with no converter at all (export failed).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from core.mlflow_config import mlflow_client
from core.params import Params
from core.settings import Settings
from pipelines.data import LoadedData, ingest, split_features_target
from pipelines.fit import fit_and_evaluate
from pipelines.holdout import load_holdout, without_holdout
from pipelines.model_files import UntrustedModelError
from pipelines.onnx_registry import ONNX_ARTIFACT, load_version_onnx
from pipelines.registry import load_version_model
from pipelines.tracking import log_training_run
from pipelines.training_steps import Steps, run_training

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class TemperedLogisticRegression(LogisticRegression):
    """Probabilities sharpened by a temperature; its registered converter below ignores it (a planted bug)."""

    def __init__(self, temperature: float = 1.0, C: float = 1.0, max_iter: int = 1000) -> None:
        super().__init__(C=C, max_iter=max_iter)
        self.temperature = temperature

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = self.decision_function(X) / self.temperature
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)


class UnconvertibleLogisticRegression(LogisticRegression):
    """The same model under a type skl2onnx has no converter for."""


def _register_plain_converter() -> None:
    """Convert the tempered model as a plain logistic regression: the ONNX graph loses the temperature."""
    from skl2onnx import update_registered_converter
    from skl2onnx.operator_converters.linear_classifier import convert_sklearn_linear_classifier
    from skl2onnx.shape_calculators.linear_classifier import calculate_linear_classifier_output_shapes

    update_registered_converter(
        TemperedLogisticRegression,
        "TestTemperedLogisticRegression",
        calculate_linear_classifier_output_shapes,
        convert_sklearn_linear_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False], "raw_scores": [True, False]},
    )


def planted_train(estimator: LogisticRegression):
    """A train step that fits the usual pipeline with ``estimator`` as its last step, logged like any candidate."""

    def train(settings: Settings, params: Params, data: LoadedData, search: bool) -> tuple[Any, Any, None]:
        holdout = load_holdout(settings, params, data.frame)
        result = fit_and_evaluate(without_holdout(data.frame, holdout.frame, params.dataset), params)
        pipeline = clone(result.pipeline).set_params(model=estimator)
        pipeline.fit(result.split.X_train, result.split.y_train)
        planted = dataclasses.replace(result, pipeline=pipeline)
        logged = log_training_run(settings, params, planted, {"holdout_md5": holdout.md5}, run_name="candidate")
        return planted, logged, None  # no search

    return train


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, params: Params, make_settings) -> tuple[Settings, Params, Path]:
    root = tmp_path_factory.mktemp("onnx-lab")
    settings = make_settings(root / "state")
    return settings, params, ingest(params.dataset, params.ingest, root / "iris.csv")


@pytest.fixture(scope="module")
def first(lab):
    settings, params, data = lab
    return run_training(settings, params, data)


def _version_tags(settings: Settings, version: str) -> dict[str, str]:
    return dict(mlflow_client(settings).get_model_version(settings.model_name, version).tags)


def test_a_model_that_passes_parity_is_registered_with_its_onnx_file(lab, first) -> None:
    settings, params, _ = lab
    tags = _version_tags(settings, first.version)
    assert first.status == "registered"
    assert tags["onnx.status"] == "passed", tags["onnx.reason"]
    assert tags["onnx.artifact"] == ONNX_ARTIFACT
    assert len(tags["onnx_sha256"]) == 64
    assert tags["onnx.opset"] == "18"
    assert "skl2onnx" in tags["onnx.converters"]
    assert float(tags["onnx.max_abs_diff"]) <= params.gate.onnx.tolerance
    assert int(tags["onnx.rows_checked"]) > 4 * params.gate.onnx.rows_per_kind  # holdout + 4 kinds + edge rows
    assert "class mismatches" in tags["onnx.reason"]


def test_the_registered_onnx_model_answers_as_the_registered_pipeline(lab, first) -> None:
    settings, params, _ = lab
    onnx_model = load_version_onnx(settings, first.version, params.dataset.feature_names)
    assert onnx_model is not None
    pipeline = load_version_model(settings, first.version, params.dataset.feature_names)
    X, _ = split_features_target(load_holdout(settings, params).frame, params.dataset)
    matrix = X.to_numpy(dtype=np.float64)
    assert np.abs(onnx_model.predict_proba(matrix) - pipeline.predict_proba(X)).max() <= params.gate.onnx.tolerance
    assert onnx_model.predict(matrix).tolist() == [str(c) for c in pipeline.predict(X)]


def test_the_gate_report_and_model_card_show_the_parity_check(lab, first) -> None:
    settings, _, _ = lab
    advisory = {c["name"]: c for c in first.gate["advisory"]}
    assert advisory["onnx_parity"]["passed"] is True
    client = mlflow_client(settings)
    summary = Path(client.download_artifacts(first.run_id, "gate/summary.md")).read_text()
    assert "onnx_parity" in summary
    assert "never a reason to reject" in summary
    card = mlflow.artifacts.load_text(f"runs:/{first.run_id}/model_card.md")
    assert "## ONNX" in card
    assert "passed" in card
    assert "tolerance 1e-05" in card
    assert "| int8 (dynamic) |" in card  # the edge variants' table, with float16 skipped and why
    assert "onnxconverter-common" in card


def test_a_wrong_input_width_is_refused(lab, first) -> None:
    settings, params, _ = lab
    with pytest.raises(UntrustedModelError, match="takes 4 features"):
        load_version_onnx(settings, first.version, [*params.dataset.feature_names, "extra"])


def test_a_contract_with_its_features_in_another_order_is_refused(lab, first) -> None:
    """The graph takes columns by position: the contract's matrix in another order would feed it wrong values."""
    settings, params, _ = lab
    reordered = list(reversed(params.dataset.feature_names))
    with pytest.raises(UntrustedModelError, match="takes its columns in the order"):
        load_version_onnx(settings, first.version, reordered)


def test_a_replaced_onnx_file_is_refused_at_load(lab, first) -> None:
    settings, _, _ = lab
    run = mlflow_client(settings).get_run(first.run_id)
    stored = Path(run.info.artifact_uri.removeprefix("file://")) / ONNX_ARTIFACT
    original = stored.read_bytes()
    try:
        stored.write_bytes(original + b"\0")  # any change: a retrained graph, a tampered weight, an appended byte
        with pytest.raises(UntrustedModelError, match="was replaced after registration"):
            load_version_onnx(settings, first.version)
    finally:
        stored.write_bytes(original)
    assert load_version_onnx(settings, first.version) is not None


@pytest.fixture(scope="module")
def diverged(lab, first):
    settings, params, data = lab
    _register_plain_converter()
    return run_training(settings, params, data, steps=Steps(train=planted_train(TemperedLogisticRegression(0.25))))


@pytest.fixture(scope="module")
def unconvertible(lab, diverged):
    settings, params, data = lab
    return run_training(settings, params, data, steps=Steps(train=planted_train(UnconvertibleLogisticRegression())))


def test_a_diverging_model_is_registered_without_onnx_and_says_why(lab, diverged) -> None:
    settings, params, _ = lab
    assert diverged.status == "registered"  # the parity check never rejects: a good sklearn model stays good
    tags = _version_tags(settings, diverged.version)
    assert tags["onnx.status"] == "diverged"
    assert tags["onnx.reason"].startswith("diverged on")
    assert "registered without ONNX" in tags["onnx.reason"]
    assert float(tags["onnx.max_abs_diff"]) > params.gate.onnx.tolerance
    assert "onnx_sha256" not in tags
    assert "onnx.artifact" not in tags
    files = {a.path for a in mlflow_client(settings).list_artifacts(diverged.run_id, "onnx")}
    assert files == {"onnx/parity.json"}  # the report, never the file
    assert load_version_onnx(settings, diverged.version, params.dataset.feature_names) is None
    assert {c["name"]: c["passed"] for c in diverged.gate["advisory"]} == {"onnx_parity": False}


def test_a_model_without_a_converter_is_registered_without_onnx_and_says_why(lab, unconvertible) -> None:
    settings, params, _ = lab
    assert unconvertible.status == "registered"
    tags = _version_tags(settings, unconvertible.version)
    assert tags["onnx.status"] == "export_failed"
    assert "UnconvertibleLogisticRegression" in tags["onnx.reason"]
    assert "onnx.rows_checked" not in tags
    assert "onnx_sha256" not in tags
    assert load_version_onnx(settings, unconvertible.version, params.dataset.feature_names) is None
    card = mlflow.artifacts.load_text(f"runs:/{unconvertible.run_id}/model_card.md")
    assert "export_failed (no: served by scikit-learn only)" in card


def test_a_version_forged_to_passed_without_a_digest_is_refused(lab, unconvertible) -> None:
    """Tags are writable by anyone with registry access: a "passed" status alone never loads a file."""
    settings, _, _ = lab
    client = mlflow_client(settings)
    client.set_model_version_tag(settings.model_name, unconvertible.version, "onnx.status", "passed")
    client.set_model_version_tag(settings.model_name, unconvertible.version, "onnx.artifact", "../model/model.skops")
    with pytest.raises(UntrustedModelError, match="not a file inside the run's onnx/ folder"):
        load_version_onnx(settings, unconvertible.version)
    client.set_model_version_tag(settings.model_name, unconvertible.version, "onnx.artifact", ONNX_ARTIFACT)
    with pytest.raises(UntrustedModelError, match="no onnx_sha256 tag"):
        load_version_onnx(settings, unconvertible.version)
