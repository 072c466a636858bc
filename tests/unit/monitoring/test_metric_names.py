"""Every series named by the alert rules and the Grafana dashboard is exported by the real app.

A rule on a misspelt metric is silent forever: Prometheus evaluates it to "no data" and never fires.
So the names (and the label names and values of ``=`` matchers) used in monitoring/prometheus/alerts.yml
and monitoring/grafana/dashboards/*.json are checked against a real scrape of ``/metrics``: the app
under a TestClient with a trained champion and challenger, after predictions, shadow traffic, a failed
request, every monitoring check's finding and an aborted rollout, so every labelled series exists.
The exposition is parsed with prometheus_client's parser, and a family's type gives its sample names
(a counter ``x`` is scraped as ``x_total``, a histogram as ``x_bucket``, ``x_sum``, ``x_count``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "monitoring/prometheus/alerts.yml"
DASHBOARDS = sorted((REPO / "monitoring/grafana/dashboards").glob("*.json"))
DATASOURCES = REPO / "monitoring/grafana/provisioning/datasources/prometheus.yml"
TARGET_LABELS = {"job", "instance"}  # added by Prometheus at scrape time, never by the app
SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE"}  # series Prometheus itself creates
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\''
SELECTOR = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)\s*\{((?:[^}\"']|" + STRING + r")*)\}")
MATCHER = re.compile(r"(\w+)\s*(=~|!~|!=|=)\s*(" + STRING + r")")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or label lists."""
    text = re.sub(STRING, '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)  # label matchers, ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group() in KEYWORDS:
            continue  # a function or aggregation call, or an operator keyword
        names.add(match.group())
    return names


def matchers(expr: str) -> Iterator[tuple[str, str, str, str]]:
    """(metric, label, operator, value) for every label matcher of a named selector."""
    for selector in SELECTOR.finditer(expr):
        for label, op, quoted in MATCHER.findall(selector.group(2)):
            yield selector.group(1), label, op, quoted[1:-1]


def rule_expressions() -> dict[str, str]:
    """Every rule's expression, and the queries its annotation templates run (``{{ with query "..." }}``)."""
    out = {}
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule["record"]
            out[name] = rule["expr"]
            for key, text in rule.get("annotations", {}).items():
                for i, query in enumerate(re.findall(r'query\s+"((?:[^"\\]|\\.)*)"', text)):
                    out[f"{name} {key} query {i}"] = query
    return out


def recorded_names() -> set[str]:
    return {r["record"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "record" in r}


def dashboard_expressions(path: Path) -> dict[str, str]:
    panels = json.loads(path.read_text())["panels"]
    return {
        f"{path.name}: {p['title']} [{t['refId']}]": t["expr"].replace("$__rate_interval", "5m")
        for p in panels
        for t in p.get("targets", [])
    }


def all_expressions() -> dict[str, str]:
    out = {f"alerts.yml: {name}": expr for name, expr in rule_expressions().items()}
    for path in DASHBOARDS:
        out.update(dashboard_expressions(path))
    return out


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le) (rate(a_bucket{job="x",le=~"0.5|1"}[5m]))', {"a_bucket"}),
        ("max by (version) (b) and on () (time() - max(c) < 3600)", {"b", "c"}),
        ("up == 1 unless on (job, instance) model_info == 1", {"up", "model_info"}),
        ("rec:ord:rate5m / rec:ord2:rate5m > 0.05 offset 1h", {"rec:ord:rate5m", "rec:ord2:rate5m"}),
        ('histogram_quantile(0.99, sum(rate(x_bucket{e="a{b}"}[1m])) by (le)) > 1e3', {"x_bucket"}),
    ],
)
def test_name_extraction_finds_metrics_and_nothing_else(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


# ---- the real scrape ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory, make_settings, params) -> str:
    """/metrics of the real app: with no model (a 503), then after traffic, shadow scoring, findings and an abort."""
    from fastapi.testclient import TestClient

    from core.findings import CHECKS, Finding, save_findings
    from pipelines.data import ingest
    from pipelines.training_steps import run_training
    from serving.app import create_app
    from serving.rollout import abort, start

    root = tmp_path_factory.mktemp("metric-names")
    settings = make_settings(root / "state", poll_interval_s=3600)  # the test polls explicitly
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    with TestClient(create_app(settings, params)) as client:  # before any model: the 503 a 5xx rule counts
        assert client.post("/v1/predict", json=row).status_code == 503
        before = client.get("/metrics").text
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(settings, params, data).status == "registered"
    with TestClient(create_app(settings, params)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        runtime.store.update_routing(lambda s: replace(s, strategy="shadow"))
        runtime.poller.refresh()
        assert client.post("/v1/predict", json=row).status_code == 200
        assert client.post("/v1/predict", json={"rows": [row, row]}).status_code == 200
        assert client.post("/v1/predict", json={**row, "sepal_length": "abc"}).status_code == 422
        now = datetime.now(UTC)
        details: dict[str, dict[str, Any]] = {
            "data_drift": {"features": {"petal_length": {"method": "K-S p_value", "score": 0.001, "threshold": 0.05,
                                                         "drifted": True}}, "drift_share": 0.5},
            "concept_drift": {"versions": {"1": {"online": 0.7, "offline": 0.93, "labels": 80}}},
            "anomaly": {"metrics": {"latency_p99": {"points": 30, "max_abs_score": 5.2, "flagged": []}}},
        }  # fmt: skip
        save_findings(
            runtime.store.engine,
            [Finding(c, "fired", 0.5, 0.3, f"{c} fired", rows=200, details=details.get(c, {})) for c in CHECKS],
        )
        rollout, _ = start("2", params.rollout, now)
        runtime.store.put_rollout(abort(rollout, now, "error rate above the limit")[0])
        runtime.poller.refresh()
        return before + client.get("/metrics").text


@pytest.fixture(scope="module")
def exported(scrape: str) -> tuple[set[str], dict[str, dict[str, set[str]]]]:
    """(every sample name the scrape can hold, sample name -> label -> values seen)."""
    names: set[str] = set()
    labels: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for family in text_string_to_metric_families(scrape):
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        for sample in family.samples:
            names.add(sample.name)
            for key, value in sample.labels.items():
                labels[sample.name][key].add(value)
    return names, labels


@pytest.mark.slow  # trains two models (MLflow)
def test_the_scrape_has_the_monitoring_and_rollout_series(scrape: str) -> None:
    assert 'monitor_check_status{check="data_drift",status="fired"} 1.0' in scrape
    assert 'monitor_feature_drift_score{feature="petal_length",method="K-S p_value"} 0.001' in scrape
    assert 'monitor_online_accuracy{model_version="1"} 0.7' in scrape
    assert 'rollout_status{status="aborted"} 1.0' in scrape
    assert 'rollout_challenger_info{version="2"} 1.0' in scrape
    assert "monitor_state_read_ok 1.0" in scrape


@pytest.mark.slow  # trains two models (MLflow)
def test_every_metric_in_rules_and_dashboards_is_exported(exported) -> None:
    names, _ = exported
    known = names | recorded_names() | SYNTHETIC
    missing = {
        where: sorted(metric_names(expr) - known)
        for where, expr in all_expressions().items()
        if metric_names(expr) - known
    }
    assert not missing, f"series not exported by /metrics (typo or renamed metric?): {missing}"


@pytest.mark.slow  # trains two models (MLflow)
def test_every_label_matcher_names_a_label_and_value_the_app_exports(exported) -> None:
    names, labels = exported
    problems = []
    for where, expr in all_expressions().items():
        for metric, label, op, value in matchers(expr):
            if metric not in names or label in TARGET_LABELS or label == "__name__":
                continue  # recording rules and Prometheus' own series carry the labels their rules give them
            seen = labels.get(metric, {})
            if label not in seen:
                problems.append(f"{where}: {metric} has no label {label!r} (it has {sorted(seen)})")
            elif op == "=" and value not in seen[label]:
                problems.append(f"{where}: {metric}{{{label}={value!r}}} never exported (values {sorted(seen[label])})")
            elif op == "=~" and not any(re.fullmatch(value, v) for v in seen[label]):
                problems.append(f"{where}: {metric}{{{label}=~{value!r}}} matches none of {sorted(seen[label])}")
    assert not problems, "\n".join(problems)


def test_rules_and_dashboard_cover_the_operational_series() -> None:
    used = set().union(*(metric_names(e) for e in all_expressions().values()))
    wanted = {
        "requests_total", "request_latency_seconds_bucket", "predictions_total", "prediction_errors_total",
        "shadow_predictions_total", "model_info", "monitor_check_status", "monitor_drift_share",
        "monitor_online_accuracy", "monitor_last_check_timestamp_seconds", "rollout_challenger_weight",
        "rollout_step", "rollout_status", "rollout_aborted_timestamp_seconds",
    }  # fmt: skip
    assert wanted <= used, f"not used by any rule or panel: {sorted(wanted - used)}"


def test_dashboard_is_provisioning_ready() -> None:
    assert DASHBOARDS, "no dashboard JSON under monitoring/grafana/dashboards"
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"]
        assert board["title"]
        assert board["schemaVersion"] >= 36
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the 24-column grid"
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == uid, f"{panel['title']} does not use the provisioned datasource"
            assert panel["targets"], f"{panel['title']} has no query"
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))
            assert all(t["datasource"]["uid"] == uid for t in panel["targets"])
