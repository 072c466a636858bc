"""Lab 1 checker: a corrupted batch is refused by the data contract, and nothing is trained on it.

Concepts: data validation (C06) and data quality as code (C07). The learner fabricates a bad batch
at a known place (``<state>/labs/bad-batch.csv``), validates it, then tries to train on it. The
checker reads what those commands left: the Great Expectations results stored as JSON under
``<state>/gx/validations`` (one file per validation, whoever ran it) and their Data Docs pages, and
the MLflow runs, whose ``data_md5`` lineage tag says which bytes each model saw.

A stored result is tied to the learner's file by GX's own batch fingerprint
(``pandas_data_fingerprint``, a hash of the loaded DataFrame), not by its name, so renaming or
re-generating the file cannot fool the check. Only what happened since ``lab setup 1`` counts:
results GX stored and MLflow runs from an earlier attempt are left out by their timestamps. The
training pipeline validates under the run name ``batch`` (``pipelines.training_steps.validate_data``
names no batch), while ``mlops-lab validate`` uses the file name; that is how a refusal *by training*
is told apart from a manual validation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.mlflow_config import mlflow_client
from lab.labs import Check
from lab.labs.progress import counts
from pipelines.data import file_md5, read_csv
from pipelines.training_steps import VALIDATION_RUN_PREFIX

if TYPE_CHECKING:
    from core.context import LabContext
    from core.settings import Settings


def bad_batch_path(settings: Settings) -> Path:
    """Where the lab asks the learner to write the corrupted batch."""
    return settings.state / "labs" / "bad-batch.csv"


@dataclass(frozen=True)
class StoredValidation:
    """One validation result as Great Expectations stored it: who ran it, on what, and what failed."""

    path: Path
    run_name: str
    run_time: str
    success: bool
    fingerprint: str
    failed: tuple[tuple[str, str | None], ...]  # (expectation type, column) of each failed expectation

    def failed_names(self) -> list[str]:
        return [f"{kind}({column})" if column else kind for kind, column in self.failed]


def parse_result(path: Path, doc: dict[str, Any]) -> StoredValidation:
    """Read the fields the lab needs from one stored GX validation result (a JSON document)."""
    meta = doc.get("meta", {})
    failed = tuple(
        (str(r["expectation_config"]["type"]), r["expectation_config"].get("kwargs", {}).get("column"))
        for r in doc.get("results", [])
        if not r.get("success", False)
    )
    return StoredValidation(
        path=path,
        run_name=str(meta.get("run_id", {}).get("run_name", "")),
        run_time=str(meta.get("run_id", {}).get("run_time", "")),
        success=bool(doc.get("success", False)),
        fingerprint=str(meta.get("batch_markers", {}).get("pandas_data_fingerprint", "")),
        failed=failed,
    )


def stored_validations(gx_dir: Path) -> list[StoredValidation]:
    """Every validation result stored under ``gx_dir/validations``, oldest first."""
    folder = gx_dir / "validations"
    found = [parse_result(p, json.loads(p.read_text())) for p in folder.rglob("*.json")] if folder.is_dir() else []
    return sorted(found, key=lambda v: v.run_time)


def docs_page(gx_dir: Path, result: StoredValidation) -> Path:
    """The Data Docs HTML page GX rendered for a stored result (same key, under the local site)."""
    relative = result.path.relative_to(gx_dir / "validations").with_suffix(".html")
    return gx_dir / "data_docs" / "local_site" / "validations" / relative


def answer_matches(answer: str, failed: set[str]) -> bool:
    """Does the answer name one of the failed expectation types (``expect_`` prefix optional)?"""
    name = answer.strip().lower().split("(")[0].strip()
    return name in failed or f"expect_{name}" in failed


def _fingerprint(path: Path) -> str:
    """GX's fingerprint of the file as training loads it (the same function GX stamps on its results)."""
    from great_expectations.execution_engine.pandas_execution_engine import hash_pandas_dataframe

    return str(hash_pandas_dataframe(read_csv(path)))


def _runs_trained_on(settings: Settings, md5: str, since: datetime) -> list[str]:
    """Ids of MLflow runs since ``since`` whose lineage says they trained on data with this md5."""
    if settings.tracking_uri is None and not (settings.state / "mlflow.db").exists():
        return []  # no tracking store yet: nothing was ever trained here
    client = mlflow_client(settings)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    after = int(since.timestamp() * 1000)  # MLflow keeps milliseconds
    runs = client.search_runs(
        experiments, filter_string=f"tags.data_md5 = '{md5}' and attributes.start_time >= {after}"
    )
    return [r.info.run_id for r in runs]


CONDITIONS = (
    "a bad batch was made",
    "validation refused it and named the broken expectations",
    "the Data Docs page shows the failure",
    "training was tried on it and stopped at validation",
    "no model was trained or registered from it",
)


def _not_started(detail: str, hint: str) -> list[Check]:
    """Every condition unmet, so the learner sees the whole list; the first hint is the first step."""
    return [Check(CONDITIONS[0], False, detail, hint)] + [
        Check(name, False, "no bad batch to look at yet", "make the bad batch first") for name in CONDITIONS[1:]
    ]


def setup(ctx: LabContext) -> list[str]:
    """A clean slate: the bad batch of an earlier attempt is removed, so the learner makes it again."""
    path = bad_batch_path(ctx.settings)
    if not path.is_file():
        return []
    path.unlink()
    return [f"removed {path}, the bad batch of an earlier attempt"]


def check(ctx: LabContext, answer: str | None, since: datetime) -> list[Check]:
    """The bad batch exists, validation refused it (manually and in training), Data Docs show it, no model used it.

    Only validations and runs since the lab started count.
    """
    s = ctx.settings
    path = bad_batch_path(s)
    make = f"mlops-lab generate-batch out-of-range -o {path}"
    if not path.is_file():
        return _not_started(f"no file at {path}", f"run `{make}`")
    try:
        fingerprint = _fingerprint(path)
    except (ValueError, OSError) as err:  # an unreadable file is a bad batch, but GX never stored a result for it
        return _not_started(f"{path} cannot be read as a table ({err})", f"run `{make}`")
    md5 = file_md5(path)
    mine = [v for v in stored_validations(s.gx_dir) if v.fingerprint == fingerprint and counts(v.run_time, since)]
    failed = [v for v in mine if not v.success]
    checks = [Check(CONDITIONS[0], True, f"{path.name}, md5 {md5}")]

    if failed:
        newest = failed[-1]
        detail = f"{len(failed)} failed result(s); newest broke: {', '.join(newest.failed_names())}"
        checks.append(Check(CONDITIONS[1], True, detail))
    else:
        passed = (
            f"{len(mine)} result(s) for this file, all passed" if mine else "no result for this file since the start"
        )
        hint = f"run `mlops-lab validate {path}`; if it passes, make a batch of another kind (see --help)"
        checks.append(Check(CONDITIONS[1], False, passed, hint))

    pages = [docs_page(s.gx_dir, v) for v in failed]
    shown = [p for p in pages if p.is_file()]
    index = s.gx_dir / "data_docs" / "local_site" / "index.html"
    checks.append(
        Check(
            CONDITIONS[2],
            bool(shown) and index.is_file(),
            f"{shown[-1].as_uri()}" if shown else "no Data Docs page for a failed result of this file",
            f"run `mlops-lab validate {path}`, then open {index.as_uri()} in a browser",
        )
    )

    by_training = [v for v in failed if v.run_name.startswith(VALIDATION_RUN_PREFIX)]  # same data, by training
    checks.append(
        Check(
            CONDITIONS[3],
            bool(by_training),
            f"the training pipeline refused it {len(by_training)} time(s)" if by_training else "no training attempt",
            f"run `mlops-lab train --data {path}` and read why it stops",
        )
    )

    runs = _runs_trained_on(s, md5, since)
    checks.append(
        Check(
            CONDITIONS[4],
            not runs,
            "no MLflow run has this data_md5" if not runs else f"runs trained on it: {', '.join(runs)}",
            "the contract let this batch through: tighten `dataset` in params.yaml, then start the lab again",
        )
    )

    if answer is not None:
        names = {kind for v in failed for kind, _ in v.failed}
        ok = bool(names) and answer_matches(answer, names)
        checks.append(
            Check(
                "your answer names an expectation the batch broke",
                ok,
                f"you answered {answer.strip()!r}",
                "copy a name from the `expectation` column of `mlops-lab validate` (e.g. expect_...)",
            )
        )
    return checks
