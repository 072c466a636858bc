"""Typed request and response models of the native API, built from the request contract.

Concept: REST serving with validated schemas (C18). The feature fields are not written by hand:
`build_schemas` turns the `serving.contract.RequestContract` (``dataset:`` in params.yaml) into
pydantic models with one typed field per feature, named exactly like the training column, with the
contract's range as ``ge``/``le``. So the API, its OpenAPI document and the data-validation suite can
never disagree about what a valid row is, and a value out of range is a 422 that names the field
instead of a silent bad prediction. Values must be finite JSON numbers (strict: ``"5.1"`` and ``true`` are type errors);
a feature may be ``null`` only when ``allow_missing`` is set (the model's imputer fills it).

One row is a flat object; a batch is ``{"rows": [...]}``. A row may also name an entity instead of
sending its features (``{"specimen_id": "sp-00360"}``, `serving.entity_features`): the service reads them
from the feature store. A body is all feature rows or all entity rows. A *callable discriminator* picks the
branch from the body's shape before validating, so an invalid body gets the errors of the branch
it meant, not a confusing union of all four.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model
from pydantic.config import JsonDict

from pipelines.feature_history import ENTITY_KEY
from serving.contract import GROUP_PATTERN, RequestContract
from serving.entity_features import ENTITY_ID_PATTERN

ENTITY_DESCRIPTION = (
    "The entity to score: its latest features are read from the feature store's online store (they must have "
    "been measured within MLOPS_FEATURE_MAX_AGE_S). Letters, digits and - _ . :, at most 64 characters."
)
GROUP_DESCRIPTION = (
    "Optional group of the row (dataset.group_column, e.g. a site): not a model input, logged beside the prediction "
    "so that fairness can be judged per group on labelled production rows (C58)."
)


def _branch(body: Any) -> str:
    """The discriminator: a body with a ``rows`` key is a batch, anything else is one row; a row (a batch's
    first row) with the entity key is an entity row."""
    if not isinstance(body, Mapping):
        return "row"
    if "rows" not in body:
        return "entity_row" if ENTITY_KEY in body else "row"
    rows = body["rows"]
    first = rows[0] if isinstance(rows, list) and rows else None
    return "entity_batch" if isinstance(first, Mapping) and ENTITY_KEY in first else "batch"


def _feature_field(spec_min: float, spec_max: float, allow_missing: bool) -> tuple[Any, Any]:
    number = Annotated[float, Field(ge=spec_min, le=spec_max, strict=True, allow_inf_nan=False)]
    return (number | None, None) if allow_missing else (number, ...)


@dataclass(frozen=True)
class ApiSchemas:
    """The models generated for one dataset contract."""

    row: type[BaseModel]
    batch: type[BaseModel]
    predict_body: Any  # discriminated union of row | batch | entity row | entity batch, usable as a FastAPI body type
    feedback: type[BaseModel]


def example_row(contract: RequestContract, at: float = 0.5) -> JsonDict:
    """A valid row for the docs' examples: each feature at the share ``at`` of its contract range, one decimal."""
    return {
        name: min(max(round(low + at * (high - low), 1), low), high) for name, (low, high) in contract.ranges.items()
    }


def build_schemas(contract: RequestContract) -> ApiSchemas:
    """Build the row, batch and feedback models for a request contract (``contract.max_rows``: batch limit).

    Each model carries an example valid under the contract, shown by /docs ("Try it out") and /redoc.
    """
    fields = {name: _feature_field(low, high, contract.allow_missing) for name, (low, high) in contract.ranges.items()}
    if contract.group is not None:
        fields[contract.group] = (str | None, Field(None, pattern=GROUP_PATTERN, description=GROUP_DESCRIPTION))
    one = example_row(contract)
    row = create_model(  # type: ignore[call-overload]
        "PredictRow",
        __config__=ConfigDict(extra="forbid", title="One row of features", json_schema_extra={"examples": [one]}),
        **fields,
    )
    batch = create_model(
        "PredictBatch",
        __config__=ConfigDict(
            extra="forbid",
            title="A batch of rows",
            json_schema_extra={"examples": [{"rows": [one, example_row(contract, 0.25)]}]},
        ),
        rows=(list[row], Field(min_length=1, max_length=contract.max_rows)),  # type: ignore[valid-type]
    )
    entity_example: JsonDict = {ENTITY_KEY: "sp-00360"}
    entity_row = create_model(  # type: ignore[call-overload]
        "PredictEntityRow",
        __config__=ConfigDict(
            extra="forbid", title="One row named by its entity id", json_schema_extra={"examples": [entity_example]}
        ),
        **{ENTITY_KEY: (str, Field(pattern=ENTITY_ID_PATTERN, description=ENTITY_DESCRIPTION))},
    )
    entity_batch = create_model(
        "PredictEntityBatch",
        __config__=ConfigDict(
            extra="forbid",
            title="A batch of rows named by their entity ids",
            json_schema_extra={"examples": [{"rows": [entity_example, {ENTITY_KEY: "sp-00361"}]}]},
        ),
        rows=(list[entity_row], Field(min_length=1, max_length=contract.max_rows)),  # type: ignore[valid-type]
    )
    body = Annotated[
        Annotated[row, Tag("row")]  # type: ignore[valid-type]
        | Annotated[batch, Tag("batch")]  # type: ignore[valid-type]
        | Annotated[entity_row, Tag("entity_row")]  # type: ignore[valid-type]
        | Annotated[entity_batch, Tag("entity_batch")],  # type: ignore[valid-type]
        Discriminator(_branch),
    ]
    label: Any = Literal[contract.classes]
    feedback_example: JsonDict = {"request_id": "019af3c2d1e8a41b2c3d4e5f60718293:0", "label": contract.classes[0]}
    feedback = create_model(
        "FeedbackRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [feedback_example]}),
        request_id=(str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$", description="An id from a predict response.")),
        label=(label, Field(description="The true class of that row.")),
    )
    return ApiSchemas(row, batch, body, feedback)


class ClassPrediction(BaseModel):
    """The answer for one row; ``id`` is what /v1/feedback takes for this row."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    predicted_class: str = Field(alias="class")
    probabilities: dict[str, float]
    entity_id: str | None = Field(None, description="Rows sent as an entity id only: the id scored.")
    features_measured_at: datetime | None = Field(
        None, description="Rows sent as an entity id only: when the features read from the store were measured (UTC)."
    )


class PredictResponse(BaseModel):
    """Always a list, also for one row, so clients parse one shape."""

    request_id: str
    predictions: list[ClassPrediction]
    model_name: str
    model_version: str
    arm: str
    strategy: str = Field(description="The routing strategy, or 'forced' / 'pinned' when the request chose its model.")
    feedback_token: str = Field(description="Send it back in X-Feedback-Token with this request's feedback.")


class FeedbackResponse(BaseModel):
    request_id: str
    label: str
    status: Literal["recorded", "duplicate", "conflict", "unknown_request"]
    message: str


class Readiness(BaseModel):
    """What /readyz answers (200 when ready, 503 with the same report when not)."""

    ready: bool
    models: dict[str, dict[str, str]] = Field(
        description="alias -> {version, run_id, runtime} of the loaded models; runtime: onnx or sklearn"
    )
    serving_runtime: str = Field(description="MLOPS_SERVING_RUNTIME: auto (ONNX when the version has it) or sklearn")
    degraded: bool
    last_registry_error: str | None
    routing: dict[str, Any] | None
    routing_error: str | None
