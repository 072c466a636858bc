"""Registry conventions against a real MLflow SQLite store: aliases, promotion, rollback, audit, CLI.

One store per module keeps the suite fast: three tiny models are logged once, and every test
registers them under a registered-model name of its own, so tests stay independent.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.params import Params
from core.settings import Settings
from pipelines.registry import (
    RegistryError,
    audit_log,
    current_aliases,
    list_versions,
    mlflow_client,
    promote,
    register_candidate,
    reject_challenger,
    rollback,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
GATE = {"passed": True, "reasons": ["beats champion"], "checks": {"min_metric": True, "invariance": True}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, make_settings) -> Settings:
    return make_settings(tmp_path_factory.mktemp("registry") / "state", actor="tester")


@pytest.fixture(scope="module")
def runs(store: Settings) -> list[tuple[str, str]]:
    """Three logged tiny models as (run_id, model_uri), with test_accuracy 0.90, 0.93, 0.96."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from pipelines.registry import ensure_experiment

    x, y = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(x, y)
    experiment_id = ensure_experiment(store)
    out = []
    for accuracy in (0.90, 0.93, 0.96):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_metric("test_accuracy", accuracy)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(x, model.predict(x)),
                input_example=x.head(2),
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
            )
        out.append((run.info.run_id, info.model_uri))
    return out


@pytest.fixture
def reg(store: Settings, request: pytest.FixtureRequest) -> Settings:
    """The shared store, seen under a registered-model name owned by this test."""
    return store.model_copy(update={"model_name": re.sub(r"\W", "-", request.node.name)})


def _register(settings: Settings, runs: list[tuple[str, str]], n: int) -> list[str]:
    versions = []
    for run_id, uri in runs[:n]:
        versions.append(register_candidate(settings, run_id, uri, GATE, None, "tester", "new candidate").version)
    return versions


def test_first_registration_is_champion_later_ones_challenger(reg: Settings, runs: list[tuple[str, str]]) -> None:
    first = register_candidate(reg, runs[0][0], runs[0][1], GATE, None, "alice", "first model")
    second = register_candidate(reg, runs[1][0], runs[1][1], GATE, None, "alice", "retrained")
    assert (first.alias, second.alias) == ("champion", "challenger")
    assert current_aliases(reg) == {"champion": first.version, "challenger": second.version}

    third = register_candidate(reg, runs[2][0], runs[2][1], GATE, None, "alice", "retrained again")
    assert third.replaced == second.version
    assert current_aliases(reg) == {"champion": first.version, "challenger": third.version}
    tags = mlflow_client(reg).get_model_version(reg.model_name, third.version).tags
    assert tags["gate.status"] == "passed"
    assert tags["gate.summary"] == "beats champion"  # the gate's own reasons, not restated
    assert tags["run_id"] == runs[2][0]
    assert mlflow_client(reg).get_model_version(reg.model_name, second.version).tags["status"] == "superseded"


def test_registration_prints_nothing_of_mlflow_s_own(
    reg: Settings, runs: list[tuple[str, str]], capfd: pytest.CaptureFixture[str]
) -> None:
    """MLflow's "Successfully registered model" / "Created version" lines would cut into a demo's narration."""
    from mlflow.utils.logging_utils import MLFLOW_LOGGING_STREAM

    capfd.readouterr()
    first = register_candidate(reg, runs[0][0], runs[0][1], GATE, None, "alice", "first model")
    second = register_candidate(reg, runs[1][0], runs[1][1], GATE, None, "alice", "retrained")
    out, err = capfd.readouterr()
    assert (first.alias, second.alias) == ("champion", "challenger")
    for line in ("Successfully registered model", "Created version", "already exists"):
        assert line not in out + err
    assert MLFLOW_LOGGING_STREAM.enabled, "MLflow's event stream is restored after the registration"


def test_failed_gate_is_never_registered(reg: Settings, runs: list[tuple[str, str]]) -> None:
    for gate in ({"passed": False, "reasons": ["too weak"]}, {"reasons": ["no verdict"]}):
        with pytest.raises(RegistryError, match="did not pass the quality gate"):
            register_candidate(reg, runs[0][0], runs[0][1], gate, None, "a", "r")
    assert current_aliases(reg) == {}


def test_promote_then_rollback_restores_champion(reg: Settings, runs: list[tuple[str, str]]) -> None:
    v1, v2 = _register(reg, runs, 2)

    change = promote(reg, "bob", "better offline")
    assert (change.champion_before, change.champion_after) == (v1, v2)
    assert current_aliases(reg) == {"champion": v2, "previous": v1}

    back = rollback(reg, "carol", "error rate up")
    assert (back.champion_before, back.champion_after) == (v2, v1)
    assert current_aliases(reg) == {"champion": v1}
    client = mlflow_client(reg)
    assert str(client.get_model_version_by_alias(reg.model_name, "champion").version) == v1
    tags = client.get_model_version(reg.model_name, v2).tags
    assert tags["rolled_back"] == "true"
    assert tags["rollback_reason"] == "error rate up"
    assert tags["promoted_by"] == "bob"


def test_errors_name_the_fix(reg: Settings, runs: list[tuple[str, str]]) -> None:
    with pytest.raises(RegistryError, match="no registered model"):
        promote(reg, "a", "r")
    _register(reg, runs, 1)
    with pytest.raises(RegistryError, match="no challenger to promote"):
        promote(reg, "a", "r")
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(reg, "a", "r")


def test_audit_log_records_every_alias_move_in_order(reg: Settings, runs: list[tuple[str, str]]) -> None:
    v1, v2 = _register(reg, runs, 2)
    promote(reg, "bob", "better offline")
    rollback(reg, "carol", "error rate up")

    moves = [(e.action, e.alias, e.from_version, e.to_version, e.actor) for e in audit_log(reg)]
    assert moves == [
        ("register", "champion", None, v1, "tester"),
        ("register", "challenger", None, v2, "tester"),
        ("promote", "previous", None, v1, "bob"),
        ("promote", "champion", v1, v2, "bob"),
        ("promote", "challenger", v2, None, "bob"),
        ("rollback", "champion", v2, v1, "carol"),
        ("rollback", "previous", v1, None, "carol"),
    ]
    entries = audit_log(reg)
    assert [e.seq for e in entries] == list(range(1, 8))
    assert entries[-1].reason == "error rate up"
    assert entries[0].ts <= entries[-1].ts


def test_reject_marks_the_challenger_and_blocks_promotion(reg: Settings, runs: list[tuple[str, str]]) -> None:
    _, v2 = _register(reg, runs, 2)
    assert reject_challenger(reg, "rollout-controller", "canary error rate 7%") == v2
    tags = mlflow_client(reg).get_model_version(reg.model_name, v2).tags
    assert (tags["status"], tags["rejection_reason"]) == ("rejected", "canary error rate 7%")
    assert current_aliases(reg)["challenger"] == v2  # alias kept, so the decision stays visible
    with pytest.raises(RegistryError, match="was rejected"):
        promote(reg, "a", "r")
    assert audit_log(reg)[-1].action == "reject"


def test_list_versions_reports_aliases_and_metrics(reg: Settings, runs: list[tuple[str, str]]) -> None:
    v1, v2 = _register(reg, runs, 2)
    versions = {v.version: v for v in list_versions(reg)}
    assert versions[v1].aliases == ["champion"]  # not the empty list search_model_versions returns
    assert versions[v2].aliases == ["challenger"]
    assert versions[v2].accuracy == pytest.approx(0.93)
    assert versions[v2].run_id == runs[1][0]
    assert versions[v1].status == "promoted"
    assert versions[v2].gate_status == "passed"


def test_model_card_is_logged_on_run_and_version(reg: Settings, runs: list[tuple[str, str]]) -> None:
    from pipelines.model_card import VERSION_PENDING

    run_id, uri = runs[0]
    card = f"# Model card: {reg.model_name} version {VERSION_PENDING}\n"
    version = register_candidate(reg, run_id, uri, GATE, card, "a", "card").version
    client = mlflow_client(reg)
    assert client.get_model_version(reg.model_name, version).tags["model_card"] == f"runs:/{run_id}/model_card.md"
    text = Path(client.download_artifacts(run_id, "model_card.md", str(reg.state))).read_text()
    assert text == f"# Model card: {reg.model_name} version {version}\n"


@pytest.fixture
def cli(reg: Settings) -> tuple[CliRunner, dict[str, str]]:
    env = {
        "MLOPS_PROJECT_DIR": str(REPO),
        "MLOPS_STATE_DIR": str(reg.state),
        "MLOPS_MODEL_NAME": reg.model_name,
        "MLOPS_ACTOR": "cli-user",
        "COLUMNS": "200",  # rich wraps tables at 80 columns otherwise
    }
    return CliRunner(env=env), env


def test_cli_list_promote_rollback_audit(
    reg: Settings, runs: list[tuple[str, str]], cli: tuple[CliRunner, dict[str, str]]
) -> None:
    from cli.app import app

    runner, _ = cli
    v1, v2 = _register(reg, runs, 2)

    listed = runner.invoke(app, ["registry", "list"])
    assert listed.exit_code == 0, listed.output
    for expected in ("champion", "challenger", "0.930", "promoted"):
        assert expected in listed.stdout

    promoted = runner.invoke(app, ["registry", "promote", "--reason", "cli promote"])
    assert promoted.exit_code == 0, promoted.output
    assert current_aliases(reg) == {"champion": v2, "previous": v1}

    rolled = runner.invoke(app, ["registry", "rollback", "--reason", "cli rollback"])
    assert rolled.exit_code == 0, rolled.output
    assert current_aliases(reg) == {"champion": v1}

    audit = runner.invoke(app, ["registry", "audit"])
    assert audit.exit_code == 0, audit.output
    assert "cli rollback" in audit.stdout
    assert "cli-user" in audit.stdout
    assert [e.actor for e in audit_log(reg)][-2:] == ["cli-user", "cli-user"]

    again = runner.invoke(app, ["registry", "rollback"])
    assert again.exit_code == 1
    assert "no previous champion" in again.stderr
    assert "Traceback" not in again.output


def test_rollback_demo_runs_and_restores_the_champion(reg: Settings, params: Params) -> None:
    from rich.console import Console

    from core.context import LabContext
    from lab.demos import rollback as demo
    from lab.narrate import Narrator

    out = io.StringIO()
    demo.run(Narrator(Console(file=out, width=120)), LabContext(settings=reg, params=params))
    text = out.getvalue()
    assert f"models:/{reg.model_name}@champion resolves to v1 again" in text
    assert "✘" not in text
    assert current_aliases(reg) == {"champion": "1"}
    assert [e.action for e in audit_log(reg)] == ["register"] * 2 + ["promote"] * 3 + ["rollback"] * 2
    card = mlflow_client(reg).get_model_version(reg.model_name, "2").tags["model_card"]
    assert card.endswith("/model_card.md")


def test_an_alias_names_one_version_and_a_version_carries_several(reg: Settings, runs: list[tuple[str, str]]) -> None:
    """Aliases are pointers: setting one moves it off its old version; tags, not aliases, say a version's status."""
    v1, v2 = _register(reg, runs, 2)
    client = mlflow_client(reg)
    client.set_registered_model_alias(reg.model_name, "blue", v1)  # a second alias on the champion's version
    assert {v.version: v.aliases for v in list_versions(reg)} == {v1: ["blue", "champion"], v2: ["challenger"]}

    promote(reg, "bob", "better offline")  # champion moves to v2: it leaves v1, it is never on two versions
    assert {v.version: v.aliases for v in list_versions(reg)} == {v1: ["blue", "previous"], v2: ["champion"]}
    assert str(client.get_model_version_by_alias(reg.model_name, "champion").version) == v2
    assert client.get_model_version(reg.model_name, v2).tags["status"] == "promoted"  # status is a tag
