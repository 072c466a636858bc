"""Typed view of ``params.yaml``: the dataset contract and every training knob.

Concept: configuration as code (C07, C48). The dataset is *described*, not hard-coded: another
iris-style CSV (numeric features + a class label) works by editing this file alone. Pydantic turns
a typo in the file into an error that names the offending key, before any work starts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.params_check import ParamsError as ParamsError  # re-exported: callers catch it from here
from core.params_check import ParamsFileNotFound as ParamsFileNotFound
from core.params_check import cross_reference_problems, schema_problems

CROSS_REFERENCES = "cross-references: "
RETIRED_SWEEP = "train.sweep: Extra inputs are not permitted"  # pydantic's line; REPLACED_SWEEP says it better


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Strict):
    min: float
    max: float
    mean: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> FeatureSpec:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


class RowCount(_Strict):
    min: int = 1
    max: int = 10_000_000


class DatasetConfig(_Strict):
    """The data contract: columns, types, ranges and classes of one iris-style dataset."""

    name: str
    path: str
    target: str
    classes: list[str] = Field(min_length=2)
    features: dict[str, FeatureSpec] = Field(min_length=1)
    allow_missing: bool = False
    unique_rows: bool = True
    row_count: RowCount = RowCount()
    group_column: str | None = None
    decimals: int = 2

    @property
    def feature_names(self) -> list[str]:
        return list(self.features)

    @property
    def required_columns(self) -> list[str]:
        return [*self.features, self.target]


class IngestParams(_Strict):
    source: Literal["sklearn-iris", "sklearn-wine"] = "sklearn-iris"


class FeatureParams(_Strict):
    products: list[tuple[str, str]] = []
    ratios: list[tuple[str, str]] = []


class SearchDimension(_Strict):
    """One hyperparameter's range: a float or int interval (log-uniform when ``log``) or a list of choices.

    Ranges are checked with the rest of the file (core/params_check.py): low below high, log only above 0,
    whole-number bounds for ints, choices for a categorical and only there.
    """

    type: Literal["float", "int", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[str | int | float | bool] | None = None


def _dimension(**fields: Any) -> SearchDimension:
    return SearchDimension.model_validate(fields)


# The space searched when params.yaml names none: one per estimator, so switching estimator switches space.
DEFAULT_SEARCH_SPACE: dict[str, dict[str, SearchDimension]] = {
    "logistic_regression": {"C": _dimension(low=0.001, high=100.0, log=True)},
    "random_forest": {
        "n_estimators": _dimension(type="int", low=10, high=200),
        "max_depth": _dimension(type="int", low=1, high=10),
        "min_samples_leaf": _dimension(type="int", low=1, high=10),
    },
    "svc": {"C": _dimension(low=0.01, high=100.0, log=True), "gamma": _dimension(low=0.0001, high=1.0, log=True)},
    "knn": {
        "n_neighbors": _dimension(type="int", low=1, high=30),
        "weights": _dimension(type="categorical", choices=["uniform", "distance"]),
    },
}


class SearchParams(_Strict):
    """`mlops-lab train --search`: an Optuna study (TPE sampler, median pruning on the CV folds)."""

    trials: int = Field(default=12, ge=1)
    seed: int = 42  # TPE's seed: same seed + same data -> same trials and the same winner
    pruning: bool = True  # stop a trial whose running CV mean is below the median of earlier trials at that fold
    startup_trials: int = Field(default=4, ge=0)  # random trials before TPE models the space; never pruned
    min_folds: int = Field(default=2, ge=1)  # folds every trial runs before it may be pruned
    timeout_s: float | None = Field(default=120.0, gt=0)  # no new trial starts after this; None: no bound
    space: dict[str, dict[str, SearchDimension]] = DEFAULT_SEARCH_SPACE


class TrainParams(_Strict):
    seed: int = 42
    test_size: float = Field(default=0.3, gt=0, lt=1)
    cv_folds: int = Field(default=5, ge=2)
    estimator: Literal["logistic_regression", "random_forest", "svc", "knn"] = "logistic_regression"
    hyperparams: dict[str, Any] = {}
    search: SearchParams = SearchParams()

    @property
    def search_space(self) -> dict[str, SearchDimension]:
        """The configured estimator's space (params_check guarantees it exists)."""
        return self.search.space.get(self.estimator, {})


class InvarianceParams(_Strict):
    noise: float = 0.02
    min_confidence: float = 0.9
    max_flip_rate: float = 0.0
    seed: int = 7


class DirectionalSpec(_Strict):
    feature: str
    from_class: str
    towards_class: str
    delta: float


class SliceParityParams(_Strict):
    max_recall_gap: float = 0.25
    min_slice_size: int = 5


class FairnessGateParams(_Strict):
    """The gate's fairness bound (pipelines/fairness.py, C58), judged on the rows that carry a group.

    "Positive" is one-vs-rest: a row's outcome is positive when the model predicts ``positive_class``.
    ``max_equalized_odds_difference`` bounds the largest between-group gap in the true-positive or the
    false-positive rate of that outcome; groups under ``min_group_size`` rows are reported, not judged.
    """

    enabled: bool = True
    positive_class: str | None = None  # None: the last class in dataset.classes
    max_equalized_odds_difference: float = Field(default=0.3, gt=0, le=1)
    min_group_size: int = Field(default=10, ge=2)


class HoldoutParams(_Strict):
    """The gate's holdout: drawn once at ingest (seeded, stratified), never trained on."""

    path: str = "data/holdout.csv"
    fraction: float = Field(default=0.3, gt=0, lt=1)  # share of the raw rows set aside
    seed: int = 2024


class OnnxGateParams(_Strict):
    """ONNX export and parity check at registration (pipelines/onnx_registry.py); never a reason to reject."""

    enabled: bool = True
    tolerance: float = Field(default=1e-5, gt=0, lt=1)  # max |p_onnx - p_sklearn| on any row and class
    rows_per_kind: int = Field(default=200, ge=1)  # rows of each generated batch kind in the parity check
    int8: bool = True  # also build the int8 (dynamic quantisation) variant and report it in the model card


class GateParams(_Strict):
    mode: Literal["non_inferiority", "superiority"] = "non_inferiority"
    metric: str = "accuracy"
    alpha: float = Field(default=0.05, gt=0, lt=1)  # one-sided level of the paired (McNemar exact) test
    min_metric: float = 0.0
    holdout: HoldoutParams = HoldoutParams()
    invariance: InvarianceParams = InvarianceParams()
    directional: list[DirectionalSpec] = []
    slice_parity: SliceParityParams = SliceParityParams()
    fairness: FairnessGateParams = FairnessGateParams()
    onnx: OnnxGateParams = OnnxGateParams()


class CovariateShiftParams(_Strict):
    features: list[str] | None = None
    shift_std: float = 1.5


class PriorShiftParams(_Strict):
    weights: list[float] | None = None


class ConceptShiftParams(_Strict):
    swap: tuple[str, str] | None = None


class BatchParams(_Strict):
    rows: int = 200
    covariate_shift: CovariateShiftParams = CovariateShiftParams()
    prior_shift: PriorShiftParams = PriorShiftParams()
    concept_shift: ConceptShiftParams = ConceptShiftParams()


class BanditParams(_Strict):
    algorithm: Literal["thompson", "epsilon_greedy"] = "thompson"
    epsilon: float = Field(default=0.1, ge=0, le=1)
    prior: tuple[float, float] = (1.0, 1.0)


class RoutingParams(_Strict):
    strategy: Literal["canary", "blue_green", "shadow", "ab", "bandit"] = "canary"
    canary_weight: float = Field(default=0.0, ge=0, le=1)
    ab_split: float = Field(default=0.5, ge=0, le=1)
    bandit: BanditParams = BanditParams()


class RolloutParams(_Strict):
    steps: list[int] = Field(default=[10, 25, 50, 100], min_length=1)
    min_requests: int = Field(default=200, ge=1)  # per arm and step window, before error rate / latency decide
    min_feedback: int = Field(default=200, ge=1)  # labels per arm and step window; the test uses exactly these
    max_error_rate: float = 0.02
    max_error_rate_increase: float = 0.01
    max_p99_latency_ms: float = 500.0
    accuracy_margin: float = Field(default=0.02, ge=0, lt=1)  # abort on evidence of harm beyond this (0.02 = 2 points)
    accuracy_alpha: float = Field(default=0.10, gt=0, lt=0.5)  # one-sided level of that test, per step

    @model_validator(mode="after")
    def _increasing(self) -> RolloutParams:
        if any(not 0 < s <= 100 for s in self.steps) or self.steps != sorted(set(self.steps)):
            raise ValueError(f"rollout.steps must be strictly increasing percentages in (0, 100], got {self.steps}")
        if self.steps == [100]:
            raise ValueError(
                "rollout.steps [100] has no shared step: the 100 % step compares the challenger with the "
                "champion's window of the previous step, so give at least one step below 100"
            )
        return self


class DataDriftParams(_Strict):
    drift_share: float = Field(default=0.5, gt=0, le=1)  # dataset drift when this share of features drifted
    method: str | None = None  # Evidently stattest name (e.g. "ks", "psi", "wasserstein"); None = its default per size
    threshold: float | None = None  # the stattest's threshold; None = Evidently's default for the method


class PredictionDriftParams(_Strict):
    p_value: float = Field(default=0.01, gt=0, lt=1)  # class-share chi-square and confidence K-S, each at this level


class ConceptDriftParams(_Strict):
    window: int = Field(default=200, ge=1)  # newest labelled predictions per model version
    min_labels: int = Field(default=50, ge=1)  # fewer labels: inconclusive, never a pass
    max_accuracy_drop: float = Field(default=0.1, ge=0, le=1)  # online may trail offline test accuracy by this


class AttributionDriftParams(_Strict):
    n_repeats: int = Field(default=5, ge=1)
    seed: int = 0
    max_rows: int = Field(default=1000, ge=10)  # rows sampled from each side for the importance estimate
    threshold: float = Field(default=0.3, gt=0)  # attribution drift score above this fires


class AnomalyParams(_Strict):
    alpha: float = Field(default=0.3, gt=0, le=1)  # EWMA smoothing
    z_threshold: float = Field(default=4.0, gt=0)  # robust z-score above this is an anomaly
    warmup: int = Field(default=20, ge=2)  # points before the detector may fire


class ABTestParams(_Strict):
    alpha: float = Field(default=0.05, gt=0, lt=1)
    power: float = Field(default=0.8, gt=0, lt=1)
    min_effect: float = Field(default=0.05, gt=0, lt=1)  # smallest difference in success rate worth detecting
    baseline: float = Field(default=0.95, gt=0, le=1)  # champion's expected online accuracy, for the power calculation


class RetrainParams(_Strict):
    cooldown_minutes: float = Field(default=30.0, ge=0)  # no second retrain within this time of the last one
    lock_ttl_s: float = Field(default=900.0, gt=0)  # a crashed retrain's lock expires after this
    recent_rows: int = Field(default=2000, ge=0)  # newest labelled production rows added to the reference
    triggers: list[Literal["data_drift", "prediction_drift", "concept_drift", "attribution_drift", "anomaly"]] = [
        "data_drift",
        "concept_drift",
    ]  # checks whose firing starts a retrain
    schedule: str | None = None  # cron of a periodic retrain whatever the checks say (None: only on triggers)


class MonitoringParams(_Strict):
    window: int = Field(default=500, ge=1)  # newest served predictions per check
    min_rows: int = Field(default=100, ge=1)  # fewer rows in the window: inconclusive
    schedule: str = "0 * * * *"  # cron of the scheduled monitoring deployment
    data_drift: DataDriftParams = DataDriftParams()
    prediction_drift: PredictionDriftParams = PredictionDriftParams()
    concept_drift: ConceptDriftParams = ConceptDriftParams()
    attribution_drift: AttributionDriftParams = AttributionDriftParams()
    anomaly: AnomalyParams = AnomalyParams()
    ab_test: ABTestParams = ABTestParams()
    retrain: RetrainParams = RetrainParams()


class Params(BaseModel):
    """Everything in params.yaml. Sections added by later stages are kept but not interpreted here."""

    model_config = ConfigDict(extra="allow", frozen=True)

    dataset: DatasetConfig
    ingest: IngestParams = IngestParams()
    features: FeatureParams = FeatureParams()
    train: TrainParams = TrainParams()
    gate: GateParams = GateParams()
    batches: BatchParams = BatchParams()
    routing: RoutingParams = RoutingParams()
    rollout: RolloutParams = RolloutParams()
    monitoring: MonitoringParams = MonitoringParams()
    model_name: str | None = None  # the registered model's name for this dataset (MLOPS_MODEL_NAME wins)

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        if problems := cross_reference_problems(self.model_dump(mode="json")):
            raise ValueError(CROSS_REFERENCES + "; ".join(problems))
        return self

    def digest(self) -> str:
        """A stable hash of the knobs that shape a model, logged as the `params_hash` tag."""
        shaping = {k: self.model_dump(mode="json")[k] for k in ("dataset", "features", "train")}
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


def with_search_trials(params: Params, trials: int) -> Params:
    """``params`` with ``train.search.trials`` replaced (``mlops-lab train --search --trials N``)."""
    if trials < 1:
        raise ValueError(f"a search needs at least one trial, got {trials}")
    search = params.train.search.model_copy(update={"trials": trials})
    return params.model_copy(update={"train": params.train.model_copy(update={"search": search})})


def load_params(path: str | Path) -> Params:
    """Read and validate a params file as a whole.

    Raises:
        ParamsFileNotFound: no such file (a FileNotFoundError).
        ParamsError: every problem found (schema errors and cross-references together), one per line.
    """
    p = Path(path)
    if not p.exists():
        raise ParamsFileNotFound(f"parameters file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ParamsError(p, [f"not readable as YAML: {str(err).strip()[:300]}"]) from None
    if not isinstance(raw, dict):
        raise ParamsError(p, [f"the file holds a {type(raw).__name__}, not a mapping of sections"])
    problems = cross_reference_problems(raw)
    try:
        params = Params.model_validate(raw)
    except ValidationError as err:
        # cross-references and the retired train.sweep are said once, by `problems`, not again by the schema
        schema = [line for line in schema_problems(err) if CROSS_REFERENCES not in line and line != RETIRED_SWEEP]
        raise ParamsError(p, [*schema, *problems]) from None
    if problems:  # pragma: no cover - the model validator raised them above
        raise ParamsError(p, problems)
    return params
