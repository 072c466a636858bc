"""The rolling window: the latest WINDOW distinct events by time; batch and stream agree by construction."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from pipelines.rolling_features import (
    COUNT,
    EVENT_MS,
    MESSAGE_ID,
    WINDOW,
    RollingEvent,
    aggregate,
    batch_rolling,
    feature_names,
    window_of,
)

FEATURES = ["petal_length", "petal_width"]


def event(i: int, ms: int | None = None) -> RollingEvent:
    return RollingEvent(f"{1000 + i}-0", 1000 * i if ms is None else ms, (1.0 + i, 0.1 * i))


def test_the_window_keeps_the_latest_events_by_time_whatever_order_they_came_in() -> None:
    events = [event(i) for i in range(8)]
    shuffled = random.Random(3).sample(events, len(events))
    assert window_of(shuffled) == events[-WINDOW:]
    assert aggregate(window_of(shuffled), FEATURES) == {
        COUNT: 5.0,
        "petal_length_mean": (4 + 5 + 6 + 7 + 8) / 5,
        "petal_length_last": 8.0,
        "petal_width_mean": pytest.approx((0.3 + 0.4 + 0.5 + 0.6 + 0.7) / 5),
        "petal_width_last": pytest.approx(0.7),
    }


def test_a_repeated_event_counts_once_even_after_it_left_the_window() -> None:
    events = [event(i) for i in range(8)]
    assert window_of([*events, events[6], events[0], events[0]]) == window_of(events)
    assert window_of([event(0), event(0)]) == [event(0)]


def test_ties_in_time_are_broken_by_the_member_bytes_as_a_redis_sorted_set_does() -> None:
    same_time = [event(i, ms=5) for i in range(3)]
    assert window_of(list(reversed(same_time))) == sorted(same_time, key=lambda e: e.member)


def test_a_member_round_trips_through_its_redis_form() -> None:
    e = event(3)
    assert RollingEvent.from_member(e.member, float(e.event_ms)) == e


def test_batch_recomputation_is_a_groupby_with_the_same_definition() -> None:
    rows = []
    for sid, n in (("sp-a", 7), ("sp-b", 2)):
        for i in range(n):
            e = event(i)
            rows.append({"specimen_id": sid, MESSAGE_ID: f"{sid}/{e.message_id}", EVENT_MS: e.event_ms,
                         **dict(zip(FEATURES, e.values, strict=True))})  # fmt: skip
    frame = pd.DataFrame(rows + rows[:3])  # a log written at least once holds duplicates
    out = batch_rolling(frame, "specimen_id", FEATURES).set_index("specimen_id")
    assert list(out.columns) == feature_names(FEATURES)
    assert out.loc["sp-a", COUNT] == WINDOW
    assert out.loc["sp-b", COUNT] == 2
    assert out.loc["sp-a", "petal_length_last"] == 7.0
    assert out.loc["sp-b", "petal_length_mean"] == 1.5


def test_an_empty_window_has_no_aggregates() -> None:
    with pytest.raises(ValueError, match="at least one event"):
        aggregate([], FEATURES)
