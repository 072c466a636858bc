"""The ONNX step of a registration without MLflow: its outcome, its tags, and that it never raises."""

from __future__ import annotations

import pandas as pd
import pytest

from core.params import Params
from pipelines.fit import fit_and_evaluate
from pipelines.onnx_registry import ONNX_ARTIFACT, onnx_for_candidate


@pytest.fixture(scope="module")
def fitted(iris_frame: pd.DataFrame, params: Params):
    return fit_and_evaluate(iris_frame, params)


def _reference(fitted, params: Params) -> pd.DataFrame:
    return fitted.split.X_train.assign(**{params.dataset.target: fitted.split.y_train})


def _with_onnx(params: Params, **knobs: object) -> Params:
    onnx = params.gate.onnx.model_copy(update=knobs)
    return params.model_copy(update={"gate": params.gate.model_copy(update={"onnx": onnx})})


def test_a_passing_outcome_tags_its_file_and_reports_the_variants(fitted, iris_frame, params: Params) -> None:
    holdout = iris_frame.sample(45, random_state=0)
    outcome = onnx_for_candidate(fitted.pipeline, params, holdout, _reference(fitted, params))
    tags = outcome.tags()
    assert tags["onnx.status"] == "passed"
    assert tags["onnx.artifact"] == ONNX_ARTIFACT
    assert tags["onnx_sha256"] == outcome.sha256
    assert [v["name"] for v in outcome.variants] == ["float32", "int8 (dynamic)", "float16"]
    assert outcome.check().passed


def test_a_variant_that_cannot_be_built_changes_neither_the_status_nor_the_file(fitted, iris_frame, params) -> None:
    holdout = iris_frame.sample(45, random_state=0).drop(columns=[params.dataset.target])  # no labels: no accuracy
    outcome = onnx_for_candidate(fitted.pipeline, params, holdout, _reference(fitted, params))
    assert outcome.status == "passed"
    assert outcome.servable
    assert outcome.variants[0]["note"].startswith("not built: KeyError")


def test_switched_off_it_is_skipped_and_says_how_to_switch_it_on(fitted, iris_frame, params: Params) -> None:
    outcome = onnx_for_candidate(fitted.pipeline, _with_onnx(params, enabled=False), iris_frame, iris_frame)
    assert outcome.tags() == {
        "onnx.status": "skipped",
        "onnx.reason": "ONNX export is off (gate.onnx.enabled: false); served by scikit-learn only",
    }
    assert not outcome.servable


def test_without_int8_no_variant_is_built(fitted, iris_frame, params: Params) -> None:
    holdout = iris_frame.sample(45, random_state=0)
    outcome = onnx_for_candidate(fitted.pipeline, _with_onnx(params, int8=False), holdout, _reference(fitted, params))
    assert outcome.status == "passed"
    assert outcome.variants == []
