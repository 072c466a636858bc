"""Models behind registry aliases, cached in memory and swapped atomically when an alias moves.

Concepts: zero-downtime hot reload (C28), resilience (C49) and governance (C16: an alias moved
outside mlops-lab is noticed and audited, `serving.alias_watch`). ``refresh`` asks the registry which
version each alias points to and loads only what changed. The cache hands out immutable
snapshots: a request takes one snapshot at its start and finishes on it, so a swap never changes
a model under a request in flight. If the registry (or its database) is unreachable, the cache
keeps serving what it has, reports itself degraded with the error, and backs off exponentially.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from core.mlflow_config import mlflow_client
from core.redact import redact
from pipelines.onnx_registry import load_version_onnx
from pipelines.registry import load_version_model, move_audited, record_outside_move
from serving.alias_watch import AliasWatch

if TYPE_CHECKING:
    from core.settings import Settings

ALIASES = ("champion", "challenger")


SKLEARN, ONNX = "sklearn", "onnx"  # the runtimes a loaded model scores with


@dataclass(frozen=True)
class LoadedModel:
    alias: str
    version: str
    run_id: str
    model: (
        Any  # the fitted scikit-learn Pipeline, or its parity-checked `OnnxModel` (predict / predict_proba / classes_)
    )
    loaded_at: float

    @property
    def runtime(self) -> str:
        """``onnx`` when ONNX Runtime scores this version, else ``sklearn`` (the Pipeline itself)."""
        return str(getattr(self.model, "runtime", SKLEARN))


def explainable_pipeline(model: Any) -> Any | None:
    """The scikit-learn Pipeline behind a loaded model: itself, or the one an ONNX model was verified against."""
    if getattr(model, "runtime", SKLEARN) == SKLEARN:
        return model
    return getattr(model, "pipeline", None)


@dataclass
class CacheHealth:
    """What /readyz reports: the last refresh, the last error, and when the next attempt is due."""

    last_success: float | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    next_attempt: float = 0.0
    reloads: int = 0

    @property
    def degraded(self) -> bool:
        return self.consecutive_failures > 0


@dataclass
class Backoff:
    """Exponential backoff with a cap: base · 2^(failures-1), at most `cap` seconds."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, failures: int) -> float:
        return 0.0 if failures <= 0 else min(self.cap, self.base * 2 ** (failures - 1))


Resolver = Callable[[str], "tuple[str, str] | None"]  # alias -> (version, run_id) or None when unset
Loader = Callable[[str], Any]  # version -> fitted model


@dataclass
class ModelCache:
    """Alias → LoadedModel, refreshed from the registry; readers get immutable snapshots."""

    resolve: Resolver
    load: Loader
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    health: CacheHealth = field(default_factory=CacheHealth)
    watch: AliasWatch | None = None  # audits alias moves made outside mlops-lab (`serving.alias_watch`)

    def __post_init__(self) -> None:
        self._models: Mapping[str, LoadedModel] = MappingProxyType({})
        self.aliases: Mapping[str, str] = MappingProxyType({})  # alias -> version, as the registry last said
        self._lock = threading.Lock()  # one refresh at a time; readers never take it

    def snapshot(self) -> Mapping[str, LoadedModel]:
        """The current alias → model mapping; never mutated after it is handed out."""
        return self._models

    @property
    def ready(self) -> bool:
        return "champion" in self._models

    @property
    def refreshing(self) -> bool:
        """A refresh is talking to the registry right now."""
        return self._lock.locked()

    def due(self) -> bool:
        return self.clock() >= self.health.next_attempt

    def refresh(self) -> bool:
        """Load what changed; True when the snapshot was replaced. Never raises on registry errors.

        Each alias loads on its own: a version that cannot be loaded (a refused file, a broken artifact)
        is reported, the champion alias keeps the model it held, and a challenger is dropped (its users go
        to the champion); the other alias still loads, so a bad challenger never keeps a champion out.
        """
        with self._lock:
            current = dict(self._models)
            try:
                targets = {alias: self.resolve(alias) for alias in ALIASES}
            except Exception as err:
                return self._failed(f"{type(err).__name__}: {err}")
            self.aliases = MappingProxyType({a: t[0] for a, t in targets.items() if t is not None})
            errors = []
            if self.watch is not None:
                try:
                    self.watch.observe(self.aliases, ALIASES)
                except Exception as err:  # reported below like any registry error; the move stays pending
                    errors.append(f"auditing an alias moved outside mlops-lab failed: {type(err).__name__}: {err}")
            for alias, target in targets.items():
                if target is None:
                    current.pop(alias, None)
                    continue
                version, run_id = target
                held = current.get(alias)
                if held is None or held.version != version:
                    reuse = next((m for m in current.values() if m.version == version), None)
                    try:
                        model = reuse.model if reuse else self.load(version)
                    except Exception as err:
                        errors.append(f"{alias} v{version} not loaded: {type(err).__name__}: {err}")
                        if alias != "champion":
                            current.pop(alias, None)  # never serve a challenger other than the registry's
                        continue
                    current[alias] = LoadedModel(alias, version, run_id, model, time.time())
            changed = self._swap(current)
            if errors:
                self._failed("; ".join(errors))
                return changed
            self.health.consecutive_failures = 0
            self.health.last_error = None
            self.health.last_success = time.time()
            self.health.next_attempt = self.clock()
            return changed

    def _failed(self, error: str) -> bool:
        # Not swallowed: any registry, database or artifact failure is recorded, reported by /readyz as
        # "degraded" with this message, and retried with backoff. Serving goes on.
        self.health.consecutive_failures += 1
        self.health.last_error = redact(error)[:500]  # a registry URL in an error keeps its password out
        self.health.next_attempt = self.clock() + self.backoff.delay(self.health.consecutive_failures)
        return False

    def _swap(self, current: dict[str, LoadedModel]) -> bool:
        changed = {a: m.version for a, m in current.items()} != {a: m.version for a, m in self._models.items()}
        if changed:
            self._models = MappingProxyType(current)  # one reference assignment: the atomic swap
            self.health.reloads += 1
        return changed


def load_served_model(settings: Settings, version: str, features: Sequence[str] | None = None) -> Any:
    """What serves a registered version: its Pipeline, checked as always (trusted file, signature); then, unless
    the settings force scikit-learn, its ONNX model when the version carries a parity-checked file (a replaced
    file raises). The service's cache and the batch-scoring flow load through here, so both score alike."""
    pipeline = load_version_model(settings, version, features)
    if settings.serving_runtime == SKLEARN:
        return pipeline
    onnx = load_version_onnx(settings, version, features)
    if onnx is None:
        return pipeline
    onnx.pipeline = pipeline  # explanations need the Pipeline's steps (`explainable_pipeline`)
    return onnx


def registry_cache(
    settings: Settings, backoff: Backoff | None = None, features: Sequence[str] | None = None
) -> ModelCache:
    """A cache bound to the MLflow registry named by the settings; ``features``: the contract models must take."""
    from mlflow.exceptions import MlflowException

    clients: list[Any] = []  # created on first use, so a registry that is down at start-up is an outage, not a crash

    def resolve(alias: str) -> tuple[str, str] | None:
        if not clients:
            clients.append(mlflow_client(settings))
        try:
            mv = clients[0].get_model_version_by_alias(settings.model_name, alias)
        except MlflowException as err:
            if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None  # alias (or model) not set: a normal state, not an outage
            raise
        return str(mv.version), str(mv.run_id or "")

    def load(version: str) -> Any:
        return load_served_model(settings, version, features)

    def record(alias: str, from_version: str | None, to_version: str | None) -> None:
        record_outside_move(settings, alias, from_version, to_version)

    watch = AliasWatch(audited=lambda alias, version: move_audited(settings, alias, version), record=record)
    return ModelCache(resolve=resolve, load=load, backoff=backoff or Backoff(), watch=watch)
