"""Behavioural checks: a sound model passes all of them, and each broken model fails the one it should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from core.params import DirectionalSpec, InvarianceParams, Params
from pipelines.behavioural import (
    class_prototypes,
    directional,
    invariance,
    minimum_functionality,
    run_behavioural_checks,
)
from pipelines.data import split_features_target

Split = tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]


def _logreg() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


@pytest.fixture(scope="module")
def split(iris_frame: pd.DataFrame, params: Params) -> Split:
    X, y = split_features_target(iris_frame, params.dataset)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)
    return X_train, X_test, y_train, y_test


@pytest.fixture(scope="module")
def good_model(split: Split) -> Pipeline:
    X_train, _, y_train, _ = split
    return _logreg().fit(X_train, y_train)


@pytest.fixture(scope="module")
def prototypes(split: Split) -> pd.DataFrame:
    X_train, _, y_train, _ = split
    return class_prototypes(X_train, y_train)


class Memoriser:
    """An overfitted lookup table: exact training rows get their label, anything else the first class."""

    def __init__(self, X: pd.DataFrame, y: pd.Series, confidence: float = 1.0) -> None:
        self.classes_ = np.array(sorted(set(y)))
        self._table = {tuple(row): label for row, label in zip(X.itertuples(index=False), y, strict=True)}
        self._confidence = confidence

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        out = np.full((len(X), len(self.classes_)), (1 - self._confidence) / (len(self.classes_) - 1))
        for i, row in enumerate(X.itertuples(index=False)):
            label = self._table.get(tuple(row), self.classes_[0])
            out[i, list(self.classes_).index(label)] = self._confidence
        return out


class MirroredAlong:
    """Wraps a sound model but reflects one feature around an anchor: its response along it is inverted."""

    def __init__(self, model: Pipeline, feature: str, anchor: float) -> None:
        self.model, self.feature, self.anchor = model, feature, anchor
        self.classes_ = model.classes_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        reflected = X.copy()
        reflected[self.feature] = 2 * self.anchor - X[self.feature]
        return self.model.predict_proba(reflected)


def test_prototypes_are_per_class_medians(split: Split, prototypes: pd.DataFrame) -> None:
    X_train, _, y_train, _ = split
    assert list(prototypes.index) == ["setosa", "versicolor", "virginica"]
    assert list(prototypes.columns) == list(X_train.columns)
    assert prototypes.loc["setosa", "petal_length"] == X_train.loc[y_train == "setosa", "petal_length"].median()


def test_sound_model_passes_every_behavioural_check(split: Split, good_model: Pipeline, params: Params) -> None:
    X_train, X_test, y_train, _ = split
    results = run_behavioural_checks(good_model, X_train, y_train, X_test, params.gate)
    assert [r.name for r in results] == ["minimum_functionality", "invariance", "directional"]
    assert all(r.passed for r in results), [r.detail for r in results]
    assert results[0].detail == "3/3 class prototypes predicted as their own class"
    assert results[2].detail == "2/2 directional expectations held"


def test_majority_class_dummy_fails_minimum_functionality(split: Split, prototypes: pd.DataFrame) -> None:
    X_train, _, y_train, _ = split
    result = minimum_functionality(DummyClassifier(strategy="most_frequent").fit(X_train, y_train), prototypes)
    assert not result.passed
    assert result.detail.startswith("1/3 class prototypes")
    assert sum(not c["passed"] for c in result.cases) == 2


def test_model_trained_on_shuffled_labels_fails_minimum_functionality(split: Split, prototypes: pd.DataFrame) -> None:
    X_train, _, y_train, _ = split
    shuffled = np.random.default_rng(0).permutation(y_train.to_numpy())
    result = minimum_functionality(_logreg().fit(X_train, shuffled), prototypes)
    assert not result.passed
    assert "wrong:" in result.detail


def test_memorising_model_fails_invariance(split: Split) -> None:
    _, X_test, _, y_test = split
    result = invariance(Memoriser(X_test, y_test), X_test, InvarianceParams(noise=0.02, seed=7))
    assert not result.passed
    assert result.cases, "flipped rows are reported"
    assert all(c["before"] != c["after"] for c in result.cases)
    assert "flip rate" in result.detail


def test_invariance_without_noise_finds_no_flips(split: Split) -> None:
    _, X_test, _, y_test = split
    assert invariance(Memoriser(X_test, y_test), X_test, InvarianceParams(noise=0.0)).passed


def test_invariance_ignores_unconfident_predictions(split: Split) -> None:
    _, X_test, _, y_test = split
    result = invariance(Memoriser(X_test, y_test, confidence=0.6), X_test, InvarianceParams(min_confidence=0.9))
    assert result.passed
    assert "no prediction was confident enough" in result.detail


def test_invariance_is_reproducible_for_a_seed(split: Split) -> None:
    _, X_test, _, y_test = split
    model, knobs = Memoriser(X_test, y_test), InvarianceParams(noise=0.02, seed=3)
    assert invariance(model, X_test, knobs) == invariance(model, X_test, knobs)


def test_flip_rate_within_allowance_passes(split: Split) -> None:
    _, X_test, _, y_test = split
    # The memoriser falls back to the first class, so exactly the rows of the other classes flip.
    share = float((y_test != sorted(set(y_test))[0]).mean())
    model = Memoriser(X_test, y_test)
    assert invariance(model, X_test, InvarianceParams(max_flip_rate=share)).passed
    assert not invariance(model, X_test, InvarianceParams(max_flip_rate=share - 0.01)).passed


def test_model_inverted_along_a_feature_fails_directional(good_model: Pipeline, prototypes: pd.DataFrame) -> None:
    spec = DirectionalSpec(feature="petal_length", from_class="versicolor", towards_class="virginica", delta=1.0)
    mirrored = MirroredAlong(good_model, "petal_length", float(prototypes.loc["versicolor", "petal_length"]))
    # At the versicolor prototype the mirrored model agrees with the sound one; only moving along the feature shows it.
    at_prototype = prototypes.loc[["versicolor"]]
    np.testing.assert_allclose(mirrored.predict_proba(at_prototype), good_model.predict_proba(at_prototype))
    result = directional(mirrored, prototypes, [spec])
    assert not result.passed
    case = result.cases[0]
    assert case["p_after"] < case["p_before"]
    assert "P(virginica)" in result.detail
    assert "should rise" in result.detail


def test_sign_bug_in_training_features_fails_directional(
    split: Split, prototypes: pd.DataFrame, params: Params
) -> None:
    X_train, _, y_train, _ = split
    skewed = X_train.assign(petal_length=-X_train["petal_length"])  # training/serving skew: sign flipped
    result = directional(_logreg().fit(skewed, y_train), prototypes, params.gate.directional)
    assert not result.passed
    failed = [c for c in result.cases if not c["passed"]]
    assert [c["feature"] for c in failed] == ["petal_length"]


def test_directional_without_specs_passes_and_says_so(good_model: Pipeline, prototypes: pd.DataFrame) -> None:
    result = directional(good_model, prototypes, [])
    assert result.passed
    assert "not configured" in result.detail


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (DirectionalSpec(feature="colour", from_class="setosa", towards_class="virginica", delta=1), "colour"),
        (DirectionalSpec(feature="petal_width", from_class="rosa", towards_class="virginica", delta=1), "rosa"),
        (DirectionalSpec(feature="petal_width", from_class="setosa", towards_class="lily", delta=1), "lily"),
    ],
)
def test_directional_rejects_unknown_names(
    good_model: Pipeline, prototypes: pd.DataFrame, spec: DirectionalSpec, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        directional(good_model, prototypes, [spec])


def test_prototypes_need_aligned_labels(split: Split) -> None:
    X_train, _, y_train, _ = split
    with pytest.raises(ValueError, match="same split"):
        class_prototypes(X_train, y_train.iloc[:-1])
