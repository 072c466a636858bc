"""Labs 1, 2, 7 and 8 checked against real state: not started → not judged; not done → hints; steps done →
every condition met; started again → the earlier attempt no longer counts.

The steps run through the real CLI (``CliRunner`` on ``cli.app.app``) in a throwaway project folder
(a copy of params.yaml, so ``ingest`` never writes into the repository) with its own state. Training
is called in-process (``run_training``, the same steps as the Prefect flow) to stay fast; it stores
its validation result exactly as the flow does. One project is shared by the module, and each test
leaves the state the next lab expects, in the order a learner would do them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from core.context import LabContext, load_context
from lab.labs import Check, run_check, run_setup
from lab.labs.progress import started_at
from tests.system_tools import system_tool

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, make_settings) -> Iterator[LabContext]:
    """A project folder with params.yaml and an empty state; the environment points the CLI at it."""
    root = tmp_path_factory.mktemp("labs-a") / "project"
    root.mkdir()
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    make_settings(root / ".state")  # copies the empty MLflow store: no schema migrations per test
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_PROJECT_DIR", str(root))
        mp.setenv("MLOPS_STATE_DIR", str(root / ".state"))
        mp.setenv("MLOPS_ACCESS_LOG", "false")
        yield load_context()


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def unmet(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks if not c.passed}


def assert_not_started(number: int, checks: list[Check]) -> None:
    """A lab never started is not judged: one unmet condition, which says how to start it."""
    assert [(c.passed, c.hint) for c in checks] == [
        (False, f"run `mlops-lab lab setup {number}`: the check then counts only what you do after it")
    ]


def assert_not_done(checks: list[Check]) -> None:
    missing = unmet(checks)
    assert missing, "a lab must not pass before its steps are done"
    assert all(c.hint for c in missing.values())


def assert_done(checks: list[Check]) -> None:
    assert not unmet(checks), {c.name: c.detail for c in unmet(checks).values()}


def test_lab1_bad_batch_is_refused_and_nothing_trains_on_it(project: LabContext) -> None:
    from lab.labs.lab01_bad_batch import bad_batch_path
    from pipelines.training_steps import run_training
    from pipelines.validation import DataValidationError

    assert_not_started(1, run_check(1, project))
    assert run_setup(1, project)[-1].startswith("lab 1 started at ")
    assert_not_done(run_check(1, project))
    bad = bad_batch_path(project.settings)
    assert cli("generate-batch", "out-of-range", "-o", str(bad))[0] == 0
    halfway = unmet(run_check(1, project))
    assert "validation refused it and named the broken expectations" in halfway

    code, out = cli("validate", str(bad))
    assert code == 1, out
    assert "training was tried on it and stopped at validation" in unmet(run_check(1, project))
    with pytest.raises(DataValidationError):  # what `mlops-lab train --data` runs, minus Prefect
        run_training(project.settings, project.params, bad)

    assert_done(run_check(1, project, "expect_column_values_to_be_between"))
    assert_done(run_check(1, project, "column_mean_to_be_between"))  # the expect_ prefix is optional
    wrong = unmet(run_check(1, project, "expect_column_values_to_not_be_null"))
    assert list(wrong) == ["your answer names an expectation the batch broke"]


def test_lab1_a_run_trained_on_the_bad_bytes_fails_the_check(project: LabContext) -> None:
    import mlflow

    from lab.labs.lab01_bad_batch import bad_batch_path
    from pipelines.data import file_md5
    from pipelines.registry import ensure_experiment

    ensure_experiment(project.settings)
    with mlflow.start_run(run_name="smuggled") as run:
        mlflow.set_tag("data_md5", file_md5(bad_batch_path(project.settings)))
    try:
        missing = unmet(run_check(1, project))
        assert run.info.run_id in missing["no model was trained or registered from it"].detail
    finally:
        mlflow.MlflowClient().delete_run(run.info.run_id)  # deleted runs are not searched: lab 1 passes again


def test_lab1_started_again_counts_nothing_of_the_first_attempt(project: LabContext) -> None:
    from lab.labs.lab01_bad_batch import _fingerprint, bad_batch_path, stored_validations

    assert_done(run_check(1, project, "expect_column_values_to_be_between"))  # as the tests above left it
    bad = bad_batch_path(project.settings)
    lines = run_setup(1, project)
    assert lines[0] == f"removed {bad}, the bad batch of an earlier attempt"
    assert not bad.exists()
    assert cli("generate-batch", "out-of-range", "-o", str(bad))[0] == 0  # the same bytes as the first attempt
    earlier = [v for v in stored_validations(project.settings.gx_dir) if v.fingerprint == _fingerprint(bad)]
    assert any(not v.success for v in earlier), "the control: refusals of these bytes are stored from before"
    again = unmet(run_check(1, project))
    assert "validation refused it and named the broken expectations" in again
    assert "training was tried on it and stopped at validation" in again
    code, _ = cli("validate", str(bad))
    assert code == 1
    assert "validation refused it and named the broken expectations" not in unmet(run_check(1, project))


def test_lab2_trace_the_champion_to_its_data(project: LabContext) -> None:
    from pipelines.data import file_md5
    from pipelines.training_steps import run_training

    assert_not_started(2, run_check(2, project))
    assert len(run_setup(2, project)) == 1  # nothing to prepare: the start is recorded
    before = unmet(run_check(2, project))
    assert "a champion is registered" in before
    assert "mlops-lab train" in before["a champion is registered"].hint

    assert cli("ingest")[0] == 0
    outcome = run_training(project.settings, project.params)
    assert outcome.version == "1"
    not_rebuilt = unmet(run_check(2, project))
    assert (
        "never rebuilt"
        in not_rebuilt["you rebuilt it with `mlops-lab reproduce`: identical metrics and predictions"].detail
    )
    code, out = cli("reproduce", "1")
    assert code == 0, out
    md5 = file_md5(project.settings.resolve(project.params.dataset.path))
    assert md5 in out

    assert list(unmet(run_check(2, project))) == ["your answer is the md5 of the champion's training data"]
    assert_done(run_check(2, project, md5.upper()))
    wrong = unmet(run_check(2, project, "0" * 32))
    assert list(wrong) == ["your answer is the md5 of the champion's training data"]


def test_lab7_promote_a_bad_release_then_roll_it_back(project: LabContext) -> None:
    from pipelines.registry import current_aliases

    assert_not_done(run_check(7, project))
    lines = run_setup(7, project)
    assert any("challenger" in line for line in lines), lines
    assert run_setup(7, project)[-2].endswith("already waiting as challenger")  # idempotent

    assert cli("registry", "promote", "--reason", "lab 7 release")[0] == 0
    released = unmet(run_check(7, project))
    assert "a rollback put the earlier champion back" in released
    assert "registry rollback" in released["a rollback put the earlier champion back"].hint

    assert cli("registry", "rollback")[0] == 0  # the CLI's default reason explains nothing
    assert list(unmet(run_check(7, project))) == ["the rollback reason says why"]

    run_setup(7, project)  # a fresh bad candidate: the previous one was rolled back and left the aliases
    champion = current_aliases(project.settings)["champion"]
    assert cli("registry", "promote", "--reason", "lab 7 release, second try")[0] == 0
    assert cli("registry", "rollback", "--reason", "v3 swaps versicolor and virginica")[0] == 0
    assert current_aliases(project.settings)["champion"] == champion
    assert_done(run_check(7, project))


def test_lab7_started_again_after_a_release_left_as_champion_rolls_it_back_first(project: LabContext) -> None:
    from pipelines.registry import current_aliases

    champion = current_aliases(project.settings)["champion"]
    run_setup(7, project)
    assert cli("registry", "promote", "--reason", "an attempt left unfinished")[0] == 0
    planted = current_aliases(project.settings)["champion"]
    assert planted != champion
    lines = run_setup(7, project)
    assert f"rolled back v{planted}, the bad release an earlier attempt left as champion" in lines
    assert current_aliases(project.settings)["champion"] == champion
    assert "a release was promoted over a champion" in unmet(run_check(7, project))  # the old promotion is gone


def test_lab8_render_and_review_the_overlays(project: LabContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.labs.lab08_k8s import autoscaler_range, load_saved, saved_path

    system_tool("kubectl")
    run_setup(8, project)
    before = unmet(run_check(8, project))
    assert "prod.yaml is the current prod render" in before
    assert "kubectl kustomize k8s/overlays/prod" in before["prod.yaml is the current prod render"].hint

    for overlay in ("prod", "dev"):
        path = saved_path(project.settings, overlay)
        path.parent.mkdir(parents=True, exist_ok=True)
        rendered = subprocess.run(
            ["kubectl", "kustomize", str(REPO / "k8s" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        path.write_text(rendered.stdout)
    assert list(unmet(run_check(8, project))) == ["your answer is the prod API autoscaler's range"]
    prod = saved_path(project.settings, "prod")
    bounds = autoscaler_range(load_saved(prod))
    assert bounds is not None
    low, high = bounds
    assert_done(run_check(8, project, f"{low}-{high}"))
    assert_done(run_check(8, project, f"{low} to {high}"))
    assert "your answer is the prod API autoscaler's range" in unmet(run_check(8, project, f"{low}-{high + 1}"))

    prod.write_text(prod.read_text().replace("maxReplicas: ", "maxReplicas: 9"))  # a stale or hand-edited file
    stale = unmet(run_check(8, project, f"{low}-{high}"))
    assert "differs" in stale["prod.yaml is the current prod render"].detail

    dev = saved_path(project.settings, "dev")
    start = started_at(project.settings, 8)
    assert start is not None
    earlier = (start - timedelta(seconds=10)).timestamp()
    os.utime(dev, (earlier, earlier))  # saved in an earlier attempt
    old = unmet(run_check(8, project, f"{low}-{high}"))
    assert old["dev.yaml is the current dev render"].detail == "dev.yaml was saved before this lab started"
    assert [line.startswith("removed ") for line in run_setup(8, project)] == [True, True, False]
    assert not dev.exists()

    monkeypatch.setenv("PATH", "/nonexistent")
    missing = unmet(run_check(8, project, f"{low}-{high}"))
    assert "install" in missing["kubectl can render the overlays"].detail
