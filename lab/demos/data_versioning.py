"""Demo "data-versioning" (C05, C04): git holds the pointers, DVC holds the bytes.

In a scratch copy of the project (your working tree is never touched) we run the ``ingest`` stage,
push its output to a DVC remote, make a second data version, then go back to the first one and
finally rebuild it from the remote after deleting the local cache. Every step compares md5 hashes:
the hash in ``dvc.lock`` is the dataset's identity, the same hash every model logs as ``data_md5``.

The helpers (``scratch_env``, ``copy_project``, ``dvc``, ``git``, ``lock_md5``) are public because
the integration test drives the same scratch-repository round trip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from rich.markup import escape

from core.context import LabContext
from lab.narrate import Narrator
from pipelines.batches import generate_batch
from pipelines.data import file_md5, read_csv, write_csv

DATA_STAGE = "ingest"
NEW_ROWS = 20
_GIT_IDENTITY = {"name": "mlops-lab demo", "email": "demo@mlops-lab.invalid"}
_INHERITED_GIT = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")


class ScratchRepoError(RuntimeError):
    """A git or dvc command failed in the scratch repository; the message holds its output."""


def scratch_env(state: Path, repo: Path) -> dict[str, str]:
    """Environment for git/dvc subprocesses: offline, quiet, hermetic git, the venv first on PATH."""
    venv_bin = str(Path(sys.executable).parent)  # not resolved: a venv's python is a symlink
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_") and k not in _INHERITED_GIT}
    env.update(
        {
            "PATH": os.pathsep.join([venv_bin, env.get("PATH", "")]),
            "MLOPS_PROJECT_DIR": str(repo),  # stage commands read params.yaml from the scratch repo
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(state / "dvc-site-cache"),
            "GIT_CONFIG_GLOBAL": os.devnull,  # no user hooks, signing or templates in the scratch repo
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": _GIT_IDENTITY["name"],
            "GIT_AUTHOR_EMAIL": _GIT_IDENTITY["email"],
            "GIT_COMMITTER_NAME": _GIT_IDENTITY["name"],
            "GIT_COMMITTER_EMAIL": _GIT_IDENTITY["email"],
        }
    )
    return env


def _tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise ScratchRepoError(f"`{name}` is not installed; run `make setup` (dvc) or install git")
    return found


def _run(args: list[str], cwd: Path, env: dict[str, str] | None) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise ScratchRepoError(f"`{Path(args[0]).name} {' '.join(args[1:])}` failed:\n{tail}")
    return proc.stdout


def dvc(repo: Path, env: dict[str, str], *args: str) -> str:
    """Run the venv's ``dvc`` in ``repo``; raise ScratchRepoError with its output if it fails."""
    return _run([_tool("dvc"), *args], repo, env)


def git(repo: Path, env: dict[str, str], *args: str) -> str:
    """Run ``git`` in ``repo``; raise ScratchRepoError with its output if it fails."""
    return _run([_tool("git"), *args], repo, env).strip()


def copy_project(project: Path, dest: Path, env: dict[str, str]) -> int:
    """Copy the project's tracked and untracked-not-ignored files to ``dest`` and commit them there.

    Uncommitted work is included on purpose (that is what you want to try out), and ignored files
    (the venv, state, DVC cache, data) are not. Returns the number of files copied.
    """
    try:
        listing = _run([_tool("git"), "ls-files", "-z", "-co", "--exclude-standard"], project, None)
    except ScratchRepoError as err:
        raise ScratchRepoError(f"{project} must be a git checkout of mlops-lab to copy it: {err}") from err
    names = [name for name in listing.split("\0") if name and (project / name).is_file()]
    for name in names:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project / name, target, follow_symlinks=False)
    git(dest, env, "-c", "init.defaultBranch=main", "init", "-q")
    git(dest, env, "add", "-A")
    git(dest, env, "commit", "-q", "--no-verify", "-m", "scratch copy of mlops-lab")
    return len(names)


def lock_md5(repo: Path, out_path: str) -> str | None:
    """The md5 that ``dvc.lock`` records for an output path, or None if it records none."""
    import yaml

    lock = repo / "dvc.lock"
    if not lock.exists():
        return None
    for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
        for out in stage.get("outs", []):
            if out.get("path") == out_path:
                return str(out.get("md5"))
    return None


def _remote_objects(repo: Path) -> int:
    return sum(1 for p in (repo / ".dvc-remote").rglob("*") if p.is_file())


def run(n: Narrator, ctx: LabContext) -> None:
    n.title("Data versioning: pointers in git, bytes in the DVC cache and remote", "C05 · C04")
    try:
        _demo(n, ctx)
    except ScratchRepoError as err:
        n.bad(escape(str(err)))


def _demo(n: Narrator, ctx: LabContext) -> None:
    import pandas as pd

    scratch, rel = ctx.settings.state / "demo-dvc", ctx.params.dataset.path
    env = scratch_env(ctx.settings.state, scratch)
    data = scratch / rel

    n.step("Copy the project into a scratch git repository (your working tree stays untouched):")
    if scratch.exists():
        shutil.rmtree(scratch)  # our own scratch folder from an earlier run
    n.say(f"{copy_project(ctx.settings.project_dir, scratch, env)} files → {escape(str(scratch))}")

    n.step(f"`dvc repro {DATA_STAGE}` runs the first stage of dvc.yaml and records its output hash:")
    dvc(scratch, env, "repro", DATA_STAGE)
    v1 = file_md5(data)
    n.table("dvc.lock vs the file", ["", "md5"], [["dvc.lock records", lock_md5(scratch, rel)], [rel, v1]])
    cached = Path(".dvc", "cache", "files", "md5", v1[:2], v1[2:])
    if (scratch / cached).is_file():
        n.ok(f"the bytes sit in the content-addressed cache: {cached}")
    else:
        n.bad(f"expected the bytes in the cache at {cached}")
    n.why("git stores dvc.lock (a few hashes); the data itself is gitignored and lives in the DVC cache")
    git(scratch, env, "add", "-A")
    git(scratch, env, "commit", "-q", "--allow-empty", "-m", "data v1")
    sha1 = git(scratch, env, "rev-parse", "--short", "HEAD")
    n.code("dvc.yaml", "dvc.lock", "pipelines/data.py::ingest", ".dvc/config (remote `local`)")

    n.step("`dvc push` copies the bytes to the remote (here the folder .dvc-remote; S3/GCS/SSH in a team):")
    dvc(scratch, env, "push", DATA_STAGE)
    n.ok(f"remote holds {_remote_objects(scratch)} object(s)")

    n.step(f"A second data version: {NEW_ROWS} new labelled rows arrive; `dvc commit` + `git commit` + `dvc push`:")
    frame = read_csv(data)
    batch = generate_batch("clean", frame, ctx.params, rows=NEW_ROWS, seed=11)[list(frame.columns)]
    grown = pd.concat([frame, batch], ignore_index=True)
    if ctx.params.dataset.unique_rows:  # raw data stays duplicate-free: the contract forbids duplicates
        grown = grown.drop_duplicates(ignore_index=True)
    write_csv(grown, data, ctx.params.dataset.decimals)
    dvc(scratch, env, "commit", "-f", DATA_STAGE)
    git(scratch, env, "commit", "-q", "-am", "data v2: new labelled rows")
    sha2 = git(scratch, env, "rev-parse", "--short", "HEAD")
    dvc(scratch, env, "push", DATA_STAGE)
    v2 = file_md5(data)
    n.table(
        "two versions of one path",
        ["version", "git commit", "md5 (dvc.lock)", "rows"],
        [["v1", sha1, v1, len(frame)], ["v2", sha2, v2, len(grown)]],
    )
    n.ok(f"remote holds {_remote_objects(scratch)} object(s): both versions, each stored once")

    n.step(f"Back to v1: `git checkout {sha1} -- dvc.lock` moves the pointer, `dvc checkout` the bytes:")
    git(scratch, env, "checkout", sha1, "--", "dvc.lock")
    dvc(scratch, env, "checkout", DATA_STAGE)
    _compare(n, file_md5(data), v1, "after checkout")

    n.step("Lose the local cache and the file, then `dvc pull` restores v1 from the remote:")
    shutil.rmtree(scratch / ".dvc" / "cache")
    data.unlink()
    dvc(scratch, env, "pull", DATA_STAGE)
    _compare(n, file_md5(data), v1, "after pull")
    n.why(
        "every MLflow run logs data_md5; `mlops-lab reproduce` finds those exact bytes by hash in the cache "
        "or the remote, so any registered model can be retrained on its own data years later"
    )
    n.code("pipelines/reproduce.py::locate_data", "pipelines/lineage.py", "tests/integration/pipelines/test_dvc.py")


def _compare(n: Narrator, got: str, want: str, when: str) -> None:
    if got == want:
        n.ok(f"{when}: md5 {got} = v1")
    else:
        n.bad(f"{when}: md5 {got} ≠ v1 {want}")
