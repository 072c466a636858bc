"""Standard protocols against a real registry: MLflow ``/invocations`` and Open Inference Protocol V2.

The MLflow answers are compared with ``mlflow.pyfunc`` on the same rows; the V2 endpoints are
driven by the real ``tritonclient`` against a real uvicorn server on a free loopback port. Every app here
runs twice: on ONNX Runtime (the registered versions carry a parity-checked ONNX file, and the default
``MLOPS_SERVING_RUNTIME=auto`` serves it) and forced onto the scikit-learn Pipeline. Labels must be equal;
probabilities within `PROBA_TOLERANCE` of scikit-learn's (double precision through the whole graph).
"""

from __future__ import annotations

import json
import struct
import threading
import time
from collections.abc import Iterator
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient

from core.mlflow_config import configure_mlflow
from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.training_steps import load_data, run_training
from serving.app import create_app
from serving.server import bind_tcp_socket

pytestmark = [pytest.mark.integration, pytest.mark.slow]
JSON, CSV = {"Content-Type": "application/json"}, {"Content-Type": "text/csv"}
PROBA_TOLERANCE = {"onnx": 1e-9, "sklearn": 1e-12}  # vs scikit-learn's predict_proba, absolute
SERVING_RUNTIME = {"onnx": "auto", "sklearn": "sklearn"}  # the setting that gives each runtime


@pytest.fixture(scope="module", params=["onnx", "sklearn"])
def runtime(request: pytest.FixtureRequest) -> str:
    """The runtime the apps of this module score with (each test runs on both)."""
    return str(request.param)


def _app(registry, params: Params, runtime: str) -> Any:
    return create_app(registry[0].model_copy(update={"serving_runtime": SERVING_RUNTIME[runtime]}), params)


def _assert_runtime(ready: dict[str, Any], runtime: str) -> None:
    """The champion and the challenger really score with ``runtime`` (not a silent fallback)."""
    assert {alias: m["runtime"] for alias, m in ready["models"].items()} == {"champion": runtime, "challenger": runtime}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> tuple[Settings, pd.DataFrame]:
    root = tmp_path_factory.mktemp("protocols")
    settings = make_settings(root / "state", poll_interval_s=3600)
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(settings, params, data).status == "registered"
    rows = load_data(data).frame[params.dataset.feature_names].iloc[::15].reset_index(drop=True)  # all 3 classes
    return settings, rows


@pytest.fixture(scope="module")
def client(registry, params: Params, runtime: str) -> Iterator[TestClient]:
    with TestClient(_app(registry, params, runtime)) as test_client:
        _assert_runtime(test_client.get("/readyz").json(), runtime)
        yield test_client


@pytest.fixture(scope="module")
def pyfunc_predictions(registry) -> list[str]:
    import mlflow

    settings, rows = registry
    configure_mlflow(settings)  # the fluent API below reads this store
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
    return [str(v) for v in model.predict(rows)]


def _bodies(rows: pd.DataFrame) -> dict[str, tuple[dict[str, str], bytes | dict]]:
    split = {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}
    records = rows.to_dict("records")
    return {
        "dataframe_split": (JSON, {"dataframe_split": split}),
        "dataframe_split+index+params": (JSON, {"dataframe_split": {**split, "index": list(rows.index)}, "params": {}}),
        "dataframe_records": (JSON, {"dataframe_records": records}),
        "instances": ({"Content-Type": "application/json; charset=utf-8"}, {"instances": records}),
        "inputs-columnar": (JSON, {"inputs": rows.to_dict("list")}),
        "inputs-reordered-extra-column": (
            JSON,
            {"inputs": [{"note": "x", **dict(reversed(r.items()))} for r in records]},
        ),
        "csv": (CSV, rows.to_csv(index=False).encode()),
    }


FORMATS = list(_bodies(pd.DataFrame({"a": [1.0]})))


@pytest.mark.parametrize("fmt", FORMATS)
def test_invocations_equal_mlflow_pyfunc(client: TestClient, registry, pyfunc_predictions: list[str], fmt: str) -> None:
    headers, body = _bodies(registry[1])[fmt]
    response = client.post(
        "/invocations", headers=headers, **({"json": body} if isinstance(body, dict) else {"content": body})
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": pyfunc_predictions}
    assert set(pyfunc_predictions) == {"setosa", "versicolor", "virginica"}
    assert (response.headers["x-model-version"], response.headers["x-arm"]) == ("1", "champion")


ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
BAD = [
    ("two-keys", b'{"dataframe_records": [], "inputs": []}', "BAD_REQUEST", "exactly one of"),
    ("no-key", b'{"data": [[5.1, 3.5, 1.4, 0.2]]}', "BAD_REQUEST", "exactly one of"),
    ("malformed-json", b'{"dataframe_records": [', "BAD_REQUEST", "malformed JSON"),
    ("not-an-object", b"[1, 2]", "BAD_REQUEST", "exactly one of"),
    ("list-of-lists", b'{"inputs": [[5.1, 3.5, 1.4, 0.2]]}', "BAD_REQUEST", "named columns"),
    ("ragged-split", b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2, 3]]}}', "BAD_REQUEST", "table"),
    ("missing-column", b'{"dataframe_records": [{"sepal_length": 5.1}]}', "INVALID_PARAMETER_VALUE", "petal_width"),
    ("string-value", b'{"inputs": {"sepal_length": ["x"], "sepal_width": [3.5], "petal_length": [1.4], '
     b'"petal_width": [0.2]}}', "INVALID_PARAMETER_VALUE", "sepal_length"),
    ("bool-value", b'{"dataframe_records": [{"sepal_length": true, "sepal_width": 3.5, "petal_length": 1.4, '
     b'"petal_width": 0.2}]}', "INVALID_PARAMETER_VALUE", "sepal_length"),
    ("null-value", b'{"dataframe_records": [{"sepal_length": null, "sepal_width": 3.5, "petal_length": 1.4, '
     b'"petal_width": 0.2}]}', "INVALID_PARAMETER_VALUE", "sepal_length"),
    ("no-rows", b'{"dataframe_records": []}', "INVALID_PARAMETER_VALUE", "rows"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "code", "needle"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_invocations_client_errors_are_mlflow_400s(client: TestClient, body: bytes, code: str, needle: str) -> None:
    response = client.post("/invocations", content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["error_code"] == code
    assert needle in response.json()["message"]


def test_deeply_nested_json_on_invocations_is_a_400_not_a_500(client: TestClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000  # the stdlib parser's recursion limit, not a server fault
    response = client.post("/invocations", content=deep, headers=JSON)
    assert response.status_code == 400
    body = response.json()
    assert (body["error_code"], body["message"]) == ("BAD_REQUEST", "malformed JSON: nested too deeply")
    assert (body["error"], body["detail"]) == (body["message"], [])  # the project's keys beside MLflow's


def test_invocations_csv_errors_and_media_types(client: TestClient) -> None:
    empty = client.post("/invocations", content=b"", headers=CSV)
    text = client.post(
        "/invocations", content=b"sepal_length,sepal_width,petal_length,petal_width\nx,3,1,0.2\n", headers=CSV
    )
    assert (empty.status_code, empty.json()["error_code"]) == (400, "BAD_REQUEST")
    assert (text.status_code, text.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    body = b'{"dataframe_records": [{"sepal_length": 5.1}]}'
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/json; charset=latin-1"}, {}):
        response = client.post("/invocations", content=body, headers=headers)  # {}: no Content-Type at all
        assert response.status_code == 415, headers
        assert "application/json or text/csv" in response.json()["message"]


def test_ping_health_version(client: TestClient) -> None:
    assert client.get("/ping").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/version").text == package_version("mlflow")


def test_protocols_answer_503_before_a_model_exists(tmp_path: Path, make_settings, params: Params) -> None:
    with TestClient(create_app(make_settings(tmp_path / "empty", poll_interval_s=3600), params)) as empty:
        assert empty.get("/ping").status_code == 503
        assert empty.get("/v2/health/live").json() == {"live": True}
        assert empty.get("/v2/health/ready").status_code == 503
        assert empty.get("/v2/models/iris-classifier/ready").json() == {"name": "iris-classifier", "ready": False}
        infer = {"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}
        assert empty.post("/v2/models/iris-classifier/infer", json=infer).status_code == 503
        assert empty.post("/invocations", json={"dataframe_records": [ROW]}).status_code == 503


# ---- Open Inference Protocol V2 through tritonclient, against a real uvicorn ----------------------


@pytest.fixture(scope="module")
def server_url(registry, params: Params, runtime: str) -> Iterator[str]:
    sock = bind_tcp_socket("127.0.0.1", 0)  # port 0: the kernel picks a free port, no race
    url = f"127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(_app(registry, params, runtime), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while True:  # readiness poll, bounded by the deadline
        try:
            if httpx.get(f"http://{url}/v2/health/ready").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert thread.is_alive(), "the server thread died during start-up"
        assert time.monotonic() < deadline, "server did not become ready within 60 s"
        time.sleep(0.05)
    _assert_runtime(httpx.get(f"http://{url}/readyz").json(), runtime)
    yield url
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


@pytest.fixture(scope="module")
def triton(server_url: str):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=server_url)
    yield client
    client.close()


def _models(registry) -> dict[str, object]:
    import mlflow

    settings, _ = registry
    configure_mlflow(settings)  # the fluent API below reads this store
    return {v: mlflow.sklearn.load_model(f"models:/{settings.model_name}/{v}") for v in ("1", "2")}


def test_mlflow_scoring_client_over_real_http(server_url: str, registry, pyfunc_predictions: list[str]) -> None:
    """MLflow's own scoring client (what `mlflow models predict` uses on a served model), unchanged."""
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    host, port = server_url.split(":")
    scoring = ScoringServerClient(host, int(port))
    scoring.wait_server_ready(timeout=30)
    answer = scoring.invoke(registry[1])  # a DataFrame: the client sends dataframe_split
    assert [str(v) for v in answer["predictions"]] == pyfunc_predictions
    assert scoring.get_version() == package_version("mlflow")


def test_oip_health_and_metadata(triton, server_url: str) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.get_server_metadata()["name"] == "mlops-lab"
    assert triton.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    assert triton.is_model_ready("iris-classifier")
    assert triton.is_model_ready("iris-classifier", "2")
    assert not triton.is_model_ready("iris-classifier", "99")
    meta = triton.get_model_metadata("iris-classifier")
    assert meta["versions"] == ["1", "2"]
    assert meta["inputs"] == [{"name": "features", "datatype": "FP64", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]
    assert httpx.get(f"http://{server_url}/v2/models/nope").status_code == 404


def test_oip_infer_binary_fp64_routes_and_echoes_the_request_id(triton, registry, runtime: str) -> None:
    import tritonclient.http as httpclient

    rows = registry[1].to_numpy(dtype="float64")
    features = httpclient.InferInput("features", list(rows.shape), "FP64")
    features.set_data_from_numpy(rows)  # binary tensor extension, tritonclient's default
    result = triton.infer("iris-classifier", [features], request_id="req-42")
    response = result.get_response()
    assert (response["id"], response["model_version"], response["parameters"]["arm"]) == ("req-42", "1", "champion")
    champion = _models(registry)["1"]
    frame = registry[1]
    labels = result.as_numpy("label")  # binary outputs (tritonclient's default): BYTES come back as bytes
    assert [v.decode() for v in labels] == [str(v) for v in champion.predict(frame)]  # type: ignore[attr-defined]
    expected = champion.predict_proba(frame)  # type: ignore[attr-defined]
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=0, atol=PROBA_TOLERANCE[runtime])


def test_oip_infer_json_fp32_pinned_version_and_selected_output(triton, registry) -> None:
    import tritonclient.http as httpclient

    rows = registry[1].to_numpy(dtype="float32")
    features = httpclient.InferInput("features", list(rows.shape), "FP32")
    features.set_data_from_numpy(rows, binary_data=False)
    wanted = [httpclient.InferRequestedOutput("probabilities", binary_data=False)]
    result = triton.infer("iris-classifier", [features], model_version="2", outputs=wanted)
    assert result.get_response()["model_version"] == "2"
    assert result.as_numpy("label") is None
    proba = result.as_numpy("probabilities")
    assert proba.shape == (len(rows), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("batch", [1, 10])
def test_oip_binary_outputs_through_tritonclient_equal_the_json_answer(triton, registry, batch: int) -> None:
    import tritonclient.http as httpclient

    rows = registry[1].to_numpy(dtype="float64")[:batch]

    def infer(binary: bool) -> Any:
        features = httpclient.InferInput("features", list(rows.shape), "FP64")
        features.set_data_from_numpy(rows, binary_data=binary)
        outputs = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in ("label", "probabilities")]
        return triton.infer("iris-classifier", [features], model_version="1", outputs=outputs)

    as_bytes, as_json = infer(binary=True), infer(binary=False)
    for output in as_bytes.get_response()["outputs"]:  # sent as raw bytes, not as JSON data
        assert "data" not in output, output
        assert output["parameters"]["binary_data_size"] > 0, output
    assert all("data" in output for output in as_json.get_response()["outputs"])
    assert [v.decode() for v in as_bytes.as_numpy("label")] == list(as_json.as_numpy("label"))
    np.testing.assert_array_equal(as_bytes.as_numpy("probabilities"), as_json.as_numpy("probabilities"))
    assert as_bytes.as_numpy("probabilities").shape == (batch, 3)


def test_oip_binary_output_layout_by_hand(server_url: str, registry) -> None:
    """Per the binary tensor data extension, without tritonclient: the JSON, its length in a header, then the
    bytes of each binary output in order; an output's own binary_data overrides the request's default."""
    rows = registry[1].to_numpy(dtype="float64")[:3]
    body = {
        "inputs": [{"name": "features", "shape": [3, 4], "datatype": "FP64", "data": rows.ravel().tolist()}],
        "parameters": {"binary_data_output": True},
        "outputs": [{"name": "label"}, {"name": "probabilities", "parameters": {"binary_data": False}}],
    }
    url = f"http://{server_url}/v2/models/iris-classifier/versions/1/infer"
    response = httpx.post(url, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    split = int(response.headers["inference-header-content-length"])
    header, raw = json.loads(response.content[:split]), response.content[split:]
    label, probabilities = header["outputs"]
    assert label["parameters"]["binary_data_size"] == len(raw)
    assert "data" not in label
    assert len(probabilities["data"]) == 9  # JSON, as its own parameter asked
    texts, offset = [], 0
    while offset < len(raw):  # BYTES: a 4-byte little-endian length, then the UTF-8 text
        (length,) = struct.unpack_from("<I", raw, offset)
        texts.append(raw[offset + 4 : offset + 4 + length].decode())
        offset += 4 + length
    plain = httpx.post(url, json={"inputs": body["inputs"]}).json()  # no parameters: all JSON, as before
    assert texts == plain["outputs"][0]["data"]
    assert probabilities["data"] == plain["outputs"][1]["data"]


@pytest.mark.parametrize(
    ("parameters", "outputs", "field"),
    [
        ({"binary_data_output": "yes"}, None, "parameters.binary_data_output"),
        ({}, [{"name": "label", "parameters": {"binary_data": 1}}], "outputs.0.parameters.binary_data"),
        ({}, [{"name": "probabilities", "parameters": {"classification": 2}}], "outputs.0.parameters.classification"),
        (
            {"binary_data_output": True},
            [{"name": "label"}, {"name": "label"}],
            "outputs.1.name",
        ),  # found by the fuzz demo
    ],
    ids=["request-flag-not-bool", "output-flag-not-bool", "classification", "same-output-twice"],
)
def test_oip_refuses_binary_parameters_it_cannot_honour(
    server_url: str, parameters: dict[str, Any], outputs: list[dict[str, Any]] | None, field: str
) -> None:
    body: dict[str, Any] = {
        "inputs": [{"name": "f", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]
    }
    body |= {"parameters": parameters} | ({"outputs": outputs} if outputs else {})
    response = httpx.post(f"http://{server_url}/v2/models/iris-classifier/infer", json=body)
    assert response.status_code == 400
    assert field in response.json()["error"]
    assert [d["field"] for d in response.json()["detail"]] == [field]


@pytest.mark.parametrize(
    ("model", "version", "shape", "datatype", "status", "needle"),
    [
        ("nope", "", [1, 4], "FP64", "404", "unknown model"),
        ("iris-classifier", "99", [1, 4], "FP64", "404", "no loaded version"),
        ("iris-classifier", "", [1, 3], "FP64", "400", "shape"),
        ("iris-classifier", "", [1, 4], "INT32", "400", "datatype"),
    ],
    ids=["unknown-model", "unknown-version", "wrong-shape", "wrong-datatype"],
)
def test_oip_errors(
    triton, model: str, version: str, shape: list[int], datatype: str, status: str, needle: str
) -> None:
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    tensor = httpclient.InferInput("features", shape, datatype)
    dtype = "int32" if datatype == "INT32" else "float64"
    tensor.set_data_from_numpy(np.ones(shape, dtype=dtype), binary_data=False)
    with pytest.raises(InferenceServerException) as raised:
        triton.infer(model, [tensor], model_version=version)
    assert raised.value.status() == status
    assert needle in raised.value.message()


def test_oip_malformed_bodies_are_400(server_url: str) -> None:
    url = f"http://{server_url}/v2/models/iris-classifier/infer"
    broken = httpx.post(url, content=b'{"inputs": [', headers=JSON)
    strings = httpx.post(url, json={"inputs": [{"name": "f", "shape": [1, 4], "datatype": "FP64", "data": ["a"] * 4}]})
    short = httpx.post(url, json={"inputs": [{"name": "f", "shape": [2, 4], "datatype": "FP64", "data": [1.0] * 4}]})
    for response in (broken, strings, short):
        assert response.status_code == 400
        assert response.json()["error"]
