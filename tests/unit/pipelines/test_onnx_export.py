"""The fitted Pipeline exported to ONNX: same classes, same probabilities, only standard operators."""

from __future__ import annotations

import numpy as np
import pytest

from core.params import Params
from pipelines.fit import fit_and_evaluate
from pipelines.onnx_export import OnnxExportError, OnnxModel, UnsafeOnnxError, check_domains, export_onnx


@pytest.fixture(scope="module")
def fitted(iris_frame, params: Params):
    return fit_and_evaluate(iris_frame, params).pipeline


def _hard_rows(fitted, iris_frame, params: Params) -> np.ndarray:
    """Iris rows plus the edge cases the converter must get right: zero denominators and missing values."""
    values = iris_frame[list(params.dataset.features)].to_numpy(dtype="float64")
    zeros, missing = values.copy(), values.copy()
    zeros[:, 1] = 0.0  # sepal_width is a ratio's denominator: NaN, then the imputer's median
    zeros[::3, 0] = 0.0  # sepal_length too
    missing[::2, 2] = np.nan
    missing[1::2, 3] = np.nan
    return np.vstack([values, zeros, missing])


def test_export_of_the_linear_pipeline_matches_scikit_learn(fitted, iris_frame, params: Params) -> None:
    model = OnnxModel(export_onnx(fitted, len(params.dataset.features)).onnx_bytes)
    rows = _hard_rows(fitted, iris_frame, params)
    expected = fitted.predict_proba(rows)
    assert np.abs(model.predict_proba(rows) - expected).max() < 1e-12
    assert model.predict(rows).tolist() == [str(c) for c in fitted.predict(rows)]
    assert model.classes_.tolist() == [str(c) for c in fitted.classes_]
    assert model.n_features_in_ == len(params.dataset.features)


def test_derived_features_converter_keeps_nan_for_a_zero_denominator(fitted, params: Params) -> None:
    """Without the Where guard a zero denominator would give inf and the imputer would not fill it."""
    import onnx
    import onnxruntime as ort

    exported = onnx.load_from_string(export_onnx(fitted, len(params.dataset.features)).onnx_bytes)
    derive = next(node for node in exported.graph.node if node.op_type == "Concat")
    exported.graph.output.append(onnx.helper.make_tensor_value_info(derive.output[0], onnx.TensorProto.DOUBLE, None))
    session = ort.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"])
    row = np.array([[5.0, 0.0, 4.0, 1.0]])
    derived = session.run([derive.output[0]], {"input": row})[0]
    assert np.array_equal(np.isnan(derived), np.isnan(fitted.steps[0][1].transform(row)))
    assert np.allclose(derived, fitted.steps[0][1].transform(row), equal_nan=True)


def test_a_step_without_a_converter_is_an_export_error(iris_frame, params: Params) -> None:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    fitted = fit_and_evaluate(iris_frame, params).pipeline
    odd = Pipeline([("odd", FunctionTransformer(np.log1p)), *fitted.steps])
    with pytest.raises(OnnxExportError, match="skl2onnx could not convert"):
        export_onnx(odd, len(params.dataset.features))


def test_a_custom_operator_domain_is_refused(fitted, params: Params) -> None:
    import onnx

    model = onnx.load_from_string(export_onnx(fitted, len(params.dataset.features)).onnx_bytes)
    model.graph.node[0].domain = "com.example.native"
    with pytest.raises(UnsafeOnnxError, match=r"com\.example\.native"):
        check_domains(model)
    with pytest.raises(UnsafeOnnxError):
        OnnxModel(model.SerializeToString())


def test_a_file_without_classes_is_refused(fitted, params: Params) -> None:
    import onnx

    model = onnx.load_from_string(export_onnx(fitted, len(params.dataset.features)).onnx_bytes)
    del model.metadata_props[:]
    with pytest.raises(UnsafeOnnxError, match="classes"):
        check_domains(model)
