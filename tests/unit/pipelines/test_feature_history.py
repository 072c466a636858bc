"""The feature store's event history: what a specimen's timeline holds, and where the leak is."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from core.params import Params
from pipelines.data import build_raw_frame
from pipelines.feature_history import ASKED_AT, ENTITY_KEY, EVENT_TIME, LABELLED_AT, generate_history
from pipelines.feature_store import latest_join

END = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def history(params: Params):
    reference = build_raw_frame(params.dataset, params.ingest)
    return generate_history(reference, params.dataset, specimens=120, seed=3, end=END)


def test_the_same_seed_gives_the_same_history_and_another_seed_another(params: Params, history) -> None:
    reference = build_raw_frame(params.dataset, params.ingest)
    again = generate_history(reference, params.dataset, specimens=120, seed=3, end=END)
    other = generate_history(reference, params.dataset, specimens=120, seed=4, end=END)
    pd.testing.assert_frame_equal(history.measurements, again.measurements)
    pd.testing.assert_frame_equal(history.labels, again.labels)
    names = params.dataset.feature_names
    assert not history.measurements[names].equals(other.measurements[names])


def test_every_value_is_valid_data_on_the_measurement_grid(params: Params, history) -> None:
    cfg = params.dataset
    for name, spec in cfg.features.items():
        column = history.measurements[name]
        assert column.between(spec.min, spec.max).all(), name
        scaled = column * 10**cfg.decimals
        assert np.allclose(scaled, scaled.round(), atol=1e-6), name
    assert (history.measurements[EVENT_TIME] < END).all()


def test_open_specimens_are_measured_but_not_labelled(history) -> None:
    assert len(history.open_ids) == 12  # 10 % of 120
    labelled = set(history.labels[ENTITY_KEY])
    assert not labelled & set(history.open_ids)
    assert set(history.open_ids) <= set(history.measurements[ENTITY_KEY])
    assert len(labelled) + len(history.open_ids) == history.measurements[ENTITY_KEY].nunique() == 120


def test_the_lab_record_is_written_after_the_question_and_nothing_else_is(history) -> None:
    """Young measurements precede asked_at; exactly one record per labelled specimen follows it, at labelled_at."""
    m = history.measurements.merge(history.labels, on=ENTITY_KEY, suffixes=("", "_label"))
    after = m[m[EVENT_TIME] > m[f"{ASKED_AT}_label"]]
    assert len(after) == len(history.labels)
    assert (after[EVENT_TIME] == after[LABELLED_AT]).all()
    assert (history.labels[LABELLED_AT] > history.labels[ASKED_AT]).all()


def test_the_naive_join_takes_the_lab_record_for_every_labelled_specimen(params: Params, history) -> None:
    cfg = params.dataset
    naive = latest_join(history.measurements, history.labels, cfg).set_index(ENTITY_KEY)
    lab_records = history.measurements.merge(history.labels[[ENTITY_KEY, LABELLED_AT]], on=ENTITY_KEY)
    lab_records = lab_records[lab_records[EVENT_TIME] == lab_records[LABELLED_AT]].set_index(ENTITY_KEY)
    pd.testing.assert_frame_equal(
        naive.loc[lab_records.index, cfg.feature_names], lab_records[cfg.feature_names], check_names=False
    )


def test_young_measurements_are_smaller_than_the_adult_record(params: Params, history) -> None:
    """The growth the history models: each young petal length is below its specimen's adult one (noise aside)."""
    m = history.measurements.merge(history.labels[[ENTITY_KEY, LABELLED_AT]], on=ENTITY_KEY)
    adult = m[m[EVENT_TIME] == m[LABELLED_AT]].set_index(ENTITY_KEY)["petal_length"]
    young = m[m[EVENT_TIME] < m[LABELLED_AT]].groupby(ENTITY_KEY)["petal_length"].mean()
    assert (young < adult.loc[young.index] + 0.2).mean() > 0.95
    assert young.mean() < 0.9 * adult.mean()


def test_bad_arguments_are_refused(params: Params) -> None:
    reference = build_raw_frame(params.dataset, params.ingest)
    with pytest.raises(ValueError, match="specimens"):
        generate_history(reference, params.dataset, specimens=1)
    with pytest.raises(ValueError, match="open_share"):
        generate_history(reference, params.dataset, open_share=1.0)
