"""`mlops-lab dataset init/use/show`: a CSV profiled into a params file, switched to, shown (issue 20)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from sklearn.datasets import load_wine
from typer.testing import CliRunner

from cli import dataset as dataset_commands
from cli.app import app
from core.exit_codes import EXIT_INVALID_PARAMS
from core.params import load_params
from core.settings import ACTIVE_PARAMS_FILE, Settings
from lab.labs.lab09_own_dataset import write_wine_with_gaps
from pipelines.data import write_csv

pytestmark = [pytest.mark.integration]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    saved = dict(os.environ)
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(REPO))  # reads params.yaml as the base, writes nothing there
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    for key in ("MLOPS_PARAMS_FILE", "MLOPS_MODEL_NAME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(dataset_commands, "console", Console(width=200))
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_init_profiles_the_csv_and_writes_a_params_file_that_loads(project: Path) -> None:
    data = write_wine_with_gaps(project / "wine.csv")
    done = _run("dataset", "init", str(data), "--target", "cultivar")
    assert done.exit_code == 0, done.output
    assert "178 rows, 14 columns, 0 duplicate row(s)" in done.output
    assert "18 missing value(s): the contract refuses them" in done.output
    assert "cultivar_0 (59), cultivar_1 (71), cultivar_2 (48)" in done.output
    written = project / "state" / "datasets" / "wine.yaml"
    params = load_params(written)  # the whole file holds together, no iris column left anywhere
    assert params.model_name == "wine-classifier"
    assert params.dataset.target == "cultivar"
    assert params.dataset.classes == ["cultivar_0", "cultivar_1", "cultivar_2"]
    assert len(params.dataset.features) == 13
    assert not params.dataset.allow_missing
    proline = params.dataset.features["proline"]  # observed 278..1680, widened by 10 % of the span each side
    assert (proline.min, proline.max) == (pytest.approx(278 - 140.2), pytest.approx(1680 + 140.2))
    assert params.features.products == []
    assert params.gate.directional == []
    text = written.read_text()
    assert "18 missing value(s) in ['alcohol', 'ash', 'malic_acid']: this contract refuses them" in text
    assert "gate.directional is empty" in text


def test_use_makes_it_active_show_says_so_and_the_environment_wins(project: Path, monkeypatch) -> None:
    data = write_wine_with_gaps(project / "wine.csv")
    assert _run("dataset", "init", str(data), "--target", "cultivar").exit_code == 0
    written = project / "state" / "datasets" / "wine.yaml"
    assert Settings().params_source == "default"

    used = _run("dataset", "use", str(written))
    assert used.exit_code == 0, used.output
    assert (project / "state" / ACTIVE_PARAMS_FILE).read_text().strip() == str(written)
    settings = Settings()
    assert (settings.params_path, settings.params_source) == (written, "state")
    assert (settings.model_name, settings.model_name_source) == ("wine-classifier", "params")
    shown = _run("dataset", "show")
    assert shown.exit_code == 0, shown.output
    assert "chosen by: `mlops-lab dataset use`" in shown.output
    assert "target:    cultivar; classes: cultivar_0, cultivar_1, cultivar_2" in shown.output
    assert "model:     wine-classifier (model_name in the params file)" in shown.output

    monkeypatch.setenv("MLOPS_PARAMS_FILE", str(REPO / "params.yaml"))
    monkeypatch.setenv("MLOPS_MODEL_NAME", "iris-classifier")
    shown = _run("dataset", "show")
    assert "chosen by: MLOPS_PARAMS_FILE" in shown.output
    assert "model:     iris-classifier (MLOPS_MODEL_NAME)" in shown.output
    monkeypatch.delenv("MLOPS_PARAMS_FILE")
    monkeypatch.delenv("MLOPS_MODEL_NAME")

    back = _run("dataset", "use", str(REPO / "params.yaml"))  # back to the default: the choice is forgotten
    assert back.exit_code == 0, back.output
    assert not (project / "state" / ACTIVE_PARAMS_FILE).exists()
    assert Settings().model_name == "iris-classifier"


def test_use_refuses_params_that_do_not_fit_their_data_and_keeps_the_choice(project: Path) -> None:
    data = write_wine_with_gaps(project / "wine.csv")
    assert _run("dataset", "init", str(data), "--target", "cultivar").exit_code == 0
    raw = yaml.safe_load((project / "state" / "datasets" / "wine.yaml").read_text())
    raw["dataset"]["classes"] = ["cultivar_0", "cultivar_1", "cultivar_9"]
    raw["dataset"]["features"]["proline"] = {"min": 0.0, "max": 1000.0}
    bad = project / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    refused = _run("dataset", "use", str(bad))
    assert refused.exit_code == 1
    assert "is not made active: 2 problem(s)" in refused.output
    assert "dataset.classes: ['cultivar_9'] do not occur in wine.csv" in refused.output
    assert "dataset.features.proline: range 0.0..1000.0 excludes" in refused.output
    assert not (project / "state" / ACTIVE_PARAMS_FILE).exists()


def test_init_refuses_a_target_of_numbers_and_says_why(project: Path) -> None:
    frame = load_wine(as_frame=True).frame
    data = write_csv(frame, project / "numbers.csv")
    refused = _run("dataset", "init", str(data), "--target", "target")
    assert refused.exit_code == 1
    assert "holds numbers (0, 1, 2): the contract needs class names" in refused.output
    assert not (project / "state" / "datasets").exists()


def test_a_chosen_params_file_that_was_deleted_ends_in_two_lines_not_a_traceback(project: Path) -> None:
    """`dataset use` wrote a path and the file went away: a command refuses in two lines and says how to fix it."""
    gone = project / "moved-away.yaml"
    (project / "state").mkdir(parents=True, exist_ok=True)
    (project / "state" / ACTIVE_PARAMS_FILE).write_text(f"{gone}\n")
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("mlops-lab")), "validate", str(REPO / "data" / "holdout.csv")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == EXIT_INVALID_PARAMS, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"parameters file not found: {gone}; nothing was run",
        "it was chosen with `mlops-lab dataset use`; choose another, or `mlops-lab dataset use params.yaml`",
    ]
