"""Data drift: has the distribution of the model's inputs moved away from the reference?

Concept: data drift (C32). A model is only as good as the match between the inputs it sees and the
inputs it learned from, and inputs are available at once while labels arrive late (or never). So the
first monitoring check compares each feature of the newest window of served inputs with the
reference data, one two-sample test per feature, and calls the *dataset* drifted when at least
``drift_share`` of the features drifted. Evidently 0.7 runs the tests (``DataDriftPreset``): it picks
a test per column by data size (K-S up to 1,000 reference rows, normed Wasserstein above) unless
``params.data_drift.method`` names one, and its HTML report is the artefact a person opens.

The new Evidently API has no boolean "dataset drift" field, so ``read_snapshot`` turns the snapshot
dict into a verdict: per column the test status (FAIL = drifted, decided by the stat test itself, so
p-value tests and distance tests both read right), and the dataset verdict from the drifted share.
A window with fewer than ``min_rows`` rows is ``inconclusive`` and Evidently is not even run: a
handful of rows can neither show drift nor rule it out. Evidently is imported inside the function
that runs it (it takes seconds), so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.findings import Finding

if TYPE_CHECKING:
    import pandas as pd

    from core.params import DataDriftParams, MonitoringParams

CHECK = "data_drift"
_VALUE_DRIFT = "evidently:metric_v2:ValueDrift"
_DRIFTED_COUNT = "evidently:metric_v2:DriftedColumnsCount"


@dataclass(frozen=True)
class ColumnDrift:
    """One feature's test: Evidently's method name, its score (p-value or distance), threshold, verdict."""

    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftVerdict:
    """What a data-drift snapshot says: per-column results, the drifted share and the dataset verdict."""

    columns: dict[str, ColumnDrift]
    share: float
    drift_share: float

    @property
    def drifted_features(self) -> list[str]:
        return [name for name, col in self.columns.items() if col.drifted]

    @property
    def dataset_drift(self) -> bool:
        return self.share >= self.drift_share


def read_snapshot(snapshot: Mapping[str, Any]) -> DriftVerdict:
    """Turn an Evidently 0.7 ``DataDriftPreset`` snapshot dict (``snapshot.dict()``) into a verdict.

    The per-column verdict is the status of the column's drift test ("FAIL" = drifted), which the
    stat test itself decides; the report must therefore be run with ``include_tests=True``.

    Raises:
        ValueError: the dict is not a DataDriftPreset snapshot with tests.
    """
    metrics = snapshot.get("metrics", [])
    counts = [m for m in metrics if m.get("config", {}).get("type") == _DRIFTED_COUNT]
    if len(counts) != 1:
        raise ValueError("not a DataDriftPreset snapshot: expected exactly one DriftedColumnsCount metric")
    failed: dict[str, bool] = {}
    for test in snapshot.get("tests", []):
        config = test.get("metric_config", {}).get("params", {})
        if config.get("type") == _VALUE_DRIFT:
            failed[str(config["column"])] = str(test["status"]).upper().endswith("FAIL")
    columns: dict[str, ColumnDrift] = {}
    for metric in metrics:
        config = metric.get("config", {})
        if config.get("type") != _VALUE_DRIFT:
            continue
        name = str(config["column"])
        if name not in failed:
            raise ValueError(f"no drift test for column {name!r}: run the Report with include_tests=True")
        columns[name] = ColumnDrift(
            str(config["method"]), float(metric["value"]), float(config["threshold"]), failed[name]
        )
    count = counts[0]
    return DriftVerdict(columns, float(count["value"]["share"]), float(count["config"]["drift_share"]))


def _numeric(frame: pd.DataFrame, features: Sequence[str], which: str) -> pd.DataFrame:
    """The feature columns as float64, or a precise error naming what is missing or not numeric."""
    import pandas as pd

    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError(f"{which} data has no column(s) {missing}; pass frames with every feature in `features`")
    try:
        return frame[list(features)].apply(pd.to_numeric).astype("float64")
    except (TypeError, ValueError) as err:
        raise ValueError(f"{which} data has a non-numeric feature value ({err}); validate the data first") from None


def run_report(reference: pd.DataFrame, current: pd.DataFrame, features: Sequence[str], knobs: DataDriftParams) -> Any:
    """Run Evidently's ``DataDriftPreset`` (with its tests) and return the snapshot."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    preset_args: dict[str, Any] = {"columns": list(features), "drift_share": knobs.drift_share}
    if knobs.method is not None:
        preset_args["method"] = knobs.method
    if knobs.threshold is not None:
        preset_args["threshold"] = knobs.threshold
    definition = DataDefinition(numerical_columns=list(features))
    report = Report([DataDriftPreset(**preset_args)], include_tests=True)
    return report.run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )


def _summary(verdict: DriftVerdict, rows: int) -> str:
    n, drifted = len(verdict.columns), verdict.drifted_features
    named = f" ({', '.join(drifted)})" if drifted else ""
    outcome = "dataset drift" if verdict.dataset_drift else "no dataset drift"
    return (
        f"{len(drifted)} of {n} features drifted{named} in {rows} rows: "
        f"share {verdict.share:.2f} vs {verdict.drift_share:.2f} -> {outcome}"
    )


def data_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    params: MonitoringParams,
    out_dir: Path | None = None,
) -> Finding:
    """Compare the current window's features with the reference, feature by feature.

    Args:
        reference: the data the model learned from (or any trusted baseline), one column per feature.
        current: the window to check, e.g. ``recent_predictions(..., last_n=params.window)``.
        features: the feature columns to compare (other columns are ignored).
        params: ``params.monitoring``: ``min_rows`` and the ``data_drift`` knobs.
        out_dir: when given, write ``data-drift.html`` and ``data-drift.json`` there.

    Returns:
        A ``Finding``: score = share of drifted features, threshold = ``drift_share``; ``details`` has
        per-feature ``{method, score, threshold, drifted}``, ``drifted_features`` and ``drift_share``.

    Raises:
        ValueError: a feature column is missing or not numeric, the reference has fewer than 2 rows, or
            ``data_drift.method`` names no Evidently stat test (the message lists them).
    """
    knobs, rows = params.data_drift, len(current)
    if rows < params.min_rows:
        return Finding(
            CHECK,
            "inconclusive",
            None,
            knobs.drift_share,
            f"only {rows} rows in the window, fewer than min_rows={params.min_rows}: too few to judge drift",
            rows=rows,
            details={"min_rows": params.min_rows},
        )
    if len(reference) < 2:
        raise ValueError(
            f"reference data has {len(reference)} row(s); drift needs a reference sample (the training data)"
        )
    ref, cur = _numeric(reference, features, "reference"), _numeric(current, features, "current")
    snapshot = run_report(ref, cur, features, knobs)
    verdict = read_snapshot(snapshot.dict())
    reports: dict[str, str] = {}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        html, raw = out_dir / "data-drift.html", out_dir / "data-drift.json"
        snapshot.save_html(str(html))
        snapshot.save_json(str(raw))
        reports = {"html": str(html), "json": str(raw)}
    details = {
        "features": {
            name: {"method": c.method, "score": c.score, "threshold": c.threshold, "drifted": c.drifted}
            for name, c in verdict.columns.items()
        },
        "drifted_features": verdict.drifted_features,
        "drift_share": verdict.drift_share,
        "reference_rows": len(reference),
    }
    return Finding(
        CHECK,
        "fired" if verdict.dataset_drift else "ok",
        verdict.share,
        verdict.drift_share,
        _summary(verdict, rows),
        rows=rows,
        details=details,
        reports=reports,
    )
