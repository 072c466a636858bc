"""The leakage study measures what Feast does: on a real Feast store in a temporary folder, Feast's
point-in-time join equals the merge_asof join the many-seed study uses, the naive join picks up the lab's
record, and the model trained on it looks better offline than it serves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.params import Params
from pipelines.feature_history import CREATED_TIME, ENTITY_KEY, EVENT_TIME, LABELLED_AT, History, generate_history
from pipelines.feature_leakage import STUDY_END, compare_joins, point_in_time_join
from pipelines.feature_store import TTL, FeatureRepo, apply, historical, latest_join, write_history

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPECIMENS, SEED = 400, 0


@pytest.fixture(scope="module")
def history(params: Params, iris_frame: pd.DataFrame) -> History:
    return generate_history(iris_frame, params.dataset, specimens=SPECIMENS, seed=SEED, end=STUDY_END)


@pytest.fixture(scope="module")
def feast_join(tmp_path_factory: pytest.TempPathFactory, history: History, params: Params) -> pd.DataFrame:
    """Feast's point-in-time join of the history's labels, from a store applied in a temporary folder."""
    repo = FeatureRepo(tmp_path_factory.mktemp("feature-repo"))
    write_history(repo, history)
    return historical(apply(repo, params.dataset), history.labels, params.dataset)


def _same(feast: pd.DataFrame, ours: pd.DataFrame, params: Params) -> None:
    columns = [ENTITY_KEY, EVENT_TIME, params.dataset.target, *params.dataset.feature_names]
    pd.testing.assert_frame_equal(feast[columns], ours[columns], check_dtype=False)


def test_feasts_point_in_time_join_equals_the_studys_merge_asof(
    feast_join: pd.DataFrame, history: History, params: Params
) -> None:
    ours = point_in_time_join(history.measurements, history.labels, params.dataset)
    assert len(feast_join) == len(history.labels) > 0
    _same(feast_join, ours, params)


def test_they_agree_on_an_exact_time_and_a_tie_and_differ_only_on_a_specimen_with_nothing_in_the_window(
    tmp_path: Path, params: Params
) -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    names = params.dataset.feature_names

    def row(sid: str, event: timedelta, created: timedelta, value: float) -> dict[str, Any]:
        return {ENTITY_KEY: sid, EVENT_TIME: t0 + event, CREATED_TIME: t0 + created, **dict.fromkeys(names, value)}

    hour = timedelta(hours=1)
    measurements = pd.DataFrame(
        [
            row("exact", 0 * hour, 0 * hour, 1.0),
            row("exact", 5 * hour, 5 * hour, 2.0),  # at the label's time: taken
            row("exact", 6 * hour, 6 * hour, 3.0),  # after it: not taken
            row("tie", 2 * hour, 3 * hour, 4.0),
            row("tie", 2 * hour, 9 * hour, 5.0),  # same event time, created later: wins
            row("expired", 0 * hour, 0 * hour, 6.0),  # older than the time-to-live at the label's time
        ]
    )
    target = params.dataset.target
    labels = pd.DataFrame(
        [
            {ENTITY_KEY: "exact", EVENT_TIME: t0 + 5 * hour, LABELLED_AT: t0 + 50 * hour, target: "setosa"},
            {ENTITY_KEY: "tie", EVENT_TIME: t0 + 4 * hour, LABELLED_AT: t0 + 50 * hour, target: "setosa"},
            {ENTITY_KEY: "expired", EVENT_TIME: t0 + TTL + hour, LABELLED_AT: t0 + TTL + 2 * hour, target: "setosa"},
        ]
    )
    repo = FeatureRepo(tmp_path / "feature-repo")
    write_history(repo, History(measurements=measurements, labels=labels, open_ids=[]))
    feast = historical(apply(repo, params.dataset), labels, params.dataset)
    ours = point_in_time_join(measurements, labels, params.dataset)
    assert ours[names[0]].tolist()[:2] == [2.0, 5.0]
    assert ours[names[0]].isna().tolist() == [False, False, True]
    # Feast's file offline store (0.67) drops a row whose specimen has values, none of them in [time - ttl, time],
    # where ours keeps it with missing values (a specimen with no values at all keeps its row in both). Generated
    # histories never meet it: every labelled specimen was measured within hours before it was asked about.
    assert feast[ENTITY_KEY].tolist() == ["exact", "tie"]
    _same(feast, ours.iloc[:2], params)


def test_the_naive_join_holds_the_lab_record_the_point_in_time_join_the_last_young_measurement(
    feast_join: pd.DataFrame, history: History, params: Params
) -> None:
    names = params.dataset.feature_names
    naive = latest_join(history.measurements, history.labels, params.dataset).set_index(ENTITY_KEY)
    by_time = history.measurements.set_index([ENTITY_KEY, EVENT_TIME])[names]
    lab_records = by_time.loc[list(zip(history.labels[ENTITY_KEY], history.labels[LABELLED_AT], strict=True))]
    assert naive.loc[history.labels[ENTITY_KEY], names].to_numpy().tolist() == lab_records.to_numpy().tolist()
    young = history.measurements.merge(history.labels[[ENTITY_KEY, EVENT_TIME]].rename(columns={EVENT_TIME: "asked"}))
    last_young = young[young[EVENT_TIME] <= young["asked"]].sort_values(EVENT_TIME).groupby(ENTITY_KEY).last()
    pit = feast_join.set_index(ENTITY_KEY)
    assert pit.loc[last_young.index, names].equals(last_young[names])
    changed = (naive.loc[pit.index, names] != pit[names]).any(axis=1)
    assert changed.mean() > 0.99  # rounding to 0.1 cm could make a young record equal the adult's, in principle


def test_the_naive_model_looks_better_offline_than_it_serves_and_serves_worse_than_the_point_in_time_one(
    feast_join: pd.DataFrame, history: History, params: Params
) -> None:
    naive = latest_join(history.measurements, history.labels, params.dataset)
    result = compare_joins(feast_join, naive, params, seed=SEED)
    # This seed's history and split are fixed, so these are fixed figures: naive 0.991 offline, 0.880 online;
    # point in time 0.972 both (docs/feature-leakage-study.md, seed 0). The 5-point margins sit 6 and 4 points
    # (7 and 4 of 108 rows) under them, room for a library change moving a few predictions; over 20 seeds the
    # naive gap never fell below 3.7 points, so a margin is a claim about this seed, not about every seed.
    assert result.naive.offline - result.naive.online > 0.05
    assert result.point_in_time.online - result.naive.online > 0.05
    assert result.point_in_time.offline == result.point_in_time.online
