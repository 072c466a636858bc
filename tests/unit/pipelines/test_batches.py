"""The batch generator: deterministic, faithful to the contract when clean, and each kind does what it says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.params import DatasetConfig, FeatureSpec, Params
from pipelines.batches import CORRUPT_KINDS, BatchKind, generate_batch, write_batch
from pipelines.data import read_csv


def _features(frame: pd.DataFrame, params: Params) -> pd.DataFrame:
    return frame[params.dataset.feature_names]


def test_batch_kinds_are_the_documented_values():
    assert [k.value for k in BatchKind] == [
        "clean",
        "covariate-shift",
        "prior-shift",
        "concept-shift",
        "nulls",
        "wrong-types",
        "out-of-range",
        "unknown-class",
        "missing-column",
        "extra-column",
        "duplicates",
        "empty",
    ]


@pytest.mark.parametrize("kind", list(BatchKind))
def test_same_seed_same_batch_other_seed_other_batch(kind, params, iris_frame):
    first = generate_batch(kind, iris_frame, params, rows=60, seed=11)
    pd.testing.assert_frame_equal(first, generate_batch(kind.value, iris_frame, params, rows=60, seed=11))
    if kind is not BatchKind.EMPTY:
        assert not first.equals(generate_batch(kind, iris_frame, params, rows=60, seed=12))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_batch_honours_the_contract(seed, params, iris_frame):
    cfg = params.dataset
    batch = generate_batch("clean", iris_frame, params, seed=seed)
    assert list(batch.columns) == cfg.required_columns
    assert len(batch) == params.batches.rows
    assert not batch.duplicated().any()
    assert set(batch[cfg.target]) == set(cfg.classes)
    for name, spec in cfg.features.items():
        col = batch[name]
        assert col.dtype == "float64"
        assert col.between(spec.min, spec.max).all(), name
        assert np.allclose(col, col.round(cfg.decimals)), f"{name} not rounded to {cfg.decimals} decimals"
    # class shares follow the reference priors (iris: a third each)
    assert batch[cfg.target].value_counts(normalize=True).max() < 0.34


def test_clean_batch_resembles_the_reference(params, iris_frame):
    batch = generate_batch("clean", iris_frame, params, rows=600, seed=3)
    ref = _features(iris_frame, params)
    gap = (_features(batch, params).mean() - ref.mean()).abs() / ref.std()
    assert (gap < 0.2).all(), gap


def test_covariate_shift_moves_the_chosen_features_by_at_least_one_std(params, iris_frame):
    moved = params.batches.covariate_shift.features
    assert moved, "params.yaml names the shifted features"
    ref = _features(iris_frame, params)
    clean = generate_batch("clean", iris_frame, params, seed=4)
    shifted = generate_batch("covariate-shift", iris_frame, params, seed=4)
    gap = (_features(shifted, params).mean() - _features(clean, params).mean()) / ref.std()
    for name in params.dataset.feature_names:
        if name in moved:
            assert gap[name] >= 1.0, (name, gap[name])
        else:
            assert abs(gap[name]) < 0.3, (name, gap[name])
    target = params.dataset.target
    assert shifted[target].value_counts().to_dict() == clean[target].value_counts().to_dict()


def test_prior_shift_class_shares_follow_the_weights(params, iris_frame):
    weights = params.batches.prior_shift.weights
    batch = generate_batch("prior-shift", iris_frame, params, seed=5)
    shares = batch[params.dataset.target].value_counts(normalize=True)
    for cls, weight in zip(params.dataset.classes, weights, strict=True):
        assert shares.get(cls, 0.0) == pytest.approx(weight / sum(weights), abs=0.01)


def test_prior_shift_default_makes_the_first_class_dominant(params, iris_frame):
    batches = params.batches.model_copy(
        update={"prior_shift": params.batches.prior_shift.model_copy(update={"weights": None})}
    )
    batch = generate_batch("prior-shift", iris_frame, params.model_copy(update={"batches": batches}), seed=5)
    assert batch[params.dataset.target].value_counts().idxmax() == params.dataset.classes[0]


def test_concept_shift_keeps_the_inputs_and_swaps_two_labels(params, iris_frame):
    a, b = params.batches.concept_shift.swap
    target = params.dataset.target
    clean = generate_batch("clean", iris_frame, params, seed=6)
    shifted = generate_batch("concept-shift", iris_frame, params, seed=6)
    pd.testing.assert_frame_equal(_features(shifted, params), _features(clean, params))
    expected = clean[target].map({a: b, b: a}).fillna(clean[target])
    assert (shifted[target] == expected).all()
    assert (shifted[target] != clean[target]).sum() == clean[target].isin([a, b]).sum() > 0


@pytest.mark.parametrize("kind", sorted(CORRUPT_KINDS - {BatchKind.EMPTY}, key=lambda k: k.value))
def test_corruptions_start_from_the_clean_batch_of_the_same_seed(kind, params, iris_frame):
    clean = generate_batch("clean", iris_frame, params, rows=80, seed=8)
    bad = generate_batch(kind, iris_frame, params, rows=80, seed=8)
    shared = [c for c in clean.columns if c in bad.columns]
    differs = (bad[shared].astype(str) != clean[shared].astype(str)).any(axis=1)
    if kind in {BatchKind.MISSING_COLUMN, BatchKind.EXTRA_COLUMN}:
        assert not differs.any()
        assert len(bad) == len(clean)
    else:
        assert 0 < differs.mean() <= 0.35


def test_each_corruption_injects_its_defect(params, iris_frame, tmp_path):
    cfg, n = params.dataset, 200

    def make(kind: str) -> pd.DataFrame:
        return generate_batch(kind, iris_frame, params, rows=n, seed=9)

    assert make("nulls")[cfg.feature_names].isna().sum().max() == pytest.approx(0.1 * n, abs=1)
    path = write_batch(make("wrong-types"), tmp_path / "types.csv", "wrong-types", cfg.decimals)
    reread = read_csv(path)
    assert any(reread[f].dtype == object and reread[f].str.contains(",").any() for f in cfg.feature_names)
    oor = make("out-of-range")
    assert any((oor[f] > s.max).any() for f, s in cfg.features.items())
    assert (~make("unknown-class")[cfg.target].isin(cfg.classes)).sum() == pytest.approx(0.1 * n, abs=1)
    assert len(set(cfg.required_columns) - set(make("missing-column").columns)) == 1
    assert len(set(make("extra-column").columns) - set(cfg.required_columns)) == 1
    assert make("duplicates").duplicated().mean() >= 0.15
    empty = make("empty")
    assert len(empty) == 0
    assert list(empty.columns) == cfg.required_columns


def test_empty_batch_is_written_as_a_zero_byte_file(params, iris_frame, tmp_path):
    path = write_batch(generate_batch("empty", iris_frame, params), tmp_path / "e.csv", BatchKind.EMPTY)
    assert path.stat().st_size == 0
    assert read_csv(path).empty


def test_with_source_adds_the_group_column_and_keeps_the_rest(params, iris_frame):
    plain = generate_batch("clean", iris_frame, params, seed=2)
    with_sites = generate_batch("clean", iris_frame, params, seed=2, with_source=True)
    group = params.dataset.group_column
    assert list(with_sites.columns) == [*plain.columns, group]
    assert 2 <= with_sites[group].nunique() <= 5
    pd.testing.assert_frame_equal(with_sites.drop(columns=group), plain)
    dataset = params.dataset.model_copy(update={"group_column": None})
    with pytest.raises(ValueError, match="group_column"):
        generate_batch("clean", iris_frame, params.model_copy(update={"dataset": dataset}), with_source=True)


def test_unknown_kind_lists_the_valid_kinds(params, iris_frame):
    with pytest.raises(ValueError, match="covariate-shift"):
        generate_batch("bogus", iris_frame, params)


def test_generator_works_for_a_non_iris_contract():
    cfg = DatasetConfig(
        name="sensors",
        path="data/sensors.csv",
        target="status",
        classes=["ok", "warn", "fault"],
        features={"temp": FeatureSpec(min=-40, max=120), "rpm": FeatureSpec(min=0, max=9000)},
        decimals=0,
    )
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "temp": np.r_[rng.normal(20, 5, 50), rng.normal(60, 8, 50), rng.normal(95, 6, 50)],
            "rpm": np.r_[rng.normal(1500, 200, 50), rng.normal(3000, 300, 50), rng.normal(6000, 500, 50)],
            "status": ["ok"] * 50 + ["warn"] * 50 + ["fault"] * 50,
        }
    )
    params = Params(dataset=cfg)
    batch = generate_batch("clean", reference, params, rows=90, seed=1)
    assert list(batch.columns) == ["temp", "rpm", "status"]
    assert batch["temp"].between(-40, 120).all()
    assert batch["rpm"].between(0, 9000).all()
    assert not batch.duplicated().any()
    assert (batch[["temp", "rpm"]] == batch[["temp", "rpm"]].round(0)).all().all()
    concept = generate_batch("concept-shift", reference, params, rows=90, seed=1)  # default: last two classes
    assert (concept["status"] == "ok").sum() == (batch["status"] == "ok").sum()
    assert (concept.loc[batch["status"] == "warn", "status"] == "fault").all()
    oor = generate_batch("out-of-range", reference, params, rows=90, seed=1)
    assert ((oor["temp"] > 120) | (oor["rpm"] > 9000)).any()
