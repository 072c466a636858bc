"""The Feast store, for real (file offline store, SQLite online store in a temp folder).

Offline and online agree (no training/serving skew): after ``materialize`` up to a time T, the online store holds
for every specimen exactly what the point-in-time join gives at T. A training set exported from the store trains
through the ordinary path, and the registered version names the feature view and the data snapshot it came from.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from core.mlflow_config import mlflow_client
from core.params import Params
from pipelines.data import build_raw_frame, read_csv
from pipelines.feature_history import ENTITY_KEY, EVENT_TIME, generate_history
from pipelines.feature_store import (
    FEATURE_VIEW,
    FeatureRepo,
    apply,
    definition_digest,
    historical,
    materialize,
    online,
    open_store,
    write_history,
)
from pipelines.feature_training import export_training_set, feature_lineage_tags, file_sha256, lineage_path
from pipelines.training_steps import run_training
from pipelines.validation import validate_frame

pytestmark = [pytest.mark.integration, pytest.mark.slow]
END = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def store_and_history(tmp_path_factory: pytest.TempPathFactory, params: Params):
    reference = build_raw_frame(params.dataset, params.ingest)
    history = generate_history(reference, params.dataset, specimens=150, seed=5, end=END)
    repo = FeatureRepo(tmp_path_factory.mktemp("feature_repo"))
    write_history(repo, history)
    return repo, apply(repo, params.dataset), history


def test_the_registry_holds_the_view_as_defined_in_code(params: Params, store_and_history) -> None:
    repo, _, _ = store_and_history
    view = open_store(repo).get_feature_view(FEATURE_VIEW)  # a second client reads what apply wrote
    assert [f.name for f in view.features] == params.dataset.feature_names
    assert view.tags["definition_sha256"] == definition_digest(params.dataset)


def test_online_values_equal_the_point_in_time_join_at_the_materialized_time(params: Params, store_and_history) -> None:
    """The skew test: the same entities and time, read offline and online, give the same values."""
    _repo, store, history = store_and_history
    cfg = params.dataset
    # Halfway through the history: some specimens have young values only, some their lab record, some nothing yet.
    at = END - timedelta(days=12, minutes=7)
    materialize(store, end=at)
    ids = sorted(history.measurements[ENTITY_KEY].unique())
    offline = historical(store, pd.DataFrame({ENTITY_KEY: ids, EVENT_TIME: [at] * len(ids)}), cfg)
    online_rows = {row.entity_id: row for row in online(store, ids, cfg)}
    seen = 0
    for _, row in offline.iterrows():
        served = online_rows[row[ENTITY_KEY]]
        if row[cfg.feature_names].isna().any():
            assert served.values is None, row[ENTITY_KEY]
            continue
        seen += 1
        assert served.values == {name: pytest.approx(row[name], abs=1e-12) for name in cfg.feature_names}
        assert served.measured_at is not None
        assert served.measured_at <= at
    assert 20 < seen < len(ids)  # both kinds present, so the comparison could fail either way


def test_a_later_materialize_moves_the_online_store_forward(params: Params, store_and_history) -> None:
    _repo, store, history = store_and_history
    materialize(store, end=END)
    newest = history.measurements.sort_values(EVENT_TIME).groupby(ENTITY_KEY).last()
    rows = online(store, [*history.open_ids[:5], "sp-unknown"], params.dataset)
    for row in rows[:5]:
        assert row.values == {n: pytest.approx(newest.loc[row.entity_id, n]) for n in params.dataset.feature_names}
        assert row.measured_at == newest.loc[row.entity_id, EVENT_TIME].to_pydatetime().replace(microsecond=0)
    assert rows[5].values is None
    assert rows[5].measured_at is None


def test_a_training_set_exported_from_the_store_is_valid_point_in_time_data(
    tmp_path: Path, params: Params, store_and_history
) -> None:
    repo, _, history = store_and_history
    out = tmp_path / "features.csv"
    record = export_training_set(repo, params.dataset, out)
    frame = read_csv(out)
    assert list(frame.columns) == [*params.dataset.feature_names, params.dataset.target]
    assert record.rows == len(frame) == len(history.labels) - record.dropped_no_features - record.dropped_duplicates
    assert record.csv_sha256 == file_sha256(out)
    assert lineage_path(out).is_file()
    assert record.measurements_sha256 == file_sha256(repo.measurements)
    validate_frame(frame, params.dataset).raise_for_failures()  # the same expectation suite as any training file
    # No row holds a lab record (the adult values): every exported petal length is a young plant's.
    lab = history.measurements.merge(history.labels[[ENTITY_KEY, "labelled_at"]], on=ENTITY_KEY)
    lab_rows = lab[lab[EVENT_TIME] == lab["labelled_at"]][params.dataset.feature_names].round(1)
    leaked = frame.merge(lab_rows, on=params.dataset.feature_names, how="inner")
    assert len(leaked) <= 2  # a young row may coincide with some adult's on the 0.1 cm grid, not more


def test_a_model_trained_on_it_names_its_feature_view_and_snapshot(
    tmp_path: Path, params: Params, make_settings, store_and_history
) -> None:
    repo, _, _ = store_and_history
    out = tmp_path / "features.csv"
    export_training_set(repo, params.dataset, out)
    settings = make_settings(tmp_path / "state")
    outcome = run_training(settings, params, out)
    assert outcome.status == "registered", outcome.gate
    version = mlflow_client(settings).get_model_version(settings.model_name, outcome.version)
    expected = feature_lineage_tags(out)
    assert expected["feature_store.lineage"] == "exported"
    assert {k: v for k, v in version.tags.items() if k.startswith("feature_store.")} == expected
    run_tags = mlflow_client(settings).get_run(outcome.run_id).data.tags
    assert run_tags["feature_store.definition_sha256"] == definition_digest(params.dataset)
