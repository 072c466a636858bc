"""Demo ``disaster-recovery``: back up a live service's state, lose it, refuse a damaged copy, restore, verify.

Concept: disaster recovery (C50). The drill runs on a stand-in for the production machine,
``machine/`` in the demo's own state (``<state>/demos/disaster-recovery``), never on your state: a
champion in the registry, its model files, and a prediction log filled through the real API with
predictions and their true labels. The backup is taken while that service runs (``ops/backup.py``),
then the whole folder is deleted. A copy with one flipped byte is refused before anything is written;
the good archive is verified member by member and restored (``ops/restore.py``). The proof is what a
user would see: the same champion, the same answers to the same requests, the same number of logged rows.
"""

from __future__ import annotations

import shutil
import time
from typing import TYPE_CHECKING, Any

from core.context import LabContext
from core.startup import configure_runtime
from lab.demos.prep import display_path, ensure_champion
from lab.demos.traffic import running_service, users
from ops.backup import CorruptBackupError, StateExistsError, backup, component_rows, counts, log_counts
from ops.restore import load_champion, restore

if TYPE_CHECKING:
    from lab.narrate import Narrator

USERS, SEED = 20, 50


def drill_context(ctx: LabContext) -> LabContext:
    """The stand-in machine: embedded engines in ``machine/`` of the demo's state, whatever the settings name."""
    embedded = {"tracking_uri": None, "registry_uri": None, "artifact_root": None, "prediction_log_url": None}
    settings = ctx.settings.model_copy(update={"state_dir": ctx.settings.state / "machine", **embedded})
    configure_runtime(settings)
    return LabContext(settings=settings, params=ctx.params)


def _answers(bodies: list[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    return [(b["predictions"][0]["class"], b["predictions"][0]["probabilities"]) for b in bodies]


def run(n: Narrator, ctx: LabContext) -> None:
    """Backup → simulated loss → a damaged copy refused → restore → the same service back."""
    n.title("Disaster recovery: back up, lose everything, restore, verify", "C50")
    drill = drill_context(ctx)
    s = drill.settings
    vault = ctx.settings.state / "backups"  # "off the machine": outside the folder we lose
    shutil.rmtree(vault, ignore_errors=True)
    people = users("dr", USERS)

    n.step("The production state: a champion, its model files, a prediction log with labels")
    n.say(f"a stand-in machine at {display_path(ctx, s.state)}: your own state is never touched")
    champion = ensure_champion(drill, n)
    with running_service(drill) as service:
        served = service.send(people, seed=SEED)
        rows = service.rows(USERS, SEED)[drill.params.dataset.feature_names]
        n.say(f"{served.total} requests answered by v{champion}, each labelled through /v1/feedback")

        n.step("Back up while the service is still running")
        result = backup(s, vault)
    manifest = result.manifest
    n.table("what the archive holds", ["component", "member", "files", "size"], component_rows(manifest))
    versions = manifest["versions"]
    n.say(
        f"manifest: champion v{manifest['registry']['champion']}, {counts(manifest['prediction_log'])}, "
        f"a sha256 for each of {len(manifest['files'])} members, MLflow {versions['mlflow']} "
        f"(schema {versions['mlflow_schema']})"
    )
    n.ok(f"{display_path(ctx, result.archive)} ({result.archive.stat().st_size / 1024:.0f} KiB)")
    n.why(
        "SQLite's online backup API copies a consistent snapshot while the log's writer is busy; copying the "
        "file would miss the rows still in its write-ahead log. Databases go first, then model files."
    )
    n.code("ops/backup.py::backup", "ops/backup.py::snapshot_sqlite")
    _, model = load_champion(s)
    before = model.predict_proba(rows)

    n.step("Disaster: the disk holding the state is gone")
    shutil.rmtree(s.state)
    n.bad(f"deleted {display_path(ctx, s.state)}: the registry, every model file, the prediction log")

    n.step("A damaged copy is refused before anything is written")
    damaged = vault / "damaged.tar.gz"
    data = bytearray(result.archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, as a bad disk sector or a broken transfer would leave
    damaged.write_bytes(bytes(data))
    try:
        restore(damaged, s)
        n.bad("the damaged archive was accepted")
    except CorruptBackupError as err:
        n.ok(f"refused: {err}")
    damaged.unlink()

    n.step("Restore the good archive: verify every member, then install")
    started = time.perf_counter()
    restored = restore(result.archive, s)
    took = time.perf_counter() - started
    configure_runtime(s)  # the folders services expect besides the restored data
    n.ok(
        f"{len(manifest['files'])} members matched their sha256; installed {', '.join(restored.installed)} in "
        f"{took:.2f} s; champion v{restored.champion}, {counts(restored.rows)}"
    )
    n.code("ops/restore.py::restore", "ops/restore.py::extract_verified")

    n.step("Verify as a user would")
    version, model = load_champion(s)
    after = model.predict_proba(rows)
    if version == champion and (after == before).all():
        n.ok(f"MLflow loads champion v{version}; predict_proba on {USERS} rows: identical, bit for bit")
    else:
        n.bad(f"restored champion v{version} answers differently from v{champion} before the loss")
    logged = log_counts(s.state / "predictions.db")
    if logged == manifest["prediction_log"]:
        n.ok(f"prediction log: {counts(logged)}, as backed up")
    else:
        n.bad(f"prediction log: {counts(logged)}, but the backup held {counts(manifest['prediction_log'])}")
    with running_service(drill) as service:
        again = service.send(people, seed=SEED, feedback=False)
    matching = sum(a == b for a, b in zip(_answers(again.bodies), _answers(served.bodies), strict=True))
    if matching == USERS:
        n.ok(f"the API answers the same {USERS} requests exactly as before the loss")
    else:
        n.bad(f"only {matching} of {USERS} answers are the same as before the loss")

    n.step("Restoring over existing state needs --force")
    try:
        restore(result.archive, s)
        n.bad("existing state was overwritten without --force")
    except StateExistsError as err:
        n.ok(f"refused: {str(err).split(';')[0]}; `mlops-lab restore ARCHIVE --force` replaces it")
    n.why(
        "Recovery is measured, not assumed: how much is lost (everything since the last backup, so back up on a "
        "schedule and keep copies off the machine) and how long restoring takes (seconds here). The drill test "
        "runs this in CI. PostgreSQL and an MLflow server are backed up with pg_dump and their store's snapshots."
    )
    n.code(
        "mlops-lab backup --out DIR",
        "mlops-lab restore ARCHIVE [--force]",
        "tests/integration/ops/test_backup_restore.py",
    )
