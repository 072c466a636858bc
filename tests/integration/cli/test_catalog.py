"""The learning commands end to end: ``--help`` stays light, ``concepts``, ``explain``, ``demo``, ``ui``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from lab.catalog import load_catalog
from lab.demos import DEMOS

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("mlflow", "prefect", "great_expectations", "sklearn", "evidently", "dvc", "pandas")
WIDE = {"COLUMNS": "400"}  # no wrapping, so assertions can match whole sentences

# Runs `mlops-lab --help` in a fresh interpreter, then reports which heavy packages got imported.
HELP_PROBE = f"""
import json, sys
from cli.app import app
try:
    app(["--help"], prog_name="mlops-lab")
    code = 0
except SystemExit as stop:
    code = stop.code
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
print("\\nPROBE " + json.dumps({{"code": code, "heavy": heavy}}))
"""


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point the CLI's settings at a state folder that does not exist yet."""
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(REPO))
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_help_runs_without_importing_heavy_libraries() -> None:
    proc = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    help_text, _, probe = proc.stdout.rpartition("PROBE ")
    result = json.loads(probe)
    assert result["code"] == 0
    assert result["heavy"] == [], f"imported at CLI startup: {result['heavy']}; import them inside the commands"
    for command in ("concepts", "explain", "demo", "ui", "ask"):
        assert command in help_text


def test_console_script_answers_help() -> None:
    script = Path(sys.executable).with_name("mlops-lab")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "concepts" in proc.stdout


def test_console_script_prints_its_version_without_the_heavy_libraries() -> None:
    from importlib.metadata import version

    probe = HELP_PROBE.replace('app(["--help"]', 'app(["--version"]')
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.stdout.startswith(f"mlops-lab {version('mlops-lab')} (Python ")
    result = json.loads(proc.stdout.split("PROBE ", 1)[1])
    assert result == {"code": 0, "heavy": []}  # eager: no command, no settings, no library loaded


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "-h"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def test_help_at_80_columns_never_cuts_a_sentence_and_demo_help_lists_every_demo() -> None:
    from lab.demos import DEMOS

    groups = [(), ("rollout",), ("registry",), ("admin",), ("lab",), ("study",), ("images",), ("stage",)]
    for group in groups:
        text = _help(*group)
        body = [line for line in text.splitlines() if not line.startswith("Usage:")]
        assert not [line for line in body if line.rstrip().endswith("...")], (
            group,
            text,
        )  # click's cut: "Write the raw dataset (dataset.path in...)..."
        assert max(len(line) for line in text.splitlines()) <= 80, group
    demo_help = _help("demo")
    listed = {name.strip(",") for line in demo_help.splitlines() for name in line.split()}
    assert set(DEMOS) <= listed  # each name whole: no "data-" / "validation" split


def test_first_sentence_keeps_abbreviations_and_stops_at_the_full_stop() -> None:
    from cli.help import first_sentence

    assert first_sentence("Run it, e.g. twice. Then stop.") == "Run it, e.g. twice."
    assert first_sentence("One line\n  folded here. More.\n\nBody") == "One line folded here."
    assert first_sentence("No stop at all") == "No stop at all"


def test_concepts_lists_every_id(state_dir: Path) -> None:
    result = CliRunner().invoke(app, ["concepts"], env=WIDE)
    assert result.exit_code == 0, result.output
    for concept in load_catalog():
        assert concept.id in result.output
        assert concept.demo in result.output


def test_concepts_search_filters(state_dir: Path) -> None:
    result = CliRunner().invoke(app, ["concepts", "--search", "registry"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "C12" in result.output
    assert "Model registry" in result.output
    assert "C07" not in result.output
    assert "C03" not in result.output


def test_explain_prints_the_answer_questions_key_points_and_code(state_dir: Path) -> None:
    result = CliRunner().invoke(app, ["explain", "C14"], env=WIDE)
    assert result.exit_code == 0, result.output
    c14 = next(c for c in load_catalog() if c.id == "C14")
    for text in (c14.title, *c14.questions, *c14.key_points, *c14.code, c14.demo):
        assert text in result.output
    assert f"In one line: {c14.answer}" in result.output
    assert result.output.index(c14.title) < result.output.index(c14.answer) < result.output.index("Questions")
    assert "What would change at scale" in result.output
    assert result.output.index("Key points") < result.output.index("What would change at scale")
    assert " ".join(c14.at_scale.split()) in " ".join(result.output.split()), "the paragraph, wrapped"
    assert not state_dir.exists(), "explain must not create state"


def test_explain_unknown_concept_exits_1(state_dir: Path) -> None:
    result = CliRunner().invoke(app, ["explain", "C99"], env=WIDE)
    assert result.exit_code == 1
    assert "no concept C99" in result.output


def test_unknown_demo_exits_1_and_lists_the_demos(state_dir: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "nope"], env=WIDE)
    assert result.exit_code == 1
    assert "unknown demo 'nope'" in result.output
    assert all(name in result.output for name in DEMOS)
    assert "Traceback" not in result.output
    assert not state_dir.exists(), "an unknown demo must not touch state"


def test_ui_prints_where_to_look_and_starts_nothing(state_dir: Path) -> None:
    result = CliRunner().invoke(app, ["ui"], env={**WIDE, "PREFECT_HOME": None})  # as on a learner's machine
    assert result.exit_code == 0, result.output
    assert f"uv run mlflow ui --backend-store-uri sqlite:///{state_dir / 'mlflow.db'} --port 5050" in result.output
    assert "http://127.0.0.1:5050" in result.output  # not 5000, which macOS gives to AirPlay
    assert f"PREFECT_HOME={state_dir / 'prefect'}" in result.output
    assert "prefect server start" in result.output
    assert "PREFECT_SERVER_API_PORT" not in result.output  # the default port needs no override
    assert str(state_dir / "reports") in result.output
    assert not state_dir.exists(), "ui only prints; it must not create anything"


def test_ui_after_a_demo_opens_the_demos_stores_and_names_the_prefect_port(state_dir: Path) -> None:
    loop = state_dir / "demos" / "loop"
    loop.mkdir(parents=True)
    (loop / "mlflow.db").write_bytes(b"")  # what `make demo` leaves: no store in the learner's own state
    env = {**WIDE, "PREFECT_HOME": None}  # unset, as on a learner's machine (the test session sets one)
    result = CliRunner().invoke(app, ["ui", "--prefect-port", "4300", "--port", "5055"], env=env)
    assert result.exit_code == 0, result.output
    assert f"--backend-store-uri sqlite:///{loop / 'mlflow.db'} --port 5055" in result.output
    assert f"PREFECT_HOME={state_dir / 'prefect'}" in result.output  # one Prefect home: demos keep the learner's
    assert "PREFECT_SERVER_API_PORT=4300 uv run prefect server start --port 4300" in result.output
    assert "demo 'loop'" in result.output
    own = CliRunner().invoke(app, ["ui", "--own"], env=WIDE)
    assert f"sqlite:///{state_dir / 'mlflow.db'}" in own.output
    missing = CliRunner().invoke(app, ["ui", "--demo", "canary"], env=WIDE)
    assert missing.exit_code == 1
    assert "'canary' has not run here (demos with a store: loop)" in missing.output


@pytest.mark.slow
def test_a_demo_runs_on_a_fresh_state_of_its_own_and_leaves_the_learners_alone(tmp_path: Path) -> None:
    """`demo skew` trains and registers a champion: in <state>/demos/skew, wiped at every run, never in <state>."""
    import shutil

    from core.settings import Settings
    from pipelines.registry import current_aliases

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "params.yaml", project / "params.yaml")  # the raw data lands here, not in the repository
    env = {**WIDE, "MLOPS_PROJECT_DIR": str(project), "MLOPS_STATE_DIR": str(tmp_path / "state")}
    learners = Settings(project_dir=project, state_dir=tmp_path / "state")
    own = learners.model_copy(update={"state_dir": learners.state / "demos" / "skew"})
    for _ in range(2):
        result = CliRunner().invoke(app, ["demo", "skew"], env=env)
        assert result.exit_code == 0, result.output
        assert f"this demo's own state: {own.state}" in result.output
        assert current_aliases(own) == {"champion": "1"}  # wiped at every run: v1 again, never v2
    assert current_aliases(learners) == {}  # the learner's registry (what the labs check) holds nothing
    assert not (learners.state / "predictions.db").exists()
