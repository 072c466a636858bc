"""Production mode against a real MLflow SQLite store: nothing promotes without another person's approval.

Each transition and each refusal of the approval workflow (C60), the Markdown audit page kept current on
the version, and the CLI (``registry request-approval | approve | reject | audit``) at 80 columns.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import Settings
from pipelines.registry import (
    RegistryError,
    approve,
    audit_log,
    current_aliases,
    list_versions,
    mlflow_client,
    promote,
    register_candidate,
    reject_challenger,
    request_approval,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
GATE = {"passed": True, "reasons": ["beats champion"]}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, make_settings) -> Settings:
    return make_settings(tmp_path_factory.mktemp("approval") / "state", actor="tester", approval="required")


@pytest.fixture(scope="module")
def runs(store: Settings) -> list[tuple[str, str]]:
    """Three logged tiny models as (run_id, model_uri)."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from pipelines.registry import ensure_experiment

    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    experiment_id = ensure_experiment(store)
    out = []
    for _ in range(3):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(x, model.predict(x)),
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
            )
        out.append((run.info.run_id, info.model_uri))
    return out


@pytest.fixture
def reg(store: Settings, runs: list[tuple[str, str]], request: pytest.FixtureRequest) -> Settings:
    """A registered model of this test's own: v1 champion, v2 challenger, in production mode."""
    settings = store.model_copy(update={"model_name": re.sub(r"\W", "-", request.node.name)})
    for run_id, uri in runs[:2]:
        register_candidate(settings, run_id, uri, GATE, None, "trainer", "new candidate")
    return settings


def _tags(settings: Settings, version: str) -> dict[str, str]:
    return dict(mlflow_client(settings).get_model_version(settings.model_name, version).tags)


def _page(settings: Settings, version: str) -> str:
    client = mlflow_client(settings)
    run_id = client.get_model_version(settings.model_name, version).run_id
    assert _tags(settings, version)["audit_trail"] == f"runs:/{run_id}/audit_trail.md"
    target = settings.state / "pages" / f"{settings.model_name}-{version}-{len(audit_log(settings))}"
    target.mkdir(parents=True)
    return Path(client.download_artifacts(run_id, "audit_trail.md", str(target))).read_text()


def test_production_mode_promotes_only_after_another_person_approves(reg: Settings) -> None:
    before = current_aliases(reg)
    assert before == {"champion": "1", "challenger": "2"}
    with pytest.raises(RegistryError, match=r"needs a person's approval .*approval: not requested"):
        promote(reg, "alice", "ship it")
    assert request_approval(reg, "alice", "canary looked fine") == "2"
    assert _tags(reg, "2")["approval"] == "pending"
    assert [v.approval for v in list_versions(reg)] == ["", "pending"]  # what `registry list` shows
    with pytest.raises(RegistryError, match=r"approval: pending"):
        promote(reg, "alice", "ship it anyway")
    with pytest.raises(RegistryError, match=r"'alice' requested the approval of v2 and cannot approve it too"):
        approve(reg, "alice", "looks good to me")
    with pytest.raises(RegistryError, match=r"is a process, not a person"):
        approve(reg, "rollout-controller", "auto")
    assert current_aliases(reg) == before  # every refusal left the aliases alone

    change = approve(reg, "bob", "reviewed the canary report")
    assert (change.champion_before, change.champion_after) == ("1", "2")
    assert current_aliases(reg) == {"champion": "2", "previous": "1"}
    tags = _tags(reg, "2")
    assert (tags["approval"], tags["approval_requested_by"], tags["approved_by"]) == ("approved", "alice", "bob")
    trail = [(e.actor, e.action, e.alias) for e in audit_log(reg)][-5:]
    assert trail == [
        ("alice", "request_approval", "challenger"),
        ("bob", "approve", "challenger"),
        ("bob", "promote", "previous"),
        ("bob", "promote", "champion"),
        ("bob", "promote", "challenger"),
    ]


def test_an_approval_belongs_to_one_version_and_a_repeated_request_keeps_the_first_requester(
    reg: Settings, runs: list[tuple[str, str]]
) -> None:
    request_approval(reg, "alice", "first ask")
    request_approval(reg, "carol", "asked again")  # pending already: nothing changes, not even the requester
    assert _tags(reg, "2")["approval_requested_by"] == "alice"
    assert [e.action for e in audit_log(reg)].count("request_approval") == 1
    v3 = register_candidate(reg, runs[2][0], runs[2][1], GATE, None, "trainer", "newer candidate").version
    with pytest.raises(RegistryError, match=rf"challenger v{v3} has no pending approval request"):
        approve(reg, "bob", "approving what alice asked for")  # alice asked about v2, not v3
    with pytest.raises(RegistryError, match="needs a person's approval"):
        promote(reg, "bob", "promote v3")
    assert current_aliases(reg)["champion"] == "1"


def test_a_rejection_answers_the_request_and_the_version_never_goes_out(reg: Settings) -> None:
    request_approval(reg, "alice", "please review")
    assert reject_challenger(reg, "bob", "fairness gap too wide") == "2"
    tags = _tags(reg, "2")
    assert (tags["approval"], tags["status"], tags["rejected_by"]) == ("rejected", "rejected", "bob")
    with pytest.raises(RegistryError, match="is rejected: it never goes out again"):
        approve(reg, "carol", "overrule")
    with pytest.raises(RegistryError, match="is rejected"):
        request_approval(reg, "alice", "try again")
    assert current_aliases(reg)["champion"] == "1"


def test_development_mode_promotes_without_approval(reg: Settings) -> None:
    development = reg.model_copy(update={"approval": "automatic"})
    assert promote(development, "alice", "automatic").champion_after == "2"


def test_the_markdown_audit_page_follows_the_trail(reg: Settings) -> None:
    assert "## Entries (1)" in _page(reg, "2")  # written at registration
    request_approval(reg, "alice", "canary passed")
    page = _page(reg, "2")
    assert "| approval | pending |" in page
    assert "| approval_requested_by | alice |" in page
    assert re.search(r"\| alice \| request_approval \| challenger v2 \| canary passed \|", page)
    approve(reg, "bob", "reviewed")
    page = _page(reg, "2")
    assert "| approved_by | bob |" in page
    assert "| status | promoted |" in page
    assert re.search(r"\| bob \| promote \| champion v1 → v2 \| approved: reviewed \|", page)
    assert "## Entries (5)" in page  # registration, request, approval, champion, challenger alias removed
    assert re.search(r"\| bob \| promote \| previous - → v1 \|", _page(reg, "1"))  # the old champion's page too
    raw = mlflow_client(reg).get_registered_model(reg.model_name).tags
    assert all(json.loads(v)["actor"] for k, v in raw.items() if k.startswith("audit/"))  # tags stay JSON


def test_cli_request_approve_and_audit_at_80_columns(reg: Settings) -> None:
    from cli.app import app

    env = {"MLOPS_PROJECT_DIR": str(REPO), "MLOPS_STATE_DIR": str(reg.state), "MLOPS_MODEL_NAME": reg.model_name}
    env |= {"MLOPS_APPROVAL": "required", "COLUMNS": "200"}  # rich wraps errors at 80; `audit` must not need it
    alice, bob = CliRunner(env={**env, "MLOPS_ACTOR": "alice"}), CliRunner(env={**env, "MLOPS_ACTOR": "bob"})

    refused = alice.invoke(app, ["registry", "promote"])
    assert refused.exit_code == 1
    assert "needs a person's approval" in refused.stderr
    asked = alice.invoke(app, ["registry", "request-approval", "--reason", "x" * 200])
    assert asked.exit_code == 0, asked.output
    self_approved = alice.invoke(app, ["registry", "approve"])
    assert self_approved.exit_code == 1
    assert "cannot approve it too" in self_approved.stderr
    assert "Traceback" not in self_approved.output
    approved = bob.invoke(app, ["registry", "approve", "--reason", "reviewed"])
    assert approved.exit_code == 0, approved.output
    assert current_aliases(reg) == {"champion": "2", "previous": "1"}

    audit = bob.invoke(app, ["registry", "audit"])
    assert audit.exit_code == 0, audit.output
    lines = audit.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(re.match(r"\s+\d+ \S+ \S+ bob\s+approve\s+challenger v2$", line) for line in lines)
    assert sum(line.count("x") for line in lines) == 200  # the long reason wrapped, not cut
    as_json = bob.invoke(app, ["registry", "audit", "--json"])
    assert [json.loads(line)["action"] for line in as_json.stdout.splitlines()][-5:] == [
        "request_approval",
        "approve",
        "promote",
        "promote",
        "promote",
    ]


def test_cli_approve_is_refused_while_a_canary_is_stepping_as_through_the_api(reg: Settings, params) -> None:
    """`registry approve` answers as POST /v1/admin/approval/approve: never mid-canary, and after its last step."""
    from datetime import UTC, datetime

    from cli.app import app
    from serving.rollout import RolloutEvent, RolloutState
    from serving.state_store import StateStore

    env = {"MLOPS_PROJECT_DIR": str(REPO), "MLOPS_STATE_DIR": str(reg.state), "MLOPS_MODEL_NAME": reg.model_name}
    env |= {"MLOPS_APPROVAL": "required", "COLUMNS": "300"}
    bob = CliRunner(env={**env, "MLOPS_ACTOR": "bob"})
    store = StateStore(reg.prediction_log_uri, params.routing)
    at = datetime.now(UTC)
    start = RolloutEvent(at, "start", 0.1, "canary of v2", "alice")
    try:
        request_approval(reg, "alice", "please look at v2")  # pending, asked by someone else than bob
        for status in ("running", "paused"):
            store.put_rollout(RolloutState(status, "2", 0, 0.1, at, at, (start,)))
            refused = bob.invoke(app, ["registry", "approve", "--reason", "too early"])
            assert refused.exit_code == 1, refused.output
            assert f"a canary of v2 is {status}: it asks for approval after its last step" in refused.stderr
            assert "Traceback" not in refused.output
            assert current_aliases(reg) == {"champion": "1", "challenger": "2"}  # nothing changed
            assert _tags(reg, "2")["approval"] == "pending"

        store.put_rollout(RolloutState("awaiting_approval", "2", 3, 1.0, at, at, (start,)))
        approved = bob.invoke(app, ["registry", "approve", "--reason", "canary passed"])
        assert approved.exit_code == 0, approved.output
        assert "the canary of v2 that awaited it is finished (weight 0)" in approved.stdout
        assert current_aliases(reg) == {"champion": "2", "previous": "1"}
        assert (store.rollout().status, store.rollout().history[-1].actor) == ("promoted", "bob")
    finally:
        store.put_rollout(RolloutState())  # the module's other tests share this database
        store.close()


def test_cli_reject_aborts_a_running_canary_of_the_challenger_as_through_the_api(reg: Settings, params) -> None:
    """`registry reject` answers as POST /v1/admin/approval/reject: a canary still holding traffic is aborted."""
    from datetime import UTC, datetime

    from cli.app import app
    from serving.rollout import RolloutEvent, RolloutState
    from serving.state_store import StateStore

    env = {"MLOPS_PROJECT_DIR": str(REPO), "MLOPS_STATE_DIR": str(reg.state), "MLOPS_MODEL_NAME": reg.model_name}
    bob = CliRunner(env={**env, "MLOPS_APPROVAL": "required", "COLUMNS": "300", "MLOPS_ACTOR": "bob"})
    store = StateStore(reg.prediction_log_uri, params.routing)
    at = datetime.now(UTC)
    try:
        store.put_rollout(RolloutState("running", "2", 1, 0.25, at, at, (RolloutEvent(at, "start", 0.1, "", "alice"),)))
        store.update_routing(lambda r: replace(r, canary_weight=0.25))
        rejected = bob.invoke(app, ["registry", "reject", "--reason", "fairness gap too wide"])
        assert rejected.exit_code == 0, rejected.output
        assert "the canary of v2 is aborted (weight 0)" in rejected.stdout
        assert (store.rollout().status, store.rollout().history[-1].actor) == ("aborted", "bob")
        assert store.routing().canary_weight == 0.0  # no traffic left on the rejected challenger
        assert (_tags(reg, "2")["status"], _tags(reg, "2")["rejected_by"]) == ("rejected", "bob")
        assert current_aliases(reg)["champion"] == "1"
    finally:
        store.put_rollout(RolloutState())  # the module's other tests share this database
        store.update_routing(lambda r: replace(r, canary_weight=0.0))
        store.close()
