"""The request contract of every prediction protocol: one definition, read from the data contract.

Concept: REST serving with validated schemas (C18) and standard protocols (C19). What a valid row
is -- which features, in which order, which values each may take, whether one may be missing, how
many rows a request may carry -- is said once, by ``dataset:`` in params.yaml, and `RequestContract`
is its serving form. Everything that checks a request is derived from it:

- the typed pydantic models and so the OpenAPI document (`serving.schemas`);
- the one-pass fast path for plainly valid JSON rows (`serving.fast_input.ContractMatrix`);
- `RequestContract.problem`, the check every protocol applies to the float matrix it parsed
  (MLflow's ``/invocations``, Open Inference Protocol V2, and /v1/predict through the two above).

So /v1/predict, /invocations and /v2 accept the same values and refuse the same values, each
answering in its own protocol's error body.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.params import DatasetConfig

MAX_BATCH_ROWS = 10_000
GROUP_PATTERN = r"^[\w .:+-]{1,64}$"  # a group value: letters, digits, space and . : + - _, at most 64 characters


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: the field (or header) at fault, what is wrong, an error type."""

    field: str
    msg: str
    type: str = "value_error"

    def __str__(self) -> str:
        return self.msg


@dataclass(frozen=True, eq=False)
class RequestContract:
    """Features in contract order with their valid ranges, the missing-value rule and the row limit."""

    features: tuple[str, ...]
    low: np.ndarray  # valid minimum per feature, float64, contract order
    high: np.ndarray  # valid maximum per feature
    allow_missing: bool
    classes: tuple[str, ...]
    max_rows: int = MAX_BATCH_ROWS
    group: str | None = None  # ``dataset.group_column``: an optional per-row field that is logged, never scored

    @classmethod
    def from_dataset(cls, dataset: DatasetConfig, max_rows: int = MAX_BATCH_ROWS) -> RequestContract:
        specs = dataset.features
        return cls(
            features=tuple(specs),
            low=np.array([s.min for s in specs.values()], dtype="float64"),
            high=np.array([s.max for s in specs.values()], dtype="float64"),
            allow_missing=dataset.allow_missing,
            classes=tuple(dataset.classes),
            max_rows=max_rows,
            group=dataset.group_column,
        )

    @property
    def ranges(self) -> dict[str, tuple[float, float]]:
        """Feature -> (valid min, valid max)."""
        return {f: (float(lo), float(hi)) for f, lo, hi in zip(self.features, self.low, self.high, strict=True)}

    def problem(self, values: np.ndarray) -> Problem | None:
        """The first value of an ``n x features`` float matrix that breaks the contract, or None.

        Infinity is never a value; NaN is a missing value, allowed only when the contract allows
        missing values (the model's imputer fills it); every present value must lie in its feature's
        range: outside it the row is out of the model's scope, and absurd values overflow inside the
        feature pipeline, so it is the client's error, never a 500.
        """
        if not 1 <= len(values) <= self.max_rows:
            return Problem("rows", f"send between 1 and {self.max_rows} rows, got {len(values)}")
        with np.errstate(invalid="ignore"):
            infinite = np.isinf(values)
            missing = np.isnan(values)
            outside = (values < self.low) | (values > self.high)
        if infinite.any():
            return Problem(self._column(infinite), "values must be finite numbers (no Infinity)")
        if missing.any() and not self.allow_missing:
            columns = [f for f, m in zip(self.features, missing.any(axis=0), strict=True) if m]
            return Problem(columns[0], f"missing values in column(s) {columns}; this model's contract allows none")
        if outside.any():
            name = self._column(outside)
            low, high = self.ranges[name]
            bad = values[:, self.features.index(name)][outside[:, self.features.index(name)]][0]
            return Problem(name, f"column {name!r} must lie in [{low:g}, {high:g}] (the data contract); got {bad!r}")
        return None

    def _column(self, mask: np.ndarray) -> str:
        return self.features[int(np.argmax(mask.any(axis=0)))]
