"""Lab 9 checker: bring your own CSV, see its contract refuse the NaNs, clean, train, serve and check drift.

Concepts: data contracts and validation (C06, C07), configuration as code (C48). The setup writes the CSV
the learner "brings": scikit-learn's wine data (a package the project already depends on, so nothing is
downloaded) with class names and 18 missing values, at ``<state>/labs/wine.csv``. The learner follows
docs/own-dataset.md. The checker reads what the commands left in this state folder, counting only what
happened since ``lab setup 9``: the active params file (``<state>/active-params``), the Great Expectations
results stored under ``<state>/gx`` (a refusal naming the null columns, then a clean pass), the registry
(a version of the dataset's own model), the prediction log (a prediction served by it) and the stored
monitoring findings (a data-drift check answered on its window).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lab.labs import Check
from lab.labs.lab01_bad_batch import stored_validations
from lab.labs.progress import counts

if TYPE_CHECKING:
    from core.context import LabContext
    from core.settings import Settings

TARGET = "cultivar"
NULL_CHECK = "expect_column_values_to_not_be_null"
CONDITIONS = (
    "a params file for the wine CSV is the active one",
    "the contract refused the missing values",
    "a clean file met the contract",
    "a model of this dataset was registered",
    "the service answered with it",
    "a drift check ran on its predictions",
)


def brought_csv(settings: Settings) -> Path:
    """The CSV the learner brings: where the setup writes it."""
    return settings.state / "labs" / "wine.csv"


def write_wine_with_gaps(path: Path, gaps: int = 6) -> Path:
    """scikit-learn's wine data, class names as ``cultivar_N`` and ``gaps`` missing values in three columns."""
    import numpy as np
    from sklearn.datasets import load_wine

    from pipelines.data import write_csv

    frame = load_wine(as_frame=True).frame.rename(columns=lambda c: c.lower().replace("/", "_per_").replace(" ", "_"))
    frame[TARGET] = [f"cultivar_{i}" for i in frame.pop("target")]
    rng = np.random.default_rng(0)
    for column in ("alcohol", "malic_acid", "ash"):
        frame.loc[rng.choice(len(frame), gaps, replace=False), column] = np.nan
    return write_csv(frame, path)


def setup(ctx: LabContext) -> list[str]:
    """Write the CSV to bring; the active dataset is left as it is (the lab's first step switches it)."""
    path = write_wine_with_gaps(brought_csv(ctx.settings))
    return [f"wrote {path}: 178 wines, 13 numeric columns, class column {TARGET!r}, 18 missing values"]


def _registered(settings: Settings, since: datetime) -> list[str]:
    from pipelines.registry import list_versions

    return [v.version for v in list_versions(settings) if counts(v.created, since)]


def _served(settings: Settings, since: datetime) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from serving.log_reader import recent_predictions

    try:
        return len(recent_predictions(settings.prediction_log_uri, since=since, model_name=settings.model_name))
    except SQLAlchemyError:  # no log yet (never served) reads as nothing served
        return 0


def _drift_checked(settings: Settings, since: datetime) -> str | None:
    from sqlalchemy.exc import SQLAlchemyError

    from core.findings import latest_findings
    from serving.prediction_log import make_engine

    engine = make_engine(settings.prediction_log_uri)
    try:
        found = latest_findings(engine).get("data_drift")
    except SQLAlchemyError:  # no findings table yet: no check ran
        return None
    finally:
        engine.dispose()
    return f"{found.status}: {found.summary}" if found is not None and counts(found.ts, since) else None


def check(ctx: LabContext, answer: str | None, since: datetime) -> list[Check]:
    """The wine params are active, its NaNs were refused, a clean file passed, and a model of it trained, served
    and was checked for drift, all since the lab started."""
    s, d = ctx.settings, ctx.params.dataset
    active = s.params_source != "default" and d.target == TARGET
    init = f"mlops-lab dataset init {brought_csv(s)} --target {TARGET}"
    checks = [
        Check(
            CONDITIONS[0],
            active,
            f"{s.params_path} (dataset {d.name}, target {d.target}, model {s.model_name})",
            f"run `{init}`, then `mlops-lab dataset use` with the file it wrote",
        )
    ]
    mine = [v for v in stored_validations(s.gx_dir) if counts(v.run_time, since) and v.run_name.endswith(".csv")]
    nulls = [v for v in mine if any(kind == NULL_CHECK for kind, _ in v.failed)]
    columns = sorted({str(col) for v in nulls for kind, col in v.failed if kind == NULL_CHECK})
    checks.append(
        Check(
            CONDITIONS[1],
            bool(nulls),
            f"null values refused in {', '.join(columns)}" if nulls else "no refusal of null values since the start",
            f"run `mlops-lab validate {brought_csv(s)}` once your dataset is active",
        )
    )
    passed = [v for v in mine if v.success]
    checks.append(
        Check(
            CONDITIONS[2],
            bool(passed),
            f"{passed[-1].run_name} met every expectation" if passed else "no passing validation since the start",
            "drop the rows with missing values into a new file, profile it again (`--name wine`) and validate it",
        )
    )
    versions = _registered(s, since) if active else []
    checks.append(
        Check(
            CONDITIONS[3],
            bool(versions),
            f"{s.model_name} version(s) {', '.join(versions)}" if versions else f"no new version of {s.model_name}",
            "run `mlops-lab train` (the gate decides; its reasons say why not)",
        )
    )
    served = _served(s, since) if active else 0
    checks.append(
        Check(
            CONDITIONS[4],
            served > 0,
            f"{served} prediction(s) of {s.model_name} logged" if served else "no prediction logged since the start",
            "start `mlops-lab serve --port 8709` and POST one wine's columns to /v1/predict (see the lab page)",
        )
    )
    drift = _drift_checked(s, since) if active else None
    checks.append(
        Check(
            CONDITIONS[5],
            drift is not None,
            f"data drift {drift}" if drift else "no data-drift finding since the start",
            "run `mlops-lab monitor --dry-run` after serving some predictions",
        )
    )
    return checks
