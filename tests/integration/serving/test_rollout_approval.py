"""Production mode on real parts: a canary that passed every step waits for a person, holding its weight.

MLflow registry, shared state store and prediction log as in ``test_rollout_controller``: the controller
asks for approval on behalf of whoever started the canary; nothing is promoted until someone else
approves; a rejection aborts like a failed canary; an answer given in the registry is picked up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.registry import RegistryError, approve, audit_log, current_aliases, mlflow_client
from pipelines.training_steps import run_training
from serving.prediction_log import PredictionLog
from serving.rollout_controller import answer_approval, begin_rollout, tick
from serving.state_store import StateStore
from tests.integration.serving.test_rollout_controller import serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def waiting(tmp_path: Path, make_settings, params: Params):
    """A canary of v2 started by alice, every step passed, in production mode: it awaits approval."""
    settings: Settings = make_settings(tmp_path / "state", approval="required")
    data = ingest(params.dataset, params.ingest, tmp_path / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(settings, params, data).status == "registered"
    store = StateStore(settings.prediction_log_uri, params.routing)
    log = PredictionLog(settings.prediction_log_uri).start()
    begin_rollout(settings, params, store, actor="alice")
    n = params.rollout.min_requests
    for step in params.rollout.steps:
        if step < 100:
            serve(log, "champion", "1", n)
        serve(log, "challenger", "2", n)
        log.flush()
        result = tick(settings, params, store, log.engine)
    assert result.action.kind == "request_approval", result.action.reason
    yield settings, params, store, log
    log.close()
    store.close()


def _tags(settings: Settings) -> dict[str, str]:
    return dict(mlflow_client(settings).get_model_version(settings.model_name, "2").tags)


def test_nothing_is_promoted_until_someone_other_than_the_starter_approves(waiting) -> None:
    settings, params, store, log = waiting
    last = params.rollout.steps[-1] / 100
    assert (store.rollout().status, store.routing().canary_weight) == ("awaiting_approval", last)
    tags = _tags(settings)
    assert (tags["approval"], tags["approval_requested_by"]) == ("pending", "alice")
    for _ in range(3):  # more passing ticks: still waiting, weight held, no promotion
        serve(log, "challenger", "2", 20)
        log.flush()
        assert tick(settings, params, store, log.engine).action.kind == "wait"
    assert current_aliases(settings) == {"champion": "1", "challenger": "2"}
    assert store.routing().canary_weight == last

    with pytest.raises(RegistryError, match="'alice' requested the approval of v2 and cannot approve it too"):
        answer_approval(settings, store, "approve", "alice", "my own canary")
    assert store.rollout().status == "awaiting_approval"
    assert current_aliases(settings)["champion"] == "1"

    done = answer_approval(settings, store, "approve", "bob", "reviewed the canary")
    assert (done.state.status, store.routing().canary_weight) == ("promoted", 0.0)
    assert current_aliases(settings) == {"champion": "2", "previous": "1"}
    actions = [(e.actor, e.action) for e in audit_log(settings) if e.action in ("request_approval", "approve")]
    assert actions == [("rollout-controller", "request_approval"), ("bob", "approve")]


def test_a_rejection_rolls_back_like_a_failed_canary(waiting) -> None:
    settings, _, store, _ = waiting
    done = answer_approval(settings, store, "reject", "bob", "fairness gap too wide")
    assert (done.state.status, store.routing().canary_weight) == ("aborted", 0.0)
    tags = _tags(settings)
    assert (tags["status"], tags["approval"], tags["rejected_by"]) == ("rejected", "rejected", "bob")
    assert current_aliases(settings)["champion"] == "1"


def test_an_approval_given_in_the_registry_finishes_the_rollout_at_the_next_tick(waiting) -> None:
    settings, params, store, log = waiting
    approve(settings, "bob", "approved from the CLI")  # `mlops-lab registry approve`, not through the controller
    result = tick(settings, params, store, log.engine)
    assert (result.state.status, result.action.kind, store.routing().canary_weight) == ("promoted", "promote", 0.0)
    assert current_aliases(settings)["champion"] == "2"
