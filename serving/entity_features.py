"""Scoring by entity id: a /v1/predict row's features read from the feature store's online store.

Concept: feature store at serving time (C62). A client that knows only *which* specimen it asks about sends
``{"specimen_id": "sp-00360"}``; the service reads that specimen's latest values from Feast's online store
(`pipelines.feature_store.online`, the same feature view training read through its point-in-time join), so
the values a model is served are computed once, by the pipeline that materialised them, never re-derived by
each client (training-serving skew). From there the row is a feature row like any other: the same contract
check, routing, scoring and prediction log, which also records the entity id and when its values were
measured.

`EntityFeatures` turns ids into the float matrix, or refuses the whole body with an `EntityError` that names
the field: an id not in the online store (404), values measured longer ago than ``feature_max_age_s`` (422: a
stale value is a wrong answer given confidently), values outside the data contract (422), or no feature store
at all (404 too: no entity can be found here, and the client can send the features; feature rows are still
served).

Feast costs seconds to import and its store is built from files, so the store is opened once per process and
kept, behind a lock. If the store exists when the service starts, `EntityFeatures.warm` opens it (and reads
once) on a background thread, so neither start-up nor the first entity request pays the import. Lookups hold
the lock too: Feast's SQLite online store shares one connection between threads.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from pipelines.feature_history import ENTITY_KEY
from serving.contract import Problem, RequestContract

if TYPE_CHECKING:
    from feast import FeatureStore

    from core.params import DatasetConfig
    from pipelines.feature_store import FeatureRepo, OnlineRow

log = logging.getLogger(__name__)
ENTITY_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"  # letters, digits and - _ . :, at most 64 characters
_ENTITY_ID = re.compile(ENTITY_ID_PATTERN)
WARMUP_ID = "__warm-up__"  # read once at start-up: loads Feast's online-store code before the first request


def valid_entity_id(value: object) -> bool:
    return type(value) is str and _ENTITY_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class EntityRequest:
    """The ids of a body made of entity rows; ``batch``: sent as ``{"rows": [...]}`` (field names differ)."""

    ids: tuple[str, ...]
    batch: bool

    def field(self, i: int) -> str:
        """The field of row ``i``'s id as the error body names fields (``rows.2.specimen_id``)."""
        return f"rows.{i}.{ENTITY_KEY}" if self.batch else ENTITY_KEY


@dataclass(frozen=True)
class Entities:
    """What was looked up for a request's rows: the ids and when each row's values were measured (UTC)."""

    ids: tuple[str, ...]
    measured_at: tuple[datetime, ...]


class EntityError(Exception):
    """A body of entity rows that cannot be served; ``status`` and ``problem`` make its answer."""

    status = 422

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.msg)
        self.problem = problem


class UnknownEntityError(EntityError):
    status = 404


class StaleFeaturesError(EntityError):
    pass


class FeaturesOutOfContractError(EntityError):
    pass


class FeatureStoreUnavailableError(EntityError):
    # 404, not 503: with no store no entity can be found, and the client can always send the features instead;
    # a 5xx would say the server failed, and retrying would never help.
    status = 404


class EntityFeatures:
    """The online store of one feature repo, opened once and kept; ids in, contract-checked matrix out."""

    def __init__(
        self,
        repo: FeatureRepo,
        dataset: DatasetConfig,
        contract: RequestContract,
        max_age_s: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repo, self.dataset, self.contract, self.max_age_s, self.now = repo, dataset, contract, max_age_s, now
        self._store: FeatureStore | None = None
        self._lock = threading.Lock()
        self.warming: threading.Thread | None = None  # the start-up thread opening the store, if one ran

    @property
    def opened(self) -> bool:
        """Is the store open (no request will pay Feast's import any more)?"""
        return self._store is not None

    def _open(self, field: str) -> FeatureStore:
        """The store, opened on first use (call with the lock held); ``field``: what a refusal names."""
        if self._store is None:
            if not self.repo.registry.is_file():
                raise FeatureStoreUnavailableError(
                    Problem(
                        field,
                        f"no feature store at {self.repo.root} (no registry.db): rows sent as an entity id cannot be "
                        "served here; send the features instead, or build the store and set MLOPS_FEATURE_REPO",
                        "feature_store_unavailable",
                    )
                )
            from pipelines.feature_store import open_store

            self._store = open_store(self.repo)
        return self._store

    def warm(self) -> threading.Thread | None:
        """Open the store (and read once) on a daemon thread if it exists; None when there is none."""
        if not self.repo.registry.is_file():
            return None
        self.warming = threading.Thread(target=self._warm, name="feature-store-warm-up", daemon=True)
        self.warming.start()
        return self.warming

    def _warm(self) -> None:
        try:
            self._read([WARMUP_ID], ENTITY_KEY)
        except Exception:  # a broken store must not stop the service: entity requests will say what is wrong
            log.exception("feature store at %s could not be opened at start-up", self.repo.root)

    def _read(self, ids: Sequence[str], field: str) -> list[OnlineRow]:
        from pipelines.feature_store import online

        with self._lock:
            return online(self._open(field), list(ids), self.dataset)

    def lookup(self, request: EntityRequest) -> tuple[np.ndarray, Entities]:
        """The rows' values (``n x features``, contract order) and when they were measured; blocking I/O.

        Raises:
            EntityError: the first row that cannot be served, naming its field (nothing is served then).
        """
        rows = self._read(request.ids, request.field(0))
        now = self.now()
        for i, row in enumerate(rows):
            if row.values is None or row.measured_at is None:
                raise UnknownEntityError(
                    Problem(
                        request.field(i),
                        f"{ENTITY_KEY} {row.entity_id!r} is not in the online feature store",
                        "entity_not_found",
                    )
                )
            age = (now - row.measured_at).total_seconds()
            if age > self.max_age_s:
                raise StaleFeaturesError(
                    Problem(
                        request.field(i),
                        f"the features of {ENTITY_KEY} {row.entity_id!r} were measured at "
                        f"{row.measured_at.isoformat()} ({age:.0f} s ago), older than the limit of "
                        f"{self.max_age_s:g} s (MLOPS_FEATURE_MAX_AGE_S); materialise fresh values",
                        "stale_features",
                    )
                )
        names = self.contract.features
        values = np.array([[row.values[f] for f in names] for row in rows if row.values], dtype="float64")
        if self.contract.problem(values) is not None:
            self._refuse_out_of_contract(request, values)
        measured = tuple(row.measured_at for row in rows if row.measured_at is not None)
        return values, Entities(request.ids, measured)

    def _refuse_out_of_contract(self, request: EntityRequest, values: np.ndarray) -> None:
        """Raise for the first row whose stored values break the data contract, naming it and the feature."""
        for i in range(len(values)):
            problem = self.contract.problem(values[i : i + 1])
            if problem is not None:
                raise FeaturesOutOfContractError(
                    Problem(
                        request.field(i),
                        f"the stored features of {ENTITY_KEY} {request.ids[i]!r} break the data contract: "
                        f"{problem.field}: {problem.msg}",
                    )
                )
