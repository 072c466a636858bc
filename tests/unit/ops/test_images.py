"""Immutable image tags (C29): computed from a real temporary git repository, never chosen by hand.

Each test builds its own repository under tmp_path (``git init``, real commits), so the sha, the dirty
state and the refusal messages come from git itself, not from a stub.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ops.images import (
    IMAGES,
    GitState,
    ImageTagError,
    env_lines,
    image_tag,
    is_release_tag,
    pinning_problem,
    plan_tags,
    read_git_state,
    split_reference,
)

REPO = Path(__file__).resolve().parents[3]


def git(repo: Path, *args: str) -> str:
    env_args = ["-c", "user.email=lab@example.invalid", "-c", "user.name=lab", "-c", "commit.gpgsign=false"]
    return subprocess.run(
        ["git", *env_args, *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / ".gitignore").write_text("ignored/\n")
    (root / "app.py").write_text("print('v1')\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_clean_tree_gives_sha12_and_the_api_also_the_champion(repo: Path) -> None:
    state = read_git_state(repo)
    head = git(repo, "rev-parse", "HEAD")
    assert state == GitState(sha=head, dirty_files=())
    images = {i.spec.name: i for i in plan_tags(state, "3")}
    assert images["mlops-lab-api"].tag == f"{head[:12]}-m3"
    assert images["mlops-lab-pipeline"].tag == head[:12]
    assert images["mlops-lab-mlflow"].tag == head[:12]
    assert images["mlops-lab-api"].reference == f"mlops-lab-api:{head[:12]}-m3"
    assert plan_tags(state, "3") == plan_tags(read_git_state(repo), "3")  # same inputs, same tags


def test_a_commit_changes_every_tag_and_a_promotion_only_the_api_tag(repo: Path) -> None:
    before = {i.spec.name: i.tag for i in plan_tags(read_git_state(repo), "3")}
    promoted = {i.spec.name: i.tag for i in plan_tags(read_git_state(repo), "4")}
    serving = {"mlops-lab-api", "mlops-lab-lambda"}  # the images whose release is cut for one champion
    for name in serving:
        assert promoted[name] != before[name]
        assert promoted[name].endswith("-m4")
    assert {k: v for k, v in promoted.items() if k not in serving} == {
        k: v for k, v in before.items() if k not in serving
    }
    (repo / "app.py").write_text("print('v2')\n")
    git(repo, "commit", "-q", "-am", "second")
    after = {i.spec.name: i.tag for i in plan_tags(read_git_state(repo), "3")}
    assert all(after[name] != before[name] for name in before)


def test_a_dirty_tree_is_refused_unless_allowed_and_then_marked(repo: Path) -> None:
    (repo / "app.py").write_text("print('edited, not committed')\n")
    state = read_git_state(repo)
    assert state.dirty_files == ("app.py",)
    with pytest.raises(ImageTagError, match=r"1 uncommitted change\(s\) \(app\.py\).*--allow-dirty"):
        plan_tags(state, "3")
    tags = {i.spec.name: i.tag for i in plan_tags(state, "3", allow_dirty=True)}
    assert tags["mlops-lab-api"] == f"{state.sha[:12]}-m3-dirty"
    assert tags["mlops-lab-mlflow"] == f"{state.sha[:12]}-dirty"
    assert all(is_release_tag(tag) for tag in tags.values())


def test_untracked_files_make_the_tree_dirty_but_ignored_ones_do_not(repo: Path) -> None:
    (repo / "ignored").mkdir()
    (repo / "ignored" / "cache.bin").write_text("x")
    assert not read_git_state(repo).dirty
    (repo / "new_module.py").write_text("x = 1\n")  # would be copied into an image by `COPY lab ./lab`
    assert read_git_state(repo).dirty_files == ("new_module.py",)


def test_outside_git_or_without_a_commit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageTagError, match="build from a git checkout"):
        read_git_state(tmp_path)
    git(tmp_path, "init", "-q")
    with pytest.raises(ImageTagError, match="at least one commit"):
        read_git_state(tmp_path)


def test_model_version_must_be_a_registry_number_and_a_champion_is_required() -> None:
    state = GitState(sha="a" * 40)
    assert image_tag(state, "12") == "aaaaaaaaaaaa-m12"
    assert image_tag(state, "0") == "aaaaaaaaaaaa-m0"  # a first release, before any champion
    for bad in ("latest", "", "3a", "-1", "03", "v3"):
        with pytest.raises(ImageTagError, match="not a registry version number"):
            image_tag(state, bad)
    with pytest.raises(ImageTagError, match=r"no champion.*mlops-lab train.*--model-version 0"):
        plan_tags(state, None)
    with pytest.raises(ImageTagError, match="not a full git commit sha"):
        image_tag(GitState(sha="HEAD"))


def test_env_lines_name_every_compose_variable_once() -> None:
    state = GitState(sha="b" * 40, dirty_files=("x",))
    images = plan_tags(state, "7", allow_dirty=True, registry="ghcr.io/acme/")
    assert env_lines(state, images, "7") == [
        f"GIT_REVISION={'b' * 40}-dirty",
        "MODEL_VERSION=7",
        "API_IMAGE=ghcr.io/acme/mlops-lab-api:bbbbbbbbbbbb-m7-dirty",
        "PIPELINE_IMAGE=ghcr.io/acme/mlops-lab-pipeline:bbbbbbbbbbbb-dirty",
        "MLFLOW_IMAGE=ghcr.io/acme/mlops-lab-mlflow:bbbbbbbbbbbb-dirty",
    ]


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("python:3.11.7-slim-bookworm", None),
        ("ghcr.io/astral-sh/uv:0.13.9", None),
        ("prom/prometheus:v2.53.2", None),
        ("postgres:15.10-bookworm", None),  # PostgreSQL's exact releases are major.minor
        ("localhost:5000/team/tool:1.2.3", None),  # a registry port is not a tag
        ("python@sha256:" + "0" * 64, None),
        ("mlops-lab-api:0123456789ab-m4", None),
        ("public.ecr.aws/lambda/python:3.12.2026.10.03.13", None),  # a dated build of the Lambda base image
        ("public.ecr.aws/lambda/python:3.12.2026.10.03.13-arm64", None),
        ("public.ecr.aws/lambda/python:3.12", "series that moves with each patch"),
        ("public.ecr.aws/lambda/python:3.12.2026.10", "not an exact version"),
        ("python:latest", "moves to whatever was pushed last"),
        ("python", "no tag, so Docker pulls `latest`"),
        ("localhost:5000/team/tool", "no tag"),
        ("python:3.11", "series that moves with each patch"),
        ("python:3.11-slim", "series that moves with each patch"),
        ("redis:7", "not an exact version"),
        ("grafana/grafana:stable", "moves"),
        ("python@sha256:abc", "malformed digest"),
        ("mlops-lab-api:dev-build", "mlops-lab images tags"),
        ("mlops-lab-api:1.0.0", "mlops-lab images tags"),  # ours: only computed tags
    ],
)
def test_pinning_problem_accepts_exact_versions_and_refuses_moving_ones(reference: str, problem: str | None) -> None:
    found = pinning_problem(reference)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_split_reference_tells_a_registry_port_from_a_tag() -> None:
    assert split_reference("localhost:5000/a/b:1.2.3") == ("localhost:5000/a/b", "1.2.3", None)
    assert split_reference("localhost:5000/a/b") == ("localhost:5000/a/b", None, None)
    assert split_reference("a:1@sha256:ff") == ("a", "1", "sha256:ff")


def test_every_dockerfile_is_a_registered_image() -> None:
    assert {spec.dockerfile for spec in IMAGES} == {
        str(p.relative_to(REPO)) for p in (REPO / "docker").glob("*.Dockerfile")
    }


def test_cli_prints_one_reference_per_dockerfile_and_refuses_a_dirty_tree(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.app import app

    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(repo))
    sha12 = git(repo, "rev-parse", "HEAD")[:12]
    runner = CliRunner()
    plain = runner.invoke(app, ["images", "tags", "--model-version", "5"])
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.splitlines() == [
        f"mlops-lab-api:{sha12}-m5 docker/api.Dockerfile",
        f"mlops-lab-pipeline:{sha12} docker/pipeline.Dockerfile",
        f"mlops-lab-mlflow:{sha12} docker/mlflow.Dockerfile",
        f"mlops-lab-lambda:{sha12}-m5 docker/lambda.Dockerfile",
    ]
    env = runner.invoke(app, ["images", "tags", "--model-version", "5", "--format", "env"])
    assert f"API_IMAGE=mlops-lab-api:{sha12}-m5" in env.stdout.splitlines()
    (repo / "app.py").write_text("changed\n")
    refused = runner.invoke(app, ["images", "tags", "--model-version", "5"])
    assert refused.exit_code == 1
    assert "uncommitted change" in refused.stderr
    assert refused.stdout == ""
    dirty = runner.invoke(app, ["images", "tags", "--model-version", "5", "--allow-dirty"])
    assert dirty.stdout.splitlines()[0] == f"mlops-lab-api:{sha12}-m5-dirty docker/api.Dockerfile"
