"""Edge variants: float32 and int8 measured honestly; float16 skipped with its reason."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.neural_network import MLPClassifier

from core.params import Params
from pipelines.fit import fit_and_evaluate
from pipelines.onnx_export import export_onnx
from pipelines.onnx_variants import FLOAT16_SKIPPED, build_variants


@pytest.fixture(scope="module")
def fitted(iris_frame, params: Params):
    return fit_and_evaluate(iris_frame, params)


def _holdout(iris_frame, params: Params) -> tuple[np.ndarray, np.ndarray]:
    rows = iris_frame.sample(45, random_state=0)
    return rows[params.dataset.feature_names].to_numpy(dtype=np.float64), rows[params.dataset.target].to_numpy()


def test_the_linear_model_has_nothing_to_quantise_and_says_so(fitted, iris_frame, params: Params) -> None:
    X, y = _holdout(iris_frame, params)
    served = len(export_onnx(fitted.pipeline, X.shape[1]).onnx_bytes)
    float32, int8, float16 = build_variants(fitted.pipeline, served, X, y)
    assert float32.name == "float32"
    assert float32.max_abs_diff is not None
    assert float32.max_abs_diff < 1e-5
    assert float32.accuracy_delta == 0.0
    assert int8.quantised_ops == 0
    assert int8.note.startswith("nothing quantised")
    assert int8.size_ratio is not None
    assert int8.size_ratio > 1.0  # the quantiser adds shape information and saves nothing: the card shows it
    assert (float16.size_bytes, float16.note) == (None, FLOAT16_SKIPPED)


def test_int8_shrinks_a_network_s_weights(fitted, iris_frame, params: Params) -> None:
    """The edge example: an MLP's MatMul weights become int8, about 4x smaller than float32."""
    X, y = _holdout(iris_frame, params)
    mlp = clone(fitted.pipeline).set_params(
        model=MLPClassifier(hidden_layer_sizes=(128, 128), max_iter=300, random_state=0)
    )
    mlp.fit(fitted.split.X_train, fitted.split.y_train)
    served = len(export_onnx(mlp, X.shape[1]).onnx_bytes)
    float32, int8, _ = build_variants(mlp, served, X, y)
    assert int8.quantised_ops > 0
    assert float32.size_bytes is not None
    assert int8.size_bytes is not None
    assert int8.size_bytes < float32.size_bytes / 2.5
    assert int8.accuracy_delta is not None
    assert abs(int8.accuracy_delta) <= 0.05  # 2 of 45 holdout rows at most
    assert int8.max_abs_diff is not None
    assert int8.max_abs_diff > float32.max_abs_diff  # the price: int8 moves probabilities more than float32
