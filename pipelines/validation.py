"""Data validation with Great Expectations: the data contract, checked on every batch.

Concept: data validation (C06) and data quality as code (C07). The expectation suite is not
hand-written JSON: ``build_suite`` derives it from the ``dataset`` section of params.yaml (columns,
types, nulls, ranges, classes, row count, duplicates, a sanity range for each mean), so the rules
are versioned and reviewed with the code and work for any iris-style dataset. ``validate_frame``
runs the suite through a GX 1.x validation definition and checkpoint and turns the result into a
small dataclass (``pipelines.validation_report``, re-exported here) whose ``summary()`` names each
failed expectation, its column and example bad values: a data owner can act on it without reading
a traceback. Training calls
``raise_for_failures()`` first, so invalid data never reaches a model.

Each call builds an in-memory (ephemeral) GX context: fast, and safe to call again in the same
process. With ``docs_dir`` the validation results are stored as JSON under ``docs_dir/validations``
and rendered as Data Docs under ``docs_dir/data_docs/local_site``, so the HTML index lists every
run, across processes, and nothing is written to /tmp. great_expectations takes seconds to import,
so it is imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.data_docs_offline import list_offline
from pipelines.validation_report import FIRST_DATA_LINE as FIRST_DATA_LINE
from pipelines.validation_report import MAX_EXAMPLES as MAX_EXAMPLES
from pipelines.validation_report import NOT_EVALUATED as NOT_EVALUATED
from pipelines.validation_report import NUMERIC_TYPES as NUMERIC_TYPES
from pipelines.validation_report import TEXT_TYPES as TEXT_TYPES
from pipelines.validation_report import DataValidationError as DataValidationError
from pipelines.validation_report import ExpectationFailure as ExpectationFailure
from pipelines.validation_report import ValidationResult as ValidationResult
from pipelines.validation_report import _failure, _readable

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

    from core.params import DatasetConfig


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
    frame: pd.DataFrame,
    cfg: DatasetConfig,
    docs_dir: Path | None = None,
    batch_name: str = "batch",
    first_line: int | None = None,
) -> ValidationResult:
    """Validate one batch against the contract; with docs_dir also (re)build the Data Docs.

    Args:
        frame: the batch, as loaded (types not coerced).
        cfg: the dataset contract from params.yaml.
        docs_dir: folder for stored results and Data Docs (e.g. ``settings.gx_dir``); None: none.
        batch_name: shown in the report and used as the run name in the Data Docs.
        first_line: the file line of the frame's first row (``FIRST_DATA_LINE`` for a CSV read whole): bad
            rows are then named by file line; None: by the frame's 0-based row index.
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
    if docs_dir is not None:  # GX rewrote the index: list its results again as plain HTML, readable offline
        list_offline(docs_dir / "data_docs" / "local_site" / "index.html")
    failures: list[ExpectationFailure] = []
    stats = {"evaluated": 0, "successful": 0, "unsuccessful": 0}
    for run in outcome.run_results.values():
        stats["evaluated"] += int(run.statistics["evaluated_expectations"])
        stats["successful"] += int(run.statistics["successful_expectations"])
        stats["unsuccessful"] += int(run.statistics["unsuccessful_expectations"])
        failures += [_failure(r, first_line) for r in run.results if not r.success]
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
    return validate_frame(frame, cfg, docs_dir=docs_dir, batch_name=Path(path).name, first_line=FIRST_DATA_LINE)
