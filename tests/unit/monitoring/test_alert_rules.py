"""The alert rules, their unit tests and the dashboard queries, checked by the real promtool.

promtool (Debian's ``prometheus`` package, installed by .ci/run) is required: without it these tests
fail with the install command, because rules nobody checked are worse than no rules. Two negative
controls prove the checks can fail: promtool rejects a rule with broken PromQL, and a rule unit test
with a wrong expectation fails. Policy checks keep every alert reviewable: a severity, a summary, a
description and a runbook link; every alert tested both firing and silent; a ``for:`` on every alert
that watches a raw rate or gauge (monitoring findings are already debounced by their check).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.system_tools import system_tool

REPO = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = REPO / "monitoring/prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
DASHBOARDS = sorted((REPO / "monitoring/grafana/dashboards").glob("*.json"))
DOCS = REPO / "docs/metrics.md"
SEVERITIES = {"critical", "warning", "info"}
# Alerts on a monitoring finding or on the rollout's own decision: no `for:` needed (see alerts.yml).
DECISION_SERIES = ("mlops_monitor_check_status", "mlops_rollout_aborted_timestamp_seconds")


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    exe = system_tool("promtool")
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def alerts() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    count = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_promtool_rejects_a_rule_with_broken_promql(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: sum(rate(http_requests_total[5m]) > 1\n"
    )
    result = promtool("check", "rules", str(broken))
    assert result.returncode != 0
    assert "parse error" in (result.stdout + result.stderr)


def test_alert_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS.name, cwd=PROMETHEUS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_wrong_expectation_fails_the_unit_tests(tmp_path: Path) -> None:
    """Expect the drift alert to stay silent where it fires: promtool must report the difference."""
    shutil.copy(RULES, tmp_path / RULES.name)
    tests = yaml.safe_load(RULE_TESTS.read_text())
    for group in tests["tests"]:
        for case in group.get("alert_rule_test", []):
            if case["alertname"] == "DataDriftDetected" and case["exp_alerts"]:
                case["exp_alerts"] = []
    (tmp_path / RULE_TESTS.name).write_text(yaml.safe_dump(tests))
    result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr
    assert 'alertname="DataDriftDetected"' in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in group.get("alert_rule_test", []):
            (firing if case["exp_alerts"] else silent).add(case["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - firing == set(), f"no test where these fire: {sorted(names - firing)}"
    assert names - silent == set(), f"no test where these stay silent: {sorted(names - silent)}"


def test_every_alert_has_severity_annotations_and_a_documented_runbook() -> None:
    docs = DOCS.read_text()
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, name
        assert alert["labels"]["component"] in {"serving", "monitoring", "rollout"}, name
        assert {"summary", "description", "runbook_url"} <= set(alert["annotations"]), name
        path, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert (REPO / path).is_file(), f"{name}: runbook {path} does not exist"
        assert re.search(rf"^#+ {anchor}\b", docs, re.IGNORECASE | re.MULTILINE), f"{name}: no heading #{anchor}"
        assert f"`{name}`" in docs, f"{name} is not in the alert table of docs/metrics.md"


def test_alerts_on_raw_series_wait_and_alerts_on_decisions_do_not() -> None:
    for alert in alerts():
        on_decision = any(series in alert["expr"] for series in DECISION_SERIES)
        if on_decision:
            assert "for" not in alert, f"{alert['alert']} waits on an already debounced decision"
        else:
            assert re.fullmatch(r"\d+[smh]", str(alert.get("for", ""))), f"{alert['alert']} has no `for:`"


def test_example_prometheus_config_is_valid() -> None:
    result = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each panel query, as a recording rule, must pass promtool (Grafana's $__rate_interval as 5m)."""
    rules = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", "5m")
                rules.append({"record": f"dashboard:panel_{panel['id']}_{target['refId']}", "expr": expr})
    assert len(rules) >= 10
    checked = tmp_path / "dashboard_queries.yml"
    checked.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(checked))
    assert result.returncode == 0, result.stdout + result.stderr
