"""The fast /v1/predict body reader accepts only what the typed schema accepts, with the same numbers.

Property, over a seeded set of valid bodies and of mutations of them: whenever the fast path
returns a matrix, the pydantic schema accepts the body and yields the same matrix; whenever the
schema rejects a body, `parse` raises the schema's own errors. Run for a contract with and
without ``allow_missing``.
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from core.params import Params
from serving.contract import RequestContract
from serving.native_body import BodyParser
from serving.schemas import build_schemas

SEED = 20261123


def parser_for(params: Params, allow_missing: bool) -> BodyParser:
    dataset = params.dataset.model_copy(update={"allow_missing": allow_missing})
    contract = RequestContract.from_dataset(dataset, max_rows=50)
    return BodyParser(contract, build_schemas(contract))


def valid_row(parser: BodyParser, rng: random.Random) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, low, high in zip(parser.features, parser.matrix.low, parser.matrix.high, strict=True):
        row[name] = round(rng.uniform(low, high), 2) if rng.random() < 0.8 else int(np.ceil(low))
    return row


MUTATIONS = (
    lambda row, name, rng: row | {name: str(row[name])},
    lambda row, name, rng: row | {name: True},
    lambda row, name, rng: row | {name: None},
    lambda row, name, rng: row | {name: 1e6},
    lambda row, name, rng: row | {name: -1e6},
    lambda row, name, rng: row | {name: [row[name]]},
    lambda row, name, rng: row | {"colour": 1.0},
    lambda row, name, rng: {k: v for k, v in row.items() if k != name},
    lambda row, name, rng: row | {name: 10**30},
)


def bodies(parser: BodyParser, count: int) -> list[bytes]:
    rng = random.Random(SEED)
    out: list[bytes] = []
    for i in range(count):
        rows = [valid_row(parser, rng) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.6:  # mutate one field of one row
            k, name = rng.randrange(len(rows)), rng.choice(parser.features)
            rows[k] = rng.choice(MUTATIONS)(rows[k], name, rng)
        shape = i % 4
        body: Any = rows[0] if shape == 0 else {"rows": rows}
        if shape == 3:
            body = rng.choice([{"rows": []}, {"rows": rows, "x": 1}, rows, {"rows": rows * 20}, {"rows": rows}])
        out.append(json.dumps(body).encode())
    out += [b"", b"{", b"NaN", b'{"rows": [{"sepal_length": Infinity}]}', b"[]", b"null", b'"row"']
    return out


@pytest.mark.parametrize("allow_missing", [False, True])
def test_fast_path_accepts_a_subset_of_the_schema_with_identical_values(params: Params, allow_missing: bool) -> None:
    parser = parser_for(params, allow_missing)
    fast_hits = schema_accepts = 0
    for body in bodies(parser, 400):
        try:
            expected: np.ndarray | None = parser.slow(body)
        except RequestValidationError:
            expected = None
        try:
            fast = parser.fast(json.loads(body))
        except ValueError:  # not JSON at all: only the schema path can answer
            fast = None
        if fast is not None:
            fast_hits += 1
            assert expected is not None, body  # fast accepted what the schema refuses
            np.testing.assert_array_equal(fast, expected)
        schema_accepts += expected is not None
        if expected is None:
            with pytest.raises(RequestValidationError):
                parser.parse(body)
        else:
            np.testing.assert_array_equal(parser.parse(body), expected)
    assert fast_hits >= 100  # the fast path is really taken for ordinary valid bodies
    assert schema_accepts >= fast_hits


def test_errors_are_the_schemas_own_with_the_field_path(params: Params) -> None:
    parser = parser_for(params, allow_missing=False)
    row = {name: float(np.ceil(low)) for name, low in zip(parser.features, parser.matrix.low, strict=True)}
    body = json.dumps({"rows": [row, row | {parser.features[1]: "7"}]}).encode()
    with pytest.raises(RequestValidationError) as caught:
        parser.parse(body)
    with pytest.raises(ValidationError) as direct:
        parser.adapter.validate_json(body)
    assert [e["loc"] for e in caught.value.errors()] == [("body", *e["loc"]) for e in direct.value.errors()]
    assert caught.value.errors()[0]["loc"][-3:] == ("rows", 1, parser.features[1])


def test_missing_values_become_nan_only_when_the_contract_allows_them(params: Params) -> None:
    names = params.dataset.feature_names
    row = {name: (spec.min + spec.max) / 2 for name, spec in params.dataset.features.items()} | {names[0]: None}
    body = json.dumps(row).encode()
    values = parser_for(params, allow_missing=True).parse(body)
    assert np.isnan(values[0, 0])
    assert values.shape == (1, len(row))
    with pytest.raises(RequestValidationError):
        parser_for(params, allow_missing=False).parse(body)


def test_openapi_body_refers_to_documented_components(params: Params) -> None:
    body, components = parser_for(params, allow_missing=False).openapi_body()
    schema = body["content"]["application/json"]["schema"]
    refs = {option["$ref"].rsplit("/", 1)[1] for option in schema["oneOf"]}
    assert refs == {"PredictRow", "PredictBatch", "PredictEntityRow", "PredictEntityBatch"}  # entity rows: by id
    assert refs <= set(components)


GROUP_VALUES = ("site-a", "site b", "Ünïcode_1", None, "", "x" * 65, "x" * 64, "site\n", "a\tb", 3, True, ["site-a"])


def _schema_groups(parser: BodyParser, body: bytes) -> tuple[np.ndarray, tuple[Any, ...]] | None:
    """What the pydantic schema makes of a body: its matrix and each row's group, or None when it refuses."""
    try:
        parsed = parser.adapter.validate_json(body)
    except ValidationError:
        return None
    rows = getattr(parsed, "rows", None) or [parsed]
    return parser.slow(body), tuple(getattr(row, "source") for row in rows)


def test_a_row_may_name_its_group_which_is_returned_beside_the_features_never_in_them(params: Params) -> None:
    parser = parser_for(params, allow_missing=False)
    assert parser.group == params.dataset.group_column == "source"
    rng = random.Random(SEED)
    accepted = refused = 0
    for i in range(300):
        rows = [valid_row(parser, rng) for _ in range(rng.randint(1, 12))]  # up to 12: both matrix paths
        for row in rows:
            if rng.random() < 0.7:
                row["source"] = rng.choice(GROUP_VALUES)
        if i % 5 == 0:  # and sometimes a broken feature beside the group
            k, name = rng.randrange(len(rows)), rng.choice(parser.features)
            rows[k] = rng.choice(MUTATIONS)(rows[k], name, rng)
        body = json.dumps(rows[0] if i % 2 else {"rows": rows}).encode()
        expected = _schema_groups(parser, body)
        if expected is None:
            refused += 1
            with pytest.raises(RequestValidationError):
                parser.parse_request(body)
            continue
        accepted += 1
        values, groups = parser.parse_request(body)
        np.testing.assert_array_equal(values, expected[0])  # the group is not a column of the matrix
        assert values.shape[1] == len(parser.features)
        assert groups == (expected[1] if any(g is not None for g in expected[1]) else None)
    assert accepted >= 50
    assert refused >= 50


def test_a_bad_group_is_a_422_naming_the_field(params: Params) -> None:
    parser = parser_for(params, allow_missing=False)
    row = {name: float(np.ceil(low)) for name, low in zip(parser.features, parser.matrix.low, strict=True)}
    for bad in (3, "x" * 65, "site\n", ""):
        with pytest.raises(RequestValidationError) as caught:
            parser.parse_request(json.dumps({"rows": [row, row | {"source": bad}]}).encode())
        assert caught.value.errors()[0]["loc"][-3:] == ("rows", 1, "source")
    assert parser.parse_request(json.dumps(row).encode())[1] is None  # no group named: nothing to log
    assert parser.parse_request(json.dumps(row | {"source": "site-a"}).encode())[1] == ("site-a",)


def test_without_a_group_column_the_field_is_refused_like_any_unknown_one(params: Params) -> None:
    dataset = params.dataset.model_copy(update={"group_column": None})
    contract = RequestContract.from_dataset(dataset, max_rows=50)
    parser = BodyParser(contract, build_schemas(contract))
    row = {name: float(np.ceil(low)) for name, low in zip(parser.features, parser.matrix.low, strict=True)}
    with pytest.raises(RequestValidationError) as caught:
        parser.parse_request(json.dumps(row | {"source": "site-a"}).encode())
    assert caught.value.errors()[0]["loc"][-1] == "source"
