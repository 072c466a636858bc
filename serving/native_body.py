"""Reading a /v1/predict body fast, without accepting anything the typed schema would refuse.

Concept: REST serving with validated schemas (C18), at the cost a model server can afford. The
pydantic models in `serving.schemas` are the contract: they generate the OpenAPI document and
name the field in every 422. But building one model object per row makes a 10,000-row batch cost
more than the whole serving budget (docs/benchmarks.md), and most bodies are valid.

So a body takes one of two paths:

- **Fast path** (every valid body the service normally gets): ``orjson`` parses it, the shape is a
  flat row or ``{"rows": [...]}``, and `serving.fast_input.ContractMatrix` checks in one pass that
  every row has exactly the contract's fields with JSON numbers inside the contract's ranges.
- **Slow path** (anything the fast path does not accept): the pydantic union validates the raw body
  and raises the usual `RequestValidationError`, so the 422 is exactly what the schema says. If the
  schema accepts what the fast path did not (a row omitting an optional field), its result is used.

The fast path only ever *accepts a subset* of what the schema accepts, so the two cannot
disagree about a valid body; tests check both paths against the schema on valid and invalid bodies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from serving.contract import RequestContract
from serving.fast_input import ContractMatrix
from serving.predict import to_matrix
from serving.schemas import ApiSchemas


class BodyParser:
    """Turns a /v1/predict body into a float matrix in contract order, or raises a 422."""

    def __init__(self, contract: RequestContract, schemas: ApiSchemas) -> None:
        self.features = list(contract.features)
        self.matrix = ContractMatrix(contract)
        self.adapter: TypeAdapter[Any] = TypeAdapter(schemas.predict_body)

    def parse(self, body: bytes) -> np.ndarray:
        """The rows of ``body`` as an ``n x features`` float64 matrix (NaN = missing).

        Raises:
            RequestValidationError: the body breaks the schema; errors name the field.
        """
        try:
            values = self.fast(orjson.loads(body))
        except orjson.JSONDecodeError:
            values = None
        return values if values is not None else self.slow(body)

    def fast(self, obj: Any) -> np.ndarray | None:
        """The matrix if ``obj`` is plainly valid, else None (the slow path decides)."""
        if type(obj) is not dict:
            return None
        if "rows" in obj:
            return self.matrix.records(obj["rows"], exact=True) if len(obj) == 1 else None
        return self.matrix.records([obj], exact=True)

    def slow(self, body: bytes) -> np.ndarray:
        """Validate with the pydantic schema: its 422, or its rows when it accepts the body."""
        try:
            parsed = self.adapter.validate_json(body)
        except ValidationError as err:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in err.errors(include_url=False)]
            raise RequestValidationError(errors) from None
        rows = getattr(parsed, "rows", None) or [parsed]
        return to_matrix([row.__dict__ for row in rows], self.features)

    def openapi_body(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request-body schema for the OpenAPI document and the component schemas it refers to."""
        schema = self.adapter.json_schema(ref_template="#/components/schemas/{model}")
        components = schema.pop("$defs", {})
        body = {"required": True, "content": {"application/json": {"schema": {**schema, "title": "Body"}}}}
        return body, components
