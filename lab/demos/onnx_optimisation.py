"""Demo ``onnx`` (C54, C17, C44): the champion as an ONNX graph, checked against itself, and what int8 buys.

Trains the first model on a fresh state (its registration exports and parity-checks the ONNX graph), then
shows the version's ONNX tags, the operators our own DerivedFeatures converter emits, the parity check
per source of rows, a planted divergence (one scaler mean moved in the graph) that the check refuses, a
replaced file refused at load, and the edge variants: int8 saves nothing on our linear model and shrinks
an MLP's weights.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.mlflow_config import mlflow_client
from lab.demos.prep import ensure_champion
from pipelines.data import split_features_target
from pipelines.holdout import load_holdout
from pipelines.model_files import UntrustedModelError
from pipelines.onnx_export import OnnxModel, export_onnx
from pipelines.onnx_parity import check_parity, parity_rows
from pipelines.onnx_registry import ONNX_ARTIFACT, load_version_onnx
from pipelines.onnx_variants import build_variants
from pipelines.registry import load_version_model

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator

DERIVE_OPS = ("Gather", "Mul", "Div", "Equal", "Where", "Concat")


def _registered(n: Narrator, ctx: LabContext, version: str) -> None:
    n.step(f"Export at registration: what v{version} carries")
    tags = mlflow_client(ctx.settings).get_model_version(ctx.settings.model_name, version).tags
    keys = ("onnx.status", "onnx.artifact", "onnx_sha256", "onnx.opset", "onnx.converters", "onnx.rows_checked")
    n.table("version tags", ["tag", "value"], [[k, tags.get(k, "-")] for k in (*keys, "onnx.max_abs_diff")])
    n.say(f"onnx.reason: {tags.get('onnx.reason', '-')}")
    n.why("the file is logged with the version only because the parity check passed; the sha256 is checked at load")


def _derive_graph(n: Narrator, pipeline: Any, features: list[str]) -> bytes:
    import onnx

    n.step("Our own step, DerivedFeatures, needs its own converter: the operators it emits")
    data = export_onnx(pipeline, len(features)).onnx_bytes
    graph = onnx.load_from_string(data).graph
    concat = next(i for i, node in enumerate(graph.node) if node.op_type == "Concat")
    counts = Counter(node.op_type for node in graph.node[: concat + 1])
    n.table("nodes up to the derived matrix", ["operator", "count"], [[op, counts[op]] for op in DERIVE_OPS])
    n.say("Gather picks a column, Mul a product, Div a ratio; Equal + Where turn a zero denominator into NaN")
    n.say("(not inf), so the imputer after it fills the training median, exactly as DerivedFeatures.transform does")
    n.say("after them: " + " → ".join(dict.fromkeys(node.op_type for node in graph.node[concat + 1 :])))
    return data


def _parity(n: Narrator, pipeline: Any, model: OnnxModel, groups: dict[str, np.ndarray], tolerance: float) -> None:
    n.step(f"Parity: the same class everywhere, probabilities within {tolerance:g}")
    rows = []
    for source, matrix in groups.items():
        one = check_parity(pipeline, model, {source: matrix}, tolerance)
        rows.append([source, one.rows_checked, one.class_mismatches, f"{one.max_abs_diff:.2g}"])
    n.table("scikit-learn vs ONNX Runtime", ["rows from", "rows", "class mismatches", "max |Δp|"], rows)
    result = check_parity(pipeline, model, groups, tolerance)
    (n.ok if result.passed else n.bad)(result.reason)
    n.why("1e-5: float noise is <= 1e-7 for our estimators, a converter bug moves probabilities by >= 1e-2")


def _planted(n: Narrator, pipeline: Any, data: bytes, groups: dict[str, np.ndarray], tolerance: float) -> None:
    import onnx
    from onnx import numpy_helper

    n.step("A planted divergence: the same graph with one scaler mean moved by 0.5")
    graph = onnx.load_from_string(data)
    sub = next(node for node in graph.graph.node if node.op_type == "Sub")
    init = next(i for i in graph.graph.initializer if i.name in sub.input)
    values = numpy_helper.to_array(init).copy()
    values.flat[2] += 0.5
    init.CopyFrom(numpy_helper.from_array(values, init.name))
    result = check_parity(pipeline, OnnxModel(graph.SerializeToString()), groups, tolerance)
    (n.bad if not result.passed else n.ok)(result.reason)
    n.say("at registration this model would be registered without the ONNX file (onnx.status=diverged) and")
    n.say("served by scikit-learn: the check never rejects a model, it decides whether its graph may serve it")


def _replaced(n: Narrator, ctx: LabContext, version: str) -> None:
    n.step("A replaced file in the artifact store is refused at load (C44)")
    client = mlflow_client(ctx.settings)
    run = client.get_run(str(client.get_model_version(ctx.settings.model_name, version).run_id))
    stored = Path(run.info.artifact_uri.removeprefix("file://")) / ONNX_ARTIFACT
    original = stored.read_bytes()
    try:
        stored.write_bytes(original + b"\0")
        load_version_onnx(ctx.settings, version)
        n.bad("a replaced file loaded")
    except UntrustedModelError as err:
        n.ok(f"refused: {err}")
    finally:
        stored.write_bytes(original)
    n.why("ONNX holds no Python code, but a swapped graph answers differently: only the registered bytes load")


def _variants(n: Narrator, pipeline: Any, served: int, holdout: Any, params: Any, split: Any) -> None:
    from sklearn.base import clone
    from sklearn.neural_network import MLPClassifier

    n.step("Edge variants: float32 and int8 (ONNX Runtime dynamic quantisation), measured on the holdout")
    X, y = split_features_target(holdout, params.dataset)
    matrix, labels = X.to_numpy(dtype=np.float64), y.to_numpy()
    mlp = clone(pipeline).set_params(model=MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=200, random_state=0))
    mlp.fit(split.X_train, split.y_train)
    mlp_served = len(export_onnx(mlp, matrix.shape[1]).onnx_bytes)
    rows = []
    for label, model, size in (("champion", pipeline, served), ("MLP 64x64", mlp, mlp_served)):
        rows.append([label, "float64 (served)", size, "1.00", "-", "-", ""])
        for v in build_variants(model, size, matrix, labels):
            ratio = "-" if v.size_ratio is None else f"{v.size_ratio:.2f}"
            delta = "-" if v.accuracy_delta is None else f"{v.accuracy_delta:+.3f}"
            diff = "-" if v.max_abs_diff is None else f"{v.max_abs_diff:.2g}"
            rows.append(["", v.name, v.size_bytes or "-", ratio, delta, diff, v.note.split(":")[0]])
    n.table("variants", ["model", "variant", "bytes", "vs served", "Δ accuracy", "max |Δp|", "note"], rows)
    n.say("int8 rewrites MatMul/Gemm weights; our estimators in float32 are ML-domain operators with none, so it")
    n.say("saves nothing there (said in the model card); the MLP's weights shrink; float16 needs onnxconverter-common")


def _speed(n: Narrator, pipeline: Any, model: OnnxModel, features: list[str], row: np.ndarray) -> None:
    import pandas as pd

    n.step("One row, scored 200 times each way (median)")
    frame = pd.DataFrame(row, columns=features)

    def median_us(call: Any) -> float:
        times = []
        for _ in range(200):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return float(np.median(times) * 1e6)

    sk, ox = median_us(lambda: pipeline.predict_proba(frame)), median_us(lambda: model.predict_proba(row))
    n.table(
        "predict_proba, one row",
        ["path", "µs"],
        [["scikit-learn Pipeline", f"{sk:.0f}"], ["ONNX Runtime", f"{ox:.0f}"]],
    )
    n.why("the Pipeline re-validates its input at every step; the graph is one native call")


def run(n: Narrator, ctx: LabContext) -> None:
    from pipelines.fit import split_data

    n.title("ONNX and model optimisation", "C54 C17 C44")
    version = ensure_champion(ctx, n)
    params, knobs = ctx.params, ctx.params.gate.onnx
    features = params.dataset.feature_names
    _registered(n, ctx, version)
    pipeline = load_version_model(ctx.settings, version, features)
    model = load_version_onnx(ctx.settings, version, features)
    if model is None:
        n.bad(f"v{version} has no ONNX file: see onnx.reason above")
        return
    data = _derive_graph(n, pipeline, features)
    holdout = load_holdout(ctx.settings, params).frame
    from pipelines.data import load_data

    raw = load_data(ctx.settings.resolve(params.dataset.path)).frame
    groups = parity_rows(params, holdout, raw, knobs.rows_per_kind, seed=params.train.seed)
    _parity(n, pipeline, model, groups, knobs.tolerance)
    _planted(n, pipeline, data, groups, knobs.tolerance)
    _replaced(n, ctx, version)
    _variants(n, pipeline, len(data), holdout, params, split_data(raw, params))
    _speed(n, pipeline, model, features, groups["holdout"][:1])
    n.code(
        "pipelines/onnx_export.py",
        "pipelines/onnx_parity.py",
        "pipelines/onnx_registry.py",
        "pipelines/onnx_variants.py",
    )
