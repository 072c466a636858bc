"""DVC end to end in a scratch copy of the repo: `dvc repro` rebuilds the committed hashes and
metrics offline, and push → new version → checkout old → pull (with no local cache) restores the bytes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab.demos.data_versioning import copy_project, dvc, git, lock_md5, scratch_env
from pipelines.data import file_md5, read_csv, write_csv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
DATA = "data/raw/iris.csv"
REBUILT = ("metrics/train.json", "metrics/eval.json", "metrics/confusion.csv")


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """One scratch copy for the module (uncommitted work included), after a full `dvc repro`."""
    if not (REPO / "dvc.lock").exists():
        pytest.fail("dvc.lock is missing: run `uv run --frozen dvc repro` in the repository and commit dvc.lock")
    root = tmp_path_factory.mktemp("dvc")
    repo = root / "repo"
    env = scratch_env(root / "state", repo)
    copy_project(REPO, repo, env)
    for name in REBUILT:  # so the train and evaluate stages must really run and rewrite them
        (repo / name).unlink(missing_ok=True)
    dvc(repo, env, "repro")
    return repo, env


def test_repro_rebuilds_the_data_hash_recorded_in_the_committed_lock(repo_copy: tuple[Path, dict[str, str]]) -> None:
    repo, _ = repo_copy
    committed = lock_md5(REPO, DATA)
    assert committed is not None
    assert file_md5(repo / DATA) == committed
    assert lock_md5(repo, DATA) == committed


@pytest.mark.parametrize("name", REBUILT)
def test_repro_rebuilds_the_committed_metrics_byte_for_byte(repo_copy: tuple[Path, dict[str, str]], name: str) -> None:
    repo, _ = repo_copy
    assert (repo / name).read_bytes() == (REPO / name).read_bytes()


def test_pull_restores_an_old_data_version_after_the_cache_is_lost(repo_copy: tuple[Path, dict[str, str]]) -> None:
    repo, env = repo_copy
    data = repo / DATA
    git(repo, env, "add", "-A")
    git(repo, env, "commit", "-q", "--allow-empty", "-m", "v1")
    v1_sha, v1_md5 = git(repo, env, "rev-parse", "HEAD"), file_md5(data)
    dvc(repo, env, "push", "ingest")

    frame = read_csv(data)
    write_csv(frame.iloc[::-1], data, decimals=1)  # same rows, new order: a new version of the bytes
    dvc(repo, env, "commit", "-f", "ingest")
    git(repo, env, "commit", "-q", "-am", "v2")
    v2_md5 = file_md5(data)
    assert v2_md5 != v1_md5
    assert lock_md5(repo, DATA) == v2_md5
    dvc(repo, env, "push", "ingest")

    git(repo, env, "checkout", v1_sha, "--", "dvc.lock")
    shutil.rmtree(repo / ".dvc" / "cache")
    data.unlink()
    dvc(repo, env, "pull", "ingest")
    assert file_md5(data) == v1_md5
    # the remote holds both versions of the raw data and the ingest stage's other output, the unchanged holdout
    assert len([p for p in (repo / ".dvc-remote").rglob("*") if p.is_file()]) == 3
