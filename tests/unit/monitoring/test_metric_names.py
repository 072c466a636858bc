"""Every series on /metrics follows one naming scheme, and every consumer names only series that exist.

The scheme (serving/metric_names.py, docs/metrics.md "Names"): ``http_requests_total{route,method,status}``
and ``http_request_duration_seconds{route,method}`` for HTTP, everything else of ours under ``mlops_``, base
units in the name (``_seconds``, ``_rows``, ``_ratio``), ``_total`` only on counters, ``_info`` only on
value-1 gauges, snake_case labels with bounded values (route templates, known HTTP methods).

A rule on a misspelt or renamed metric is silent forever: Prometheus evaluates it to "no data" and never
fires, and an Argo analysis on it is Inconclusive at every step. So the names (and the label names and
values of ``=`` matchers) used by the alert and recording rules (monitoring/prometheus/alerts.yml), the
Grafana dashboards (monitoring/grafana/dashboards/*.json) and the Argo Rollouts analysis templates (k8s/)
are checked against a real scrape of ``/metrics``, and docs/metrics.md must list exactly the exported
series with their types and labels: the app under a TestClient with a trained champion and challenger,
after predictions, shadow traffic, a failed request, every monitoring check's finding and an aborted
rollout, so every labelled series exists. The exposition is parsed with prometheus_client's parser, and a
family's type gives its sample names (a counter ``x`` is scraped as ``x_total``, a histogram as
``x_bucket``, ``x_sum``, ``x_count``).
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
K8S = REPO / "k8s"
METRICS_DOC = REPO / "docs/metrics.md"
# Added by Prometheus at scrape time, never by the app: the job and instance, and on Kubernetes the pod's
# namespace and its Argo Rollouts template hash (the relabelling of docs/kubernetes.md, "Metrics").
TARGET_LABELS = {"job", "instance", "namespace", "rollouts_pod_template_hash"}
SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE"}  # series Prometheus itself creates
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}
MADE_UP = "4711"  # in a URL and a method the scrape fixture sends; no label value may contain it
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


def analysis_expressions() -> dict[str, str]:
    """The Prometheus queries of every Argo Rollouts AnalysisTemplate under k8s/, with their args filled in."""
    out = {}
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("kind") != "AnalysisTemplate":
                continue
            for metric in doc["spec"]["metrics"]:
                query = metric.get("provider", {}).get("prometheus", {}).get("query")
                if query is not None:
                    where = f"{path.relative_to(REPO)}: {doc['metadata']['name']}/{metric['name']}"
                    out[where] = re.sub(r"\{\{\s*args\.[\w-]+\s*\}\}", "arg", query)
    return out


def all_expressions() -> dict[str, str]:
    out = {f"alerts.yml: {name}": expr for name, expr in rule_expressions().items()}
    for path in DASHBOARDS:
        out.update(dashboard_expressions(path))
    out.update(analysis_expressions())
    return out


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le) (rate(a_bucket{job="x",le=~"0.5|1"}[5m]))', {"a_bucket"}),
        ("max by (version) (b) and on () (time() - max(c) < 3600)", {"b", "c"}),
        ("up == 1 unless on (job, instance) mlops_model_info == 1", {"up", "mlops_model_info"}),
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
        assert client.get(f"/v1/no-such-route/{MADE_UP}").status_code == 404  # a raw path must not become a label
        assert client.request(f"BREW{MADE_UP}", "/v1/predict").status_code in (404, 405)  # nor a made-up method
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
    """(every sample name the scrape can hold, sample name -> label -> values seen).

    The API's scrape, and the series a stream-scoring worker adds to the same runtime registry (serving.stream_worker).
    """
    from prometheus_client import CollectorRegistry, generate_latest

    from serving.stream_worker import StreamMetrics

    stream = CollectorRegistry()
    StreamMetrics(stream)
    names: set[str] = set()
    labels: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for family in [
        *text_string_to_metric_families(scrape),
        *text_string_to_metric_families(generate_latest(stream).decode()),
    ]:
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        for sample in family.samples:
            names.add(sample.name)
            for key, value in sample.labels.items():
                labels[sample.name][key].add(value)
    return names, labels


@pytest.mark.slow  # trains two models (MLflow)
def test_the_scrape_has_the_monitoring_and_rollout_series(scrape: str) -> None:
    assert 'mlops_monitor_check_status{check="data_drift",status="fired"} 1.0' in scrape
    assert 'mlops_monitor_feature_drift_score{feature="petal_length",method="K-S p_value"} 0.001' in scrape
    assert 'mlops_monitor_online_accuracy_ratio{model_version="1"} 0.7' in scrape
    assert 'mlops_rollout_status{status="aborted"} 1.0' in scrape
    assert 'mlops_rollout_challenger_info{version="2"} 1.0' in scrape
    assert "mlops_monitor_state_read_ok 1.0" in scrape


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
        "http_requests_total", "http_request_duration_seconds_bucket", "mlops_predictions_total",
        "mlops_prediction_errors_total", "mlops_shadow_predictions_total", "mlops_model_info",
        "mlops_monitor_check_status", "mlops_monitor_drifted_features_ratio", "mlops_monitor_online_accuracy_ratio",
        "mlops_monitor_last_check_timestamp_seconds", "mlops_rollout_challenger_weight_ratio", "mlops_rollout_step",
        "mlops_rollout_status", "mlops_rollout_aborted_timestamp_seconds",
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


# ---- the naming scheme ----------------------------------------------------------------------------

HTTP_FAMILIES = {  # name -> (type, label names): the two series every HTTP dashboard already knows
    "http_requests": ("counter", {"route", "method", "status"}),
    "http_request_duration_seconds": ("histogram", {"route", "method"}),
}
UNITS = ("_seconds", "_rows")  # the base units of our histograms
NOT_BASE_UNITS = re.compile(r"_(ms|milliseconds|minutes|hours|percent|bytes_kb|kb|mb)(_|$)")
SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
GENERATED = {"histogram": {"le"}, "summary": {"quantile"}}  # labels prometheus_client adds itself


def scheme_problems(exposition: str) -> list[str]:
    """Every way the families of an exposition break the naming scheme (empty: they follow it)."""
    from prometheus_client.validation import METRIC_LABEL_NAME_RE, METRIC_NAME_RE

    from serving.metric_names import HTTP_METHODS, OTHER_METHOD, PREFIX

    families = list(text_string_to_metric_families(exposition))
    created = {f"{f.name}_created" for f in families if f.type in ("counter", "histogram", "summary")}
    problems = []
    for family in families:
        name, kind = family.name, family.type
        if name in created and kind == "gauge":
            continue  # prometheus_client's creation time of a counter or histogram, parsed as its own family
        labels = {k for sample in family.samples for k in sample.labels} - GENERATED.get(kind, set())
        where = f"{name} ({kind})"
        if kind not in SUFFIXES:
            problems.append(f"{where}: no TYPE line, or one prometheus_client does not produce")
        if not METRIC_NAME_RE.match(name) or ":" in name or not SNAKE.fullmatch(name):
            problems.append(f"{where}: not a snake_case metric name (colons are for recording rules)")
        if name in HTTP_FAMILIES:
            want_kind, want_labels = HTTP_FAMILIES[name]
            if (kind, labels) != (want_kind, want_labels) and family.samples:
                problems.append(f"{where}: must be a {want_kind} labelled {sorted(want_labels)}, has {sorted(labels)}")
        elif not name.startswith(PREFIX):
            problems.append(f"{where}: neither one of the HTTP series {sorted(HTTP_FAMILIES)} nor prefixed {PREFIX!r}")
        if NOT_BASE_UNITS.search(name):
            problems.append(f"{where}: not a base unit (seconds, rows, a 0-1 ratio)")
        if re.search(r"_(total|count|sum|bucket|created)$", name):
            problems.append(f"{where}: a suffix Prometheus reserves for counters and histograms")
        if kind in ("histogram", "summary") and not name.endswith(UNITS):
            problems.append(f"{where}: a {kind} names its unit, one of {UNITS}")
        if kind == "counter" and any(not s.name.endswith(("_total", "_created")) for s in family.samples):
            problems.append(f"{where}: a counter is exposed as <name>_total")
        if name.endswith("_info") and (kind != "gauge" or any(s.value != 1 for s in family.samples)):
            problems.append(f"{where}: an _info series is a gauge of value 1 carrying its facts in labels")
        if "timestamp" in name and not name.endswith("_timestamp_seconds"):
            problems.append(f"{where}: a time is <what>_timestamp_seconds (Unix seconds)")
        for label in sorted(labels):
            if not METRIC_LABEL_NAME_RE.match(label) or label.startswith("__") or not SNAKE.fullmatch(label):
                problems.append(f"{where}: label {label!r} is not snake_case")
        for sample in family.samples if name in HTTP_FAMILIES else ():
            method, route = sample.labels.get("method"), sample.labels.get("route")
            if method is not None and method not in HTTP_METHODS | {OTHER_METHOD}:
                problems.append(f"{where}: method {method!r} is not a bounded value")
            if route is not None and route != "unmatched" and (MADE_UP in route or not route.startswith("/")):
                problems.append(f"{where}: route {route!r} is not a route template")
    return problems


@pytest.mark.parametrize(
    ("exposition", "complaint"),
    [
        ("# TYPE requests_total counter\nrequests_total 1\n", "nor prefixed"),
        (
            '# TYPE http_requests_total counter\nhttp_requests_total{endpoint="/a",status="200"} 1\n',
            "must be a counter",
        ),
        ('# TYPE mlops_latency_ms histogram\nmlops_latency_ms_bucket{le="+Inf"} 1\n', "not a base unit"),
        ('# TYPE mlops_call histogram\nmlops_call_bucket{le="+Inf"} 1\n', "names its unit"),
        ("# TYPE mlops_rows_total gauge\nmlops_rows_total 1\n", "reserves"),
        ('# TYPE mlops_model_info gauge\nmlops_model_info{version="1"} 2\n', "value 1"),
        ("# TYPE mlops_modelReloads gauge\nmlops_modelReloads 1\n", "not a snake_case"),
        ("mlops_untyped 1\n", "no TYPE"),
        ("# TYPE mlops_abort_timestamp gauge\nmlops_abort_timestamp 1\n", "_timestamp_seconds"),
        ('# TYPE mlops_x gauge\nmlops_x{modelVersion="1"} 1\n', "not snake_case"),
        (
            '# TYPE http_requests_total counter\nhttp_requests_total{route="/a",method="BREW",status="200"} 1\n',
            "not a bounded value",
        ),
        (
            "# TYPE http_requests_total counter\n"
            f'http_requests_total{{route="/x/{MADE_UP}",method="GET",status="404"}} 1\n',
            "not a route template",
        ),
    ],
)
def test_the_scheme_check_refuses_each_kind_of_bad_name(exposition: str, complaint: str) -> None:
    problems = scheme_problems(exposition)
    assert any(complaint in p for p in problems), problems


@pytest.mark.slow  # trains two models (MLflow)
def test_every_exported_family_follows_the_naming_scheme(scrape: str) -> None:
    assert f"BREW{MADE_UP}" not in scrape
    assert f"/{MADE_UP}" not in scrape
    assert 'method="other"' in scrape
    assert 'route="unmatched"' in scrape
    assert scheme_problems(scrape) == []


# ---- docs/metrics.md lists exactly what is exported -----------------------------------------------


def doc_table(heading: str) -> dict[str, list[str]]:
    """The rows of the tables under a ``##`` heading of docs/metrics.md: first cell (unquoted) -> other cells."""
    text = METRICS_DOC.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    rows = {}
    for line in text[start : end if end != -1 else None].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 2:
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def exported_series(scrape: str) -> dict[str, tuple[str, set[str]]]:
    """Exposed name (a counter with its ``_total``) -> (type, label names), as docs/metrics.md lists them."""
    families = list(text_string_to_metric_families(scrape))
    created = {f"{f.name}_created" for f in families if f.type in ("counter", "histogram", "summary")}
    out: dict[str, tuple[str, set[str]]] = {}
    for family in families:
        if family.name in created:
            continue
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {k for s in family.samples for k in s.labels} - GENERATED.get(family.type, set())
        out[name] = (family.type, out.get(name, ("", set()))[1] | labels)
    return out


@pytest.mark.slow  # trains two models (MLflow)
def test_docs_list_every_exported_series_with_its_type_and_labels(scrape: str) -> None:
    documented = {
        name: (cells[0], set(re.findall(r"`(\w+)`", cells[1]))) for name, cells in doc_table("Series").items()
    }
    exported = exported_series(scrape)
    unsampled = {f.name + "_total" for f in text_string_to_metric_families(scrape) if f.type == "counter"}
    unsampled -= {s.name for f in text_string_to_metric_families(scrape) for s in f.samples}
    assert unsampled <= {"mlops_prediction_errors_total"}, unsampled  # only these may have no series yet
    assert sorted(documented) == sorted(exported), "docs/metrics.md and /metrics list different series"
    for name, (kind, labels) in exported.items():
        if name in unsampled:  # a labelled family with no child yet (no scoring error in this scrape)
            labels = documented[name][1]
        assert documented[name] == (kind, labels), f"{name}: docs say {documented[name]}, /metrics has {kind, labels}"


def test_docs_list_every_recording_rule_and_alert() -> None:
    rules = yaml.safe_load(RULES.read_text())["groups"]
    assert set(doc_table("Recording rules")) == recorded_names()
    assert set(doc_table("Alerts")) == {r["alert"] for g in rules for r in g["rules"] if "alert" in r}


# ---- nothing names a removed series ---------------------------------------------------------------

# The names before the rename to one scheme (CHANGELOG, Unreleased): none may come back, in the app or in a
# consumer, or a dashboard would show two half-empty series.
REMOVED = (
    "requests_total", "request_latency_seconds", "predictions_total", "prediction_errors_total",
    "shadow_predictions_total", "shadow_model_seconds", "model_reloads_total", "model_call_rows", "model_info",
    "prediction_log_rows_total", "prediction_log_queued_rows", "prediction_log_write_ok", "monitor_check_status",
    "monitor_check_score", "monitor_check_threshold", "monitor_check_rows", "monitor_check_timestamp_seconds",
    "monitor_last_check_timestamp_seconds", "monitor_drift_share", "monitor_feature_drift_score",
    "monitor_feature_drift_threshold", "monitor_feature_drifted", "monitor_online_accuracy",
    "monitor_offline_accuracy", "monitor_online_labels", "monitor_anomaly_score", "monitor_state_read_ok",
    "monitor_state_read_failures_total", "rollout_status", "rollout_challenger_weight", "rollout_step",
    "rollout_challenger_info", "rollout_started_timestamp_seconds", "rollout_aborted_timestamp_seconds",
)  # fmt: skip
CONSUMER_GLOBS = (
    "monitoring/prometheus/*.yml", "monitoring/grafana/**/*.json", "monitoring/grafana/**/*.yml", "k8s/**/*.yaml",
    "docker/**/*.yml", "docker/**/*.yaml", "docs/**/*.md", "README.md", "lab/*.yaml", "lab/demos/*.py",
)  # fmt: skip
NAMED = re.compile(r"(?<![\w.$/-])(?:mlops|http)_[a-z0-9_]+")


def consumer_files() -> list[Path]:
    return sorted({path for pattern in CONSUMER_GLOBS for path in REPO.glob(pattern)})


def test_no_consumer_names_a_removed_series() -> None:
    removed = re.compile(r"(?<![\w.$/-])(?:" + "|".join(REMOVED) + r")(?:_bucket|_sum|_count)?(?!\w)")
    found = [
        f"{path.relative_to(REPO)}:{n}: {m.group()}"
        for path in consumer_files()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for m in removed.finditer(line)
    ]
    assert not found, "old metric names (renamed, see CHANGELOG):\n" + "\n".join(found)


@pytest.mark.slow  # trains two models (MLflow)
def test_every_series_named_in_docs_demos_and_configs_is_exported(exported) -> None:
    names, _ = exported
    names = names | {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}  # prose names a histogram by its family
    unknown = [
        f"{path.relative_to(REPO)}: {token}"
        for path in consumer_files()
        for token in sorted(set(NAMED.findall(path.read_text())))
        if token not in names and not (token.endswith("_") and any(n.startswith(token) for n in names))
    ]
    assert not unknown, "named but not on /metrics:\n" + "\n".join(unknown)
