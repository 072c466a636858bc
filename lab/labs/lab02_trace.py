"""Lab 2 checker: follow the champion back to its run, its code, its parameters and its exact data.

Concepts: lineage (C13), reproducibility (C04), data versioning (C05). A registered version points
to the MLflow run that produced it; that run carries the lineage tags every training run gets
(``git_sha``, ``data_path``, ``data_md5``, ``params_hash``, library versions) and the logged
parameters. The learner walks that chain with ``registry list`` and ``reproduce`` and answers with
the md5 of the champion's training data; the checker compares the answer with the ``data_md5`` tag
it reads from the registry, never with a stored string.

``mlops-lab reproduce`` records its verdict on the version (``pipelines.reproduce.record_reproduction``:
tags ``reproduced``, ``reproduced_at``, ``reproduced_by``), so the checker sees that the learner rebuilt
the champion since the lab started and that the rebuild was identical, without rebuilding it again.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from core.mlflow_config import mlflow_client
from lab.labs import Check
from lab.labs.progress import counts
from pipelines.registry import current_aliases
from pipelines.reproduce import ReproductionError, locate_data

if TYPE_CHECKING:
    from core.context import LabContext

LINEAGE_TAGS = ("git_sha", "data_path", "data_md5", "params_hash")
CONDITIONS = (
    "a champion is registered",
    "its run carries the lineage tags and parameters",
    "its training data is found by its md5",
    "you rebuilt it with `mlops-lab reproduce`: identical metrics and predictions",
    "your answer is the md5 of the champion's training data",
)
MD5 = re.compile(r"^[0-9a-f]{32}$")


def normalise_md5(answer: str) -> str | None:
    """The answer as a lowercase md5, or None when it is not 32 hex digits."""
    value = answer.strip().lower()
    return value if MD5.match(value) else None


def check(ctx: LabContext, answer: str | None, since: datetime) -> list[Check]:
    """Champion → run → lineage tags → data by md5 → identical rebuild (since the start) → the learner's md5."""
    from mlflow.exceptions import MlflowException

    s = ctx.settings
    champion = current_aliases(s).get("champion")
    if champion is None:
        hint = "run `mlops-lab ingest` then `mlops-lab train` (the first model becomes champion)"
        return [Check(CONDITIONS[0], False, "no champion alias in the registry", hint)] + [
            Check(name, False, "no champion to trace yet", "register a champion first") for name in CONDITIONS[1:]
        ]
    client = mlflow_client(s)
    run_id = client.get_model_version(s.model_name, champion).run_id or ""
    checks = [Check(CONDITIONS[0], True, f"champion is v{champion}, from run {run_id or '(none)'}")]

    try:
        run = client.get_run(run_id) if run_id else None
    except MlflowException:
        run = None
    tags = dict(run.data.tags) if run else {}
    missing = [t for t in LINEAGE_TAGS if not tags.get(t)]
    has_params = bool(run and run.data.params)
    lineage_ok = run is not None and not missing and has_params
    detail = (
        f"git {tags['git_sha'][:12]}, data {tags['data_path']} md5 {tags['data_md5'][:8]}…, "
        f"{len(run.data.params)} params"
        if lineage_ok and run
        else f"missing: {', '.join(missing) or 'logged parameters'}"
    )
    retrain = "this champion was not made by `mlops-lab train`: run `mlops-lab train` and promote the result"
    checks.append(Check(CONDITIONS[1], lineage_ok, detail, retrain))

    if not lineage_ok:
        checks.append(Check(CONDITIONS[2], False, "no data_md5 to look for", retrain))
        checks.append(Check(CONDITIONS[3], False, "no lineage to rebuild from", retrain))
    else:
        try:
            found = locate_data(s.project_dir, tags["data_path"], tags["data_md5"])
            checks.append(Check(CONDITIONS[2], True, f"{found} has md5 {tags['data_md5']}"))
        except ReproductionError as err:
            checks.append(
                Check(CONDITIONS[2], False, str(err), "run `dvc pull`, or `mlops-lab ingest` for the raw file")
            )
        version_tags = client.get_model_version(s.model_name, champion).tags
        verdict = version_tags.get("reproduced")
        rerun = f"run `mlops-lab reproduce {champion}`"
        if verdict is None:
            checks.append(Check(CONDITIONS[3], False, f"v{champion} has no reproduced tag: never rebuilt", rerun))
        else:
            at = version_tags.get("reproduced_at")
            when = f"{at or '?'} by {version_tags.get('reproduced_by', '?')}"
            if not counts(at, since):
                checks.append(Check(CONDITIONS[3], False, f"rebuilt {when}, before this lab started", rerun))
            else:
                fix = f"{rerun} and read which metric or library differs"
                checks.append(Check(CONDITIONS[3], verdict == "identical", f"rebuilt {when}: {verdict}", fix))

    expected = tags.get("data_md5", "")
    how = f"find it with `mlops-lab reproduce {champion}` (line `data ... (md5 ...)`)"
    if answer is None:
        checks.append(
            Check(CONDITIONS[4], False, "no answer given", f"{how}, then `mlops-lab lab check 2 --answer <md5>`")
        )
    else:
        given = normalise_md5(answer)
        ok = bool(expected) and given == expected
        shown = f"you answered {answer.strip()!r}" + ("" if given else " (not 32 hex digits)")
        checks.append(Check(CONDITIONS[4], ok, shown, how))
    return checks
