"""`mlops-lab reset` removes a state folder this project made, and refuses any other folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from core.settings import Settings
from core.startup import configure_runtime
from ops.reset import MARKER, ResetRefusedError, apply_reset, plan_reset

REPO = Path(__file__).resolve().parents[3]


def state_with_files(tmp_path: Path, **overrides: str) -> Settings:
    settings = Settings(project_dir=REPO, state_dir=tmp_path / "state", **overrides)
    configure_runtime(settings)  # what every command does first: it drops the marker
    (settings.state / "mlflow.db").write_bytes(b"x" * 3000)
    (settings.reports_dir / "check-1").mkdir()
    (settings.reports_dir / "check-1" / "drift.html").write_bytes(b"y" * 500)
    return settings


def test_plan_lists_each_entry_with_its_size_and_apply_removes_the_folder(tmp_path: Path) -> None:
    settings = state_with_files(tmp_path)
    plan = plan_reset(settings)
    sizes = {e.name: e.bytes for e in plan.entries}
    assert sizes["mlflow.db"] == 3000
    assert sizes["reports"] == 500
    assert MARKER not in sizes
    assert plan.total_bytes == 3500
    assert plan.kept == ()  # every store is inside the folder
    apply_reset(plan)
    assert not settings.state.exists()


def test_a_folder_without_the_marker_is_refused_and_kept(tmp_path: Path) -> None:
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(ResetRefusedError, match=r"no \.mlops-lab-state marker"):
        plan_reset(Settings(project_dir=REPO, state_dir=folder))
    assert (folder / "thesis.tex").exists()


def test_a_command_run_on_a_folder_that_already_held_files_never_lets_reset_remove_it(tmp_path: Path) -> None:
    folder = tmp_path / "someones-home"
    (folder / ".ssh").mkdir(parents=True)
    (folder / ".ssh" / "id_ed25519").write_text("key")
    configure_runtime(Settings(project_dir=REPO, state_dir=folder))  # any command with MLOPS_STATE_DIR=folder
    assert not (folder / MARKER).exists()
    result = CliRunner().invoke(app, ["reset", "--yes"], env={"MLOPS_STATE_DIR": str(folder), "COLUMNS": "300"})
    assert result.exit_code != 0
    assert f"no {MARKER} marker" in result.output
    assert (folder / ".ssh" / "id_ed25519").read_text() == "key"


def test_an_empty_folder_is_marked_and_can_be_reset(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    configure_runtime(Settings(project_dir=REPO, state_dir=folder))
    assert (folder / MARKER).exists()
    apply_reset(plan_reset(Settings(project_dir=REPO, state_dir=folder)))
    assert not folder.exists()


def test_the_home_folder_or_a_parent_of_it_is_refused_even_with_a_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "users" / "ada"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for state in (home, home.parent):
        (state / MARKER).touch()
        with pytest.raises(ResetRefusedError, match="home folder"):
            plan_reset(Settings(project_dir=REPO, state_dir=state))
    assert home.is_dir()


def test_the_project_folder_or_a_parent_of_it_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "repo"
    project.mkdir()
    for state in (project, tmp_path):
        (state / MARKER).touch()
        with pytest.raises(ResetRefusedError, match="holds the project"):
            plan_reset(Settings(project_dir=project, state_dir=state))


def test_the_default_state_folder_needs_no_marker(tmp_path: Path) -> None:
    (tmp_path / ".state" / "reports").mkdir(parents=True)
    plan = plan_reset(Settings(project_dir=tmp_path))
    assert [e.name for e in plan.entries] == ["reports"]


def test_stores_outside_the_folder_are_named_without_their_password(tmp_path: Path) -> None:
    settings = state_with_files(
        tmp_path,
        tracking_uri="http://mlflow.internal:5000",
        prediction_log_url="postgresql+psycopg://lab:s3cret@db.internal/predictions",
    )
    kept = plan_reset(settings).kept
    assert "MLflow tracking: http://mlflow.internal:5000" in kept
    assert any(k.startswith("prediction log: db.internal/predictions") for k in kept)
    assert not any("s3cret" in k for k in kept)


def test_cli_asks_first_and_keeps_everything_on_no(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = state_with_files(tmp_path)
    monkeypatch.setenv("MLOPS_STATE_DIR", str(settings.state))
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(REPO))
    assert Settings().state == settings.state  # the command will act on this folder and no other
    runner = CliRunner()
    kept = runner.invoke(app, ["reset"], input="n\n")
    assert kept.exit_code == 1, kept.output
    assert "nothing removed" in kept.output
    assert (settings.state / "mlflow.db").exists()
    removed = runner.invoke(app, ["reset", "--yes"])
    assert removed.exit_code == 0, removed.output
    assert "mlflow.db" in removed.output
    assert not settings.state.exists()


def test_a_running_service_keeps_reset_away_from_its_state(tmp_path: Path) -> None:
    from core.state_lease import shared_lease

    settings = state_with_files(tmp_path)
    plan = plan_reset(settings)
    with shared_lease(settings.state), pytest.raises(ResetRefusedError, match="stop them first"):
        apply_reset(plan)  # what `mlops-lab serve` holds for its lifetime
    assert (settings.state / "mlflow.db").stat().st_size == 3000
    apply_reset(plan)  # stopped: removed
    assert not settings.state.exists()
