"""Data validation with Great Expectations: the data contract, checked on every batch.

Concept: data validation (C06) and data quality as code (C07). The expectation suite is not
hand-written JSON: ``build_suite`` derives it from the ``dataset`` section of params.yaml (columns,
types, nulls, ranges, classes, row count, duplicates, a sanity range for each mean), so the rules
are versioned and reviewed with the code and work for any iris-style dataset. ``validate_frame``
runs the suite through a GX 1.x validation definition and checkpoint and turns the result into a
small dataclass whose ``summary()`` names each failed expectation, its column and example bad
values: a data owner can act on it without reading a traceback. Training calls
``raise_for_failures()`` first, so invalid data never reaches a model.

Each call builds an in-memory (ephemeral) GX context: fast, and safe to call again in the same
process. With ``docs_dir`` the validation results are stored as JSON under ``docs_dir/validations``
and rendered as Data Docs under ``docs_dir/data_docs/local_site``, so the HTML index lists every
run, across processes, and nothing is written to /tmp. great_expectations takes seconds to import,
so it is imported inside the functions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

    from pipelines.params import DatasetConfig

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


def build_suite(cfg: DatasetConfig, columns: list[str]) -> gx.ExpectationSuite:
    """The expectation suite for a batch with these columns, derived from the dataset contract.

    Column-level expectations are added only for contract columns that are present: a missing
    column is reported once, by the column-set expectation, instead of as a cascade of errors.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    present = set(columns)
    expected = [*cfg.required_columns, *([cfg.group_column] if cfg.group_column in present else [])]
    exps: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(column_set=expected, exact_match=True),
        gxe.ExpectTableRowCountToBeBetween(min_value=cfg.row_count.min, max_value=cfg.row_count.max),
    ]
    for name, spec in cfg.features.items():
        if name not in present:
            continue
        exps.append(gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=NUMERIC_TYPES))
        if not cfg.allow_missing:
            exps.append(gxe.ExpectColumnValuesToNotBeNull(column=name))
        exps.append(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=spec.min, max_value=spec.max))
        if spec.mean is not None:  # batch-level sanity: catches unit mix-ups every row hides
            exps.append(gxe.ExpectColumnMeanToBeBetween(column=name, min_value=spec.mean[0], max_value=spec.mean[1]))
    if cfg.target in present:
        exps += [
            gxe.ExpectColumnValuesToBeInTypeList(column=cfg.target, type_list=TEXT_TYPES),
            gxe.ExpectColumnValuesToNotBeNull(column=cfg.target),
            gxe.ExpectColumnValuesToBeInSet(column=cfg.target, value_set=list(cfg.classes)),
        ]
    if cfg.unique_rows and set(cfg.required_columns) <= present:  # duplicates judged on complete rows only
        exps.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(columns)))
    return gx.ExpectationSuite(name=f"{cfg.name}_contract", expectations=exps)


def _context(docs_dir: Path | None) -> Any:
    """An in-memory GX context; with docs_dir, results and Data Docs persist under it."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # init_temp_docs_sites=False: otherwise every context plans an HTML site in a fresh /tmp folder.
    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    stores, sites = dict(defaults.stores), {}
    if docs_dir is not None:
        disk = {"class_name": "TupleFilesystemStoreBackend"}
        stores[defaults.validation_results_store_name] = {
            "class_name": "ValidationResultsStore",
            "store_backend": {**disk, "base_directory": str(docs_dir / "validations")},
        }
        sites["local_site"] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {**disk, "base_directory": str(docs_dir / "data_docs" / "local_site")},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        stores=stores,
        data_docs_sites=sites,
        progress_bars=ProgressBarsConfig(globally=False),  # no tqdm bars on every batch
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def validate_frame(
    frame: pd.DataFrame, cfg: DatasetConfig, docs_dir: Path | None = None, batch_name: str = "batch"
) -> ValidationResult:
    """Validate one batch against the contract; with docs_dir also (re)build the Data Docs.

    Args:
        frame: the batch, as loaded (types not coerced).
        cfg: the dataset contract from params.yaml.
        docs_dir: folder for stored results and Data Docs (e.g. ``settings.gx_dir``); None: none.
        batch_name: shown in the report and used as the run name in the Data Docs.
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    ctx = _context(docs_dir)
    batch_def = (
        ctx.data_sources.add_pandas("pandas").add_dataframe_asset(cfg.name).add_batch_definition_whole_dataframe("all")
    )
    suite = ctx.suites.add(build_suite(cfg, [str(c) for c in frame.columns]))
    definition = ctx.validation_definitions.add(gx.ValidationDefinition(name=suite.name, data=batch_def, suite=suite))
    actions: list[Any] = [gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if docs_dir is not None else []
    checkpoint = ctx.checkpoints.add(
        gx.Checkpoint(
            name=f"{cfg.name}_checkpoint",
            validation_definitions=[definition],
            actions=actions,
            result_format={"result_format": "SUMMARY"},
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=batch_name))
    failures: list[ExpectationFailure] = []
    stats = {"evaluated": 0, "successful": 0, "unsuccessful": 0}
    for run in outcome.run_results.values():
        stats["evaluated"] += int(run.statistics["evaluated_expectations"])
        stats["successful"] += int(run.statistics["successful_expectations"])
        stats["unsuccessful"] += int(run.statistics["unsuccessful_expectations"])
        failures += [_failure(r) for r in run.results if not r.success]
    failures = _readable(failures, suite)
    docs = docs_dir / "data_docs" / "local_site" / "index.html" if docs_dir is not None else None
    return ValidationResult(
        success=bool(outcome.success),
        failures=failures,
        statistics=stats,
        docs_path=docs,
        batch=batch_name,
        suite=suite.name,
    )


def validate_file(path: str | Path, cfg: DatasetConfig, docs_dir: Path | None = None) -> ValidationResult:
    """Load a CSV exactly as training would and validate it (an empty file is a failure, not a crash)."""
    import pandas as pd

    from pipelines.data import read_csv

    try:
        frame = read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:  # not even a table: nothing to run GX on
        failure = ExpectationFailure("file_is_a_readable_csv", None, [], f"unreadable: {str(err).strip()[:200]}")
        stats = {"evaluated": 1, "successful": 0, "unsuccessful": 1}
        return ValidationResult(False, [failure], stats, batch=Path(path).name, suite=f"{cfg.name}_contract")
    return validate_frame(frame, cfg, docs_dir=docs_dir, batch_name=Path(path).name)


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


def _failure(r: Any) -> ExpectationFailure:
    """Turn one failed GX expectation result into a readable failure."""
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
    rows = ", ".join(str(i) for i in (res.get("partial_unexpected_index_list") or [])[:MAX_EXAMPLES])
    where = f" (first at rows {rows})" if rows else ""
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
