"""One prediction request, protocol-agnostic: route, score, and describe what was served.

Concept: REST serving without training-serving skew (C18, C19). Every endpoint -- native
/v1/predict, MLflow's /invocations, Open Inference Protocol V2 -- ends here: rows become a
float matrix in the *contract's* column order and go through the one registered model, so preprocessing
is never re-implemented in the API: its scikit-learn Pipeline, or the same Pipeline exported to ONNX and
parity-checked at registration, scored by ONNX Runtime (`serving.model_cache`; both take the same array
and have the same ``predict_proba`` / ``predict`` / ``classes_``). The matrix is a numpy array, not a
DataFrame: the pipeline's first step reads an array in contract order (`DerivedFeatures`), and skipping
the DataFrame plus scikit-learn's per-call parameter validation makes scoring one row much cheaper
with bit-identical results (tests compare with ``mlflow.pyfunc`` on DataFrames; through ONNX Runtime
the labels are equal and the probabilities within 1e-9). The `Predictor`
takes one immutable snapshot of the model cache per request (a hot reload never changes a model
under a request in flight), asks the router which alias serves, and returns a `Served` value that
the caller turns into its protocol's response. `Predictor.serve_many` does the same for several
requests at once (`serving.micro_batch`): each is routed on its own, and the requests that go to one
model are scored in one call. The served rows are handed to the prediction log *before* the response is
sent (a queue put; the disk write happens on the log's thread), so an answer is never returned
unless it will be logged: a saturated log makes the request a 503 (`LogSaturatedError`). The
shadow model runs after the response.

Ids in the prediction log: a one-row request is logged under its request id; row ``i`` of a batch
under ``<request id>:<i>``; a shadow answer under ``<row id>:shadow`` with arm ``shadow`` (client ids
cannot contain ``:``, so these never collide). Feedback uses the same ids. The ``strategy`` logged
is the routing strategy, or ``forced`` (``X-Force-Arm``) / ``pinned`` (a version in the path) for a
request that chose its model: those rows are left out of every analysis (`serving.log_reader.ANALYSED`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import sklearn

from serving.bandit import BanditState, choose
from serving.log_schema import FeedbackBusyError
from serving.prediction_log import ServedRows
from serving.request_ids import RequestIdConflictError
from serving.router import CHALLENGER, CHAMPION, OVERRIDES, PINNED, Arm, Decision, RoutingState, route

if TYPE_CHECKING:
    from serving.credentials import UserKeys
    from serving.entity_features import Entities
    from serving.metrics import Metrics
    from serving.model_cache import LoadedModel, ModelCache
    from serving.prediction_log import PredictionLog

log = logging.getLogger(__name__)
SHADOW_ARM = "shadow"
SKLEARN_RUNTIME = "sklearn"  # a model without a ``runtime`` attribute is the fitted scikit-learn Pipeline


class NotReadyError(RuntimeError):
    """No champion is loaded yet (fresh registry, or the registry was unreachable at start-up)."""


class UnknownVersionError(LookupError):
    """A model version that no alias currently points to."""


class BadOverrideError(ValueError):
    """An ``X-Force-Arm`` value that is not an arm/slot, or names an alias with no model loaded."""


class ScoringError(RuntimeError):
    """The model raised on valid input: a server error, logged with status "error"."""


class LogSaturatedError(RuntimeError):
    """The prediction log stayed full (its database is down or too slow): the answer is withheld."""


SERVING_ERRORS = (
    NotReadyError,
    UnknownVersionError,
    BadOverrideError,
    ScoringError,
    LogSaturatedError,
    FeedbackBusyError,
    RequestIdConflictError,
)
_STATUS: dict[type[Exception], int] = {
    RequestIdConflictError: 409,
    FeedbackBusyError: 503,
    NotReadyError: 503,
    UnknownVersionError: 404,
    BadOverrideError: 422,
    LogSaturatedError: 503,
}


def http_status(err: Exception) -> int:
    """The HTTP status of a serving error in the native API (protocols may map 422 to 400)."""
    return _STATUS.get(type(err), 500)


class RoutingSource(Protocol):
    """Where the live routing state comes from (the shared state store, or fixed params)."""

    def current(self) -> RoutingState: ...

    def bandit(self) -> BanditState: ...


@dataclass(frozen=True)
class Scored:
    labels: list[str]
    probabilities: np.ndarray | None  # rows x classes, None when only labels were asked for
    classes: list[str]


@dataclass(frozen=True)
class Request:
    """One request's rows and routing inputs, as `Predictor.serve_many` takes them."""

    values: np.ndarray
    request_id: str
    labels_only: bool = False
    start: float = 0.0  # time.perf_counter() when the request arrived: its latency is measured from here
    user_id: str | None = None
    override: str | None = None
    version: str | None = None
    groups: tuple[str | None, ...] | None = None  # each row's dataset.group_column value: logged, not scored
    entities: Entities | None = None  # rows sent as entity ids: the ids and when their features were measured


@dataclass(frozen=True)
class Served:
    request_id: str
    row_ids: list[str]
    decision: Decision
    model: LoadedModel
    scored: Scored
    latency_ms: float
    user_key: str | None = None  # pseudonymous key of X-User-Id, logged with the rows (never the raw id)
    groups: tuple[str | None, ...] | None = None  # each row's group (``Request.groups``), logged with it
    entities: Entities | None = None  # ``Request.entities``: answered and logged with the rows


def to_matrix(rows: Sequence[Mapping[str, float | None]], features: Sequence[str]) -> np.ndarray:
    """Rows as a float64 matrix in contract column order; ``None`` becomes NaN (for the imputer)."""
    values = np.array([[row.get(f) for f in features] for row in rows], dtype="float64")
    return values.reshape(len(rows), len(features))


def _unvalidated(model: Any) -> AbstractContextManager[Any]:
    """scikit-learn's per-call parameter validation off (the fitted model's params were validated at fit);
    nothing to switch for a model that is not scikit-learn's (`pipelines.onnx_export.OnnxModel`)."""
    if getattr(model, "runtime", SKLEARN_RUNTIME) != SKLEARN_RUNTIME:
        return nullcontext()
    return sklearn.config_context(skip_parameter_validation=True)


def score(model: Any, values: np.ndarray) -> Scored:
    """Class probabilities and the most probable class per row, in the model's class order."""
    with _unvalidated(model):
        proba = np.asarray(model.predict_proba(values), dtype="float64")
    classes = [str(c) for c in model.classes_]
    return Scored([classes[i] for i in proba.argmax(axis=1)], proba, classes)


def predict_labels(model: Any, values: np.ndarray) -> Scored:
    """``model.predict`` only -- exactly what ``mlflow.pyfunc`` returns for an sklearn model."""
    with _unvalidated(model):
        labels = np.asarray(model.predict(values)).tolist()
    return Scored([str(v) for v in labels], None, [str(c) for c in model.classes_])


def row_ids(request_id: str, n: int) -> list[str]:
    return [request_id] if n == 1 else [f"{request_id}:{i}" for i in range(n)]


def _arm_of(alias: str) -> Arm:
    return CHAMPION if alias == CHAMPION else CHALLENGER


class Predictor:
    """Routes and scores requests against the current model snapshot; records what was served."""

    def __init__(
        self,
        model_name: str,
        features: Sequence[str],
        cache: ModelCache,
        routing: RoutingSource,
        metrics: Metrics,
        log: PredictionLog | None = None,
        rng: random.Random | None = None,
        user_keys: UserKeys | None = None,
    ) -> None:
        self.model_name, self.features, self.cache, self.routing = model_name, list(features), cache, routing
        self.metrics, self.log, self.rng = metrics, log, rng or random.Random()  # noqa: S311 - routing, not crypto
        self.user_keys = user_keys  # None: no user key logged

    def decide(
        self, request_id: str, user_id: str | None, override: str | None, version: str | None
    ) -> tuple[Decision, LoadedModel]:
        """Pick the model for a request (raises NotReady / UnknownVersion / BadOverride)."""
        snapshot = self.cache.snapshot()  # one snapshot for the whole request
        if CHAMPION not in snapshot:
            raise NotReadyError("no champion model loaded yet; train and register one (`mlops-lab train`)")
        state = self.routing.current()
        if version is not None:
            pinned = sorted((m for m in snapshot.values() if m.version == version), key=lambda m: m.alias != CHAMPION)
            if not pinned:
                loaded = sorted({m.version for m in snapshot.values()})
                raise UnknownVersionError(f"model version {version!r} is not loaded; loaded versions: {loaded}")
            alias = pinned[0].alias
            return Decision(_arm_of(alias), alias, PINNED, None, f"version {version} pinned"), pinned[0]
        if override is not None and override.strip().lower() not in OVERRIDES:
            raise BadOverrideError(f"X-Force-Arm must be one of {', '.join(OVERRIDES)}; got {override!r}")
        bandit_choice = choose(self.routing.bandit(), self.rng) if state.strategy == "bandit" and not override else None
        decision = route(state, user_id or request_id, override, bandit_choice)
        if decision.served_alias not in snapshot:
            if override is not None:
                raise BadOverrideError(f"X-Force-Arm={override}: alias {decision.served_alias!r} has no model loaded")
            reason = f"{decision.reason}; {decision.served_alias} not loaded, champion serves"
            decision = replace(decision, arm=CHAMPION, served_alias=CHAMPION, shadow_alias=None, reason=reason)
        if decision.shadow_alias is not None and decision.shadow_alias not in snapshot:
            decision = replace(decision, shadow_alias=None)
        return decision, snapshot[decision.served_alias]

    def serve(
        self,
        values: np.ndarray,
        request_id: str,
        *,
        user_id: str | None = None,
        override: str | None = None,
        version: str | None = None,
        labels_only: bool = False,
        groups: tuple[str | None, ...] | None = None,
        entities: Entities | None = None,
    ) -> Served:
        """Route and score ``values``; on a model failure log the rows as errors and raise ScoringError.

        The caller hands the returned `Served` to `record` before it answers. ``groups``: each row's
        ``dataset.group_column`` value, logged with the row and never given to the model. ``entities``: for
        rows sent as entity ids, the ids and measuring times, answered and logged with the rows.
        """
        start = time.perf_counter()
        decision, loaded = self.decide(request_id, user_id, override, version)
        request = Request(values, request_id, labels_only, start, user_id, groups=groups, entities=entities)
        return self._score_one(request, decision, loaded)

    def serve_many(self, requests: Sequence[Request]) -> list[Served | Exception]:
        """Route each request on its own, then score the requests that go to one model in one call.

        The answer for each request, in order: its `Served`, or the error `serve` would have raised
        (routing errors stay with their request). Each request keeps its own routing decision,
        row ids, latency (from its ``start``) and log entry; only the model call is shared. If the
        shared call fails, each request of that group is scored on its own, so a failure stays with
        the requests the model really fails on. Answers equal what `serve` gives for the request alone,
        up to floating-point rounding: a matrix product over many rows may round the last bit of a
        probability differently (about 1e-16) than over one row; the class is the same.
        """
        answers: dict[int, Served | Exception] = {}
        groups: dict[tuple[int, bool], list[tuple[int, Decision, LoadedModel]]] = {}
        for i, request in enumerate(requests):
            try:
                decision, loaded = self.decide(request.request_id, request.user_id, request.override, request.version)
            except SERVING_ERRORS as err:
                answers[i] = err
                continue
            groups.setdefault((id(loaded.model), request.labels_only), []).append((i, decision, loaded))
        for (_, labels_only), members in groups.items():
            if len(members) == 1:
                i, decision, loaded = members[0]
                answers[i] = self._answer_alone(requests[i], decision, loaded)
                continue
            values = np.concatenate([requests[i].values for i, _, _ in members])
            model = members[0][2].model
            try:
                scored = predict_labels(model, values) if labels_only else score(model, values)
            except Exception:  # find out which requests the model fails on: score each on its own
                for i, decision, loaded in members:
                    answers[i] = self._answer_alone(requests[i], decision, loaded)
                continue
            self.metrics.observe_batch(len(values))
            offset = 0
            for i, decision, loaded in members:
                request, n = requests[i], len(requests[i].values)
                part = Scored(
                    scored.labels[offset : offset + n],
                    None if scored.probabilities is None else scored.probabilities[offset : offset + n],
                    scored.classes,
                )
                ids = row_ids(request.request_id, n)
                key = self._user_key(request.user_id)
                answers[i] = Served(
                    request.request_id, ids, decision, loaded, part, _ms(request.start), key, request.groups,
                    request.entities,
                )  # fmt: skip
                self.metrics.count_predictions(loaded.version, decision.arm, part.labels)
                offset += n
        return [answers[i] for i in range(len(requests))]

    def _user_key(self, user_id: str | None) -> str | None:
        return self.user_keys.key(user_id) if self.user_keys is not None else None

    def _answer_alone(self, request: Request, decision: Decision, loaded: LoadedModel) -> Served | Exception:
        try:
            return self._score_one(request, decision, loaded)
        except ScoringError as err:
            return err

    def _score_one(self, request: Request, decision: Decision, loaded: LoadedModel) -> Served:
        """Score one request's rows with its routed model; on failure log them as errors, raise ScoringError."""
        values, request_id, start = request.values, request.request_id, request.start
        ids = row_ids(request_id, len(values))
        try:
            scored = predict_labels(loaded.model, values) if request.labels_only else score(loaded.model, values)
        except Exception as err:  # any model failure is a 500 -- but counted and logged per arm first
            self.metrics.prediction_errors.labels(decision.arm).inc(len(values))
            failed = Scored([], None, [])
            key = self._user_key(request.user_id)
            failure = Served(request_id, ids, decision, loaded, failed, _ms(start), key, request.groups,
                             request.entities)  # fmt: skip
            self.record(failure, values, status="error", wait=0)
            raise ScoringError(f"model version {loaded.version} failed to score: {type(err).__name__}: {err}") from err
        self.metrics.observe_batch(len(values))
        key = self._user_key(request.user_id)
        served = Served(request_id, ids, decision, loaded, scored, _ms(start), key, request.groups, request.entities)
        self.metrics.count_predictions(loaded.version, decision.arm, scored.labels)
        return served

    def record(
        self,
        served: Served,
        values: np.ndarray,
        *,
        arm: str | None = None,
        status: str = "ok",
        wait: float | None = None,
    ) -> bool:
        """Hand all rows of a request to the prediction log as one item (a queue put, no disk).

        Waits at most ``wait`` seconds (default: the log's ``enqueue_timeout``) for room; False
        when the log refused the rows. Without a log configured there is nothing to do: True.
        """
        if self.log is None:
            return True
        suffix = ":shadow" if arm == SHADOW_ARM else ""
        item = ServedRows(
            request_ids=[rid + suffix for rid in served.row_ids] if suffix else served.row_ids,
            model_name=self.model_name,
            model_version=served.model.version,
            feature_names=self.features,
            values=values,
            predictions=served.scored.labels or None,
            probabilities=served.scored.probabilities,
            classes=served.scored.classes,
            arm=arm or served.decision.arm,
            strategy=served.decision.strategy,
            latency_ms=served.latency_ms,
            status=status,
            user_key=served.user_key,
            groups=served.groups,
            entity_ids=served.entities.ids if served.entities is not None else None,
            features_at=served.entities.measured_at if served.entities is not None else None,
        )
        return self.log.record(item, timeout=wait)

    def shadow(self, served: Served, values: np.ndarray) -> None:
        """Score the mirrored alias after the response was sent; its answer is only logged and counted.

        Its ``latency_ms`` in the log (and ``mlops_shadow_model_duration_seconds``) is the shadow's own model
        time on the worker that runs it after the response: what mirroring costs, not what a user waits for.
        """
        alias = served.decision.shadow_alias
        loaded = self.cache.snapshot().get(alias) if alias else None
        if loaded is None:
            return
        start = time.perf_counter()  # model time only: the user's answer was sent before this started
        mirror = replace(served, model=loaded, scored=Scored([], None, []))
        try:
            scored = score(loaded.model, values)
            self.metrics.shadow_model_time.observe(time.perf_counter() - start)
        except Exception:  # a failing shadow must never surface; it is counted and logged instead
            log.exception("shadow model version %s failed on request %s", loaded.version, served.request_id)
            self.metrics.prediction_errors.labels(SHADOW_ARM).inc(len(values))
            self.record(replace(mirror, latency_ms=_ms(start)), values, arm=SHADOW_ARM, status="error")
            return
        self.metrics.count_shadow(served.scored.labels, scored.labels)
        self.metrics.count_predictions(loaded.version, SHADOW_ARM, scored.labels)
        if not self.record(replace(mirror, scored=scored, latency_ms=_ms(start)), values, arm=SHADOW_ARM):
            log.warning("prediction log full: shadow answers of request %s not logged", served.request_id)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3
