"""docker/compose.yaml (C46), checked offline: the Compose Specification schema plus cross-checks.

No Docker engine here, so `docker compose config` cannot run. Instead the file is validated against the
Compose Specification JSON schema (vendored in docker/schema/, source and licence in its README) with
`jsonschema`, both as written and after interpolation with a complete environment (the release
variables from `ops.images`, the secrets of docker/.env.example filled with random values). Then the
cross-checks a reviewer would make by hand: every image is built here with a computed tag or pinned to
an exact upstream version; MLOPS_* names are Settings fields; ports agree between services; volumes
are declared and bind mounts exist; Prometheus loads the repository's real rule file (checked with the
real promtool against the mounted paths) and scrapes the API job the rules select; Grafana gets our
dashboards and a datasource with the uid they use; secrets come only from the environment.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from core.settings import Settings
from lab.demos.security import find_secrets
from ops.images import IMAGES, GitState, env_lines, is_release_tag, pinning_problem, plan_tags, split_reference
from tests.system_tools import system_tool

REPO = Path(__file__).resolve().parents[3]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
SCHEMA = DOCKER / "schema/compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
ENV_EXAMPLE = DOCKER / ".env.example"
SECRETS = ("POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SECRET_KEY",
           "MLOPS_ADMIN_TOKEN")  # fmt: skip
SERVICES = {
    "postgres",
    "mlflow",
    "prefect-server",
    "pipeline-worker",
    "rollout-controller",
    "trainer",
    "dask-scheduler",
    "dask-worker",
    "batch-scorer",
    "redis",
    "stream-scorer",
    "stream-producer",
    "api",
    "prometheus",
    "grafana",
}
_VAR = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(KeyError):
    """A ${VAR:?message} (or ${VAR?message}) reference whose variable is missing."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation (${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+a}, $$)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1) or match.group(4), match.group(2), match.group(3) or ""
        current = env.get(name)
        unset_or_empty = not current if op and op.startswith(":") else current is None
        if op in (":-", "-"):
            return arg if unset_or_empty else str(current)
        if op in (":?", "?"):
            if unset_or_empty:
                raise MissingVariable(f"{name}: {arg}")
            return str(current)
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return current or ""

    return _VAR.sub(substitute, value)


def strings(value: Any) -> list[str]:
    """Every string in a loaded YAML document (what compose interpolates: values, not comments)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def references(raw: dict[str, Any]) -> list[re.Match[str]]:
    return [m for text in strings(raw) for m in _VAR.finditer(text) if m.group(0) != "$$"]


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if re.match(r"[A-Z_]+=", line))
    return {key: value for key, value in pairs}


def release_env() -> dict[str, str]:
    """A full environment: the release variables `mlops-lab images tags --format env` prints, plus secrets."""
    git = GitState(sha="0123456789abcdef0123456789abcdef01234567")
    lines = env_lines(git, plan_tags(git, "4"), "4")
    env = dict(line.split("=", 1) for line in lines)
    env.update({name: secrets.token_urlsafe(24) for name in env_example()})
    return env


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    return interpolate(raw, release_env())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256, "schema changed: see its README"
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_valid_against_the_compose_specification_as_written_and_interpolated(
    raw: dict[str, Any], compose: dict[str, Any], validator: jsonschema.Draft202012Validator
) -> None:
    for doc in (raw, compose):
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == []
    assert set(raw["services"]) == SERVICES


def test_the_schema_does_reject_a_malformed_file(
    compose: dict[str, Any], validator: jsonschema.Draft202012Validator
) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["api"]["deploy"]["replicas"] = "two"
    broken["services"]["grafana"]["healthchek"] = {}
    broken["services"]["postgres"]["depends_on"] = {"mlflow": {"condition": "when_ready"}}
    assert len(list(validator.iter_errors(broken))) >= 3


def test_every_image_is_built_here_with_a_release_tag_or_pinned_exactly(
    raw: dict[str, Any], compose: dict[str, Any]
) -> None:
    ours = {spec.dockerfile: spec for spec in IMAGES}
    built = set()
    for name, service in compose["services"].items():
        image = service["image"]
        assert pinning_problem(image) is None, f"{name}: {pinning_problem(image)}"
        assert "latest" not in image
        if "build" in service:
            spec = ours[service["build"]["dockerfile"]]
            built.add(spec.dockerfile)
            assert (REPO / service["build"]["dockerfile"]).is_file()
            assert (COMPOSE.parent / service["build"]["context"]).resolve() == REPO
            repository, tag, _ = split_reference(image)
            assert repository == spec.name
            assert tag is not None
            assert is_release_tag(tag)
            assert raw["services"][name]["image"].startswith(f"${{{spec.env_var}:?"), (
                "the tag comes from the release env"
            )
        else:
            assert service["image"] == raw["services"][name]["image"], f"{name}: upstream images are literal"
    assert built == {d for d, spec in ours.items() if spec.in_compose}, "every stack image is built by the stack"
    assert compose["services"]["api"]["image"].endswith("-m4"), "the API image names the champion"


def test_long_running_services_have_healthchecks_and_dependencies_wait_for_them(compose: dict[str, Any]) -> None:
    dockerfile_checks = {spec.name for spec in IMAGES if "HEALTHCHECK" in (REPO / spec.dockerfile).read_text()}
    for name, service in compose["services"].items():
        own = "healthcheck" in service or split_reference(service["image"])[0] in dockerfile_checks
        if "profiles" not in service:  # one-shot jobs (profile bootstrap) are not health-checked
            assert own, f"{name} has no healthcheck (compose or Dockerfile)"
        for dependency, rule in service.get("depends_on", {}).items():
            assert rule["condition"] in ("service_healthy", "service_started", "service_completed_successfully")
            assert dependency in compose["services"]
        healthy = [d for d, r in service.get("depends_on", {}).items() if r["condition"] == "service_healthy"]
        for dependency in healthy:
            dep = compose["services"][dependency]
            assert "healthcheck" in dep or split_reference(dep["image"])[0] in dockerfile_checks
    assert compose["services"]["api"]["deploy"]["replicas"] >= 2


def test_mlops_variables_are_settings_fields_and_urls_point_at_real_services(compose: dict[str, Any]) -> None:
    fields = {f"MLOPS_{name.upper()}" for name in Settings.model_fields}
    services = compose["services"]
    for name, service in services.items():
        unknown = [key for key in service.get("environment", {}) if key.startswith("MLOPS_") and key not in fields]
        assert unknown == [], f"{name}: not Settings fields: {unknown}"
        for key, value in service.get("environment", {}).items():
            for host, port in re.findall(
                r"(?:https?|redis|postgresql\+\w+)://(?:\w+@)?([a-z][\w-]*):(\d+)", str(value)
            ):
                if host == "localhost":  # a URL for the browser: this service must publish that port
                    assert f"127.0.0.1:{port}:{port}" in service.get("ports", []), f"{name}.{key}: {port} unpublished"
                    continue
                assert host in services, f"{name}.{key}: no service {host!r}"
                assert port in listening_ports(services[host]), f"{name}.{key}: {host} does not listen on {port}"
    worker = services["pipeline-worker"]["environment"]
    assert worker["MLOPS_ARTIFACT_ROOT"].startswith("mlflow-artifacts:"), "artifacts go through the MLflow server"
    assert "--serve-artifacts" in services["mlflow"]["command"]
    assert services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg://")
    assert services["prefect-server"]["environment"]["PREFECT_SERVER_DATABASE_CONNECTION_URL"].startswith(
        "postgresql+asyncpg://"
    )


def test_the_rollout_controller_watches_like_the_k8s_one_and_is_probed_by_its_heartbeat(
    compose: dict[str, Any],
) -> None:
    """The same command as k8s/base/rollout-controller.yaml, restarted by Docker, healthy by its heartbeat."""
    service = compose["services"]["rollout-controller"]
    deployment = yaml.safe_load((REPO / "k8s/base/rollout-controller.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert service["command"] == [*container["command"], *container["args"]]
    assert service["command"][:4] == ["mlops-lab", "rollout", "run", "--watch"]
    # The pipeline image's HEALTHCHECK probes a Prefect runner this container does not run: override it.
    assert service["healthcheck"]["test"][1:4] == ["mlops-lab", "rollout", "heartbeat"]
    assert service["healthcheck"]["test"][1:] == container["readinessProbe"]["exec"]["command"]
    assert {d: r["condition"] for d, r in service["depends_on"].items()} == {
        "postgres": "service_healthy",
        "mlflow": "service_healthy",
    }
    assert service["restart"] == "unless-stopped"
    env = service["environment"]
    assert env["MLOPS_PREDICTION_LOG_URL"].startswith("postgresql+psycopg://"), "state store shared with the API"
    assert env["MLOPS_TRACKING_URI"] == compose["services"]["api"]["environment"]["MLOPS_TRACKING_URI"]


def listening_ports(service: dict[str, Any]) -> set[str]:
    """Container ports a service listens on: its --port, the Dockerfile's EXPOSE, well-known upstream ports."""
    ports = {str(p).rsplit(":", 1)[-1].split("/")[0] for p in service.get("ports", [])}
    command = service.get("command", [])
    for option in ("--port", "--metrics-port"):
        if option in command:
            ports.add(str(command[command.index(option) + 1]))
    spec = next((s for s in IMAGES if split_reference(service["image"])[0] == s.name), None)
    if spec is not None and "command" not in service:
        ports |= set(re.findall(r"^EXPOSE (\d+)", (REPO / spec.dockerfile).read_text(), re.MULTILINE))
    if service["image"].startswith("postgres:"):
        ports.add("5432")
    if service["image"].startswith("redis:"):
        ports.add("6379")
    return ports


def test_volumes_are_declared_and_bind_mounts_exist(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source, target = mount.split(":")[:2]
            if source.startswith((".", "/")):
                assert (COMPOSE.parent / source).exists(), f"{name}: bind mount {source} does not exist"
                assert mount.endswith(":ro"), f"{name}: repository files are mounted read-only"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
            assert target.startswith("/")
    assert used == declared, "every declared volume is used"


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    pairs = (m.split(":")[:2] for m in service.get("volumes", []))
    return {target: (COMPOSE.parent / source).resolve() for source, target in pairs if source.startswith(".")}


def test_prometheus_loads_the_real_rules_and_scrapes_the_api_job(compose: dict[str, Any], tmp_path: Path) -> None:
    prometheus = compose["services"]["prometheus"]
    mounted = mounts(prometheus)
    config_path = next(a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file="))
    config = yaml.safe_load(mounted[config_path].read_text())
    rule_files = [mounted[path] for path in config["rule_files"]]
    assert rule_files == [REPO / "monitoring/prometheus/alerts.yml"]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "mlops-lab")
    assert 'job="mlops-lab"' in rule_files[0].read_text()
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["api"]
    assert str(sd["port"]) in listening_ports(compose["services"]["api"])
    assert set(compose["services"]["api"]["networks"]) & set(prometheus["networks"]), "prometheus reaches the api"
    # promtool checks the config and loads the rule files from where the container will find them.
    promtool = system_tool("promtool")
    config["rule_files"] = [str(p) for p in rule_files]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    result = subprocess.run([promtool, "check", "config", str(local)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_grafana_gets_our_dashboards_and_the_datasource_uid_they_use(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounted = mounts(grafana)
    provider_dir = mounted["/etc/grafana/provisioning/dashboards"]
    assert provider_dir == REPO / "monitoring/grafana/provisioning/dashboards"
    (provider,) = yaml.safe_load((provider_dir / "mlops-lab.yml").read_text())["providers"]
    dashboards = mounted[provider["options"]["path"]]
    assert dashboards == REPO / "monitoring/grafana/dashboards"
    assert list(dashboards.glob("*.json"))
    (datasource,) = yaml.safe_load((mounted["/etc/grafana/provisioning/datasources"] / "prometheus.yml").read_text())[
        "datasources"
    ]
    used = set(re.findall(r'"uid": "(mlops-prometheus[^"]*)"', (dashboards / "mlops-lab.json").read_text()))
    assert used == {datasource["uid"]}
    local = yaml.safe_load((REPO / "monitoring/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert local["datasources"][0]["uid"] == datasource["uid"]
    assert datasource["url"] == "http://prometheus:9090"
    assert set(grafana["networks"]) & set(compose["services"]["prometheus"]["networks"])


def test_secrets_come_only_from_the_environment(raw: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    git = GitState(sha="a" * 40)
    release = {line.split("=", 1)[0] for line in env_lines(git, plan_tags(git, "1"), "1")}
    documented = set(env_example())
    used = {m.group(1) or m.group(4) for m in references(raw)}
    assert used == documented | release, "every variable is a documented secret or a release variable"
    assert set(SECRETS) <= documented
    assert all(value == "" for value in env_example().values()), "the example holds no secret"
    for name in (
        "POSTGRES_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "MLFLOW_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SECRET_KEY",
        *release,
    ):
        assert all(m.group(2) == ":?" for m in references(raw) if m.group(1) == name), f"{name} is required"
    assert find_secrets([COMPOSE, ENV_EXAMPLE, *DOCKER.rglob("*.yml")], REPO) == []
    assert not re.search(r"://\w+:[^@/\s]+@", text), "no password inside a URL: PGPASSWORD carries it"
    assert raw["services"]["postgres"]["networks"] == ["backend"], "the database is not on the monitoring network"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(DOCKER / ".env")], cwd=REPO, capture_output=True, timeout=30
    )
    assert ignored.returncode == 0, "docker/.env must be git-ignored"


def test_a_missing_secret_stops_interpolation_with_the_fix(raw: dict[str, Any]) -> None:
    env = release_env()
    del env["POSTGRES_PASSWORD"]
    with pytest.raises(MissingVariable, match=r"POSTGRES_PASSWORD: set POSTGRES_PASSWORD in docker/\.env"):
        interpolate(raw, env)
    env = release_env()
    env["MLOPS_ADMIN_TOKEN"] = ""
    assert interpolate(raw, env)["services"]["api"]["environment"]["MLOPS_ADMIN_TOKEN"] == ""  # admin API off


def test_the_mlflow_server_runs_basic_auth_and_every_client_logs_in(compose: dict[str, Any]) -> None:
    """C44: nobody on the network can write the registry anonymously; our services hold the credentials."""
    services = compose["services"]
    mlflow = services["mlflow"]
    assert mlflow["command"][mlflow["command"].index("--app-name") + 1] == "basic-auth"
    password = mlflow["environment"]["MLFLOW_AUTH_ADMIN_PASSWORD"]
    assert password
    assert mlflow["environment"]["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    assert "/mlflow/auth" in {v.split(":")[1] for v in mlflow["volumes"]}, "users outlive the container"
    clients = [name for name, svc in services.items() if "MLOPS_TRACKING_URI" in svc.get("environment", {})]
    assert {"api", "pipeline-worker", "rollout-controller", "trainer"} <= set(clients)
    for name in clients:
        env = services[name]["environment"]
        assert (env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD")) == ("mlops", password), name


def test_batch_scoring_workers_reach_the_scheduler_and_share_the_scorers_output_folder(compose: dict[str, Any]) -> None:
    """C61: the scorer submits to the scheduler service; its workers write where the scorer reads, and report
    to the Prefect server and log in to MLflow like every other client."""
    services = compose["services"]
    scorer, worker, scheduler = services["batch-scorer"], services["dask-worker"], services["dask-scheduler"]
    assert scorer["environment"]["MLOPS_BATCH_RUNNER"] == "dask"
    host, port = re.fullmatch(r"tcp://([\w-]+):(\d+)", scorer["environment"]["MLOPS_DASK_ADDRESS"]).groups()
    assert host == "dask-scheduler"
    assert scheduler["command"][scheduler["command"].index("--port") + 1] == port
    assert f"tcp://{host}:{port}" in worker["command"]
    output = scorer["command"][scorer["command"].index("--output") + 1]
    batch_mounts = {v.split(":")[1] for v in worker["volumes"]} & {v.split(":")[1] for v in scorer["volumes"]}
    assert any(output.startswith(mount + "/") for mount in batch_mounts), "workers write the parts the scorer reads"
    assert worker["environment"]["PREFECT_API_URL"] == scorer["environment"]["PREFECT_API_URL"]
    assert worker["environment"]["MLFLOW_TRACKING_USERNAME"] == "mlops"


def test_stream_scoring_workers_reach_the_broker_with_the_apis_settings_and_are_scraped(
    compose: dict[str, Any],
) -> None:
    """C63, profile `stream`: an in-memory Redis on the backend network only, two workers built from the API's
    image with the API's settings (one registry, one prediction log), /metrics on a port Prometheus scrapes and the
    health check probes, and a producer that reads the raw data the trainer ingested."""
    import typer.main

    from cli.app import app

    services = compose["services"]
    broker, scorer, producer, api = (services[n] for n in ("redis", "stream-scorer", "stream-producer", "api"))
    assert {n for n, svc in services.items() if "stream" in svc.get("profiles", [])} == {
        "redis", "stream-scorer", "stream-producer"
    }  # fmt: skip
    assert broker["networks"] == ["backend"]
    assert "ports" not in broker, "the broker is not published"
    assert "volumes" not in broker, "in memory only"
    assert broker["command"][-4:] == ["--save", "", "--appendonly", "no"]
    assert broker["healthcheck"]["test"][1:] == ["redis-cli", "ping"]

    assert (scorer["build"], scorer["image"]) == (api["build"], api["image"]), "the API's image, one build"
    assert scorer["deploy"]["replicas"] == 2
    command = scorer["command"]
    assert command[:2] == ["mlops-lab", "stream-score"]
    stream_score = typer.main.get_command(app).commands["stream-score"]  # type: ignore[attr-defined]
    options = {opt for param in stream_score.params for opt in param.opts}
    assert {c for c in command[2:] if c.startswith("--")} <= options, "only options stream-score has"
    port = command[command.index("--metrics-port") + 1]
    assert command[command.index("--metrics-host") + 1] == "0.0.0.0", "reachable from Prometheus's container"
    assert scorer["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/metrics"
    env = scorer["environment"]
    assert env["MLOPS_REDIS_URL"] == producer["environment"]["MLOPS_REDIS_URL"] == "redis://redis:6379/0"
    for key in ("MLOPS_TRACKING_URI", "MLOPS_PREDICTION_LOG_URL", "MLFLOW_TRACKING_USERNAME", "MLOPS_POLL_INTERVAL_S"):
        assert env[key] == api["environment"][key], f"{key}: the workers share the API's stores"
    assert {d: r["condition"] for d, r in scorer["depends_on"].items()} == {
        "redis": "service_healthy", "postgres": "service_healthy", "mlflow": "service_healthy"
    }  # fmt: skip

    prometheus = services["prometheus"]
    config = yaml.safe_load(mounts(prometheus)["/etc/prometheus/prometheus.yml"].read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "stream-scorer")
    (sd,) = job["dns_sd_configs"]
    assert (sd["names"], str(sd["port"])) == (["stream-scorer"], port)
    assert set(scorer["networks"]) & set(prometheus["networks"]), "prometheus reaches the workers"

    assert producer["command"][:2] == ["mlops-lab", "stream-produce"]
    trainer_data = {v for v in services["trainer"]["volumes"] if v.endswith(":/app/data")}
    assert trainer_data
    assert trainer_data <= set(producer["volumes"]), "the producer reads the trainer's raw data"
