"""Prefect 3 flow ``retention``: delete prediction and feedback rows, and their reports, past the retention.

Concept: data privacy (C59). Personal data is kept for a stated time, then deleted: every day (a deployment
on ``MLOPS_RETENTION_SCHEDULE``, ``mlops-lab privacy retention --serve``) this flow deletes the rows of the
prediction log and the feedback table older than ``MLOPS_RETENTION_DAYS`` (30 by default), and the
monitoring reports made before that cutoff (`monitoring.privacy.apply_retention`), then records the counts
in the privacy audit log. It holds no state: a failed run is simply run again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from core.context import flow_context
from core.settings import Settings
from monitoring.privacy import Removed, apply_retention, record
from pipelines.flow_runs import tag_this_run
from serving.prediction_log import make_engine


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Rows with ``ts`` before this are past the retention (a row exactly ``days`` old is kept)."""
    return now - timedelta(days=days)


@flow(name="retention", log_prints=True, flow_run_name="retention")
def retention_flow(settings: Settings | None = None, days: int | None = None, now: datetime | None = None) -> Removed:
    """Delete what is older than ``days`` (default ``settings.retention_days``) before ``now`` (default: the clock).

    Args:
        settings: where the log and reports are; a deployment's run passes none (read from its environment).
        days: the retention in days, overriding the setting.
        now: the time to count back from (tests pass a scripted time).
    """
    tag_this_run("mlops-lab", "privacy", "retention")
    s = flow_context(settings, None).settings if settings is None else settings
    keep = days if days is not None else s.retention_days
    cutoff = retention_cutoff(now or datetime.now(UTC), keep)
    engine = make_engine(s.prediction_log_uri)
    try:
        removed = apply_retention(engine, s.reports_dir, cutoff)
    finally:
        engine.dispose()
    record(s.state, removed, s.actor, now)
    print(f"retention {keep} days, cutoff {cutoff.isoformat(timespec='seconds')}: {removed.summary()}")
    create_markdown_artifact(
        key="retention",
        markdown=f"# Retention\n\nCutoff {cutoff.isoformat(timespec='seconds')} ({keep} days): {removed.summary()}",
    )
    return removed
