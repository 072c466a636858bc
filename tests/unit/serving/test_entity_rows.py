"""Rows sent as an entity id: reading the body, the store-less refusal, and the prediction log's new columns.

The feature-store lookups themselves (unknown, stale, out of contract) run against a real Feast store in
tests/integration/serving/test_predict_by_entity.py; here are the parts that need no store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.exceptions import RequestValidationError

from core.params import Params
from core.schema import alembic_config, locked
from pipelines.feature_history import ENTITY_KEY
from pipelines.feature_store import FeatureRepo
from serving import log_schema
from serving.contract import RequestContract
from serving.entity_features import EntityFeatures, EntityRequest, FeatureStoreUnavailableError
from serving.log_insert import DriverInsert
from serving.native_body import BodyParser, names_entities
from serving.prediction_log import PredictionLog, ServedRows, insert_ignoring_duplicates, predictions_table
from serving.schemas import build_schemas
from tests.fresh_database import drop_our_tables

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def parser(params: Params) -> BodyParser:
    contract = RequestContract.from_dataset(params.dataset)
    return BodyParser(contract, build_schemas(contract))


def middle_row(params: Params) -> dict[str, float]:
    return {name: (spec.min + spec.max) / 2 for name, spec in params.dataset.features.items()}


def problems(parser: BodyParser, body: object) -> list[tuple[str, str]]:
    with pytest.raises(RequestValidationError) as caught:
        parser.parse_predict(json.dumps(body).encode())
    return [(".".join(str(p) for p in e["loc"][1:]), e["type"]) for e in caught.value.errors()]


def test_entity_rows_are_read_as_their_ids_and_feature_rows_as_before(parser: BodyParser, params: Params) -> None:
    assert parser.parse_predict(json.dumps({ENTITY_KEY: "sp-00360"}).encode()) == EntityRequest(("sp-00360",), False)
    batch = {"rows": [{ENTITY_KEY: "sp-1"}, {ENTITY_KEY: "a_b.c:d"}]}
    assert parser.parse_predict(json.dumps(batch).encode()) == EntityRequest(("sp-1", "a_b.c:d"), True)
    row = middle_row(params)
    values, groups = parser.parse_predict(json.dumps({"rows": [row, row]}).encode())  # type: ignore[misc]
    np.testing.assert_array_equal(values, np.array([list(row.values())] * 2))
    assert groups is None


@pytest.mark.parametrize("bad", ["", "x" * 65, "sp 1", "sp/1", "ünï", 7, None, ["sp-1"]])
def test_an_invalid_id_is_refused_naming_its_field(parser: BodyParser, bad: object) -> None:
    assert [field for field, _ in problems(parser, {ENTITY_KEY: bad})] == [f"entity_row.{ENTITY_KEY}"]
    batch = problems(parser, {"rows": [{ENTITY_KEY: "ok"}, {ENTITY_KEY: bad}]})
    assert [field for field, _ in batch] == [f"entity_batch.rows.1.{ENTITY_KEY}"]


def test_the_id_limits_are_inclusive(parser: BodyParser) -> None:
    assert parser.parse_predict(json.dumps({ENTITY_KEY: "x" * 64}).encode()) == EntityRequest(("x" * 64,), False)
    assert parser.parse_predict(json.dumps({ENTITY_KEY: "7"}).encode()) == EntityRequest(("7",), False)


def test_a_body_mixing_entity_and_feature_rows_names_the_first_row_that_differs(parser, params) -> None:
    row = middle_row(params)
    assert problems(parser, {"rows": [{ENTITY_KEY: "a"}, {ENTITY_KEY: "b"}, row]}) == [
        (f"rows.2.{ENTITY_KEY}", "mixed_rows")
    ]
    assert problems(parser, {"rows": [row, {ENTITY_KEY: "b"}]}) == [(f"rows.1.{ENTITY_KEY}", "mixed_rows")]


def test_an_entity_row_with_other_fields_or_an_empty_batch_gets_the_schemas_422(parser, params) -> None:
    assert problems(parser, {ENTITY_KEY: "a", "petal_width": 1.0}) == [("entity_row.petal_width", "extra_forbidden")]
    assert problems(parser, {"rows": [{ENTITY_KEY: "a"}], "extra": 1}) == [("entity_batch.extra", "extra_forbidden")]


def test_only_bodies_naming_the_entity_key_take_the_entity_branch() -> None:
    assert names_entities({ENTITY_KEY: "a"})
    assert names_entities({"rows": [{"x": 1}, {ENTITY_KEY: "a"}]})
    assert not names_entities({"rows": [{"x": 1}]})
    assert not names_entities({"rows": "nope"})
    assert not names_entities([{ENTITY_KEY: "a"}])
    assert not names_entities(None)


def test_endpoints_taking_features_only_refuse_an_entity_row(parser: BodyParser) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parser.parse_request(json.dumps({ENTITY_KEY: "sp-1"}).encode())  # what /v1/explain reads bodies with
    assert [e["loc"] for e in caught.value.errors()] == [("body", ENTITY_KEY)]


def test_without_a_feature_store_entity_rows_are_refused_as_unavailable(tmp_path: Path, params: Params) -> None:
    repo = FeatureRepo(tmp_path / "nothing-here")
    entities = EntityFeatures(repo, params.dataset, RequestContract.from_dataset(params.dataset), 60.0)
    assert entities.warm() is None  # nothing to open at start-up
    with pytest.raises(FeatureStoreUnavailableError) as caught:
        entities.lookup(EntityRequest(("sp-1", "sp-2"), True))
    assert caught.value.status == 404
    assert caught.value.problem.field == f"rows.0.{ENTITY_KEY}"
    assert str(repo.root) in caught.value.problem.msg
    assert not entities.opened


def entity_rows(request_id: str, n: int) -> ServedRows:
    return ServedRows(
        request_ids=[f"{request_id}:{i}" for i in range(n)],
        model_name="iris",
        model_version="3",
        feature_names=["a", "b"],
        values=np.arange(n * 2, dtype="float64").reshape(n, 2),
        predictions=["y"] * n,
        probabilities=np.tile([0.25, 0.75], (n, 1)),
        classes=["x", "y"],
        arm="champion",
        strategy="canary",
        latency_ms=1.0,
        ts=T0,
        entity_ids=[f"sp-{i}" for i in range(n)],
        features_at=[T0 - timedelta(hours=i, microseconds=7) for i in range(n)],
    )


def test_the_driver_insert_stores_entity_columns_exactly_as_sqlalchemy_would(tmp_path: Path) -> None:
    items = [entity_rows("e", 70), entity_rows("f", 1)]
    stored = []
    for name in ("core", "driver"):
        engine = log_schema.make_engine(f"sqlite:///{tmp_path / name / 'p.db'}")
        log_schema.metadata.create_all(engine)
        driver = DriverInsert.for_engine(engine)
        assert driver is not None
        with engine.begin() as conn:
            if name == "driver":
                for sql, params in driver.statements(driver.rows(items, reject=pytest.fail)):
                    conn.exec_driver_sql(sql, params)
            else:
                conn.execute(
                    insert_ignoring_duplicates(engine, predictions_table), [r for i in items for r in i.rows()]
                )
        with engine.connect() as conn:
            stored.append(conn.exec_driver_sql("SELECT * FROM predictions ORDER BY request_id").fetchall())
        engine.dispose()
    assert stored[0] == stored[1]
    assert len(stored[1]) == 71


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    engine = log_schema.make_engine(database_url)
    drop_our_tables(engine)
    yield engine  # type: ignore[misc]
    engine.dispose()


def test_a_log_at_0003_upgrades_and_records_entity_rows(engine: sa.Engine) -> None:
    with locked(engine) as conn:  # the database as revision 0003 made it, with a row in it
        command.upgrade(alembic_config(conn), "0003")
        conn.execute(
            sa.text(
                "INSERT INTO predictions (request_id, ts, model_name, model_version, features, prediction, status) "
                "VALUES ('old-1', '2026-01-01 11:00:00', 'iris', '1', '{\"a\": 5.0}', 'setosa', 'ok')"
            )
        )
    with engine.connect() as conn:
        assert "entity_id" not in {c["name"] for c in sa.inspect(conn).get_columns("predictions")}
    log = PredictionLog(engine.url.render_as_string(hide_password=False), batch_size=8, max_delay=0.05).start()
    try:
        assert log.record(entity_rows("new", 2))
        assert log.flush()
    finally:
        log.close()
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0004"
        p = predictions_table.c
        rows = conn.execute(sa.select(p.request_id, p.entity_id, p.features_at).order_by(p.request_id)).all()
    assert [(r.request_id, r.entity_id) for r in rows] == [("new:0", "sp-0"), ("new:1", "sp-1"), ("old-1", None)]
    stamps = [r.features_at.replace(tzinfo=r.features_at.tzinfo or UTC) for r in rows[:2]]
    assert stamps == [T0 - timedelta(microseconds=7), T0 - timedelta(hours=1, microseconds=7)]
    assert rows[2].features_at is None


def test_the_migration_goes_back_down_cleanly(engine: sa.Engine) -> None:
    with locked(engine) as conn:
        command.upgrade(alembic_config(conn), "0004")
        command.downgrade(alembic_config(conn), "0003")
    with engine.connect() as conn:
        names = {c["name"] for c in sa.inspect(conn).get_columns("predictions")}
    assert "sensitive_group" in names
    assert not names & {"entity_id", "features_at"}
