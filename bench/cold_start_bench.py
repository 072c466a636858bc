"""Benchmark section "cold-start": what a new serverless execution environment pays before its first answer.

Concept: serverless deployment (C55). A Lambda environment is a fresh process: it imports the handler,
runs the app's lifespan (registry lookup, model load, prediction log opened) and only then answers; the
environments after it answer warm. Every sample here is such a fresh process (`PROBES`, standard library
only until the clock starts, so nothing is imported early), on a state folder with one registered
champion:

- the handler: import of ``serving.lambda_handler``, the lifespan start (`LambdaApp`), the first request
  and the median of warm requests, each request an API Gateway HTTP API event from
  tests/fixtures/api_gateway_v2/ through Mangum;
- the model alone, scikit-learn path against ONNX path: the libraries' import, then model load and the
  first one-row score, both from local files. The sklearn path takes the registered version as the
  service does (`pipelines.registry.load_version_model`, split here: registry lookup and artifact
  download, timed apart, then the verified skops load); the ONNX path builds an ONNX Runtime session
  with `pipelines.onnx_export.OnnxModel` from the same model's ONNX bytes (exported by the ONNX core and
  read from a local file). The handler rows run the service's default runtime (``MLOPS_SERVING_RUNTIME=auto``):
  the Pipeline is loaded and verified first, then the version's parity-checked ONNX file, which then scores.

``measure_cold_start`` is the ``cold-start`` section of ``mlops-lab bench``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.harness import BenchEnv, Row, Section, Timing

REPEATS = 5  # fresh processes per probe
WARM_REQUESTS = 5
PROBE_TIMEOUT_S = 180.0
EVENTS = Path("tests/fixtures/api_gateway_v2")

_HANDLER = """
import json, statistics, sys, time
t0 = time.perf_counter()
import serving.lambda_handler as handler
t1 = time.perf_counter()
event = json.loads(open(sys.argv[1], encoding="utf-8").read())
prefix, warm_n = sys.argv[2], int(sys.argv[3])
class Context:
    def get_remaining_time_in_millis(self):
        return 30_000
app = handler.LambdaApp(handler.Settings())
t2 = time.perf_counter()
def call(request_id):
    event["headers"]["x-request-id"] = request_id
    start = time.perf_counter()
    answer = app(event, Context())
    if answer["statusCode"] != 200:
        raise SystemExit(f"status {answer['statusCode']}: {answer['body'][:300]}")
    return time.perf_counter() - start
first = call(prefix + "-first")
warm = [call(f"{prefix}-warm-{i}") for i in range(warm_n)]
app.close()
print(json.dumps({"import": t1 - t0, "init": t2 - t1, "first": first, "warm": statistics.median(warm)}))
"""
_SKLEARN = """
import json, sys, time
t0 = time.perf_counter()
import numpy, sklearn, mlflow
from pathlib import Path
from mlflow.artifacts import download_artifacts
from core.mlflow_config import mlflow_client
from core.settings import Settings
from core.startup import configure_environment
from pipelines.model_files import load_verified_model
t1 = time.perf_counter()
settings = Settings()
configure_environment(settings)
client = mlflow_client(settings)
version = client.get_model_version(settings.model_name, sys.argv[1])
where = client.get_model_version_download_uri(settings.model_name, sys.argv[1])
local = Path(download_artifacts(artifact_uri=where, tracking_uri=settings.mlflow_tracking_uri))
t2 = time.perf_counter()
model = load_verified_model(local, version.tags.get("model_sha256"), "bench", None)
t3 = time.perf_counter()
model.predict_proba(numpy.asarray([json.loads(sys.argv[2])], dtype=float))
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "registry": t2 - t1, "load": t3 - t2, "first": t4 - t3}))
"""
_ONNX = """
import json, sys, time
t0 = time.perf_counter()
import numpy, onnx, onnxruntime
from pipelines.onnx_export import OnnxModel
t1 = time.perf_counter()
model = OnnxModel(open(sys.argv[1], "rb").read())
t2 = time.perf_counter()
model.predict_proba(numpy.asarray([json.loads(sys.argv[2])], dtype=float))
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first": t3 - t2}))
"""
PROBES = {"handler": _HANDLER, "sklearn": _SKLEARN, "onnx": _ONNX}


def run_probe(probe: str, args: Sequence[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    """Run one probe in a fresh Python process and return its timings; fail loudly if it fails."""
    done = subprocess.run(
        [sys.executable, "-c", PROBES[probe], *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold-start probe {probe!r} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    timings: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return timings


def collect(samples: Sequence[dict[str, float]], key: str) -> Timing:
    """One timing from the same key of several probe runs."""
    return Timing(tuple(sample[key] for sample in samples))


def total(samples: Sequence[dict[str, float]], keys: Sequence[str]) -> Timing:
    """The sum of several keys per run: e.g. import + start + first request = a cold start."""
    return Timing(tuple(sum(sample[k] for k in keys) for sample in samples))


def _prepare(env: BenchEnv, state: Path) -> tuple[dict[str, str], str, Path, list[float]]:
    """A state with one registered champion, its ONNX bytes on disk, and the environment for the probes."""
    from core.startup import configure_runtime
    from pipelines.data import ingest
    from pipelines.onnx_export import export_onnx
    from pipelines.registry import load_version_model
    from pipelines.training_steps import run_training

    settings = env.settings.model_copy(update={"state_dir": state, "tracking_uri": None, "prediction_log_url": None})
    configure_runtime(settings)
    data = ingest(env.params.dataset, env.params.ingest, state / "iris.csv")
    result = run_training(settings, env.params, data)
    if result.status != "registered":
        raise RuntimeError(f"cold-start bench: training did not register a model ({result.status})")
    version = "1"
    features = env.params.dataset.feature_names
    onnx_file = state / "champion.onnx"
    onnx_file.write_bytes(export_onnx(load_version_model(settings, version), len(features)).onnx_bytes)
    probe_env = {
        **os.environ,
        "MLOPS_PROJECT_DIR": str(settings.project_dir),
        "MLOPS_STATE_DIR": str(state),
        "MLOPS_ACCESS_LOG": "false",
        "MLOPS_POLL_INTERVAL_S": "3600",
        "MLOPS_STARTUP_MODEL_WAIT_S": "120",  # measure the load, however slow the machine, never a timeout
        "MLOPS_FEEDBACK_KEY": "bench-feedback-key-example",
    }
    for name in ("MLOPS_TRACKING_URI", "MLOPS_REGISTRY_URI", "MLOPS_PREDICTION_LOG_URL", "MLOPS_PARAMS_FILE"):
        probe_env.pop(name, None)
    return probe_env, version, onnx_file, fixture_row(settings.project_dir, features)


def fixture_row(project: Path, features: Sequence[str]) -> list[float]:
    """The feature values of the predict fixture event, in contract order."""
    body: dict[str, Any] = json.loads(json.loads((project / EVENTS / "predict.json").read_text())["body"])
    return [float(body[name]) for name in features]


def measure_cold_start(env: BenchEnv, repeats: int = REPEATS, warm_requests: int = WARM_REQUESTS) -> Section:
    """``repeats`` fresh processes of each probe, interleaved (handler, sklearn, onnx, handler, ...)."""
    project = env.settings.project_dir
    with tempfile.TemporaryDirectory(prefix="mlops-lab-bench-cold-") as tmp:
        env.say("[cold-start] training one champion on a fresh state ...")
        probe_env, version, onnx_file, row = _prepare(env, Path(tmp) / "state")
        event, features = str(project / EVENTS / "predict.json"), json.dumps(row)
        runs: dict[str, list[dict[str, float]]] = {"handler": [], "sklearn": [], "onnx": []}
        calls: dict[str, Callable[[int], dict[str, float]]] = {
            "handler": lambda i: run_probe("handler", [event, f"bench-{i}", str(warm_requests)], probe_env, project),
            "sklearn": lambda _: run_probe("sklearn", [version, features], probe_env, project),
            "onnx": lambda _: run_probe("onnx", [str(onnx_file), features], probe_env, project),
        }
        for i in range(repeats):
            env.say(f"[cold-start] fresh processes, round {i + 1}/{repeats} ...")
            for name, call in calls.items():
                runs[name].append(call(i))
    return cold_start_section(runs, repeats, warm_requests)


def cold_start_section(runs: dict[str, list[dict[str, float]]], repeats: int, warm_requests: int) -> Section:
    """The report's table from the probes' timings (pure: unit-tested on made-up figures)."""
    handler, sklearn, onnx = runs["handler"], runs["sklearn"], runs["onnx"]
    warm = collect(handler, "warm")
    cold = total(handler, ("import", "init", "first"))
    rows = [
        Row("cold start: import + lifespan + first request", "warm request, same environment",
            "new environment", warm, cold),
        Row("import `serving.lambda_handler`", "—", "fresh process", None, collect(handler, "import")),
        Row("lifespan start: registry, model load, log opened", "—", "`LambdaApp(Settings())`", None,
            collect(handler, "init")),
        Row("first request after the start", "warm request", "first request", warm, collect(handler, "first")),
        Row("scoring libraries imported", "scikit-learn path (sklearn, mlflow)", "ONNX path (onnx, onnxruntime)",
            collect(sklearn, "import"), collect(onnx, "import")),
        Row("model load + first one-row score, from local files", "scikit-learn path (skops, verified)",
            "ONNX path (OnnxModel from bytes)", total(sklearn, ("load", "first")), total(onnx, ("load", "first"))),
        Row("registry lookup + artifact download (before either load)", "—", "MLflow client, SQLite store", None,
            collect(sklearn, "registry")),
    ]  # fmt: skip
    share = cold.median and collect(handler, "import").median / cold.median
    notes = [
        f"Every sample is a new Python process ({repeats} per probe, interleaved); the handler answers the "
        f"fixture event tests/fixtures/api_gateway_v2/predict.json through Mangum, warm = median of "
        f"{warm_requests} requests after the first. The import is {share:.0%} of the cold start here.",
        "The model-load rows time each path alone from local files (`OnnxModel` over the champion's exported "
        "bytes); the handler rows run the service's default runtime (`MLOPS_SERVING_RUNTIME=auto`): the "
        "Pipeline is loaded and verified, then the version's parity-checked ONNX file, which scores.",
        "The registry here is SQLite with artifacts on local disk; on Lambda it is an MLflow server and an "
        "object store over the network, and a function's CPU share follows its memory size (one full vCPU "
        "at 1,769 MB), so read the ratios, not the absolute times.",
    ]
    return Section(
        title="Serverless cold start",
        intro=(
            "What a new execution environment pays before its first answer, against a warm request in the same "
            "environment; and loading the model on the scikit-learn path against the ONNX path."
        ),
        rows=rows,
        notes=notes,
    )
