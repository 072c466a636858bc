"""A real Prometheus with our rules, scraping a real `mlops-lab serve`, fires the drift alert on drift.

End to end on loopback: clean traffic, then covariate-shifted traffic, goes through the API into the
prediction log; the real data drift check (Evidently) runs on each logged window and saves its
finding to the shared database; the serving poller exports it on /metrics; Prometheus (Debian's
package, 1 s scrape and evaluation intervals, monitoring/prometheus/alerts.yml unchanged) evaluates
the rules. The test asserts ``DataDriftDetected`` is evaluated and silent while the finding says
"ok", and firing, with the drifted share in its summary, after the shifted window. Every wait is a
poll with a deadline; both processes are stopped (SIGTERM, then SIGKILL) whatever happens.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.system_tools import system_tool

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "monitoring/prometheus/alerts.yml"
ALERT = "DataDriftDetected"
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str, timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _post(port: int, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _poll(what: str, probe: Callable[[], T | None], timeout: float, log: Path | None = None) -> T:
    """Call ``probe`` until it returns something other than None; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")
        time.sleep(0.2)


@contextmanager
def _process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=REPO, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _answering(port: int, path: str, proc: subprocess.Popen[bytes], log: Path) -> Callable[[], bool | None]:
    def probe() -> bool | None:
        assert proc.poll() is None, f"process exited early:\n{log.read_text()[-3000:]}"
        try:
            return True if _get(port, path, timeout=2)[0] == 200 else None
        except OSError:
            return None

    return probe


def _api(port: int, path: str, **query: str) -> Any:
    status, body = _get(port, f"{path}?{urllib.parse.urlencode(query)}" if query else path)
    assert status == 200, body
    return json.loads(body)["data"]


def _alerts(port: int) -> dict[str, dict[str, Any]]:
    return {a["labels"]["alertname"]: a for a in _api(port, "/api/v1/alerts")["alerts"]}


def _rule(port: int, name: str) -> dict[str, Any]:
    rules = [r for g in _api(port, "/api/v1/rules")["groups"] for r in g["rules"] if r["name"] == name]
    assert len(rules) == 1, f"Prometheus did not load rule {name} from {RULES}"
    return rules[0]


@pytest.fixture
def registry(tmp_path: Path, make_settings, params):
    from pipelines.data import ingest
    from pipelines.training_steps import run_training

    settings = make_settings(tmp_path / "state")
    assert run_training(settings, params, ingest(params.dataset, params.ingest, tmp_path / "iris.csv")).version
    return settings


def _serve_rows(port: int, frame: Any, features: list[str]) -> None:
    rows = frame[features].to_dict("records")
    status, body = _post(port, "/v1/predict", {"rows": rows})
    assert status == 200, body


def _drift_check(settings: Any, params: Any, logged: int, rows: int = 200) -> Any:
    """The real data drift check on the newest ``rows`` logged predictions, saved to the shared database.

    Waits until the log holds ``logged`` predictions: the API writes them off the request path.
    """
    from core.findings import save_findings
    from monitoring.data_drift import data_drift
    from monitoring.reference import champion_reference
    from serving.log_reader import recent_predictions
    from serving.prediction_log import make_engine

    engine = make_engine(settings.prediction_log_uri)
    try:
        _poll(f"{logged} logged predictions", lambda: True if len(recent_predictions(engine)) == logged else None, 30)
        window = recent_predictions(engine, last_n=rows)
        finding = data_drift(
            champion_reference(settings, params).frame, window, params.dataset.feature_names, params.monitoring
        )
        save_findings(engine, [finding])
    finally:
        engine.dispose()
    return finding


@pytest.mark.skipif(sys.platform != "linux", reason="runs Debian's prometheus binary")
def test_prometheus_fires_data_drift_alert_after_shifted_traffic(tmp_path: Path, registry, params) -> None:
    from monitoring.reference import champion_reference
    from pipelines.batches import generate_batch

    prometheus = system_tool("prometheus")
    settings, features = registry, params.dataset.feature_names
    api_port, prom_port = _free_port(), _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "mlops-lab", "static_configs": [{"targets": [f"127.0.0.1:{api_port}"]}]}],
        })
    )  # fmt: skip
    serve_env = {
        "MLOPS_PROJECT_DIR": str(REPO),
        "MLOPS_STATE_DIR": str(settings.state),
        "MLOPS_POLL_INTERVAL_S": "0.5",  # findings reach /metrics within half a second
        "MLOPS_RATE_LIMIT_PER_S": "0",
        "MLOPS_ACCESS_LOG": "false",
    }
    cli = str(Path(sys.executable).with_name("mlops-lab"))
    api_log, prom_log = tmp_path / "api.log", tmp_path / "prometheus.log"
    prom_args = [
        prometheus,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        "--log.level=warn",
    ]
    reference = champion_reference(settings, params).frame
    with (
        _process([cli, "serve", "--port", str(api_port)], api_log, serve_env) as api,
        _process(prom_args, prom_log) as prom,
    ):
        _poll("the API's champion", _answering(api_port, "/readyz", api, api_log), 90, api_log)
        _poll("Prometheus ready", _answering(prom_port, "/-/ready", prom, prom_log), 60, prom_log)

        # 1. Clean traffic: the check says "ok", Prometheus sees it, evaluates the rule, and stays silent.
        _serve_rows(api_port, generate_batch("clean", reference, params, rows=200, seed=3), features)
        clean = _drift_check(settings, params, logged=200)
        assert clean.status == "ok", clean.summary
        fired_series = 'max(mlops_monitor_check_status{job="mlops-lab",check="data_drift",status="fired"})'
        silent = _poll(
            "the ok finding in Prometheus",
            lambda: r if (r := _api(prom_port, "/api/v1/query", query=fired_series)["result"]) else None,
            30,
            prom_log,
        )
        assert float(silent[0]["value"][1]) == 0  # the rule's input exists and says "not fired"
        rule = _rule(prom_port, ALERT)
        assert (rule["health"], rule["state"]) == ("ok", "inactive")
        assert not rule["lastEvaluation"].startswith("0001")  # evaluated, not just loaded
        assert ALERT not in _alerts(prom_port)

        # 2. Two features shifted by 1.5 standard deviations: the real check fires, and so does the alert.
        _serve_rows(api_port, generate_batch("covariate-shift", reference, params, rows=200, seed=4), features)
        drifted = _drift_check(settings, params, logged=400)
        assert drifted.status == "fired", drifted.summary
        alert = _poll(
            f"{ALERT} firing",
            lambda: a if (a := _alerts(prom_port).get(ALERT)) and a["state"] == "firing" else None,
            60,
            prom_log,
        )
        assert alert["labels"]["severity"] == "warning"
        assert alert["annotations"]["summary"] == f"Data drift: {drifted.score:.0%} of the features drifted"
        per_feature = _api(prom_port, "/api/v1/query", query='mlops_monitor_feature_drift_score{job="mlops-lab"}')
        assert {s["metric"]["feature"] for s in per_feature["result"]} == set(features)
