"""The fitted Pipeline as an ONNX graph, and that graph scored by ONNX Runtime.

Concept: packaging and model optimisation (C17, C54). ONNX is a file format for a computation graph of
standard operators; ONNX Runtime executes it without Python objects, scikit-learn's input validation or
pickle. skl2onnx converts the imputer, the scaler and every estimator we train; our own `DerivedFeatures`
step gets its converter here, written with the same semantics as its ``transform``:

- a product is ``Mul`` of two input columns (a missing input gives NaN, as in numpy);
- a ratio is ``Div`` guarded by ``Where(Equal(den, 0), NaN, ...)``: a zero denominator gives NaN, not inf,
  so the imputer after it fills the value exactly as in scikit-learn.

The graph takes one ``float64`` tensor named ``input`` of shape ``[rows, features]`` in contract order,
the same matrix the service already builds (`serving.predict.to_matrix`), and answers ``label`` and
``probabilities`` (no ZipMap, so the probabilities are a plain matrix). Double precision keeps the
probabilities within about 1e-12 of scikit-learn's for the linear model; a tree ensemble's input is
rounded to float32 first, as scikit-learn's trees round it (`_trees_read_float32`); the parity check
(`pipelines.onnx_parity`) measures this for every model before one is served through ONNX.

`OnnxModel` stands in for the fitted Pipeline where the service scores: ``predict_proba``, ``predict``
and ``classes_``, nothing else. The classes travel inside the file (metadata ``classes``), so a model
file is self-describing. Loading an ONNX file runs no Python code: the graph holds operators and
weights; only the standard operator domains are accepted (`check_domains`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.features import DerivedFeatures

INPUT_NAME = "input"
LABEL_OUTPUT = "label"
PROBA_OUTPUT = "probabilities"
TARGET_OPSET = 18  # ai.onnx opset; ONNX Runtime 1.20+ runs it, skl2onnx 1.18+ converts every step we use
ML_OPSET = 3  # ai.onnx.ml opset (tree ensembles in double need 3)
# Operator domains a model file may use: ONNX's own and its ML set. A custom domain would need a custom op
# library loaded into the runtime, which is native code: such a file is refused, never loaded.
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})


class OnnxExportError(RuntimeError):
    """The Pipeline could not be converted to ONNX (an unsupported step or option); the reason is in the message."""


class UnsafeOnnxError(RuntimeError):
    """An ONNX file that uses an operator domain outside the standard ones, or carries no classes."""


def _derived_shape(operator: Any) -> None:
    step: DerivedFeatures = operator.raw_operator
    rows = operator.inputs[0].get_first_dimension()
    width = len(step.feature_names_in_) + len(step.products or []) + len(step.ratios or [])
    operator.outputs[0].type = type(operator.inputs[0].type)([rows, width])  # same precision as the input


def _numpy_type(operator: Any) -> Any:
    """float64 for a double graph, float32 for the float32 variant (`export_onnx(..., precision="float")`)."""
    from skl2onnx.common.data_types import guess_numpy_type

    return guess_numpy_type(operator.inputs[0].type)


def _derived_convert(scope: Any, operator: Any, container: Any) -> None:
    """Products, then ratios, appended to the input columns: the same order as `DerivedFeatures.transform`."""
    from skl2onnx.algebra.onnx_ops import OnnxConcat, OnnxDiv, OnnxEqual, OnnxGather, OnnxMul, OnnxWhere

    step: DerivedFeatures = operator.raw_operator
    opv = container.target_opset
    dtype = _numpy_type(operator)
    names = list(step.feature_names_in_)
    X = operator.inputs[0]

    def column(name: str) -> Any:
        return OnnxGather(X, np.array([names.index(name)], dtype=np.int64), axis=1, op_version=opv)

    parts: list[Any] = [X]
    parts += [OnnxMul(column(a), column(b), op_version=opv) for a, b in step.products or []]
    for a, b in step.ratios or []:
        den = column(b)
        zero = OnnxEqual(den, np.array([0.0], dtype=dtype), op_version=opv)
        quotient = OnnxDiv(column(a), den, op_version=opv)
        parts.append(OnnxWhere(zero, np.array([np.nan], dtype=dtype), quotient, op_version=opv))
    out = OnnxConcat(*parts, axis=1, op_version=opv, output_names=operator.outputs[:1])
    out.add_to(scope, container)


def _imputer_convert(scope: Any, operator: Any, container: Any) -> None:
    """SimpleImputer (missing = NaN) in double precision: ``Where(IsNaN(X), statistics, X)``.

    skl2onnx's own converter emits the ML ``Imputer`` operator, which holds its fill values as float32 and
    which ONNX Runtime runs on float32 only; this keeps the training medians exact. A feature that was empty
    at fit time is filled with 0, as scikit-learn does with ``keep_empty_features=True``.
    """
    from skl2onnx.algebra.onnx_ops import OnnxIsNaN, OnnxWhere

    step = operator.raw_operator
    if not (isinstance(step.missing_values, float) and np.isnan(step.missing_values)):
        raise OnnxExportError(f"SimpleImputer(missing_values={step.missing_values!r}): only NaN is exported")
    opv = container.target_opset
    fill = np.where(np.isnan(step.statistics_), 0.0, step.statistics_).astype(_numpy_type(operator))
    X = operator.inputs[0]
    out = OnnxWhere(OnnxIsNaN(X, op_version=opv), fill, X, op_version=opv, output_names=operator.outputs[:1])
    out.add_to(scope, container)


def _register_converter() -> None:
    from skl2onnx import update_registered_converter

    update_registered_converter(DerivedFeatures, "MlopsLabDerivedFeatures", _derived_shape, _derived_convert)


@dataclass(frozen=True)
class ExportedModel:
    """An ONNX file's bytes and what produced it (logged with the model version)."""

    onnx_bytes: bytes
    opset: int
    converter_versions: dict[str, str]


def export_onnx(pipeline: Any, n_features: int, precision: str = "double") -> ExportedModel:
    """The fitted Pipeline as ONNX (float64 input ``input`` [rows, n_features]; outputs ``label``, ``probabilities``).

    ``precision="float"`` builds the float32 graph instead: the starting point of the quantised variants
    (`pipelines.onnx_variants`); only the double graph is served, because only it keeps scikit-learn's numbers.

    Raises:
        OnnxExportError: a step skl2onnx cannot convert, or an option it rejects; the message says which.
    """
    import onnx
    import onnxruntime
    import skl2onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from sklearn.impute import SimpleImputer

    tensor = {"double": DoubleTensorType, "float": FloatTensorType}[precision]

    _register_converter()
    try:
        model = convert_sklearn(
            pipeline,
            initial_types=[(INPUT_NAME, tensor([None, n_features]))],
            target_opset={"": TARGET_OPSET, "ai.onnx.ml": ML_OPSET},
            options={id(pipeline.steps[-1][1]): {"zipmap": False}},
            custom_conversion_functions={SimpleImputer: _imputer_convert},
        )
    except Exception as err:  # skl2onnx raises many types (RuntimeError, NotImplementedError, KeyError, ...)
        raise OnnxExportError(f"skl2onnx could not convert the pipeline: {type(err).__name__}: {err}") from err
    if precision == "double":
        _trees_read_float32(model)
    outputs = [o.name for o in model.graph.output]
    if outputs[:2] != [LABEL_OUTPUT, PROBA_OUTPUT]:
        _rename_outputs(model, outputs)
    classes = [str(c) for c in pipeline.classes_]
    meta = model.metadata_props.add()
    meta.key, meta.value = "classes", json.dumps(classes)
    versions = {"skl2onnx": skl2onnx.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
    return ExportedModel(model.SerializeToString(), TARGET_OPSET, versions)


TREE_OPS = frozenset({"TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble"})


def _trees_read_float32(model: Any) -> None:
    """Round a tree ensemble's input to float32 first, as scikit-learn's trees do, then back to double.

    scikit-learn casts X to float32 before comparing it with a node's threshold (a float64 midpoint of
    two float32 values); the double-precision ONNX tree compares the unrounded double. A value between
    the two sends a row down the other branch: without this, a random forest's probabilities differed by
    up to 0.09 and one class of 2,149 rows flipped; with it, about 5e-8 (the float32 sum of leaf values).
    """
    from onnx import TensorProto, helper

    nodes = list(model.graph.node)
    rebuilt = []
    for node in nodes:
        if node.domain == "ai.onnx.ml" and node.op_type in TREE_OPS:
            source = node.input[0]
            as_float, as_double = f"{node.name or source}_float32", f"{node.name or source}_float32_as_double"
            rebuilt.append(helper.make_node("Cast", [source], [as_float], to=TensorProto.FLOAT))
            rebuilt.append(helper.make_node("Cast", [as_float], [as_double], to=TensorProto.DOUBLE))
            node.input[0] = as_double
        rebuilt.append(node)
    if len(rebuilt) != len(nodes):
        del model.graph.node[:]
        model.graph.node.extend(rebuilt)


def _rename_outputs(model: Any, outputs: list[str]) -> None:
    """Name the two outputs ``label`` and ``probabilities`` whatever skl2onnx called them."""
    renames = dict(zip(outputs[:2], (LABEL_OUTPUT, PROBA_OUTPUT), strict=True))
    for node in model.graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
    for out in model.graph.output:
        out.name = renames.get(out.name, out.name)


def check_domains(model: Any) -> list[str]:
    """The classes stored in an ONNX model, after checking it uses only standard operator domains.

    Raises:
        UnsafeOnnxError: a custom domain (would need native code loaded into the runtime) or no classes.
    """
    domains = {op.domain for op in model.opset_import} | {node.domain for node in model.graph.node}
    foreign = sorted(domains - ALLOWED_DOMAINS)
    if foreign:
        raise UnsafeOnnxError(f"ONNX model uses operator domains {foreign}: only the standard ones are loaded")
    meta = {p.key: p.value for p in model.metadata_props}
    if "classes" not in meta:
        raise UnsafeOnnxError("ONNX model carries no 'classes' metadata: not written by mlops-lab's export")
    return [str(c) for c in json.loads(meta["classes"])]


class OnnxModel:
    """An ONNX file scored by ONNX Runtime, with the fitted Pipeline's scoring surface.

    One session per model, single-threaded inside (the service parallelises across requests, and
    intra-op threads only add hand-over cost for a few rows). ``run`` is thread-safe in ONNX Runtime.
    """

    runtime = "onnx"
    pipeline: Any = None  # the verified scikit-learn Pipeline of the same version, when loaded with it (explanations)

    def __init__(self, onnx_bytes: bytes) -> None:
        import onnx
        import onnxruntime as ort

        model = onnx.load_from_string(onnx_bytes)
        self.classes_ = np.asarray(check_domains(model), dtype=object)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: no warnings on stderr for every session
        self._session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        graph_input = self._session.get_inputs()[0]
        self.n_features_in_ = int(graph_input.shape[1])
        self._input_dtype = np.float32 if graph_input.type == "tensor(float)" else np.float64
        self.size_bytes = len(onnx_bytes)

    def predict_proba(self, values: np.ndarray) -> np.ndarray:
        matrix = np.ascontiguousarray(values, dtype=self._input_dtype)
        return np.asarray(self._session.run([PROBA_OUTPUT], {INPUT_NAME: matrix})[0], dtype=np.float64)

    def predict(self, values: np.ndarray) -> np.ndarray:
        matrix = np.ascontiguousarray(values, dtype=self._input_dtype)
        labels = self._session.run([LABEL_OUTPUT], {INPUT_NAME: matrix})[0]
        return np.asarray([str(v) for v in np.asarray(labels).ravel()], dtype=object)
