"""Label leakage through a naive feature join, measured: offline accuracy that serving never sees.

Concept: point-in-time joins (C62). A training row must hold the feature values *as they were when the
prediction was asked for*, because that is all the online store could serve at that moment. The event
history of `pipelines.feature_history` has a trap: when the lab labels a specimen it also records the
adult's measurements, after the prediction moment. A naive join (each specimen's latest values) trains on
that record; a point-in-time join (Feast's ``get_historical_features``, or `point_in_time_join` here) does not.

This module trains the project's own model Pipeline (`pipelines.features.build_pipeline`, params.yaml's
estimator and derived features) on each join, on the same train/test split of specimens, and scores it twice:

- **offline**: on the test rows of the same join, the figure a training run would report;
- **online**: on the test rows as they were at the asked-at time (the point-in-time rows), the features
  the online store would have served when the prediction was asked for.

For the point-in-time model the two coincide; for the naive one the offline figure is inflated and the
online figure is what production sees. `leakage_study` repeats this over seeds (docs/feature-leakage-study.md).

Pure: frames in, scores out. The point-in-time join here is pandas' ``merge_asof`` with Feast's rules
(latest value at or before the row's time, within the feature view's time-to-live), fast enough for a
many-seed study; tests/integration/pipelines/test_feature_leakage.py checks it equals Feast's own join.
pandas and scikit-learn are imported inside the functions, Feast never.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pipelines.feature_history import CREATED_TIME, ENTITY_KEY, EVENT_TIME

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

    from core.params import DatasetConfig, Params
    from pipelines.feature_history import History

STUDY_END = datetime(2025, 1, 1, tzinfo=UTC)  # histories in the study end here: same seed, same rows


@dataclass(frozen=True)
class JoinScores:
    """One join's model: accuracy on its own test rows and on the same specimens as serving saw them."""

    offline: float
    online: float

    @property
    def gap(self) -> float:
        """How much the offline figure overstates production (positive = inflated)."""
        return self.offline - self.online


@dataclass(frozen=True)
class LeakageResult:
    """Both joins trained and scored on one split of one history."""

    seed: int
    point_in_time: JoinScores
    naive: JoinScores
    train_specimens: int
    test_specimens: int
    leaked_test_rows: int  # test rows whose naive values differ from the point-in-time ones


@dataclass(frozen=True)
class Spread:
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class StudySummary:
    """`leakage_study` over many seeds: the four accuracies and how often the leak misleads."""

    results: list[LeakageResult]

    @property
    def seeds(self) -> int:
        return len(self.results)

    def spread(self, join: str, where: str) -> Spread:
        """Mean and range of ``join`` ("point_in_time" or "naive") scored ``where`` ("offline" or "online")."""
        values = [getattr(getattr(r, join), where) for r in self.results]
        return Spread(sum(values) / len(values), min(values), max(values))

    @property
    def naive_inflated(self) -> int:
        """Seeds where the naive model's offline accuracy exceeds its online accuracy."""
        return sum(r.naive.offline > r.naive.online for r in self.results)

    @property
    def naive_worse_online(self) -> int:
        """Seeds where the naive model serves worse than the point-in-time model."""
        return sum(r.naive.online < r.point_in_time.online for r in self.results)


def point_in_time_join(
    measurements: pd.DataFrame, labels: pd.DataFrame, cfg: DatasetConfig, ttl: timedelta | None = None
) -> pd.DataFrame:
    """Each label row with the values as they were at its ``event_timestamp`` (what Feast's join returns).

    The latest measurement at or before the row's time wins (a later ``created_timestamp`` breaks a tie);
    one older than ``ttl`` (default: the feature view's) counts as missing. Row order of ``labels`` is kept.
    """
    import pandas as pd

    from pipelines.feature_store import TTL  # constants only: feature_store imports Feast inside its functions

    rows = labels.reset_index(drop=True).assign(_row=lambda f: range(len(f)))
    values = measurements.sort_values([EVENT_TIME, CREATED_TIME])[[ENTITY_KEY, EVENT_TIME, *cfg.feature_names]]
    joined = pd.merge_asof(
        rows.sort_values(EVENT_TIME),
        values,
        on=EVENT_TIME,
        by=ENTITY_KEY,
        direction="backward",
        allow_exact_matches=True,
        tolerance=ttl or TTL,
    )
    return joined.sort_values("_row").drop(columns="_row").reset_index(drop=True)


def split_specimens(
    labels: pd.DataFrame, cfg: DatasetConfig, test_size: float, seed: int
) -> tuple[list[str], list[str]]:
    """Train and test specimen ids: stratified by label, seeded, the same for both joins."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        labels[ENTITY_KEY].tolist(), test_size=test_size, stratify=labels[cfg.target], random_state=seed
    )
    return sorted(train), sorted(test)


def compare_joins(point_in_time: pd.DataFrame, naive: pd.DataFrame, params: Params, seed: int) -> LeakageResult:
    """Train the project's Pipeline on each join (one split of specimens) and score it offline and online.

    Both frames hold one row per labelled specimen: ``specimen_id``, the target and the features.
    """
    from pipelines.features import build_pipeline

    cfg, names = params.dataset, params.dataset.feature_names
    pit = point_in_time.set_index(ENTITY_KEY)
    leaky = naive.set_index(ENTITY_KEY).loc[pit.index]
    if not pit[cfg.target].equals(leaky[cfg.target]):
        raise ValueError("the two joins hold different labels; build both from the same label table")
    train, test = split_specimens(point_in_time, cfg, params.train.test_size, seed)

    def scores(frame: pd.DataFrame) -> JoinScores:
        model = build_pipeline(params.features, params.train).fit(frame.loc[train, names], frame.loc[train, cfg.target])
        offline = model.score(frame.loc[test, names], frame.loc[test, cfg.target])
        online = model.score(pit.loc[test, names], pit.loc[test, cfg.target])
        return JoinScores(offline=float(offline), online=float(online))

    leaked = int((leaky.loc[test, names] != pit.loc[test, names]).any(axis=1).sum())
    return LeakageResult(seed, scores(pit), scores(leaky), len(train), len(test), leaked)


def training_sets(history: History, cfg: DatasetConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The point-in-time and the naive training sets of a history (one row per labelled specimen)."""
    from pipelines.feature_store import latest_join

    pit = point_in_time_join(history.measurements, history.labels, cfg)
    return pit, latest_join(history.measurements, history.labels, cfg)


def feast_training_sets(store: FeatureStore, history: History, cfg: DatasetConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`training_sets` with the point-in-time rows from Feast (``store`` applied on the history's measurements)."""
    from pipelines.feature_store import historical, latest_join

    return historical(store, history.labels, cfg), latest_join(history.measurements, history.labels, cfg)


def compare_on_history(history: History, params: Params, seed: int, store: FeatureStore | None = None) -> LeakageResult:
    """Both training sets of a history, trained and scored on one seeded split (`compare_joins`).

    With ``store`` (a Feast store applied on this history) the point-in-time rows come from Feast, otherwise
    from `point_in_time_join`; the two are equal (tests/integration/pipelines/test_feature_leakage.py).
    """
    if store is None:
        return compare_joins(*training_sets(history, params.dataset), params, seed)
    return compare_joins(*feast_training_sets(store, history, params.dataset), params, seed)


def leakage_study(
    reference: pd.DataFrame, params: Params, seeds: int = 20, specimens: int = 400, first_seed: int = 0
) -> StudySummary:
    """`compare_joins` on ``seeds`` histories, each seed drawing its own history and its own split."""
    from pipelines.feature_history import generate_history

    results = []
    for seed in range(first_seed, first_seed + seeds):
        history = generate_history(reference, params.dataset, specimens=specimens, seed=seed, end=STUDY_END)
        results.append(compare_on_history(history, params, seed))
    return StudySummary(results)
