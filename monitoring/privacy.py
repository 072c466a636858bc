"""Privacy of the data we keep about the people behind the requests: retention and erasure.

Concept: data privacy (C59). A served request leaves personal data in the prediction log (its features,
its answer, the pseudonymous ``user_key``), in the feedback table (the true label) and in the monitoring
reports built from windows of that log. Two operations bound how long and for whom it is kept:

- `apply_retention` deletes every prediction and feedback row older than the cutoff (``ts`` strictly
  before it; a row exactly at the cutoff stays) and the monitoring reports (``check-<stamp>`` folders)
  made before the cutoff, which can only hold rows older still. The `retention` flow runs it daily.
- `erase_user` deletes one person's rows, found by their user key under the current and every previous
  key secret (`serving.credentials.UserKeys.candidates`), with their labels, the rows of the same
  requests (shadow mirrors) and every report made since their first row (a report is a frozen window, which
  may hold them), here and in the MLflow monitoring runs that carry the reports as artifacts.

Deletes on SQLite run with ``secure_delete`` (freed pages are zeroed) and end with a WAL checkpoint that
truncates the log file, so the bytes are gone from disk too, not only from queries; on PostgreSQL they end
with a ``VACUUM`` of both tables. Each run appends one
line to the privacy audit log (`AUDIT_FILE`): when, who, and counts -- never the user id or key.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from serving.credentials import UserKeys, feedback_key, user_keys
from serving.prediction_log import feedback_table, make_engine, predictions_table

if TYPE_CHECKING:
    from core.settings import Settings

REPORT_PREFIX = "check-"  # monitoring reports: <reports_dir>/check-<stamp> (flows.monitoring_flow)
REPORT_STAMP = "%Y%m%dT%H%M%S%f"
AUDIT_FILE = Path("privacy") / "audit.jsonl"  # under the state folder
CHUNK = 500  # ids per IN (...) list: well under SQLite's variable limit
P, F = predictions_table.c, feedback_table.c

# What erasure cannot reach, and how each is handled: printed by `mlops-lab privacy erase` and the demo.
UNREACHABLE = (
    ("backups (mlops-lab backup archives)", "kept until they expire; a restore must be followed by a new erasure "
     "(the audit log lists erasures since the backup's time)"),
    ("models already trained on the rows", "the next retrain builds its data from the log, which no longer has "
     "them; a model is not edited, it is replaced (retraining policy: scheduled retrain, monitoring.retrain)"),
    ("training sets written for retrains (state/retrain/*.csv) and their MLflow copies", "features and labels "
     "without user key or request id, kept with the model version they trained for lineage"),
    ("a PostgreSQL log's freed space and write-ahead log", "the erasure VACUUMs the tables at once; the old bytes "
     "stay in freed page space and WAL segments until reused or recycled; SQLite is zeroed at once"),
)  # fmt: skip


@dataclass(frozen=True)
class Removed:
    """What one retention or erasure run deleted: counts and report names (never whose rows)."""

    action: str  # "retention" or "erasure"
    predictions: int = 0
    feedback: int = 0
    reports: list[str] = field(default_factory=list)
    mlflow_reports: int = 0  # MLflow monitoring runs whose report artifacts were deleted
    checkpointed: bool = True  # SQLite: the WAL was truncated (False while a reader held it: retry later)

    def summary(self) -> str:
        return (
            f"{self.action}: {self.predictions} prediction rows, {self.feedback} feedback rows, "
            f"{len(self.reports)} report folders, {self.mlflow_reports} MLflow report sets deleted"
        )


def report_time(folder: Path) -> datetime | None:
    """When a monitoring report folder was made (from its name), None for any other folder."""
    if not folder.name.startswith(REPORT_PREFIX):
        return None
    try:
        return datetime.strptime(folder.name.removeprefix(REPORT_PREFIX), REPORT_STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def _reports(reports_dir: Path, keep: Callable[[datetime], bool]) -> list[Path]:
    if not reports_dir.is_dir():
        return []
    return sorted(p for p in reports_dir.iterdir() if p.is_dir() and (t := report_time(p)) is not None and keep(t))


@contextmanager
def _deleting(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction whose deletes overwrite the freed pages (SQLite ``secure_delete``)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA secure_delete=ON")
        yield conn


def _checkpoint(engine: sa.Engine) -> bool:
    """Make deleted rows leave the tables' storage, not only the queries' answers.

    SQLite: copy the WAL into the database and truncate it, so old page versions leave the disk too.
    PostgreSQL: ``VACUUM`` both tables at once instead of at the next autovacuum, so the dead tuples are
    removed from their pages (a plain VACUUM takes no lock that stops the service's writes; the freed space
    and the write-ahead log keep the old bytes until they are reused or recycled: docs/privacy.md).
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"VACUUM {predictions_table.name}, {feedback_table.name}")
        return True
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as conn:
        busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    return busy == 0


def _has_log(engine: sa.Engine) -> bool:
    return sa.inspect(engine).has_table(predictions_table.name)


def apply_retention(engine: sa.Engine, reports_dir: Path, cutoff: datetime) -> Removed:
    """Delete prediction and feedback rows with ``ts`` before ``cutoff``, and reports made before it."""
    removed_predictions = removed_feedback = 0
    if _has_log(engine):
        old = sa.select(P.request_id).where(P.ts < cutoff)
        with _deleting(engine) as conn:
            # A label of an old prediction goes with it (the foreign key), whenever the label came.
            removed_feedback = conn.execute(
                sa.delete(feedback_table).where(sa.or_(F.ts < cutoff, F.request_id.in_(old)))
            ).rowcount
            removed_predictions = conn.execute(sa.delete(predictions_table).where(P.ts < cutoff)).rowcount
    reports = _reports(reports_dir, lambda made: made < cutoff)
    for folder in reports:
        shutil.rmtree(folder)
    checkpointed = _checkpoint(engine) if _has_log(engine) else True
    return Removed("retention", removed_predictions, removed_feedback, [p.name for p in reports], 0, checkpointed)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def user_rows(engine: sa.Engine, keys: Sequence[str]) -> tuple[list[str], datetime | None]:
    """The request ids logged under any of ``keys`` (a user's keys across rotations) and the earliest ``ts``."""
    if not keys or not _has_log(engine):
        return [], None
    with engine.connect() as conn:
        rows = conn.execute(sa.select(P.request_id, P.ts).where(P.user_key.in_(list(keys)))).all()
    if not rows:
        return [], None
    first = min(ts if ts.tzinfo else ts.replace(tzinfo=UTC) for _, ts in rows)
    return [rid for rid, _ in rows], first


def erase_rows(engine: sa.Engine, request_ids: Sequence[str]) -> tuple[int, int]:
    """Delete the rows of these requests (and their per-row and shadow ids) with their labels: (predictions, labels)."""
    bases = sorted({rid.partition(":")[0] for rid in request_ids})
    removed_predictions = removed_feedback = 0
    with _deleting(engine) as conn:
        for chunk in _chunks(bases):
            of_requests = sa.or_(P.request_id.in_(chunk), *(P.request_id.like(f"{b}:%") for b in chunk))
            ids = list(conn.scalars(sa.select(P.request_id).where(of_requests)))
            for part in _chunks(ids):
                removed_feedback += conn.execute(sa.delete(feedback_table).where(F.request_id.in_(part))).rowcount
                removed_predictions += conn.execute(sa.delete(predictions_table).where(P.request_id.in_(part))).rowcount
    return removed_predictions, removed_feedback


def erase_mlflow_reports(settings: Settings, folders: Sequence[str]) -> int:
    """Delete the ``reports`` artifacts of the monitoring runs named after ``folders``; how many runs had them."""
    if not folders:
        return 0
    from mlflow import MlflowClient
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(f"{settings.experiment_name}-monitoring")
    if experiment is None:
        return 0
    names = {f"monitoring-{name}" for name in folders}
    erased = 0
    for run in client.search_runs([experiment.experiment_id], max_results=10_000):
        if run.info.run_name in names and client.list_artifacts(run.info.run_id, "reports"):
            get_artifact_repository(run.info.artifact_uri).delete_artifacts("reports")
            erased += 1
    return erased


def erase_user(settings: Settings, engine: sa.Engine, keys: Sequence[str]) -> Removed:
    """Delete everything we keep of the user behind ``keys``: rows, labels, reports made since their first row."""
    request_ids, first = user_rows(engine, keys)
    if not request_ids or first is None:
        return Removed("erasure")
    removed_predictions, removed_feedback = erase_rows(engine, request_ids)
    reports = _reports(settings.reports_dir, lambda made: made >= first)
    for folder in reports:
        shutil.rmtree(folder)
    names = [p.name for p in reports]
    mlflow_reports = erase_mlflow_reports(settings, names)
    return Removed("erasure", removed_predictions, removed_feedback, names, mlflow_reports, _checkpoint(engine))


def record(state: Path, removed: Removed, actor: str, now: datetime | None = None) -> Path:
    """Append one line to the privacy audit log: time, actor, action and counts (no id, no key)."""
    path = state / AUDIT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"ts": (now or datetime.now(UTC)).isoformat(timespec="seconds"), "actor": actor, **asdict(removed)}
    entry["reports"] = len(removed.reports)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry, sort_keys=True) + "\n")
    return path


def audit_entries(state: Path) -> list[dict[str, object]]:
    """The privacy audit log, oldest first (empty before the first retention or erasure)."""
    path = state / AUDIT_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class ErasureRefusedError(RuntimeError):
    """Erasure cannot find a user's rows with these settings (no key secret the service shares)."""


def keys_of(settings: Settings) -> UserKeys:
    """The service's user keys, from the same secrets it reads; refused when they would be a random key."""
    if not any((settings.user_key_secret, settings.feedback_key, settings.admin_token)):
        raise ErasureRefusedError(
            "no key secret is set (MLOPS_USER_KEY_SECRET, MLOPS_FEEDBACK_KEY or MLOPS_ADMIN_TOKEN): the service keys "
            "users with a random per-process key, so no one can find a user's rows; set the service's secrets here"
        )
    own = bool(settings.user_key_secret and settings.user_key_secret.strip())  # then the feedback key is not needed
    feedback = None if own else feedback_key(settings.feedback_key, settings.admin_token)
    return user_keys(settings.user_key_secret, settings.user_key_previous, feedback)


def erase(settings: Settings, user_id: str, now: datetime | None = None) -> Removed:
    """Erase the user ``user_id`` from every store we own and record it in the audit log (counts only)."""
    if not user_id.strip():
        raise ErasureRefusedError("an empty user id names nobody")
    keys = keys_of(settings).candidates(user_id)
    engine = make_engine(settings.prediction_log_uri)
    try:
        removed = erase_user(settings, engine, keys)
    finally:
        engine.dispose()
    record(settings.state, removed, settings.actor, now)
    return removed
