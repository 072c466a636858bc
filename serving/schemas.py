"""Typed request and response contracts of the native API, built from the dataset contract.

Concept: REST serving with validated schemas (C18). The feature fields are not written by hand:
`build_schemas` turns ``dataset:`` in params.yaml into pydantic models with one typed field per
feature, named exactly like the training column, with the contract's physical range as ``ge``/``le``.
So the API, its OpenAPI document and the data-validation suite can never disagree about what a
valid row is, and a value out of range is a 422 that names the field instead of a silent bad
prediction. Values must be finite JSON numbers (strict: ``"5.1"`` and ``true`` are type errors);
a feature may be ``null`` only when ``allow_missing`` is set (the model's imputer fills it).

One row is a flat object; a batch is ``{"rows": [...]}``. A *callable discriminator* picks the
branch from the body's shape before validating, so an invalid body gets the errors of the branch
it meant, not a confusing union of both.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from core.params import DatasetConfig

if TYPE_CHECKING:
    import pandas as pd

MAX_BATCH_ROWS = 10_000
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._-]{1,40}$"  # no ':' -- it separates row and shadow ids in the log
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
_BRANCH_TAGS = ("row", "batch")


def _branch(body: Any) -> str:
    """The discriminator: a body with a ``rows`` key is a batch, anything else is one row."""
    return "batch" if isinstance(body, Mapping) and "rows" in body else "row"


def _feature_field(spec_min: float, spec_max: float, allow_missing: bool) -> tuple[Any, Any]:
    number = Annotated[float, Field(ge=spec_min, le=spec_max, strict=True, allow_inf_nan=False)]
    return (number | None, None) if allow_missing else (number, ...)


@dataclass(frozen=True)
class ApiSchemas:
    """The models generated for one dataset contract."""

    row: type[BaseModel]
    batch: type[BaseModel]
    predict_body: Any  # Annotated discriminated union of row | batch, usable as a FastAPI body type
    feedback: type[BaseModel]
    features: tuple[str, ...]
    classes: tuple[str, ...]


def build_schemas(dataset: DatasetConfig, max_rows: int = MAX_BATCH_ROWS) -> ApiSchemas:
    """Build the row, batch and feedback models for a dataset contract.

    Args:
        dataset: The ``dataset:`` section of params.yaml.
        max_rows: Largest accepted batch; more rows is a 422 naming ``rows``.
    """
    fields = {
        name: _feature_field(spec.min, spec.max, dataset.allow_missing) for name, spec in dataset.features.items()
    }
    row = create_model(  # type: ignore[call-overload]
        "PredictRow", __config__=ConfigDict(extra="forbid", title="One row of features"), **fields
    )
    batch = create_model(
        "PredictBatch",
        __config__=ConfigDict(extra="forbid", title="A batch of rows"),
        rows=(list[row], Field(min_length=1, max_length=max_rows)),  # type: ignore[valid-type]
    )
    body = Annotated[
        Annotated[row, Tag("row")] | Annotated[batch, Tag("batch")],  # type: ignore[valid-type]
        Discriminator(_branch),
    ]
    label: Any = Literal[tuple(dataset.classes)]
    feedback = create_model(
        "FeedbackRequest",
        __config__=ConfigDict(extra="forbid"),
        request_id=(str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$", description="An id from a predict response.")),
        label=(label, Field(description="The true class of that row.")),
    )
    return ApiSchemas(row, batch, body, feedback, tuple(dataset.features), tuple(dataset.classes))


class ClassPrediction(BaseModel):
    """The answer for one row; ``id`` is what /v1/feedback takes for this row."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    predicted_class: str = Field(alias="class")
    probabilities: dict[str, float]


class PredictResponse(BaseModel):
    """Always a list, also for one row, so clients parse one shape."""

    request_id: str
    predictions: list[ClassPrediction]
    model_name: str
    model_version: str
    arm: str
    strategy: str


class FeedbackResponse(BaseModel):
    request_id: str
    label: str
    status: Literal["recorded", "duplicate", "conflict", "unknown_request"]
    message: str


class ErrorResponse(BaseModel):
    error: str
    detail: list[dict[str, Any]] = []


def field_name(loc: Sequence[int | str]) -> str:
    """A dotted field path from a pydantic error location, without ``body`` and branch tags."""
    parts = [str(p) for p in loc if p != "body" and p not in _BRANCH_TAGS]
    return ".".join(parts) or "body"


def error_detail(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Compact, JSON-safe validation errors: field, message, type (no echo of the whole input)."""
    return [
        {
            # A JSON syntax error's location is a character offset, not a field: the body is at fault.
            "field": "body" if e.get("type") == "json_invalid" else field_name(e.get("loc", ())),
            "msg": str(e.get("msg")),
            "type": str(e.get("type")),
        }
        for e in errors
    ]


_IDS = random.Random()  # noqa: S311 - ids, not secrets; seeded from os.urandom
os.register_at_fork(after_in_child=_IDS.seed)  # a forked worker must not repeat its parent's ids


def new_request_id() -> str:
    """A 128-bit id as 32 hex digits: 48 bits of Unix milliseconds, then 80 random bits (UUIDv7's layout).

    Request ids must be unique, not secret, so a per-process PRNG seeded from the OS is enough. The
    time prefix makes ids sort by arrival, so the prediction log's primary-key index grows at its end
    instead of at random pages: SQLite's insert cost per row halves on a log of 200,000 rows.
    """
    return f"{time.time_ns() // 1_000_000:012x}{_IDS.getrandbits(80):020x}"


def valid_request_id(value: str | None) -> bool:
    """True for a client-chosen request id the prediction log can key on."""
    return bool(value) and _REQUEST_ID.fullmatch(value or "") is not None


def contract_ranges(dataset: DatasetConfig) -> dict[str, tuple[float, float]]:
    """Feature → (valid min, valid max) from the data contract."""
    return {name: (spec.min, spec.max) for name, spec in dataset.features.items()}


def out_of_range(frame: pd.DataFrame, ranges: Mapping[str, tuple[float, float]]) -> str | None:
    """A message naming the first column with a value outside the contract, or None.

    Every protocol applies the same contract as /v1/predict: values outside the valid range are out
    of the model's scope (and absurd ones overflow inside the feature pipeline), so they are the
    client's error, never a 500. Missing values are left to the missing-value rule.
    """
    for name, (low, high) in ranges.items():
        values = frame[name].to_numpy(dtype="float64")
        bad = values[(values < low) | (values > high)]
        if bad.size:
            return f"column {name!r} must lie in [{low:g}, {high:g}] (the data contract); got {bad[0]!r}"
    return None
