"""The rollout controller end to end on real parts: MLflow registry, shared state store, prediction log.

Traffic is written to the prediction log directly (the API does the same per request), so each test
controls exactly what the analysis sees: a good challenger is promoted step by step, a bad one is
aborted and rejected, and too little data never moves the rollout. Both arms are measured over the
current step, so every step below 100 % gets champion traffic too; at 100 % only the challenger serves.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from core.params import Params
from core.settings import Settings
from pipelines.data import ingest
from pipelines.registry import audit_log, current_aliases, list_versions
from pipelines.training_steps import run_training
from serving.prediction_log import PredictionLog, PredictionRecord
from serving.rollout_controller import arm_metrics, begin_rollout, tick
from serving.state_store import StateStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]
_ids = itertools.count()


@pytest.fixture
def world(tmp_path: Path, make_settings, params: Params):
    settings: Settings = make_settings(tmp_path / "state")
    data = ingest(params.dataset, params.ingest, tmp_path / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(settings, params, data).status == "registered"
    store = StateStore(settings.prediction_log_uri, params.routing)
    log = PredictionLog(settings.prediction_log_uri).start()
    yield settings, params, store, log
    log.close()
    store.close()


def serve(
    log: PredictionLog,
    arm: str,
    version: str,
    n: int,
    *,
    errors: int = 0,
    wrong: int = 0,
    ms: float = 2.0,
    strategy: str = "canary",
):
    """n requests on one arm: `errors` fail, `wrong` get feedback that disagrees with the prediction."""
    for i in range(n):
        rid = f"r{next(_ids)}"
        failed = i < errors
        log.record(
            PredictionRecord(
                request_id=rid,
                model_name="iris-classifier",
                model_version=version,
                features={"sepal_length": 5.0},
                prediction=None if failed else "setosa",
                arm=arm,
                strategy=strategy,
                latency_ms=ms,
                status="error" if failed else "ok",
            )
        )
        if not failed:
            log.flush()
            log.record_feedback(rid, "virginica" if i < errors + wrong else "setosa")


def test_good_challenger_walks_every_step_and_is_promoted(world) -> None:
    settings, params, store, log = world
    begin = begin_rollout(settings, params, store)
    assert store.routing().canary_weight == pytest.approx(params.rollout.steps[0] / 100)
    assert tick(settings, params, store, log.engine).action.kind == "wait"  # no traffic yet: inconclusive

    n = params.rollout.min_requests
    weights = [store.routing().canary_weight]
    for step in params.rollout.steps:
        if step < 100:  # at 100 % the champion serves nothing; its baseline is the 50 % step's window
            serve(log, "champion", "1", n)
        serve(log, "challenger", begin.state.challenger_version or "2", n)
        log.flush()
        result = tick(settings, params, store, log.engine)
        assert result.analysis is not None
        assert result.analysis.verdict == "pass", result.analysis.summary()
        weights.append(store.routing().canary_weight)
    assert result.action.kind == "promote"
    assert weights == [s / 100 for s in params.rollout.steps] + [0.0]
    assert current_aliases(settings)["champion"] == "2"
    assert any(e.actor == "rollout-controller" and e.action == "promote" for e in audit_log(settings))
    assert store.rollout().status == "promoted"


def test_a_registry_failure_at_promotion_leaves_the_rollout_running_for_the_next_tick(world, monkeypatch) -> None:
    """The registry refuses the promotion once (an outage): the rollout is not marked promoted; a later tick is."""
    import pipelines.registry

    settings, params, store, log = world
    begin_rollout(settings, params, store)
    n = params.rollout.min_requests
    for _ in params.rollout.steps[:-1]:
        serve(log, "champion", "1", n)
        serve(log, "challenger", "2", n)
        log.flush()
        assert tick(settings, params, store, log.engine).action.kind == "set_weight"
    serve(log, "challenger", "2", n)
    log.flush()
    real_promote = pipelines.registry.promote

    def registry_down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("registry unreachable")

    monkeypatch.setattr(pipelines.registry, "promote", registry_down)
    before = store.rollout()
    with pytest.raises(ConnectionError):
        tick(settings, params, store, log.engine)
    assert store.rollout() == before  # still running at the last step, not "promoted"
    assert current_aliases(settings)["champion"] == "1"

    monkeypatch.setattr(pipelines.registry, "promote", real_promote)  # the registry is back
    assert tick(settings, params, store, log.engine).action.kind == "promote"
    assert store.rollout().status == "promoted"
    assert current_aliases(settings)["champion"] == "2"


def test_champion_rows_from_an_earlier_step_do_not_count_in_the_current_one(world) -> None:
    """Both arms over the same window: a champion that served only in the 10 % step leaves 25 % inconclusive."""
    settings, params, store, log = world
    begin_rollout(settings, params, store)
    n = params.rollout.min_requests
    serve(log, "champion", "1", n)
    serve(log, "challenger", "2", n)
    log.flush()
    assert tick(settings, params, store, log.engine).action.kind == "set_weight"  # 10 % -> 25 %
    serve(log, "challenger", "2", n)  # the 25 % step: challenger traffic only
    log.flush()
    result = tick(settings, params, store, log.engine)
    assert result.action.kind == "wait", result.action.reason
    assert "champion has 0 labelled predictions" in result.action.reason
    assert store.routing().canary_weight == pytest.approx(0.25)
    serve(log, "champion", "1", n)  # now the champion serves in this step too
    log.flush()
    assert tick(settings, params, store, log.engine).action.kind == "set_weight"


def test_at_100_percent_the_challenger_is_compared_with_the_champion_of_the_previous_step(world) -> None:
    """The champion was wrong on every row in the 10 % step and right from then on; at 100 % a challenger 15
    points below the 50 % step's champion is aborted, although it beats the champion's rollout-wide record."""
    settings, params, store, log = world
    begin_rollout(settings, params, store)
    n = params.rollout.min_requests
    serve(log, "champion", "1", n, wrong=n)  # 0 % in the first window
    serve(log, "challenger", "2", n)
    log.flush()
    for _ in params.rollout.steps[:-1]:
        assert tick(settings, params, store, log.engine).action.kind == "set_weight"
        if store.routing().canary_weight < 1.0:
            serve(log, "champion", "1", n)
            serve(log, "challenger", "2", n)
            log.flush()
    assert store.rollout().weight == 1.0
    serve(log, "challenger", "2", n, wrong=15 * n // 100)
    log.flush()
    result = tick(settings, params, store, log.engine)
    assert result.action.kind == "abort", result.action.reason
    assert f"vs champion {n}/{n} = 100.00%" in result.action.reason  # the 50 % step's champion rows


def test_erroring_challenger_is_aborted_rejected_and_loses_its_traffic(world) -> None:
    settings, params, store, log = world
    begin_rollout(settings, params, store)
    n = params.rollout.min_requests
    serve(log, "champion", "1", n)
    serve(log, "challenger", "2", n, errors=n // 10)  # 10 % errors, far above max_error_rate
    log.flush()
    result = tick(settings, params, store, log.engine)
    assert result.action.kind == "abort"
    assert "error" in result.action.reason
    assert store.routing().canary_weight == 0.0
    assert store.rollout().status == "aborted"
    assert current_aliases(settings)["champion"] == "1"
    status = {v.version: v.status for v in list_versions(settings)}
    assert status["2"] == "rejected"


def test_inaccurate_challenger_is_aborted_on_online_accuracy(world) -> None:
    settings, params, store, log = world
    begin_rollout(settings, params, store)
    n = params.rollout.min_requests
    serve(log, "champion", "1", n)
    serve(log, "challenger", "2", n, wrong=n // 4)  # 75 % online accuracy vs 100 %
    log.flush()
    result = tick(settings, params, store, log.engine)
    assert result.action.kind == "abort"
    assert "accuracy" in result.action.reason


def test_too_little_traffic_waits_at_the_same_weight(world) -> None:
    settings, params, store, log = world
    begin_rollout(settings, params, store)
    weight = store.routing().canary_weight
    serve(log, "champion", "1", params.rollout.min_requests)
    serve(log, "challenger", "2", params.rollout.min_requests - 1)
    log.flush()
    result = tick(settings, params, store, log.engine)
    assert result.action.kind == "wait"
    assert result.analysis is not None
    assert result.analysis.verdict == "inconclusive"
    assert store.routing().canary_weight == weight
    assert store.rollout().status == "running"


@pytest.mark.parametrize("steered", ["forced", "pinned"])
def test_forced_or_pinned_traffic_can_neither_fail_nor_pass_a_canary(world, steered: str) -> None:
    settings, params, store, log = world
    begin = begin_rollout(settings, params, store)
    challenger = begin.state.challenger_version or "2"
    n = params.rollout.min_requests
    serve(log, "champion", "1", n)
    serve(log, "challenger", challenger, n, errors=n, strategy=steered)  # all failing: would abort if counted
    log.flush()
    result = tick(settings, params, store, log.engine)
    assert result.action.kind == "wait", result.action.reason  # the challenger has no analysed traffic yet
    assert arm_metrics(log.engine, "challenger", challenger, None).requests == 0
    assert store.rollout().status == "running"
    serve(log, "challenger", challenger, n, strategy=steered)  # all good: would pass the step if counted
    log.flush()
    assert tick(settings, params, store, log.engine).action.kind == "wait"
    assert store.routing().canary_weight == pytest.approx(params.rollout.steps[0] / 100)
