"""Demo ``alerts``: the series on /metrics, the alert rules tested by promtool, and the dashboard.

Concept: operational metrics and alerting (C31). The API exports two kinds of series on one
``/metrics``: counters and a latency histogram from the request path, and gauges re-exported from
the shared database (the latest finding of every monitoring check, the canary rollout's state), so
one Prometheus and one set of rules watch traffic, drift and rollouts alike.

The demo starts the real app in process on a *scratch* prediction log and state database (a
temporary SQLite file), sends traffic, then writes what ``mlops-lab monitor`` and the rollout
controller would write there: a fired data drift finding and an aborted canary. Planting them in a
scratch database keeps them away from the real retraining loop. It scrapes ``/metrics``, runs
``promtool check rules`` and ``promtool test rules`` on monitoring/prometheus/, shows that a wrong
expectation makes the unit tests fail, and points at the Grafana dashboard.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from core.findings import Finding, save_findings
from lab.demos.prep import ensure_champion
from lab.demos.traffic import running_service, users
from serving.rollout import abort, start

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.demos.traffic import DemoService
    from lab.narrate import Narrator

PROMETHEUS_DIR = Path("monitoring/prometheus")
DASHBOARD = Path("monitoring/grafana/dashboards/mlops-lab.json")
SHOWN = re.compile(
    r"^(http_requests_total\{method=\"POST\",route=\"/v1/predict\"[^}]*\}"
    r"|http_request_duration_seconds_count\{method=\"POST\",route=\"/v1/predict\"\}"
    r"|mlops_predictions_total\{[^}]*\}"
    r"|mlops_monitor_check_status\{check=\"data_drift\",status=\"fired\"\}"
    r"|mlops_monitor_drifted_features_ratio|mlops_monitor_feature_drift_score\{feature=\"sepal_[^}]*\}"
    r"|mlops_rollout_status\{status=\"aborted\"\}|mlops_rollout_challenger_weight_ratio"
    r"|mlops_rollout_aborted_timestamp_seconds"
    r"|mlops_monitor_state_read_ok) (\S+)$",
    re.MULTILINE,
)


def _plant_drift_and_abort(service: DemoService) -> None:
    """Write a fired data drift finding and an aborted rollout to the (scratch) shared database."""
    features = {
        "sepal_length": {"method": "K-S p_value", "score": 0.0004, "threshold": 0.05, "drifted": True},
        "sepal_width": {"method": "K-S p_value", "score": 0.002, "threshold": 0.05, "drifted": True},
        "petal_length": {"method": "K-S p_value", "score": 0.41, "threshold": 0.05, "drifted": False},
        "petal_width": {"method": "K-S p_value", "score": 0.62, "threshold": 0.05, "drifted": False},
    }
    summary = "PLANTED by the demo: 2 of 4 features drifted (sepal_length, sepal_width)"
    drift = Finding("data_drift", "fired", 0.5, 0.5, summary, rows=500, details={"features": features})
    save_findings(service.store.engine, [drift])
    now = datetime.now(UTC)
    running, _ = start("planted", service.ctx.params.rollout, now)
    service.store.put_rollout(abort(running, now, "PLANTED by the demo: error rate above the limit")[0])
    service.refresh()  # what every replica's poller does within poll_interval_s


def _shown(name: str, value: str) -> str:
    """A sample value for the table: timestamps as UTC times, everything else as Prometheus wrote it."""
    if name.endswith("_timestamp_seconds"):
        return datetime.fromtimestamp(float(value), UTC).isoformat(timespec="seconds") + f" ({float(value):.0f})"
    return value


def _promtool(exe: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def _test_counts(tests: dict[str, Any]) -> tuple[int, int, int]:
    cases = [c for group in tests["tests"] for c in group.get("alert_rule_test", [])]
    return len(tests["tests"]), sum(bool(c["exp_alerts"]) for c in cases), sum(not c["exp_alerts"] for c in cases)


def _show_rules(n: Narrator, rules_dir: Path) -> None:
    """promtool: the rules parse, their unit tests pass, and a wrong expectation is caught."""
    rules = yaml.safe_load((rules_dir / "alerts.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    n.table(
        "alert rules (monitoring/prometheus/alerts.yml)",
        ["alert", "watches", "severity", "for"],
        [[a["alert"], a["labels"]["component"], a["labels"]["severity"], a.get("for", "at once")] for a in alerts],
    )
    exe = shutil.which("promtool")
    if exe is None:
        n.bad("promtool is not installed: `apt-get install -y prometheus` (Debian's package) brings it")
        return
    checked = _promtool(exe, "check", "rules", "alerts.yml", cwd=rules_dir)
    (n.ok if checked.returncode == 0 else n.bad)(f"promtool check rules: {' '.join(checked.stdout.split()[-4:])}")
    tested = _promtool(exe, "test", "rules", "alerts_test.yml", cwd=rules_dir)
    groups, firing, silent = _test_counts(yaml.safe_load((rules_dir / "alerts_test.yml").read_text()))
    outcome = "SUCCESS" if tested.returncode == 0 else "FAILED"
    (n.ok if tested.returncode == 0 else n.bad)(
        f"promtool test rules: {outcome}: {groups} scenarios, {firing} expected firings, {silent} expected silences"
    )
    n.why(
        "each alert is replayed on synthetic series: it must fire where it should (after its `for:`), stay "
        "silent where it should, and render its annotations; a typo in a rule fails CI, not a 3 a.m. page"
    )
    with tempfile.TemporaryDirectory() as scratch:
        tests = yaml.safe_load((rules_dir / "alerts_test.yml").read_text())
        for group in tests["tests"]:
            for case in group.get("alert_rule_test", []):
                if case["alertname"] == "DataDriftDetected" and case["exp_alerts"]:
                    case["exp_alerts"] = []  # claim the drift alert stays silent where it fires
        shutil.copy(rules_dir / "alerts.yml", scratch)
        (Path(scratch) / "alerts_test.yml").write_text(yaml.safe_dump(tests))
        broken = _promtool(exe, "test", "rules", "alerts_test.yml", cwd=Path(scratch))
    report = broken.stdout + broken.stderr
    got = next((line.strip() for line in report.splitlines() if "alertname: DataDriftDetected" in line), "")
    (n.ok if broken.returncode != 0 else n.bad)(
        f"a wrong expectation fails the unit tests (exit {broken.returncode}): {got.rstrip(', ')}"
    )


def run(n: Narrator, ctx: LabContext) -> None:
    """Traffic and planted findings on a scratch database, the scrape, promtool, and the dashboard."""
    n.title("Operational metrics and alerts: /metrics, rules tested by promtool, a dashboard", "C31 metrics")
    n.step("Serve traffic through the real app (in process, on a scratch database)")
    version = ensure_champion(ctx, n)
    with tempfile.TemporaryDirectory(prefix="alerts-demo-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'alerts-demo.db'}"
        demo = replace(ctx, settings=ctx.settings.model_copy(update={"prediction_log_url": url}))
        with running_service(demo) as service:
            traffic = service.send(users("alerts-user", 40), seed=31, feedback=False)
            invalid = service.client.post("/v1/predict", json={"sepal_length": "abc"}).status_code
            n.say(f"{traffic.total} predictions answered by v{version}, and one invalid request ({invalid})")

            n.step("A monitoring check and the rollout controller write to the shared database")
            _plant_drift_and_abort(service)
            n.say("planted: a fired data drift finding (2 of 4 features) and a canary aborted for its error rate")
            n.why(
                "findings and rollout state live in the database every replica shares; each replica's poller "
                "re-exports them as gauges, so one rule set watches traffic, drift and rollouts alike"
            )
            scrape = service.client.get("/metrics").text

    n.step("GET /metrics: request counters, the latency histogram, and the re-exported state")
    n.table(
        "selected series", ["series", "value"], [[name, _shown(name, value)] for name, value in SHOWN.findall(scrape)]
    )
    n.say("[dim]rules sum the request counters over replicas and take max() of the shared gauges[/dim]")
    n.say(
        "a Prometheus scraping this would fire DataDriftDetected and CanaryAborted at its next rule evaluation "
        "(tests/integration/monitoring/test_prometheus_alerts.py shows it with a real Prometheus and real drift)"
    )

    n.step("The alert rules, checked and unit-tested by promtool")
    _show_rules(n, ctx.settings.project_dir / PROMETHEUS_DIR)

    n.step("The dashboard and how to run it all locally")
    board = json.loads((ctx.settings.project_dir / DASHBOARD).read_text())
    titles = [p["title"] for p in board["panels"] if p["type"] != "row"]
    n.say(f"{DASHBOARD}: {len(titles)} panels, e.g. {', '.join(titles[:5])} ...")
    n.say("provisioning: monitoring/grafana/provisioning/ (datasource uid mlops-prometheus, a dashboards provider)")
    n.say(
        "run it: `mlops-lab serve`, then `prometheus --config.file=monitoring/prometheus/prometheus.yml`; "
        "Grafana with the provisioning folder (docs/metrics.md)"
    )
    n.code(
        "serving/metrics.py",
        "serving/monitor_metrics.py",
        "monitoring/prometheus/alerts.yml",
        "monitoring/prometheus/alerts_test.yml",
        "monitoring/grafana/",
        "docs/metrics.md",
    )
