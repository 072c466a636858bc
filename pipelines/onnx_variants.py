"""Smaller variants of the exported model for edge devices: float32 and int8, with what they cost.

Concept: model optimisation (C54). The served graph is float64, because only it keeps scikit-learn's
numbers (`pipelines.onnx_parity`). For a device with little memory the same model can be exported in
float32 and then quantised: ONNX Runtime's dynamic quantisation stores the weights of ``MatMul`` and
``Gemm`` nodes as int8 and quantises their inputs on the fly. What it gains depends on the graph:

- our estimators in float32 become ML-domain operators (``LinearClassifier``, ``TreeEnsembleClassifier``,
  ``SVMClassifier``...), which hold no ``MatMul`` weight: **nothing is quantised**, and the file grows a
  little (the quantiser adds shape information). The card says so instead of claiming a saving;
- a network (an MLP: ``MatMul`` + ``Add`` + ``Relu``) is where int8 pays: weights shrink about 4×,
  at an accuracy cost the table shows (`mlops-lab demo onnx` runs one).

float16 is not built: converting a graph to float16 needs ``onnxconverter-common``, which is not a
dependency of this project; the card lists it as skipped with that reason.

Every variant is measured on the holdout: size, size against the served float64 file, accuracy and its
delta, the largest probability difference from scikit-learn, and how many nodes were quantised.
Variants are reported, never served.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.onnx_export import OnnxModel, export_onnx

QUANTISED_OPS = frozenset({"MatMulInteger", "DynamicQuantizeLinear", "QuantizeLinear", "ConvInteger", "QLinearMatMul"})
FLOAT16_SKIPPED = "not built: float16 conversion needs onnxconverter-common, which is not a dependency"


@dataclass(frozen=True)
class Variant:
    """One variant as the model card shows it (``None``: not measured)."""

    name: str
    size_bytes: int | None
    size_ratio: float | None  # size / the served float64 file's size
    accuracy: float | None  # on the holdout
    accuracy_delta: float | None  # minus the served model's holdout accuracy
    max_abs_diff: float | None  # largest |p_variant - p_sklearn| on the holdout
    quantised_ops: int
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _NoPreprocessingAdvice(logging.Filter):
    """Drop the quantiser's "consider to run pre-processing" line (shape inference: nothing to gain here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def _quiet_quantiser() -> Iterator[None]:
    advice = _NoPreprocessingAdvice()
    root = logging.getLogger()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def quantise_int8(float_bytes: bytes) -> bytes:
    """ONNX Runtime's dynamic int8 quantisation of a float32 graph (weights of MatMul/Gemm as int8)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="mlops-lab-quant-") as tmp, _quiet_quantiser():
        source, target = Path(tmp) / "float32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(float_bytes)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        return target.read_bytes()


def quantised_op_count(onnx_bytes: bytes) -> int:
    import onnx

    return sum(node.op_type in QUANTISED_OPS for node in onnx.load_from_string(onnx_bytes).graph.node)


def _measure(
    name: str, data: bytes, served_size: int, pipeline: Any, X: np.ndarray, y: np.ndarray, baseline: float, note: str
) -> Variant:
    model = OnnxModel(data)
    accuracy = float(np.mean(model.predict(X) == y))
    diff = float(np.abs(model.predict_proba(X) - np.asarray(pipeline.predict_proba(X))).max())
    quantised = quantised_op_count(data)
    return Variant(name, len(data), len(data) / served_size, accuracy, accuracy - baseline, diff, quantised, note)


def build_variants(pipeline: Any, served_size: int, X: np.ndarray, y: np.ndarray) -> list[Variant]:
    """The float32 and int8 variants of ``pipeline``, measured on ``X``/``y`` (the holdout); float16 skipped.

    A variant that cannot be built is a row saying why, never an error: variants only inform the card.
    """
    labels = np.asarray([str(v) for v in y], dtype=object)
    baseline = float(np.mean(np.asarray([str(v) for v in pipeline.predict(X)], dtype=object) == labels))
    n_features = X.shape[1]
    out: list[Variant] = []
    try:
        float_bytes = export_onnx(pipeline, n_features, precision="float").onnx_bytes
        out.append(_measure("float32", float_bytes, served_size, pipeline, X, labels, baseline, "weights as float32"))
    except Exception as err:  # skl2onnx and ONNX Runtime raise many types; the row says which
        out.append(Variant("float32", None, None, None, None, None, 0, f"not built: {type(err).__name__}: {err}"))
        float_bytes = b""
    if float_bytes:
        try:
            int8 = quantise_int8(float_bytes)
            count = quantised_op_count(int8)
            note = (
                f"{count} quantised nodes (int8 MatMul/Gemm weights)"
                if count
                else "nothing quantised: the float32 graph has no MatMul/Gemm weight (ML-domain operators only)"
            )
            out.append(_measure("int8 (dynamic)", int8, served_size, pipeline, X, labels, baseline, note))
        except Exception as err:
            out.append(Variant("int8 (dynamic)", None, None, None, None, None, 0, f"not built: {err}"))
    out.append(Variant("float16", None, None, None, None, None, 0, FLOAT16_SKIPPED))
    return out
