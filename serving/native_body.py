"""Reading a /v1/predict body fast, without accepting anything the typed schema would refuse.

Concept: REST serving with validated schemas (C18), at the cost a model server can afford. The
pydantic models in `serving.schemas` are the contract: they generate the OpenAPI document and
name the field in every 422. But building one model object per row makes a 10,000-row batch cost
more than the whole serving budget (docs/benchmarks.md), and most bodies are valid.

So a body takes one of two paths:

- **Fast path** (every valid body the service normally gets): ``orjson`` parses it, the shape is a
  flat row or ``{"rows": [...]}``, and `serving.fast_input.ContractMatrix` checks in one pass that
  every row has exactly the contract's fields with JSON numbers inside the contract's ranges.
- **Rows with a group** (``dataset.group_column``, e.g. ``source``): an optional string per row that is
  not a model input. `BodyParser.parse_request` takes it off each row (checked against the same
  pattern as the schema), reads the features through the fast path and returns the groups beside the
  matrix, for the prediction log (fairness per group, C58).
- **Entity rows** (``{"specimen_id": ...}`` or a batch of them, `serving.entity_features`): tried only once
  the fast path has refused the body, after a cheap look for the entity key, so feature bodies pay nothing
  for them. `BodyParser.parse_predict` returns their ids (an `EntityRequest`); a body mixing entity and
  feature rows is a 422 naming the first row that differs, anything else the schema's 422.
- **Slow path** (anything the fast path does not accept): the pydantic union validates the raw body
  and raises the usual `RequestValidationError`, so the 422 is exactly what the schema says. If the
  schema accepts what the fast path did not (a row omitting an optional field), its result is used.

The fast path only ever *accepts a subset* of what the schema accepts, so the two cannot
disagree about a valid body; tests check both paths against the schema on valid and invalid bodies.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from pipelines.feature_history import ENTITY_KEY
from serving.contract import GROUP_PATTERN, RequestContract
from serving.entity_features import EntityRequest, valid_entity_id
from serving.fast_input import ContractMatrix
from serving.predict import to_matrix
from serving.schemas import ApiSchemas

Groups = tuple[str | None, ...] | None  # one per row; None when no row names a group
_GROUP = re.compile(GROUP_PATTERN)


def _named(groups: list[str | None]) -> Groups:
    """The rows' groups, or None when no row names one (nothing to log)."""
    return tuple(groups) if any(g is not None for g in groups) else None


class BodyParser:
    """Turns a /v1/predict body into a float matrix in contract order, or raises a 422."""

    def __init__(self, contract: RequestContract, schemas: ApiSchemas) -> None:
        self.features = list(contract.features)
        self.group = contract.group
        self.matrix = ContractMatrix(contract)
        self.max_rows = contract.max_rows
        self.adapter: TypeAdapter[Any] = TypeAdapter(schemas.predict_body)

    def parse(self, body: bytes) -> np.ndarray:
        """The rows of ``body`` as an ``n x features`` float64 matrix (NaN = missing); a row's group is not kept.

        Raises:
            RequestValidationError: the body breaks the schema; errors name the field.
        """
        return self.parse_request(body)[0]

    def parse_request(self, body: bytes) -> tuple[np.ndarray, Groups]:
        """`parse`, and each row's group (``dataset.group_column``) when any row names one.

        For endpoints that take feature rows only: a body of entity rows is a 422 naming the entity key.

        Raises:
            RequestValidationError: the body breaks the schema (a group that is not a short string included).
        """
        parsed = self.parse_predict(body)
        if isinstance(parsed, EntityRequest):
            raise RequestValidationError(
                [{"loc": ("body", ENTITY_KEY), "msg": "this endpoint takes the features, not an entity id",
                  "type": "entity_not_supported"}]
            )  # fmt: skip
        return parsed

    def parse_predict(self, body: bytes) -> tuple[np.ndarray, Groups] | EntityRequest:
        """/v1/predict's body: feature rows as `parse_request` reads them, or entity rows as their ids.

        Raises:
            RequestValidationError: the body breaks the schema, or mixes entity and feature rows.
        """
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            obj = None
        values = self.fast(obj)
        if values is not None:
            return values, None
        if self.group is not None and (grouped := self._fast_grouped(obj)) is not None:
            return grouped
        if names_entities(obj):  # only bodies the fast path refused pay for this look
            return self._entities(obj, body)
        return self._slow_grouped(body)

    def _entities(self, obj: dict[str, Any], body: bytes) -> EntityRequest:
        """The ids of a body of entity rows; a mixed body or an invalid id is a 422 naming the field."""
        batch = "rows" in obj
        rows = obj["rows"] if batch else [obj]
        if (
            type(rows) is list
            and 1 <= len(rows) <= self.max_rows
            and (not batch or len(obj) == 1)
            and all(type(row) is dict and len(row) == 1 and valid_entity_id(row.get(ENTITY_KEY)) for row in rows)
        ):
            return EntityRequest(tuple(row[ENTITY_KEY] for row in rows), batch)
        if batch and type(rows) is list:
            kinds = [type(row) is dict and ENTITY_KEY in row for row in rows]
            if not all(kinds):
                i = kinds.index(not kinds[0])
                first, this = ("an entity row", "a feature row") if kinds[0] else ("a feature row", "an entity row")
                raise RequestValidationError(
                    [{"loc": ("body", "rows", i, ENTITY_KEY), "type": "mixed_rows",
                      "msg": f"a body's rows are all feature rows or all entity rows ({{{ENTITY_KEY!r}: ...}}); "
                             f"rows[0] is {first}, rows[{i}] is {this}"}]
                )  # fmt: skip
        rows = self._validated_rows(body)  # the schema's 422 names the field
        return EntityRequest(tuple(getattr(row, ENTITY_KEY) for row in rows), batch)

    def _fast_grouped(self, obj: Any) -> tuple[np.ndarray, Groups] | None:
        """The rows of a plainly valid body whose rows may carry the group field, or None."""
        if type(obj) is not dict:
            return None
        rows = obj["rows"] if "rows" in obj and len(obj) == 1 else [obj]
        if type(rows) is not list or not all(type(row) is dict for row in rows):
            return None
        group, groups, plain = self.group, [], []
        for row in rows:
            value = row.get(group)
            if value is not None and (type(value) is not str or not _GROUP.fullmatch(value)):
                return None  # the schema names the field in its 422
            groups.append(value)
            plain.append({k: v for k, v in row.items() if k != group} if group in row else row)
        values = self.matrix.records(plain, exact=True)
        if values is None:
            return None
        return values, _named(groups)

    def _slow_grouped(self, body: bytes) -> tuple[np.ndarray, Groups]:
        rows = self._validated_rows(body)
        values = to_matrix([row.__dict__ for row in rows], self.features)
        return values, None if self.group is None else _named([getattr(row, self.group) for row in rows])

    def fast(self, obj: Any) -> np.ndarray | None:
        """The matrix if ``obj`` is plainly valid, else None (the slow path decides)."""
        if type(obj) is not dict:
            return None
        if "rows" in obj:
            return self.matrix.records(obj["rows"], exact=True) if len(obj) == 1 else None
        return self.matrix.records([obj], exact=True)

    def slow(self, body: bytes) -> np.ndarray:
        """Validate with the pydantic schema: its 422, or its rows when it accepts the body."""
        return to_matrix([row.__dict__ for row in self._validated_rows(body)], self.features)

    def _validated_rows(self, body: bytes) -> list[Any]:
        try:
            parsed = self.adapter.validate_json(body)
        except ValidationError as err:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in err.errors(include_url=False)]
            raise RequestValidationError(errors) from None
        return list(getattr(parsed, "rows", None) or [parsed])

    def openapi_body(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request-body schema for the OpenAPI document and the component schemas it refers to."""
        schema = self.adapter.json_schema(ref_template="#/components/schemas/{model}")
        components = schema.pop("$defs", {})
        body = {"required": True, "content": {"application/json": {"schema": {**schema, "title": "Body"}}}}
        return body, components


def names_entities(obj: Any) -> bool:
    """Does this parsed body name an entity: a row with the entity key, or a batch with any such row?"""
    if type(obj) is not dict:
        return False
    if "rows" not in obj:
        return ENTITY_KEY in obj
    rows = obj["rows"]
    return type(rows) is list and any(type(row) is dict and ENTITY_KEY in row for row in rows)
