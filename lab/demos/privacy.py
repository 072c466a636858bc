"""Demo ``privacy`` (C59): a raw user id never stored, a key rotation, an erasure across it, then retention.

Serves traffic from 40 users and one person whose id we follow, searches every file of the state for
that raw id, rotates the user-key secret (the person comes back under a new key), erases the person with
the previous secret kept for lookup (both keys found, nobody else touched, the audit line holds counts
only), then applies the retention with the clock moved past the first half of the traffic.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from core.context import LabContext
from lab.demos.prep import ensure_champion
from lab.demos.traffic import running_service, users
from monitoring.privacy import UNREACHABLE, apply_retention, audit_entries, erase, keys_of, record
from serving.prediction_log import make_engine, predictions_table

if TYPE_CHECKING:
    from core.settings import Settings
    from lab.narrate import Narrator

PERSON = "dana.example@example.invalid"  # the person who asks to be forgotten
FIRST_SECRET = "example-user-key-secret-2026-q1"  # noqa: S105 - published, for the demo only
SECOND_SECRET = "example-user-key-secret-2026-q2"  # noqa: S105 - published, for the demo only


def _rows_by_key(settings: Settings, keys: list[str]) -> dict[str, int]:
    engine = make_engine(settings.prediction_log_uri)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.select(predictions_table.c.user_key, sa.func.count())
                .where(predictions_table.c.user_key.in_(keys))
                .group_by(predictions_table.c.user_key)
            ).all()
            total = conn.scalar(sa.select(sa.func.count()).select_from(predictions_table))
    finally:
        engine.dispose()
    return {key: n for key, n in found} | {"all rows": int(total or 0)}


def _files_holding(state: Path, text: str) -> tuple[int, int]:
    files = [p for p in state.rglob("*") if p.is_file()]
    return sum(text.encode() in p.read_bytes() for p in files), len(files)


def _serve(n: Narrator, ctx: LabContext, settings: Settings, seed: int) -> None:
    with running_service(LabContext(settings=settings, params=ctx.params)) as service:
        traffic = service.send([*users("user", 40), PERSON, PERSON], seed=seed)
        service.flush()
    n.say(f"served {traffic.total} requests ({traffic.failed} failed) from 40 users and {PERSON}, each labelled")


def run(n: Narrator, ctx: LabContext) -> None:
    n.title("Data privacy: pseudonymisation, retention, erasure", "C59")
    ensure_champion(ctx, n)
    first = ctx.settings.model_copy(update={"user_key_secret": FIRST_SECRET, "user_key_previous": []})
    second = first.model_copy(update={"user_key_secret": SECOND_SECRET, "user_key_previous": [FIRST_SECRET]})

    n.step("Traffic with X-User-Id: what is stored is a keyed hash, never the id")
    _serve(n, ctx, first, seed=1)
    holding, files = _files_holding(ctx.settings.state, PERSON)
    old_key = keys_of(first).key(PERSON) or ""
    n.table("the person in the state folder", ["searched for", "files holding it", "files searched"],
            [["raw id " + PERSON, holding, files],
             [f"user_key {old_key}", _files_holding(ctx.settings.state, old_key)[0], files]])  # fmt: skip
    n.why("HMAC-SHA256 under MLOPS_USER_KEY_SECRET: without the secret nobody can test a guessed id against the log")

    n.step("Rotate the secret: the old one moves to MLOPS_USER_KEY_PREVIOUS")
    _serve(n, ctx, second, seed=2)
    new_key = keys_of(second).key(PERSON) or ""
    counts = _rows_by_key(ctx.settings, [old_key, new_key])
    n.table("the person's rows by key", ["key", "rows"],
            [[f"{old_key} (first secret)", counts.get(old_key, 0)],
             [f"{new_key} (second secret)", counts.get(new_key, 0)],
             ["all rows in the log", counts["all rows"]]])  # fmt: skip
    n.why("old rows keep their old key (the raw id to re-key them was never kept): the log cannot link the two")

    n.step("mlops-lab privacy erase --user " + PERSON)
    removed = erase(replace_actor(second), PERSON)
    after = _rows_by_key(ctx.settings, [old_key, new_key])
    n.ok(f"{removed.summary()}; the person's keys now hold {after.get(old_key, 0) + after.get(new_key, 0)} rows")
    n.say(f"everyone else: {counts['all rows'] - removed.predictions} rows before, {after['all rows']} after")
    n.say(f"audit line: {audit_entries(ctx.settings.state)[-1]}")
    n.say("out of reach of the command, and how each is handled:")
    for store, handling in UNREACHABLE:
        n.say(f"  - {store}: {handling}")

    n.step("Retention: the flow deletes rows older than MLOPS_RETENTION_DAYS (the clock moved for the demo)")
    engine = make_engine(ctx.settings.prediction_log_uri)
    try:
        with engine.connect() as conn:
            times = sorted(conn.scalars(sa.select(predictions_table.c.ts)))
        cutoff = times[len(times) // 2]
        now = cutoff + timedelta(days=ctx.settings.retention_days)
        kept_removed = apply_retention(engine, ctx.settings.reports_dir, cutoff)
    finally:
        engine.dispose()
    record(ctx.settings.state, kept_removed, ctx.settings.actor, now)
    n.ok(f"as if run at {now:%Y-%m-%d %H:%M:%S} UTC, cutoff {cutoff:%H:%M:%S.%f}: {kept_removed.summary()}")
    n.say(f"{len(times) - kept_removed.predictions} rows at or after the cutoff are kept")
    n.why("scheduled daily with `mlops-lab privacy retention --serve` (Prefect flow `retention`); docs/privacy.md")
    n.code("serving/credentials.py", "monitoring/privacy.py", "flows/retention_flow.py", "cli/privacy.py")


def replace_actor(settings: Settings) -> Settings:
    """The demo's operator, as MLOPS_ACTOR would name them in the audit log."""
    return settings.model_copy(update={"actor": "privacy-demo"})
