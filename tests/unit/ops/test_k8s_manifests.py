"""The Kubernetes overlays render, validate against their schemas and pass every policy check.

Every overlay is rendered by the real ``kubectl kustomize`` (required: without kubectl these tests
fail with the install hint, because manifests nobody rendered are worse than none). Each object is
validated strictly against the Kubernetes 1.32 schema (kubernetes-validate) or, for the Argo Rollouts
kinds, against our own schema in k8s/schemas/. Then the policy checks of ops/k8s_checks.py run, and
a second set of tests breaks one thing at a time in a copy of the prod objects to show that each
check, and the schema validation, can fail. The analysis queries are parsed and evaluated by the real
promtool on synthetic series, and the manifests are tied to params.yaml and core/settings.py where they
repeat a value from there (monitor schedule, rollout steps and guard rails, MLOPS_* names).
"""

from __future__ import annotations

import copy
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.params import Params
from core.settings import Settings
from ops.k8s_checks import CHECKS, run_checks, validate_schemas
from ops.k8s_objects import OVERLAYS, K8sObject, find, render, selector_matches
from tests.system_tools import system_tool

Objects = list[K8sObject]


@pytest.fixture(scope="module")
def rendered() -> dict[str, Objects]:
    system_tool("kubectl")
    return {env: render(env) for env in OVERLAYS}


def get(objects: Objects, kind: str, name: str) -> K8sObject:
    obj = find(objects, kind, name)
    assert obj is not None, f"{kind}/{name} is not rendered"
    return obj


def api_container(objects: Objects) -> K8sObject:
    return get(objects, "Deployment", "mlops-lab-api")["spec"]["template"]["spec"]["containers"][0]


# ---- rendering, schemas and policy ---------------------------------------------------------------------

EXPECTED = {
    "Namespace": {"mlops-lab"},
    "Deployment": {
        "mlops-lab-api",
        "mlflow",
        "prefect-server",
        "prefect-worker",
        "rollout-controller",
        "redis",
        "stream-scorer",
    },
    "Rollout": {"mlops-lab-api"},
    "AnalysisTemplate": {"mlops-lab-api-canary"},
    "StatefulSet": {"postgres"},
    "CronJob": {"monitor", "batch-scoring"},
    "HorizontalPodAutoscaler": {"mlops-lab-api"},
    "PodDisruptionBudget": {"mlops-lab-api", "stream-scorer"},
    "Ingress": {"mlops-lab-api"},
    "Service": {
        "mlops-lab-api",
        "mlops-lab-api-stable",
        "mlops-lab-api-canary",
        "mlflow",
        "postgres",
        "prefect-server",
        "redis",
    },
    "Secret": {"postgres-credentials", "mlflow-server", "mlflow-client", "prefect-server", "mlops-lab-api"},
    "NetworkPolicy": {
        "default-deny-ingress",
        "api-ingress",
        "postgres-ingress",
        "mlflow-ingress",
        "prefect-server-ingress",
        "default-deny-egress",
        "dns-egress",
        "postgres-clients-egress",
        "mlflow-clients-egress",
        "prefect-clients-egress",
        "redis-ingress",
        "redis-clients-egress",
        "stream-scorer-metrics-ingress",
    },
}


@pytest.mark.parametrize("env", OVERLAYS)
def test_overlay_renders_every_component(rendered: dict[str, Objects], env: str) -> None:
    objects = rendered[env]
    for kind, names in EXPECTED.items():
        have = {o["metadata"]["name"] for o in objects if o["kind"] == kind}
        if kind == "Namespace":
            assert len(have) == 1
            continue
        assert names <= have, f"{env}: missing {kind} {sorted(names - have)}"
    namespaces = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
    assert namespaces == {get_namespace(objects)}, "every object lives in the overlay's one namespace"


def get_namespace(objects: Objects) -> str:
    return next(o["metadata"]["name"] for o in objects if o["kind"] == "Namespace")


@pytest.mark.parametrize("env", OVERLAYS)
def test_every_object_passes_its_schema(rendered: dict[str, Objects], env: str) -> None:
    assert validate_schemas(rendered[env]) == []


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("env", OVERLAYS)
def test_policy_check_passes(rendered: dict[str, Objects], env: str, check: str) -> None:
    violations = CHECKS[check](rendered[env])
    assert violations == [], "\n".join(map(str, violations))


def test_the_base_alone_is_not_deployable_its_images_are_unpinned() -> None:
    """The base names images without tags on purpose: only an overlay pins a release."""
    found = run_checks(render(Path(__file__).resolve().parents[3] / "k8s/base"))["images"]
    assert found
    assert all("has no tag" in v.message for v in found)


# ---- each check can fail ---------------------------------------------------------------------------------

Breaker = Callable[[Objects], None]


def _set_image(tag: str) -> Breaker:
    def brk(objs: Objects) -> None:
        c = api_container(objs)
        c["image"] = c["image"].rsplit(":", 1)[0] + tag

    return brk


def _secret_with_value(objs: Objects) -> None:
    get(objs, "Secret", "mlops-lab-api")["data"] = {"MLOPS_ADMIN_TOKEN": "c2VjcmV0"}


def _undeclared_secret_key(objs: Objects) -> None:
    env = api_container(objs)["env"]
    next(e for e in env if e["name"] == "MLOPS_ADMIN_TOKEN")["valueFrom"]["secretKeyRef"]["key"] = "ADMIN"


BREAKERS: dict[str, tuple[str, Breaker, str]] = {
    "latest tag": ("images", _set_image(":latest"), "moving tag latest"),
    "no tag": ("images", _set_image(""), "has no tag"),
    "no readiness probe": ("probes+resources", lambda o: api_container(o).pop("readinessProbe"), "no readinessProbe"),
    "no liveness probe": (
        "probes+resources",
        lambda o: get(o, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0].pop("livenessProbe"),
        "no livenessProbe",
    ),
    "job without deadline": (
        "probes+resources",
        lambda o: get(o, "CronJob", "monitor")["spec"]["jobTemplate"]["spec"].pop("activeDeadlineSeconds"),
        "activeDeadlineSeconds",
    ),
    "no CPU request": (
        "probes+resources",
        lambda o: api_container(o)["resources"]["requests"].pop("cpu"),
        "requests.cpu",
    ),
    "no memory limit": ("probes+resources", lambda o: api_container(o)["resources"].pop("limits"), "limits.memory"),
    "root allowed": (
        "security",
        lambda o: api_container(o)["securityContext"].update(runAsNonRoot=False),
        "runAsNonRoot",
    ),
    "capabilities kept": (
        "security",
        lambda o: api_container(o)["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
        "drop ALL",
    ),
    "writable root": (
        "security",
        lambda o: api_container(o)["securityContext"].update(readOnlyRootFilesystem=False),
        "readOnlyRootFilesystem",
    ),
    "read-only root without /tmp": (
        "security",
        lambda o: api_container(o).update(
            volumeMounts=[m for m in api_container(o)["volumeMounts"] if m["mountPath"] != "/tmp"]
        ),
        "writable /tmp",
    ),
    "privilege escalation": (
        "security",
        lambda o: api_container(o)["securityContext"].update(allowPrivilegeEscalation=True),
        "allowPrivilegeEscalation",
    ),
    "pod label differs from its workload": (
        "labels",
        lambda o: get(o, "Deployment", "mlflow")["spec"]["template"]["metadata"]["labels"].update(
            {"app.kubernetes.io/component": "db"}
        ),
        "pod template app.kubernetes.io/component",
    ),
    "object without part-of": (
        "labels",
        lambda o: get(o, "Service", "mlflow")["metadata"]["labels"].pop("app.kubernetes.io/part-of"),
        "part-of",
    ),
    "service selects nothing": (
        "services",
        lambda o: get(o, "Service", "mlflow")["spec"].update(selector={"app.kubernetes.io/name": "mlfow"}),
        "matches no workload",
    ),
    "service port not on the pods": (
        "services",
        lambda o: get(o, "Service", "prefect-server")["spec"]["ports"][0].update(targetPort="web"),
        "targetPort 'web'",
    ),
    "HPA aimed at a misspelt target": (
        "autoscalers",
        lambda o: get(o, "HorizontalPodAutoscaler", "mlops-lab-api")["spec"]["scaleTargetRef"].update(name="mlops-lab"),
        "does not exist",
    ),
    "PDB selects nothing": (
        "disruption budgets",
        lambda o: get(o, "PodDisruptionBudget", "mlops-lab-api")["spec"].update(
            selector={"matchLabels": {"app.kubernetes.io/name": "api"}}
        ),
        "matches no running workload",
    ),
    "PDB that blocks every drain": (
        "disruption budgets",
        lambda o: get(o, "PodDisruptionBudget", "mlops-lab-api")["spec"].update(maxUnavailable=0),
        "allows no disruption",
    ),
    "network policy selects nothing": (
        "network policies",
        lambda o: get(o, "NetworkPolicy", "postgres-ingress")["spec"]["podSelector"].update(
            matchLabels={"app.kubernetes.io/name": "postgresql"}
        ),
        "podSelector matches no workload",
    ),
    "network policy allows a peer that does not exist": (
        "network policies",
        lambda o: get(o, "NetworkPolicy", "mlflow-ingress")["spec"]["ingress"][0]["from"][0]["podSelector"].update(
            matchLabels={"mlops-lab/mlflow-clients": "true"}
        ),
        "allowed peer",
    ),
    "egress allowed to a peer that does not exist": (
        "network policies",
        lambda o: get(o, "NetworkPolicy", "postgres-clients-egress")["spec"]["egress"][0]["to"][0][
            "podSelector"
        ].update(matchLabels={"app.kubernetes.io/name": "postgresql"}),
        "allowed peer",
    ),
    "egress not denied by default": (
        "network policies",
        lambda o: o.remove(get(o, "NetworkPolicy", "default-deny-egress")),
        "no default-deny egress policy",
    ),
    "secret value committed": ("references", _secret_with_value, "holds values"),
    "secret key not declared": ("references", _undeclared_secret_key, "does not declare key ADMIN"),
    "missing ConfigMap": (
        "references",
        lambda o: api_container(o)["envFrom"][0]["configMapRef"].update(name="settings"),
        "ConfigMap/settings",
    ),
    "rollout points at a missing Deployment": (
        "rollouts",
        lambda o: get(o, "Rollout", "mlops-lab-api")["spec"]["workloadRef"].update(name="api"),
        "workloadRef Deployment/api",
    ),
    "template Deployment runs pods too": (
        "rollouts",
        lambda o: get(o, "Deployment", "mlops-lab-api")["spec"].update(replicas=2),
        "replicas: 0",
    ),
    "analysis template misspelt": (
        "rollouts",
        lambda o: get(o, "Rollout", "mlops-lab-api")["spec"]["strategy"]["canary"]["analysis"]["templates"][0].update(
            templateName="canary"
        ),
        "AnalysisTemplate canary",
    ),
}


@pytest.mark.parametrize("case", list(BREAKERS))
def test_each_check_fails_on_a_broken_object(rendered: dict[str, Objects], case: str) -> None:
    check, breaker, expected = BREAKERS[case]
    objects = copy.deepcopy(rendered["prod"])
    assert CHECKS[check](objects) == []
    breaker(objects)
    messages = [v.message for v in CHECKS[check](objects)]
    assert any(expected in m for m in messages), messages


def test_every_check_has_a_failing_case() -> None:
    assert {check for check, _, _ in BREAKERS.values()} == set(CHECKS)


@pytest.mark.parametrize(
    ("kind", "breaker", "expected"),
    [
        ("Deployment", lambda o: o["spec"].update(replica=2), "Additional properties are not allowed ('replica'"),
        ("Service", lambda o: o["spec"]["ports"][0].update(port="http"), "'http' is not of type 'integer'"),
        (
            "Rollout",
            lambda o: o["spec"]["strategy"]["canary"]["steps"].insert(0, {"setWieght": 5}),
            "Additional properties are not allowed ('setWieght'",
        ),
        (
            "AnalysisTemplate",
            lambda o: o["spec"]["metrics"][0].update(interval="1 minute"),
            "does not match",
        ),
    ],
)
def test_schema_validation_refuses_a_malformed_object(
    rendered: dict[str, Objects], kind: str, breaker: Callable[[K8sObject], None], expected: str
) -> None:
    obj = copy.deepcopy(next(o for o in rendered["prod"] if o["kind"] == kind))
    assert validate_schemas([obj]) == []
    breaker(obj)
    messages = [v.message for v in validate_schemas([obj])]
    assert any(expected in m for m in messages), messages


def test_a_kind_without_any_schema_is_reported_not_skipped() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    [violation] = validate_schemas([unknown])
    assert "Couldn't find schema for kind Widget" in violation.message


# ---- the manifests agree with params.yaml and core/settings.py ---------------------------------------------


@pytest.mark.parametrize("env", OVERLAYS)
def test_settings_configmap_names_only_real_settings_with_valid_values(rendered: dict[str, Objects], env: str) -> None:
    config = next(
        o for o in rendered[env] if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("mlops-lab-settings")
    )
    fields = {f"MLOPS_{name.upper()}" for name in Settings.model_fields}
    unknown = set(config["data"]) - fields
    assert not unknown, f"not fields of core/settings.py::Settings: {sorted(unknown)}"
    parsed = Settings(**{k.removeprefix("MLOPS_").lower(): v for k, v in config["data"].items()})
    assert parsed.tracking_uri == "http://mlflow:5000"
    assert parsed.mlflow_artifact_root == "mlflow-artifacts:/"
    env_names = {e["name"] for o in rendered[env] if o["kind"] in ("Deployment", "CronJob") for e in _env(o)}
    assert {n for n in env_names if n.startswith("MLOPS_")} <= fields  # the ones set from Secrets too


def _env(obj: K8sObject) -> list[dict[str, Any]]:
    spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    return [e for c in spec["template"]["spec"]["containers"] for e in c.get("env", [])]


@pytest.mark.parametrize("env", OVERLAYS)
def test_monitor_cronjob_runs_the_monitoring_flow_on_the_params_schedule(
    rendered: dict[str, Objects], env: str, params: Params
) -> None:
    cron = get(rendered[env], "CronJob", "monitor")
    assert cron["spec"]["schedule"] == params.monitoring.schedule
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert [*container["command"], *container["args"]] == ["mlops-lab", "monitor"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize("env", OVERLAYS)
def test_rollout_steps_are_the_params_rollout_steps(rendered: dict[str, Objects], env: str, params: Params) -> None:
    steps = get(rendered[env], "Rollout", "mlops-lab-api")["spec"]["strategy"]["canary"]["steps"]
    weights = [s["setWeight"] for s in steps if "setWeight" in s]
    assert [*weights, 100] == params.rollout.steps  # Argo goes to 100 % itself after the last step


def test_analysis_guard_rails_are_the_params_rollout_guard_rails(rendered: dict[str, Objects], params: Params) -> None:
    metrics = {
        m["name"]: m for m in get(rendered["prod"], "AnalysisTemplate", "mlops-lab-api-canary")["spec"]["metrics"]
    }
    thresholds = {
        name: {
            float(x) for x in re.findall(r"result\[0\] [<>]=? ([0-9.]+)", m["successCondition"] + m["failureCondition"])
        }
        for name, m in metrics.items()
    }
    assert thresholds == {
        "canary-error-ratio": {params.rollout.max_error_rate},
        "canary-p99-latency-seconds": {params.rollout.max_p99_latency_ms / 1000},
    }
    for m in metrics.values():
        minimum = re.findall(r">= ([0-9]+)\s*$", m["provider"]["prometheus"]["query"].strip())
        assert minimum == [str(params.rollout.min_requests)], "too few requests must leave no sample"


@pytest.mark.parametrize("env", OVERLAYS)
def test_the_rollout_controller_runs_once_watching_and_reaches_its_databases(
    rendered: dict[str, Objects], env: str
) -> None:
    """One watching controller (Recreate: never two during an update), probed by its heartbeat, allowed
    through the PostgreSQL and MLflow policies, and reachable by nobody (it has no port)."""
    objects = rendered[env]
    deployment = get(objects, "Deployment", "rollout-controller")
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    assert (spec["replicas"], spec["strategy"]["type"]) == (1, "Recreate")
    [container] = pod["containers"]
    command = [*container["command"], *container["args"]]
    assert command[:4] == ["mlops-lab", "rollout", "run", "--watch"]
    assert container["image"].split("/")[-1].startswith("mlops-lab-pipeline:")
    for probe, extra in (("livenessProbe", []), ("readinessProbe", ["--ready"])):
        exec_command = container[probe]["exec"]["command"]
        assert exec_command[:3] == ["mlops-lab", "rollout", "heartbeat"]
        assert exec_command[3:] == ["--max-age", exec_command[4], *extra]
        max_age = float(exec_command[4])
        backoff = float(command[command.index("--max-backoff") + 1])
        assert max_age >= 2 * backoff, f"{probe}: an outage's longest wait alone must not look stuck"
    assert "ports" not in container
    names = {e["name"] for e in container["env"]}
    assert "MLOPS_PREDICTION_LOG_URL" in names  # the state store and the prediction log
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for name in ("postgres-ingress", "mlflow-ingress"):
        [peer] = get(objects, "NetworkPolicy", name)["spec"]["ingress"][0]["from"]
        assert selector_matches(peer["podSelector"], labels), f"{name} does not admit the controller"
    policies = [  # ingress policies other than deny-all: which open a port on a pod
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["spec"]["podSelector"] and "Ingress" in o["spec"]["policyTypes"]
    ]
    admitting = [p["metadata"]["name"] for p in policies if selector_matches(p["spec"]["podSelector"], labels)]
    assert admitting == [], "no policy opens a port on the controller"


@pytest.mark.parametrize("env", OVERLAYS)
def test_stream_scorers_reach_the_broker_with_the_apis_image_and_settings(
    rendered: dict[str, Objects], env: str
) -> None:
    """C63: two workers on the API's image and stores, probed and scraped on their metrics port; a pinned,
    in-memory Redis that only the workers' label reaches."""
    objects = rendered[env]
    worker = get(objects, "Deployment", "stream-scorer")
    pod = worker["spec"]["template"]
    [container] = pod["spec"]["containers"]
    api = api_container(objects)
    assert worker["spec"]["replicas"] == 2
    assert container["image"] == api["image"], "the API's image, pinned by the same overlay entry"
    assert container["envFrom"] == api["envFrom"], "the API's settings and MLflow login"
    log = next(e for e in container["env"] if e["name"] == "MLOPS_PREDICTION_LOG_URL")
    assert log == next(e for e in api["env"] if e["name"] == "MLOPS_PREDICTION_LOG_URL"), "one prediction log"
    command = [*container["command"], *container["args"]]
    assert command[:2] == ["mlops-lab", "stream-score"]
    port = int(command[command.index("--metrics-port") + 1])
    assert command[command.index("--metrics-host") + 1] == "0.0.0.0"
    [declared] = container["ports"]
    assert declared["containerPort"] == port == int(pod["metadata"]["annotations"]["prometheus.io/port"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": declared["name"]}, probe
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("mlops-lab-s"))
    host, redis_port = re.fullmatch(r"redis://([\w-]+):(\d+)/\d+", config["data"]["MLOPS_REDIS_URL"]).groups()  # type: ignore[union-attr]
    service = get(objects, "Service", host)
    assert [p["port"] for p in service["spec"]["ports"]] == [int(redis_port)]
    broker = get(objects, "Deployment", host)
    [redis] = broker["spec"]["template"]["spec"]["containers"]
    assert redis["image"] == "redis:7.2.5-alpine"
    assert redis["args"][-4:] == ["--save", "", "--appendonly", "no"], "in memory only, as in compose"
    assert "volumes" not in broker["spec"]["template"]["spec"] or all(
        "persistentVolumeClaim" not in v for v in broker["spec"]["template"]["spec"]["volumes"]
    )
    [peer] = get(objects, "NetworkPolicy", "redis-ingress")["spec"]["ingress"][0]["from"]
    clients = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "CronJob")]
    admitted = {
        o["metadata"]["name"]
        for o in clients
        if o["kind"] != "CronJob" and selector_matches(peer["podSelector"], o["spec"]["template"]["metadata"]["labels"])
    }
    assert admitted == {"stream-scorer"}, "only the workers reach the broker"
    compose = yaml.safe_load((Path(__file__).resolve().parents[3] / "docker/compose.yaml").read_text())
    assert compose["services"]["redis"]["image"] == redis["image"], "one Redis version in compose and k8s"


def test_api_port_is_reached_only_from_the_ingress_and_prometheus_namespaces(rendered: dict[str, Objects]) -> None:
    policy = get(rendered["prod"], "NetworkPolicy", "api-ingress")
    peers = [p for rule in policy["spec"]["ingress"] for p in rule["from"]]
    assert all(set(p) == {"namespaceSelector"} for p in peers), "no pod of ours is allowed to call the admin API"
    ingress = get(rendered["prod"], "Ingress", "mlops-lab-api")
    paths = {p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert not any(p.startswith(("/v1/admin", "/metrics", "/docs")) or p == "/" for p in paths)
    databases = [get(rendered["prod"], "NetworkPolicy", n) for n in ("postgres-ingress", "mlflow-ingress")]
    api_labels = get(rendered["prod"], "Deployment", "mlops-lab-api")["spec"]["template"]["metadata"]["labels"]
    for pol in databases:
        [peer] = pol["spec"]["ingress"][0]["from"]
        assert selector_matches(peer["podSelector"], api_labels)


STORES = {
    "mlops-lab/postgres-client": "postgres",
    "mlops-lab/mlflow-client": "mlflow",
    "mlops-lab/prefect-client": "prefect-server",
    "mlops-lab/redis-client": "redis",
}


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_pod_reaches_dns_and_exactly_the_stores_its_labels_declare(
    rendered: dict[str, Objects], overlay: str
) -> None:
    objects = rendered[overlay]
    egress = [o for o in objects if o["kind"] == "NetworkPolicy" and "Egress" in o["spec"]["policyTypes"]]
    deny = get(objects, "NetworkPolicy", "default-deny-egress")["spec"]
    assert (deny["podSelector"], deny.get("egress")) == ({}, None)  # selects every pod, allows nothing
    workloads = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "CronJob")]
    assert workloads
    for w in workloads:
        template = w["spec"]["jobTemplate"]["spec"]["template"] if w["kind"] == "CronJob" else w["spec"]["template"]
        labels = template["metadata"]["labels"]
        reached = {
            peer["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
            or peer["podSelector"]["matchLabels"]["k8s-app"]
            for pol in egress
            if selector_matches(pol["spec"]["podSelector"], labels)
            for rule in pol["spec"].get("egress", [])
            for peer in rule["to"]
        }
        declared = {store for label, store in STORES.items() if labels.get(label) == "true"}
        assert reached == declared | {"kube-dns"}, w["metadata"]["name"]


# ---- the canary analysis, evaluated by promtool --------------------------------------------------------

LABELS = 'job="mlops-lab",namespace="ns",route="/v1/predict",method="POST"'
SERIES = "http_requests_total{{" + LABELS + ',rollouts_pod_template_hash="{hash}",status="{status}"}}'
BUCKET = "http_request_duration_seconds_bucket{{" + LABELS + ',rollouts_pod_template_hash="canary",le="{le}"}}'


CONDITION = re.compile(r"^len\(result\) > 0 && result\[0\] (<=|>) ([0-9.]+)$")


def argo_phase(success: str, failure: str, result: list[float]) -> str:
    """Argo Rollouts' verdict on one measurement, for conditions of our one shape (anything else fails here).

    Both conditions false is Inconclusive: Argo pauses the rollout for a person instead of passing it.
    """

    def holds(condition: str) -> bool:
        found = CONDITION.match(condition)
        assert found is not None, f"condition {condition!r} is not of the form this test understands"
        op, threshold = found.group(1), float(found.group(2))
        return len(result) > 0 and (result[0] <= threshold if op == "<=" else result[0] > threshold)

    if holds(success):
        return "Successful"
    return "Failed" if holds(failure) else "Inconclusive"


def promtool_eval(
    tmp_path: Path, query: str, series: dict[str, str], expected: list[float]
) -> subprocess.CompletedProcess[str]:
    exe = system_tool("promtool")
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "promql_expr_test": [
                    {"expr": query, "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": x} for x in expected]}
                ],
            }
        ],
    }
    path = tmp_path / "analysis_test.yml"
    path.write_text(yaml.safe_dump(test))
    return subprocess.run([exe, "test", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False)


CASES = {
    # name: (metric, series, the value the query returns, Argo's verdict)
    "5 % errors on the canary fail it": (
        "canary-error-ratio",
        {SERIES.format(hash="canary", status="200"): "0+114x15", SERIES.format(hash="canary", status="500"): "0+6x15"},
        [0.05],
        "Failed",
    ),
    "no 5xx series at all is a ratio of 0, a pass": (
        "canary-error-ratio",
        {SERIES.format(hash="canary", status="200"): "0+120x15"},
        [0.0],
        "Successful",
    ),
    "the stable pods' errors do not count against the canary": (
        "canary-error-ratio",
        {
            SERIES.format(hash="canary", status="200"): "0+120x15",
            SERIES.format(hash="stable", status="500"): "0+120x15",
        },
        [0.0],
        "Successful",
    ),
    "too little canary traffic leaves no sample: inconclusive, never a pass": (
        "canary-error-ratio",
        {SERIES.format(hash="canary", status="200"): "0+10x15"},
        [],
        "Inconclusive",
    ),
    "a slow canary fails the p99 guard": (
        "canary-p99-latency-seconds",
        {
            SERIES.format(hash="canary", status="200"): "0+100x15",
            BUCKET.format(le="0.1"): "0+98x15",
            BUCKET.format(le="1"): "0+100x15",
            BUCKET.format(le="+Inf"): "0+100x15",
        },
        [0.55],
        "Failed",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_canary_analysis_queries_on_synthetic_series(rendered: dict[str, Objects], tmp_path: Path, case: str) -> None:
    metric_name, series, expected, verdict = CASES[case]
    template = get(rendered["prod"], "AnalysisTemplate", "mlops-lab-api-canary")
    metric = next(m for m in template["spec"]["metrics"] if m["name"] == metric_name)
    query = metric["provider"]["prometheus"]["query"].replace("{{args.namespace}}", "ns")
    query = query.replace("{{args.canary-hash}}", "canary")
    result = promtool_eval(tmp_path, query, series, expected)
    assert result.returncode == 0, result.stdout + result.stderr
    assert argo_phase(metric["successCondition"], metric["failureCondition"], expected) == verdict


def test_promtool_notices_a_wrong_expectation(rendered: dict[str, Objects], tmp_path: Path) -> None:
    metric = get(rendered["prod"], "AnalysisTemplate", "mlops-lab-api-canary")["spec"]["metrics"][0]
    query = (
        metric["provider"]["prometheus"]["query"]
        .replace("{{args.namespace}}", "ns")
        .replace("{{args.canary-hash}}", "canary")
    )
    result = promtool_eval(tmp_path, query, {SERIES.format(hash="canary", status="200"): "0+10x15"}, [0.0])
    assert result.returncode != 0


@pytest.mark.parametrize("env", OVERLAYS)
def test_the_mlflow_server_runs_basic_auth_and_every_pod_that_reaches_it_logs_in(
    rendered: dict[str, Objects], env: str
) -> None:
    """C44: the registry answers only authenticated clients; each of our pods carries Secret/mlflow-client."""
    from ops.k8s_objects import containers, own_templates

    objects = rendered[env]
    server = get(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]
    (mlflow,) = server["containers"]
    assert mlflow["args"][mlflow["args"].index("--app-name") + 1] == "basic-auth"
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in mlflow["env"] if "valueFrom" in e}
    assert from_secret["MLFLOW_AUTH_ADMIN_PASSWORD"] == from_secret["MLFLOW_FLASK_SERVER_SECRET_KEY"] == "mlflow-server"
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in server["volumes"]}
    mounts = {m["mountPath"]: claims[m["name"]] for m in mlflow["volumeMounts"]}
    assert mounts["/mlflow/auth"] not in (None, mounts["/mlflow/artifacts"]), "users never sit in the artifact store"
    clients = 0
    for workload in own_templates(objects):
        for container in containers(workload):
            refs = container.get("envFrom", [])
            settings = [r for r in refs if r.get("configMapRef", {}).get("name", "").startswith("mlops-lab-settings")]
            if settings:  # MLOPS_TRACKING_URI comes from there (kustomize appends a hash to the name)
                clients += 1
                assert {"secretRef": {"name": "mlflow-client"}} in refs, workload.obj["metadata"]["name"]
    assert clients >= 4  # api, rollout controller, Prefect worker, monitor job
    keys = get(objects, "Secret", "mlflow-client")["metadata"]["annotations"]["mlops-lab/keys"].split(",")
    assert keys == ["MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"]
