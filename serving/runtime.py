"""What a serving process holds while it runs: models, routing state, the prediction log, a poller.

Concepts: zero-downtime hot reload (C28), runtime configuration (C27), feedback loop (C38).
`Runtime.start` (called by the app's lifespan) opens the prediction log and the shared state store,
reads the routing state, and starts the `Poller`'s two threads; it waits for the first models at most
``startup_model_wait_s``, so a registry that is down never keeps the service from starting. Every
``poll_interval_s``, each on its own thread, so that a hanging registry never delays a routing change,

- the model thread refreshes the model cache when it is due (the cache loads a moved alias and swaps
  its snapshot atomically; on registry errors it keeps serving and backs off exponentially), and
- the state thread re-reads the routing and bandit state when the store's change token moved.

So every worker and replica converges on the same models and routing within one interval, and the
request path never touches the registry or the database. Feedback is synchronous (it must say
"recorded", "duplicate" or "conflict"), and a first label for a bandit-routed prediction is also the
bandit's reward -- exactly once, because only the call that *recorded* the label adds it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Callable, Collection
from functools import partial
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from core.redact import redact
from pipelines.feature_store import FeatureRepo
from serving.bandit import DEFAULT_ARMS, BanditState
from serving.contract import MAX_BATCH_ROWS, RequestContract
from serving.credentials import AdminGate, FeedbackSigner, feedback_key, user_keys
from serving.entity_features import EntityFeatures
from serving.micro_batch import MicroBatcher
from serving.model_cache import registry_cache
from serving.monitor_metrics import read_monitor_state
from serving.predict import LogSaturatedError, NotReadyError, Predictor
from serving.prediction_log import FeedbackStatus, PredictionLog, predictions_table
from serving.request_ids import RecentRequests
from serving.router import ARMS, RoutingState
from serving.state_store import StateStore

if TYPE_CHECKING:
    import numpy as np

    from core.params import Params
    from core.settings import Settings
    from serving.entity_features import Entities, EntityRequest
    from serving.metrics import Metrics
    from serving.model_cache import ModelCache
    from serving.predict import Served
    from serving.prediction_log import FeedbackResult

log = logging.getLogger(__name__)
OFFLOAD_ROWS = 256  # larger batches are scored on the threadpool, so small requests never queue behind them
LOG_CAPACITY = 10 * MAX_BATCH_ROWS  # rows accepted but not yet written; beyond it requests wait, then get 503


class LiveRouting:
    """The routing and bandit state of the shared store, cached in memory and refreshed by the poller."""

    def __init__(self, params: Params, store: StateStore | None) -> None:
        self.params, self.store = params, store
        self._state = RoutingState.from_params(params.routing)
        self._bandit = BanditState.from_params(params.routing.bandit, DEFAULT_ARMS)
        self._token: object = None
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def current(self) -> RoutingState:
        return self._state

    def bandit(self) -> BanditState:
        return self._bandit

    def refresh(self) -> None:
        """Re-read the state if it changed; on a database error keep the last state and report it."""
        if self.store is None:
            return
        with self._lock:
            try:
                token = self.store.change_token()
                if token != self._token:
                    state, bandit = self.store.routing(), self.store.bandit(DEFAULT_ARMS, self.params.routing.bandit)
                    self._state, self._bandit, self._token = state, bandit, token
                self.last_error = None
            except sa.exc.SQLAlchemyError as err:  # serve on with the last known state; /readyz shows it
                self.last_error = redact(f"{type(err).__name__}: {err}")[:500]
                log.warning("routing state not refreshed, keeping version %d: %s", self._state.version, self.last_error)


class Poller:
    """Two daemon threads, one refreshing the models and one the routing state, every ``interval`` seconds.

    They never wait for each other: a registry that hangs holds up the next model refresh only, while a
    weight or strategy change in the shared store still applies within one interval.
    """

    def __init__(self, cache: ModelCache, routing: LiveRouting, metrics: Metrics, interval: float) -> None:
        self.cache, self.routing, self.metrics, self.interval = cache, routing, metrics, interval
        self.generation = 0  # completed refreshes of either kind; tests wait on it instead of sleeping
        self.model_rounds = 0  # completed model refreshes (start-up waits, bounded, for the first)
        self._frozen = False
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def refresh_models(self) -> bool:
        """Reload models if an alias moved (True); skipped while the registry's backoff runs."""
        reloaded = False
        if self.cache.due():
            reloaded = self.cache.refresh()
            self.metrics.models_loaded(self.cache.snapshot(), reloaded)
        if reloaded and not self._frozen:
            # Everything loaded so far (MLflow, scikit-learn, pandas, the models: millions of objects) lives
            # as long as the process. Freezing it keeps the garbage collector's full collections from walking
            # it again and again: a 10,000-row request creates enough objects to trigger them, and each one
            # otherwise paused the service (docs/benchmarks.md).
            gc.freeze()
            self._frozen = True
        self._notify(models=True)
        return reloaded

    def refresh_state(self) -> None:
        """Re-read routing and bandit state (when it changed) and the monitoring gauges: the database only."""
        self.routing.refresh()
        self.metrics.monitor.refresh()  # findings + rollout gauges for /metrics; keeps the last on errors
        self._notify(models=False)

    def refresh(self) -> bool:
        """Both refreshes, in the calling thread (an admin action on the registry, tests)."""
        reloaded = self.refresh_models()
        self.refresh_state()
        return reloaded

    def _notify(self, *, models: bool) -> None:
        with self._changed:
            self.generation += 1
            self.model_rounds += models
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` holds after some poll, or ``timeout`` seconds pass."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def _run(self, step: Callable[[], object], at_once: bool) -> None:
        if at_once:
            step()
        while not self._stop.wait(self.interval):
            step()

    def start(self) -> None:
        for name, step, at_once in (
            ("model-poller", self.refresh_models, True),  # the first models load here, not in start-up
            ("state-poller", self.refresh_state, False),
        ):
            thread = threading.Thread(target=self._run, args=(step, at_once), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)


class Runtime:
    """Everything the handlers need, created by `start` (the lifespan) and released by `stop`."""

    def __init__(self, settings: Settings, params: Params, metrics: Metrics) -> None:
        self.settings, self.params, self.metrics = settings, params, metrics
        self.log: PredictionLog | None = None
        self.store: StateStore | None = None
        self.cache: ModelCache | None = None
        self.routing: LiveRouting | None = None
        self.poller: Poller | None = None
        self._predictor: Predictor | None = None
        self._batcher: MicroBatcher | None = None
        # Credentials: one admin check and failed-auth budget for the admin API, X-Force-Arm and feedback.
        self.gate = AdminGate(settings.admin_token, people=settings.approver_tokens)
        key = feedback_key(settings.feedback_key, settings.admin_token)
        self.signer = FeedbackSigner(key)
        # The prediction log's pseudonymous user key (never the raw X-User-Id); its own secret when one is set.
        self.user_keys = user_keys(settings.user_key_secret, settings.user_key_previous, key)
        self.recent = RecentRequests()  # client-chosen request ids -> feature digest (409 on reuse)
        # Rows sent as entity ids read the feature store's online store, opened once (`serving.entity_features`).
        self.entities = EntityFeatures(
            FeatureRepo(settings.feature_store_dir),
            params.dataset,
            RequestContract.from_dataset(params.dataset),
            settings.feature_max_age_s,
        )

    def start(self) -> None:
        self.log = PredictionLog(self.settings.prediction_log_uri, max_pending_rows=LOG_CAPACITY).start()
        self.store = StateStore(self.settings.prediction_log_uri, self.params.routing)
        self.cache = registry_cache(self.settings, features=self.params.dataset.feature_names)
        self.routing = LiveRouting(self.params, self.store)
        self.metrics.monitor.attach(partial(read_monitor_state, self.store))
        self.metrics.log.attach(self.log.stats)
        self.poller = Poller(self.cache, self.routing, self.metrics, self.settings.poll_interval_s)
        features = self.params.dataset.feature_names
        self._predictor = Predictor(
            self.settings.model_name,
            features,
            self.cache,
            self.routing,
            self.metrics,
            self.log,
            user_keys=self.user_keys,
        )
        if self.settings.micro_batch_rows > 0:
            self._batcher = MicroBatcher(self.predictor, self.settings.micro_batch_rows)
        self.poller.refresh_state()  # the shared database: routing is right from the first request
        self.poller.start()
        self.entities.warm()  # Feast's import (seconds) on a background thread, if there is a feature store
        # The first models load on the poller's thread. Start-up waits for them, but never longer than
        # startup_model_wait_s: with the registry down the service still starts, /healthz answers, and
        # /readyz says why it is not ready until a champion is loaded.
        self.poller.wait_for(lambda: self.poller is not None and self.poller.model_rounds > 0,
                             self.settings.startup_model_wait_s)  # fmt: skip

    def stop(self) -> None:
        """Stop polling, then flush every logged prediction (graceful shutdown loses nothing)."""
        if self.poller is not None:
            self.poller.stop()
        if self.log is not None:
            self.log.close()
        if self.store is not None:
            self.store.close()

    def predictor(self) -> Predictor:
        if self._predictor is None:
            raise NotReadyError("the service is starting (lifespan not run yet)")
        return self._predictor

    async def entity_rows(self, request: EntityRequest) -> tuple[np.ndarray, Entities]:
        """The features of rows sent as entity ids, read on the threadpool (SQLite I/O); raises `EntityError`."""
        return await run_in_threadpool(self.entities.lookup, request)

    async def serve(
        self,
        values: np.ndarray,
        request_id: str,
        *,
        client_id: bool = False,
        in_flight: Collection[asyncio.Task[Any]] | None = None,
        **options: Any,
    ) -> Served:
        """Score and log a request: small ones micro-batched, bigger ones inline, big batches on the threadpool.

        The rows are in the prediction log's queue before this returns, or it raises
        `LogSaturatedError` (503) and the answer is withheld. A small request never blocks the
        event loop on a full log: it tries without waiting, then waits on the threadpool.
        ``client_id``: the client chose ``request_id``; its reuse with other rows is
        `RequestIdConflictError` (409) before anything is scored (`serving.request_ids`).
        ``in_flight``: the worker's request tasks when the server publishes them (``scope[WORKER_TASKS]``,
        `serving.slow_clients`); a request alone in it skips the micro-batch's loop turn (`serving.micro_batch`).
        """
        predictor = self.predictor()
        claimed = self.recent.claim(request_id, values) if client_id else None
        try:
            return await self._serve(predictor, values, request_id, options, in_flight)
        except BaseException:
            if claimed is not None:  # not answered: a retry of this request must not be refused
                self.recent.release(request_id, claimed)
            raise

    async def _serve(
        self,
        predictor: Predictor,
        values: np.ndarray,
        request_id: str,
        options: dict[str, Any],
        in_flight: Collection[asyncio.Task[Any]] | None = None,
    ) -> Served:
        if len(values) > OFFLOAD_ROWS:
            return await run_in_threadpool(self._serve_logged, values, request_id, options)
        if self._batcher is not None and len(values) <= self._batcher.max_rows:
            served = await self._batcher.serve(values, request_id, in_flight, **options)  # with its neighbours
        else:
            served = predictor.serve(values, request_id, **options)
        if not predictor.record(served, values, wait=0):
            await run_in_threadpool(self._record_or_refuse, served, values)
        return served

    def _serve_logged(self, values: np.ndarray, request_id: str, options: dict[str, Any]) -> Served:
        served = self.predictor().serve(values, request_id, **options)
        self._record_or_refuse(served, values)
        return served

    def _record_or_refuse(self, served: Served, values: np.ndarray) -> None:
        if not self.predictor().record(served, values):
            raise LogSaturatedError(
                f"the prediction log is full (its database is down or too slow); request {served.request_id} "
                "was not answered so that nothing is served unlogged. Retry later."
            )

    def after_response(self, served: Served, values: np.ndarray) -> None:
        """Background task: score the shadow alias when the strategy mirrors (never changes the answer)."""
        if served.decision.shadow_alias is not None:
            self.predictor().shadow(served, values)

    def record_feedback(self, request_id: str, label: str) -> FeedbackResult:
        """Store a label once; the first label of a bandit-routed prediction also rewards its arm."""
        if self.log is None or self.store is None:
            raise NotReadyError("the service is starting (lifespan not run yet)")
        result = self.log.record_feedback(request_id, label)
        if result.status == FeedbackStatus.RECORDED:
            p = predictions_table.c
            query = sa.select(p.arm, p.strategy, p.prediction).where(p.request_id == request_id)
            with self.log.engine.connect() as conn:
                served = conn.execute(query).one_or_none()
            if served is not None and served.strategy == "bandit" and served.arm in ARMS:
                self.store.add_reward(served.arm, 1.0 if served.prediction == label else 0.0)
        return result

    def readiness(self) -> dict[str, Any]:
        """What /readyz shows: loaded versions, degraded flag, last registry, routing and log write errors."""
        snapshot = self.cache.snapshot() if self.cache else {}
        health = self.cache.health if self.cache else None
        routing = self.routing.current() if self.routing else None
        log_stats = self.log.stats() if self.log else None
        log_error = log_stats.write_error if log_stats else None
        ready = "champion" in snapshot
        return {
            "ready": ready,
            "reason": None if ready else self._not_ready_reason(),
            "models": {
                a: {"version": m.version, "run_id": m.run_id, "runtime": m.runtime} for a, m in snapshot.items()
            },
            "serving_runtime": self.settings.serving_runtime,
            "degraded": bool(
                (health and health.degraded)
                or (self.routing and self.routing.last_error)
                or log_error is not None
                or (self.log and self.log.file_problem)
            ),
            "last_registry_error": health.last_error if health else None,
            "routing": routing.to_dict() if routing else None,
            "routing_error": self.routing.last_error if self.routing else None,
            "prediction_log": None
            if log_stats is None or self.log is None
            else {
                "queued_rows": log_stats.queued,
                "dropped_rows": log_stats.dropped,
                "write_error": log_error,  # while writes fail (disk full, database down, file deleted)
                "file_problem": self.log.file_problem,  # the file was replaced or deleted under the service
            },
        }

    def _not_ready_reason(self) -> str:
        if self.cache is None:
            return "the service is starting (lifespan not run yet)"
        health = self.cache.health
        if health.last_error:
            return f"no champion loaded: {health.last_error}"  # already redacted
        if health.last_success is None:
            return "no champion loaded yet: waiting for the model registry's first answer"
        return "no champion loaded: the registry has no champion alias for this model"
