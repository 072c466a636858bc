"""Turning plainly valid JSON rows into the model's float matrix in one cheap pass.

Concept: validation at serving speed (C18, C19). Every protocol has a precise, slower validator
(pydantic for /v1/predict, pandas + column checks for /invocations, both derived from the
`serving.contract.RequestContract` this matrix is built from) that produces the error message
naming the field. Most bodies are valid, and for those a single pass is enough: every row
has every contract feature, every value is a JSON number (``null`` only when missing values are
allowed; ``true`` is not a number), and numpy checks the contract's ranges on the whole matrix.
`ContractMatrix` does that pass and answers None for anything else, so the caller falls back to
its precise validator: the fast path only ever accepts a subset of what the precise one accepts,
and tests hold the two side by side on generated valid and invalid bodies.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from serving.contract import RequestContract

SMALL_ROWS = 8  # up to this many rows the checks run in plain Python (faster than numpy's per-call cost)
_NUMBER = (float, int)  # compared with type(v) is ...: bool and numeric strings are not numbers here


class ContractMatrix:
    """Rows → ``n x features`` float64 matrix in contract order, or None when not plainly valid."""

    def __init__(self, contract: RequestContract) -> None:
        self.contract = contract
        self.features = list(contract.features)
        self.fields = frozenset(contract.features)
        self.max_rows = contract.max_rows
        self.kinds: tuple[type, ...] = (*_NUMBER, type(None)) if contract.allow_missing else _NUMBER
        self.low, self.high = contract.low, contract.high
        self.bounds = list(contract.ranges.values())

    def records(self, rows: Any, *, exact: bool) -> np.ndarray | None:
        """A list of row objects; ``exact``: no other keys allowed (else extra keys are ignored)."""
        if type(rows) is not list or not 1 <= len(rows) <= self.max_rows:
            return None
        fields = self.fields
        if exact:
            if not all(type(row) is dict and row.keys() == fields for row in rows):
                return None
        elif not all(type(row) is dict and fields <= row.keys() for row in rows):
            return None
        names = self.features
        return self._checked([[row[f] for f in names] for row in rows])

    def split(self, columns: Any, data: Any) -> np.ndarray | None:
        """A pandas "split" table: a list of column names and a list of equally long row lists."""
        if type(columns) is not list or type(data) is not list or not 1 <= len(data) <= self.max_rows:
            return None
        if not all(type(c) is str for c in columns):
            return None
        if len(set(columns)) != len(columns) or not self.fields <= set(columns):
            return None
        width, where = len(columns), [columns.index(f) for f in self.features]
        if not all(type(row) is list and len(row) == width for row in data):
            return None
        return self._checked([[row[i] for i in where] for row in data])

    def _checked(self, matrix: list[list[Any]]) -> np.ndarray | None:
        if len(matrix) <= SMALL_ROWS:
            return np.array(matrix, dtype="float64") if self._small_ok(matrix) else None
        return self._checked_numpy(matrix)

    def _checked_numpy(self, matrix: list[list[Any]]) -> np.ndarray | None:
        kinds = self.kinds
        if not all(type(v) in kinds for row in matrix for v in row):
            return None
        try:
            values = np.array(matrix, dtype="float64")  # None -> NaN
        except OverflowError:  # an integer beyond float range: the precise validator says so
            return None
        return values if self.contract.problem(values) is None else None

    def _small_ok(self, matrix: list[list[Any]]) -> bool:
        """`RequestContract.problem`'s checks, value by value: for a few rows numpy's fixed cost per call
        is more than the whole loop. Each value is compared as the float64 numpy would make of it."""
        kinds, bounds = self.kinds, self.bounds
        for row in matrix:
            for v, (low, high) in zip(row, bounds, strict=True):
                if type(v) not in kinds:
                    return False
                if v is None:  # allowed by ``kinds``: NaN for the imputer, like the numpy path
                    continue
                try:
                    x = float(v)
                except OverflowError:  # an integer beyond float range: the precise validator says so
                    return False
                if not low <= x <= high or math.isinf(x):
                    return False
        return True
