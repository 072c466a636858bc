"""/v1/predict with rows sent as entity ids, over the real app, a real registry and a real Feast store.

One module-scoped champion and one feature store (a seeded history, applied and materialised in tmp): open
specimens (measured in the last two days) are fresh under the app's 3-day limit, labelled ones (their last
record is more than 3.75 days old) are stale, and one open specimen's values were recorded outside the data
contract. Every refusal is checked to leave the prediction log untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from core.params import Params
from core.settings import Settings
from pipelines.data import build_raw_frame, ingest
from pipelines.feature_history import ENTITY_KEY, EVENT_TIME, History, generate_history
from pipelines.feature_store import FeatureRepo, apply, materialize, write_history
from pipelines.training_steps import run_training
from serving.app import create_app
from serving.contract import RequestContract
from serving.entity_features import Entities, EntityFeatures, EntityRequest, StaleFeaturesError
from serving.prediction_log import predictions_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MAX_AGE_S = 3 * 86400.0
UNKNOWN = "sp-99999"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> tuple[Settings, History, str]:
    """Settings with a trained champion and a materialised feature store; the out-of-contract specimen's id."""
    root = tmp_path_factory.mktemp("by-entity")
    repo = FeatureRepo(root / "feature_repo")
    settings = make_settings(
        root / "state", poll_interval_s=3600, rate_limit_per_s=0, feature_repo=repo.root, feature_max_age_s=MAX_AGE_S
    )
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    assert run_training(settings, params, data).status == "registered"
    now = datetime.now(UTC)
    history = generate_history(build_raw_frame(params.dataset, params.ingest), params.dataset, specimens=40,
                               open_share=0.25, seed=11, end=now)  # fmt: skip
    broken = history.open_ids[-1]
    first = params.dataset.feature_names[0]
    history.measurements.loc[history.measurements[ENTITY_KEY] == broken, first] = 999.0  # outside the contract
    write_history(repo, history)
    materialize(apply(repo, params.dataset), end=now)
    return settings, history, broken


@pytest.fixture(scope="module")
def client(world, params: Params) -> Iterator[TestClient]:
    settings, _, _ = world
    with TestClient(create_app(settings, params)) as test_client:
        yield test_client


def latest(history: History, sid: str, names: list[str]) -> tuple[dict[str, float], datetime]:
    """A specimen's latest measurement in the history (what materialise copied online) and its time, to the
    second (the online store keeps event times in whole seconds)."""
    rows = history.measurements[history.measurements[ENTITY_KEY] == sid].sort_values(EVENT_TIME)
    last = rows.iloc[-1]
    return {n: float(last[n]) for n in names}, pd.Timestamp(last[EVENT_TIME]).to_pydatetime().replace(microsecond=0)


def logged(client: TestClient, *ids: str) -> list[dict[str, Any]]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.log.flush()
    p = predictions_table.c
    with runtime.log.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(predictions_table).where(p.request_id.in_(ids))).mappings()]


def log_size(client: TestClient) -> int:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.log.flush()
    with runtime.log.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(predictions_table))


def fresh(world) -> list[str]:
    _, history, broken = world
    return [sid for sid in history.open_ids if sid != broken]


def test_the_store_is_opened_in_the_background_at_start_up(client: TestClient) -> None:
    entities = client.app.state.runtime.entities  # type: ignore[attr-defined]
    assert entities.warming is not None  # registry.db existed at start-up
    entities.warming.join(120)
    assert entities.opened


def test_an_entity_row_is_answered_and_logged_as_its_features_sent_as_a_row(client, world, params) -> None:
    _, history, _ = world
    sid = fresh(world)[0]
    values, measured = latest(history, sid, params.dataset.feature_names)
    by_id = client.post("/v1/predict", json={ENTITY_KEY: sid}, headers={"X-Request-Id": "entity-one"})
    by_features = client.post("/v1/predict", json=values, headers={"X-Request-Id": "features-one"})
    assert by_id.status_code == by_features.status_code == 200, by_id.text
    [entity], [plain] = by_id.json()["predictions"], by_features.json()["predictions"]
    assert (entity["class"], entity["probabilities"]) == (plain["class"], plain["probabilities"])
    assert entity["entity_id"] == sid
    assert datetime.fromisoformat(entity["features_measured_at"]) == measured
    assert "entity_id" not in plain
    assert "features_measured_at" not in plain
    [row] = logged(client, "entity-one")  # exactly once
    assert row["features"] == values
    assert row["entity_id"] == sid
    assert row["features_at"].replace(tzinfo=row["features_at"].tzinfo or UTC) == measured
    assert (row["prediction"], row["status"]) == (entity["class"], "ok")
    [plain_row] = logged(client, "features-one")
    assert (plain_row["entity_id"], plain_row["features_at"]) == (None, None)


def test_a_batch_of_entity_rows_logs_each_row_with_its_entity(client, world, params) -> None:
    _, history, _ = world
    ids = fresh(world)[:3]
    response = client.post("/v1/predict", json={"rows": [{ENTITY_KEY: s} for s in ids]},
                           headers={"X-Request-Id": "entity-batch"})  # fmt: skip
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert [a["entity_id"] for a in answers] == ids
    rows = {r["request_id"]: r for r in logged(client, *(f"entity-batch:{i}" for i in range(3)))}
    assert len(rows) == 3
    for i, sid in enumerate(ids):
        values, _ = latest(history, sid, params.dataset.feature_names)
        assert (rows[f"entity-batch:{i}"]["entity_id"], rows[f"entity-batch:{i}"]["features"]) == (sid, values)
        assert rows[f"entity-batch:{i}"]["prediction"] == answers[i]["class"]


def refused(client: TestClient, body: Any, status: int) -> dict[str, Any]:
    """Send ``body``; assert ``status`` and that nothing was logged; the error body."""
    before = log_size(client)
    response = client.post("/v1/predict", json=body)
    assert response.status_code == status, response.text
    assert log_size(client) == before
    return response.json()


def test_an_unknown_entity_is_a_404_naming_it_and_nothing_is_served(client, world) -> None:
    ok = fresh(world)[0]
    answer = refused(client, {"rows": [{ENTITY_KEY: ok}, {ENTITY_KEY: UNKNOWN}]}, 404)
    [detail] = answer["detail"]
    assert detail["field"] == f"rows.1.{ENTITY_KEY}"
    assert UNKNOWN in detail["msg"]
    assert UNKNOWN in answer["error"]


def test_stale_features_are_a_422_naming_the_field_time_and_limit(client, world, params) -> None:
    _, history, _ = world
    stale = history.labels[ENTITY_KEY].iloc[0]
    _, measured = latest(history, stale, params.dataset.feature_names)
    answer = refused(client, {ENTITY_KEY: stale}, 422)
    [detail] = answer["detail"]
    assert detail["field"] == ENTITY_KEY
    assert detail["type"] == "stale_features"
    assert measured.isoformat() in detail["msg"]
    assert "259200 s" in detail["msg"]
    assert "MLOPS_FEATURE_MAX_AGE_S" in detail["msg"]


def test_stored_values_outside_the_contract_are_a_422_like_a_feature_row(client, world, params) -> None:
    _, _, broken = world
    answer = refused(client, {"rows": [{ENTITY_KEY: fresh(world)[0]}, {ENTITY_KEY: broken}]}, 422)
    [detail] = answer["detail"]
    assert detail["field"] == f"rows.1.{ENTITY_KEY}"
    assert broken in detail["msg"]
    assert params.dataset.feature_names[0] in detail["msg"]
    assert "999" in detail["msg"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({ENTITY_KEY: "sp 1"}, ENTITY_KEY),
        ({ENTITY_KEY: ""}, ENTITY_KEY),
        ({ENTITY_KEY: "x" * 65}, ENTITY_KEY),
        ({ENTITY_KEY: 360}, ENTITY_KEY),
        ({"rows": [{ENTITY_KEY: "sp-1"}, {ENTITY_KEY: "sp/2"}]}, f"rows.1.{ENTITY_KEY}"),
        ({ENTITY_KEY: "sp-1", "petal_width": 1.0}, "petal_width"),  # a row is an entity or features, not both
    ],
)
def test_a_malformed_entity_row_is_a_422_naming_the_field(client, body, field) -> None:
    answer = refused(client, body, 422)
    assert field in [d["field"] for d in answer["detail"]]


def test_a_body_mixing_entity_and_feature_rows_is_a_422(client, world, params) -> None:
    row = {name: (spec.min + spec.max) / 2 for name, spec in params.dataset.features.items()}
    for rows, i in (([{ENTITY_KEY: fresh(world)[0]}, row], 1), ([row, row, {ENTITY_KEY: fresh(world)[0]}], 2)):
        [detail] = refused(client, {"rows": rows}, 422)["detail"]
        assert (detail["field"], detail["type"]) == (f"rows.{i}.{ENTITY_KEY}", "mixed_rows")


def test_the_openapi_document_shows_the_entity_form(client) -> None:
    document = client.get("/openapi.json").json()
    body = document["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    refs = {option["$ref"].rsplit("/", 1)[1] for option in body["oneOf"]}
    assert {"PredictEntityRow", "PredictEntityBatch"} <= refs
    entity = document["components"]["schemas"]["PredictEntityRow"]
    assert entity["required"] == [ENTITY_KEY]
    assert "pattern" in entity["properties"][ENTITY_KEY]
    answer = document["components"]["schemas"]["ClassPrediction"]["properties"]
    assert {"entity_id", "features_measured_at"} <= set(answer)


def test_without_a_feature_store_entity_rows_are_a_404_and_feature_rows_still_served(
    world, params: Params, tmp_path: Path
) -> None:
    settings, _, _ = world
    bare = settings.model_copy(update={"feature_repo": tmp_path / "no-store"})
    row = {name: (spec.min + spec.max) / 2 for name, spec in params.dataset.features.items()}
    with TestClient(create_app(bare, params)) as client:
        assert client.app.state.runtime.entities.warming is None  # type: ignore[attr-defined]
        answer = refused(client, {ENTITY_KEY: "sp-00001"}, 404)
        assert "no feature store" in answer["error"]
        assert answer["detail"][0]["field"] == ENTITY_KEY
        assert "retry-after" not in {k.lower() for k in client.post("/v1/predict", json={ENTITY_KEY: "a"}).headers}
        assert client.post("/v1/predict", json=row).status_code == 200


def test_the_age_limit_is_inclusive_to_the_second(world, params: Params) -> None:
    """On the store itself, with a fixed clock: measured exactly ``max age`` ago is served, a second more is not."""
    settings, history, _ = world
    sid = fresh(world)[0]
    _, measured = latest(history, sid, params.dataset.feature_names)
    contract = RequestContract.from_dataset(params.dataset)

    def at(age_s: float) -> EntityFeatures:
        clock = measured + timedelta(seconds=age_s)
        return EntityFeatures(FeatureRepo(settings.feature_store_dir), params.dataset, contract, 600.0, lambda: clock)

    values, entities = at(600).lookup(EntityRequest((sid,), batch=False))
    assert entities == Entities((sid,), (measured,))
    assert values.shape == (1, len(params.dataset.feature_names))
    with pytest.raises(StaleFeaturesError) as caught:
        at(601).lookup(EntityRequest((sid,), batch=True))
    assert caught.value.problem.field == f"rows.0.{ENTITY_KEY}"
