"""The leakage comparison's pure parts (pipelines/feature_leakage.py): the point-in-time join's rules on
hand-made rows, the shared split, the offline/online scoring and the study's counts. Feast's own join is
compared with this one in tests/integration/pipelines/test_feature_leakage.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core.params import Params
from pipelines.feature_history import CREATED_TIME, ENTITY_KEY, EVENT_TIME, generate_history
from pipelines.feature_leakage import (
    JoinScores,
    LeakageResult,
    StudySummary,
    compare_joins,
    point_in_time_join,
    split_specimens,
    training_sets,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _measurements(params: Params, rows: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    """(specimen, event hours after T0, created hours after T0, value of every feature) rows."""
    names = params.dataset.feature_names
    return pd.DataFrame(
        [
            {ENTITY_KEY: sid, EVENT_TIME: T0 + timedelta(hours=ev), CREATED_TIME: T0 + timedelta(hours=cr)}
            | dict.fromkeys(names, value)
            for sid, ev, cr, value in rows
        ]
    )


def _labels(params: Params, rows: list[tuple[str, float]]) -> pd.DataFrame:
    target = params.dataset.target
    return pd.DataFrame([{ENTITY_KEY: sid, EVENT_TIME: T0 + timedelta(hours=h), target: "setosa"} for sid, h in rows])


def test_the_join_takes_the_latest_value_at_or_before_each_rows_time_and_keeps_row_order(params: Params) -> None:
    measurements = _measurements(
        params,
        [
            ("a", 0, 0, 1.0),
            ("a", 5, 5, 2.0),
            ("a", 9, 9, 3.0),  # after a's time: never seen by a's row
            ("b", 1, 1, 4.0),
            ("b", 3, 3, 5.0),  # exactly at b's time: seen
        ],
    )
    joined = point_in_time_join(measurements, _labels(params, [("b", 3), ("a", 6)]), params.dataset)
    first = params.dataset.feature_names[0]
    assert joined[ENTITY_KEY].tolist() == ["b", "a"]
    assert joined[first].tolist() == [5.0, 2.0]


def test_a_later_created_timestamp_wins_a_tie_and_a_value_older_than_the_ttl_is_missing(params: Params) -> None:
    measurements = _measurements(params, [("a", 2, 3, 1.0), ("a", 2, 8, 7.0), ("old", 0, 0, 9.0)])
    labels = _labels(params, [("a", 4), ("old", 50)])
    joined = point_in_time_join(measurements, labels, params.dataset, ttl=timedelta(hours=24))
    first = params.dataset.feature_names[0]
    assert joined.loc[0, first] == 7.0  # the correction written later replaces the first write
    assert np.isnan(joined.loc[1, first])  # 50 hours old with a 24-hour time-to-live


def test_the_split_is_seeded_stratified_and_disjoint(params: Params, iris_frame: pd.DataFrame) -> None:
    history = generate_history(iris_frame, params.dataset, specimens=120, open_share=0.0, seed=3, end=T0)
    train, test = split_specimens(history.labels, params.dataset, 0.3, seed=5)
    assert (train, test) == split_specimens(history.labels, params.dataset, 0.3, seed=5)
    assert (train, test) != split_specimens(history.labels, params.dataset, 0.3, seed=6)
    assert set(train).isdisjoint(test)
    assert len(train) + len(test) == 120
    by_id = history.labels.set_index(ENTITY_KEY)[params.dataset.target]
    shares = by_id.loc[test].value_counts(normalize=True) - by_id.value_counts(normalize=True)
    assert shares.abs().max() < 0.05


def test_identical_joins_score_identically_and_leak_nothing(params: Params, iris_frame: pd.DataFrame) -> None:
    history = generate_history(iris_frame, params.dataset, specimens=150, open_share=0.0, seed=1, end=T0)
    pit, _ = training_sets(history, params.dataset)
    result = compare_joins(pit, pit.sample(frac=1.0, random_state=0), params, seed=2)  # row order must not matter
    assert result.point_in_time == result.naive
    assert result.point_in_time.gap == 0.0  # the point-in-time model's offline rows *are* its online rows
    assert result.leaked_test_rows == 0
    assert result.train_specimens + result.test_specimens == 150


def test_the_naive_join_trains_on_the_lab_record_and_scores_worse_online(
    params: Params, iris_frame: pd.DataFrame
) -> None:
    history = generate_history(iris_frame, params.dataset, specimens=300, open_share=0.0, seed=0, end=T0)
    pit, naive = training_sets(history, params.dataset)
    result = compare_joins(pit, naive, params, seed=0)
    assert result.leaked_test_rows == result.test_specimens  # every labelled specimen has a later lab record
    # Seeds fix the history and the split: this gives 13.3 points (12 of 90 rows); the margin leaves room for a
    # solver change moving a few rows (1.1 points each), and 5 points is still over the study's smallest gap.
    assert result.naive.gap > 0.05
    assert result.point_in_time.online > result.naive.online


def test_joins_with_different_labels_are_refused(params: Params, iris_frame: pd.DataFrame) -> None:
    history = generate_history(iris_frame, params.dataset, specimens=60, open_share=0.0, seed=1, end=T0)
    pit, naive = training_sets(history, params.dataset)
    naive.loc[0, params.dataset.target] = "virginica" if pit.loc[0, params.dataset.target] != "virginica" else "setosa"
    with pytest.raises(ValueError, match="different labels"):
        compare_joins(pit, naive, params, seed=0)


def test_the_summary_counts_inflated_and_worse_serving_seeds() -> None:
    def result(seed: int, pit: tuple[float, float], naive: tuple[float, float]) -> LeakageResult:
        return LeakageResult(seed, JoinScores(*pit), JoinScores(*naive), 70, 30, 30)

    summary = StudySummary(
        [result(0, (0.9, 0.9), (1.0, 0.8)), result(1, (0.9, 0.9), (0.9, 0.95)), result(2, (0.8, 0.8), (0.9, 0.8))]
    )
    assert summary.seeds == 3
    assert summary.naive_inflated == 2  # seeds 0 and 2
    assert summary.naive_worse_online == 1  # seed 0 only: seed 2 ties
    spread = summary.spread("naive", "online")
    assert (spread.low, spread.high) == (0.8, 0.95)
    assert spread.mean == pytest.approx(0.85)
