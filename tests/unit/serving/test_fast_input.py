"""The MLflow protocol's fast path accepts only what its precise validator accepts, with the same numbers.

Seeded dataframe_split / dataframe_records bodies, valid and mutated: whenever `fast_values`
returns a matrix, `parse_json` + `check_frame` accept the body and give the same matrix.
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest

from core.params import Params
from serving.contract import RequestContract
from serving.fast_input import SMALL_ROWS, ContractMatrix
from serving.mlflow_protocol import ProtocolError, check_frame, fast_values, parse_json

SEED = 7


def mutate(value: Any, rng: random.Random) -> Any:
    return rng.choice([str(value), True, None, 1e6, -1e6, [value], 10**30, {"v": value}])


def bodies(features: list[str], ranges: dict[str, tuple[float, float]], count: int) -> list[bytes]:
    rng = random.Random(SEED)
    out = []
    for i in range(count):
        columns = [*features, "note"] if rng.random() < 0.3 else list(features)
        rng.shuffle(columns)
        rows = []
        for _ in range(rng.randint(1, 3)):
            row = {c: (round(rng.uniform(*ranges[c]), 2) if c in ranges else "x") for c in columns}
            rows.append(row)
        if rng.random() < 0.5:
            k, name = rng.randrange(len(rows)), rng.choice(columns)
            rows[k][name] = mutate(rows[k][name], rng)
        if rng.random() < 0.1:
            del rows[0][rng.choice(features)]
        if i % 2:
            body: Any = {"dataframe_split": {"columns": columns, "data": [[r.get(c) for c in columns] for r in rows]}}
            if rng.random() < 0.1:
                body["dataframe_split"]["columns"] = [*columns[:-1], columns[0]]  # a duplicated column
        else:
            body = {"dataframe_records": rows}
        if rng.random() < 0.1:
            body["inputs"] = 1  # two format keys
        out.append(json.dumps(body).encode())
    return out


@pytest.mark.parametrize("allow_missing", [False, True])
def test_fast_path_is_a_subset_of_the_precise_validator(params: Params, allow_missing: bool) -> None:
    dataset = params.dataset.model_copy(update={"allow_missing": allow_missing})
    contract = RequestContract.from_dataset(dataset, max_rows=100)
    features, ranges = list(contract.features), contract.ranges
    matrix = ContractMatrix(contract)
    fast_hits = 0
    for body in bodies(features, ranges, 400):
        fast = fast_values(body, matrix)
        try:
            precise = check_frame(parse_json(body), contract)
        except ProtocolError:
            precise = None
        if fast is not None:
            fast_hits += 1
            assert precise is not None, body
            np.testing.assert_array_equal(fast, precise)
    assert fast_hits >= 100


def contract_of(ranges: dict[str, tuple[float, float]], allow_missing: bool, max_rows: int) -> RequestContract:
    low, high = (np.array([r[i] for r in ranges.values()], dtype="float64") for i in (0, 1))
    return RequestContract(tuple(ranges), low, high, allow_missing, ("x", "y"), max_rows)


def test_infinite_values_never_take_the_fast_path_even_without_ranges() -> None:
    matrix = ContractMatrix(contract_of({"a": (-np.inf, np.inf)}, allow_missing=False, max_rows=10))
    assert matrix.records([{"a": 1.0}], exact=True) is not None
    assert matrix.records([{"a": float("inf")}], exact=True) is None
    assert matrix.split(["a"], [[1]]) is not None
    assert matrix.split(["a", "a"], [[1, 1]]) is None  # duplicated column: the precise path decides
    assert matrix.split(["a", ["b"]], [[1, 2]]) is None  # a column name that is not a string (found by fuzzing)
    assert matrix.split(["a", {"b": 1}], [[1, 2]]) is None


@pytest.mark.parametrize("allow_missing", [False, True])
def test_few_rows_are_checked_in_python_exactly_as_numpy_checks_many(allow_missing: bool) -> None:
    """The plain-Python checks for small bodies (SMALL_ROWS) and the numpy checks accept the same matrices."""
    matrix = ContractMatrix(contract_of({"a": (0.0, 10.0), "b": (-1.0, 1.0)}, allow_missing, max_rows=100))
    edge: list[Any] = [0, 10, 0.0, 10.0, -1, 1, 5.5, -0.0, 10.000000000000002, -1.0000001, 11, -2, 10**30, 10**400]
    edge += [float("inf"), float("-inf"), None, True, False, "1", [1]]
    rng = random.Random(SEED)
    accepted = 0
    for _ in range(2000):
        rows = [[rng.choice(edge), rng.choice(edge)] for _ in range(rng.randint(1, 3))]
        small = matrix._checked(rows)
        assert len(rows) <= SMALL_ROWS
        numpy = matrix._checked_numpy(rows)
        assert (small is None) == (numpy is None), rows
        if small is not None:
            accepted += 1
            np.testing.assert_array_equal(small, numpy)
    assert accepted >= 50
