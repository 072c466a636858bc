"""The parity check: the rows it runs on, and that it tells an agreeing graph from a diverging one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.params import Params
from pipelines.fit import fit_and_evaluate
from pipelines.onnx_export import OnnxModel, export_onnx
from pipelines.onnx_parity import DEFAULT_TOLERANCE, check_parity, edge_rows, parity_rows

ROWS_PER_KIND = 200


def _with_estimator(params: Params, estimator: str) -> Params:
    hyperparams = params.train.hyperparams if estimator == "logistic_regression" else {}
    train = params.train.model_copy(update={"estimator": estimator, "hyperparams": hyperparams})
    return params.model_copy(update={"train": train})


@pytest.fixture(scope="module")
def groups(iris_frame: pd.DataFrame, params: Params) -> dict[str, np.ndarray]:
    holdout = iris_frame.sample(45, random_state=0)
    return parity_rows(params, holdout, iris_frame, ROWS_PER_KIND, seed=1)


def test_the_rows_cover_the_holdout_every_valid_batch_kind_and_the_edges(groups, params: Params) -> None:
    assert list(groups) == ["holdout", "clean", "concept-shift", "covariate-shift", "prior-shift", "edge"]
    assert len(groups["holdout"]) == 45
    assert all(len(groups[kind]) == ROWS_PER_KIND for kind in ("clean", "covariate-shift", "prior-shift"))
    edge = groups["edge"]
    names = params.dataset.feature_names
    low = [params.dataset.features[f].min for f in names]
    high = [params.dataset.features[f].max for f in names]
    corners = {tuple(row) for row in edge}
    assert tuple(low) in corners
    assert tuple(high) in corners
    assert len([r for r in corners if all(v in (lo, hi) for v, lo, hi in zip(r, low, high, strict=True))]) == 16
    for _, denominator in params.features.ratios:  # every ratio meets a zero denominator
        assert (edge[:, names.index(denominator)] == 0.0).sum() == 3
    assert not np.isnan(edge).any()  # the iris contract forbids missing values


def test_edge_rows_hold_missing_values_when_the_contract_allows_them(params: Params) -> None:
    dataset = params.dataset.model_copy(update={"allow_missing": True})
    edge = edge_rows(params.model_copy(update={"dataset": dataset}))
    missing = edge[np.isnan(edge).any(axis=1)]
    assert len(missing) == len(params.dataset.feature_names)
    assert (np.isnan(missing).sum(axis=1) == 1).all()  # each feature missing alone


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "svc", "knn"])
def test_every_estimator_we_train_passes_parity(estimator: str, iris_frame, params: Params, groups) -> None:
    """The forest passes only because its input is rounded to float32 as scikit-learn's trees do."""
    pipeline = fit_and_evaluate(iris_frame, _with_estimator(params, estimator)).pipeline
    model = OnnxModel(export_onnx(pipeline, len(params.dataset.feature_names)).onnx_bytes)
    result = check_parity(pipeline, model, groups, DEFAULT_TOLERANCE)
    assert result.passed, result.reason
    assert result.class_mismatches == 0
    assert result.rows_checked == sum(len(g) for g in groups.values())
    assert result.max_abs_diff < 1e-6


def _tampered(pipeline, params: Params) -> OnnxModel:
    """The exported graph with one scaler mean moved by 0.5: what a converter bug looks like."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(export_onnx(pipeline, len(params.dataset.feature_names)).onnx_bytes)
    sub = next(node for node in model.graph.node if node.op_type == "Sub")
    init = next(i for i in model.graph.initializer if i.name in sub.input)
    values = numpy_helper.to_array(init).copy()
    values.flat[2] += 0.5
    init.CopyFrom(numpy_helper.from_array(values, init.name))
    return OnnxModel(model.SerializeToString())


def test_a_tampered_graph_is_reported_as_diverged(iris_frame, params: Params, groups) -> None:
    pipeline = fit_and_evaluate(iris_frame, params).pipeline
    result = check_parity(pipeline, _tampered(pipeline, params), groups, DEFAULT_TOLERANCE)
    assert not result.passed
    assert result.max_abs_diff > 1e-3
    assert result.reason.startswith("diverged on")
    assert result.worst_source in groups


def test_the_tolerance_decides(iris_frame, params: Params, groups) -> None:
    """The SVC agrees to about 2e-8: within 1e-5, not within 1e-12."""
    pipeline = fit_and_evaluate(iris_frame, _with_estimator(params, "svc")).pipeline
    model = OnnxModel(export_onnx(pipeline, len(params.dataset.feature_names)).onnx_bytes)
    strict = check_parity(pipeline, model, groups, 1e-12)
    assert not strict.passed
    assert strict.class_mismatches == 0
    assert 1e-12 < strict.max_abs_diff < DEFAULT_TOLERANCE


def test_no_rows_is_not_a_pass(iris_frame, params: Params) -> None:
    pipeline = fit_and_evaluate(iris_frame, params).pipeline
    model = OnnxModel(export_onnx(pipeline, len(params.dataset.feature_names)).onnx_bytes)
    result = check_parity(pipeline, model, {"holdout": np.empty((0, 4))}, DEFAULT_TOLERANCE)
    assert not result.passed
    assert result.reason == "parity not checked: no rows"
