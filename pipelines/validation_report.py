"""The validation report: what a failed data contract looks like to the person who must fix it.

Concept: data validation (C06). Great Expectations returns a deep, engine-shaped result; nobody
should have to read that to learn that a column went missing or a value is out of range. This
module turns each failed expectation into an ``ExpectationFailure`` (expectation, column, a few
example bad values, one sentence of detail), collects them in a ``ValidationResult`` whose
``summary()`` reads as a short report and whose ``to_dict()`` is what the DVC validate stage
stores, and raises ``DataValidationError`` so training stops on invalid data.

The wording is aimed at a data owner: numpy scalars and NaN become plain JSON values, examples are
deduplicated and capped, failures keep suite order (a column's type check first), and a metric GX
could not compute on a text column points to the type check instead of a stack trace.
``pipelines.validation`` builds and runs the suite and re-exports the public names defined here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import great_expectations as gx

# The type vocabulary of the suite's type checks; the report needs it to say "not numbers" or "not text".
NUMERIC_TYPES = ["float64", "float32", "int64", "int32", "Float64", "Int64", "float", "int"]
TEXT_TYPES = ["object", "str", "string"]
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ExpectationFailure:
    """One expectation that the batch did not meet."""

    expectation: str
    column: str | None
    examples: list[Any]
    detail: str

    def line(self) -> str:
        where = f"column {self.column!r}" if self.column else "the table"
        # Table-level column and row-count failures already spell out their values in the detail.
        known = [v for v in self.examples if v is not None] if self.column or "compound" in self.expectation else []
        shown = f"; examples: {', '.join(map(repr, known))}" if known else ""
        return f"{self.expectation} on {where}: {self.detail}{shown}"


@dataclass
class ValidationResult:
    """The outcome of validating one batch against the data contract."""

    success: bool
    failures: list[ExpectationFailure]
    statistics: dict[str, int]
    docs_path: Path | None = None
    batch: str = "batch"
    suite: str = ""

    def summary(self) -> str:
        """A readable multi-line report: verdict, then one line per failed expectation."""
        total = self.statistics.get("evaluated", 0)
        if self.success:
            head = f"PASSED: {self.batch!r} meets all {total} expectations of suite {self.suite!r}"
        else:
            head = f"FAILED: {self.batch!r} broke {len(self.failures)} of {total} expectations of suite {self.suite!r}"
        lines = [head, *(f"  - {f.line()}" for f in self.failures)]
        if self.docs_path:
            lines.append(f"Data Docs: {self.docs_path}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the DVC validate stage stores it)."""
        return {
            "success": self.success,
            "batch": self.batch,
            "suite": self.suite,
            "failures": [asdict(f) for f in self.failures],
            "statistics": self.statistics,
            "docs_path": str(self.docs_path) if self.docs_path else None,
        }

    def raise_for_failures(self) -> None:
        """Raise DataValidationError unless every expectation passed."""
        if not self.success:
            raise DataValidationError(self)


class DataValidationError(ValueError):
    """A batch broke the data contract; ``result`` holds the full report."""

    def __init__(self, result: ValidationResult) -> None:
        super().__init__(
            f"{result.summary()}\nFix the data at its source, or, if the contract itself changed, "
            "update `dataset` in params.yaml in a reviewed commit."
        )
        self.result = result


def _plain(value: Any) -> Any:
    """numpy scalars to Python, NaN to None: examples must be JSON-ready."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _examples(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for v in map(_plain, values):
        if v not in seen:
            seen.append(v)
        if len(seen) == MAX_EXAMPLES:
            break
    return seen


def _error_message(info: dict[str, Any]) -> str:
    """The gist (last line) of the exception GX caught while computing a metric."""
    entries = [info, *(v for v in info.values() if isinstance(v, dict))]  # flat, or one entry per metric
    messages = [str(e["exception_message"]).strip() for e in entries if e.get("exception_message")]
    return messages[0].splitlines()[-1][:200] if messages else "unknown error"


# What a value-level expectation found, phrased for a data owner (filled from the expectation's kwargs).
_PROBLEMS = {
    "expect_column_values_to_be_between": "outside {span}",
    "expect_column_values_to_be_in_set": "not in {value_set}",
    "expect_column_values_to_not_be_null": "null",
    "expect_compound_columns_to_be_unique": "repeated (each appears more than once)",
}
NOT_EVALUATED = "could not be evaluated"


# A CSV's header is line 1, so the data row at 0-based index i is on line i + 2 of the file.
FIRST_DATA_LINE = 2


def _failure(r: Any, first_line: int | None = None) -> ExpectationFailure:
    """Turn one failed GX expectation result into a readable failure.

    ``first_line``: the file line of the frame's first row (``FIRST_DATA_LINE`` for a CSV read whole), so
    offending rows are named by the line an editor shows; None (a frame not read from a file): by row index.
    """
    kind, kw, res = r.expectation_config.type, r.expectation_config.kwargs, r.result or {}
    column = kw.get("column")
    if r.exception_info and not res:
        return ExpectationFailure(kind, column, [], f"{NOT_EVALUATED} ({_error_message(r.exception_info)})")
    observed, span = _plain(res.get("observed_value")), f"{kw.get('min_value')}..{kw.get('max_value')}"
    if kind == "expect_table_columns_to_match_set":
        mismatch = res.get("details", {}).get("mismatched", {})
        missing, extra = sorted(mismatch.get("missing", [])), sorted(mismatch.get("unexpected", []))
        parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else [])
        return ExpectationFailure(kind, None, [*missing, *extra], "; ".join(parts) or f"columns are {observed}")
    if kind == "expect_table_row_count_to_be_between":
        return ExpectationFailure(kind, None, [observed], f"{observed} rows, expected {span}")
    if kind == "expect_column_mean_to_be_between":
        value = None if observed is None else round(observed, 4)
        return ExpectationFailure(kind, column, [value], f"batch mean {value}, expected {span}")
    bad = list(res.get("partial_unexpected_list") or [])
    noun = "rows" if kind == "expect_compound_columns_to_be_unique" else "values"
    if kind == "expect_column_values_to_be_in_type_list":
        problem = "not numbers" if kw.get("type_list") == NUMERIC_TYPES else "not text"
        bad.sort(key=_is_number)  # text that does not even parse as a number is the telling example
    else:
        problem = _PROBLEMS.get(kind, "unexpected").format(span=span, value_set=kw.get("value_set"))
    if noun == "rows":
        bad = bad[:2]  # whole rows are long
    examples = _examples(bad)
    indices = [int(i) for i in (res.get("partial_unexpected_index_list") or [])[:MAX_EXAMPLES]]
    if not indices:
        where = ""
    elif first_line is None:
        where = f" (first at rows {', '.join(map(str, indices))})"
    else:
        where = f" (first at file lines {', '.join(str(i + first_line) for i in indices)}; the header is line 1)"
    count, total = res.get("unexpected_count", 0), res.get("element_count", 0)
    return ExpectationFailure(kind, column, examples, f"{count} of {total} {noun} {problem}{where}")


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _readable(failures: list[ExpectationFailure], suite: gx.ExpectationSuite) -> list[ExpectationFailure]:
    """Failures in suite order (a column's type check first) with text-column errors explained."""
    order = {(e.expectation_type, getattr(e, "column", None)): i for i, e in enumerate(suite.expectations)}
    texty = {f.column for f in failures if f.expectation == "expect_column_values_to_be_in_type_list"}
    note = "not computable: the column holds text (see the type check)"
    return [
        ExpectationFailure(f.expectation, f.column, f.examples, note)
        if f.column in texty and f.detail.startswith(NOT_EVALUATED)
        else f
        for f in sorted(failures, key=lambda f: order.get((f.expectation, f.column), len(order)))
    ]
