"""A model that cannot serve never gets traffic (issue 14, item 2): the wrong schema, a rejected version.

A challenger trained on 2 of the contract's 4 features loads as a scikit-learn object but answers 500
on every request routed to it. Against a real MLflow store: the serving cache refuses it at load
(the champion serves on, /readyz names why), and a canary of it cannot start; nor can one of a version
already marked rejected.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from core.params import Params
from core.settings import Settings
from pipelines.registry import RegistryError, register_candidate, reject_challenger
from serving.model_cache import registry_cache
from serving.rollout_controller import begin_rollout
from serving.state_store import StateStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]
GATE = {"passed": True, "reasons": ["test"], "checks": {}}


def _register(settings: Settings, frame: pd.DataFrame, params: Params, columns: list[str]) -> str:
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from pipelines.registry import ensure_experiment

    x, y = frame[columns], frame[params.dataset.target]
    model: Any = LogisticRegression(max_iter=300).fit(x, y)
    with mlflow.start_run(experiment_id=ensure_experiment(settings)) as run:
        info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(x, model.predict(x)))
    return register_candidate(settings, run.info.run_id, info.model_uri, GATE, None, "tester", "test").version


def test_a_challenger_with_the_wrong_schema_is_never_served_nor_rolled_out(
    settings: Settings, params: Params, iris_frame: pd.DataFrame
) -> None:
    features = params.dataset.feature_names
    champion = _register(settings, iris_frame, params, features)
    narrow = _register(settings, iris_frame, params, features[:2])  # becomes the challenger
    cache = registry_cache(settings, features=features)
    cache.refresh()
    assert {alias: m.version for alias, m in cache.snapshot().items()} == {"champion": champion}
    assert cache.health.last_error is not None
    assert f"challenger v{narrow} not loaded" in cache.health.last_error
    assert f"missing {sorted(features[2:])}" in cache.health.last_error
    store = StateStore(settings.prediction_log_uri, params.routing)
    try:
        with pytest.raises(RegistryError, match=f"v{narrow} cannot go out as a canary: .*does not take"):
            begin_rollout(settings, params, store)
        assert store.rollout().status == "idle"
        assert store.routing().canary_weight == 0.0
    finally:
        store.close()


def test_a_rejected_challenger_cannot_be_rolled_out_again(
    settings: Settings, params: Params, iris_frame: pd.DataFrame
) -> None:
    features = params.dataset.feature_names
    _register(settings, iris_frame, params, features)
    challenger = _register(settings, iris_frame, params, features)
    reject_challenger(settings, "tester", "aborted canary: online accuracy fell")
    store = StateStore(settings.prediction_log_uri, params.routing)
    try:
        with pytest.raises(RegistryError, match=f"v{challenger} is marked rejected .*online accuracy fell"):
            begin_rollout(settings, params, store)
        assert store.rollout().status == "idle"
    finally:
        store.close()
