"""Restore a backup archive into the state folder, proving it before and after.

Concept: disaster recovery (C50), the half that matters. Before anything in the state folder is
touched, every member of the archive is checked against the manifest's sha256 and size, and any
member the manifest does not list is refused, so a truncated, bit-rotted or tampered archive fails
with the member's name instead of half-restoring. Existing state is only replaced with ``force``,
and what was there is parked until the new state is installed and verified: a failed restore puts
it back. Afterwards the champion and the prediction log's row counts are read from the installed
databases and compared with the manifest. Services using the state must be stopped first.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.digests import file_sha256
from core.mlflow_config import mlflow_client
from core.startup import STATE_MARKER
from ops.backup import (
    ARTIFACTS,
    DVC_CACHE,
    FORMAT,
    MANIFEST,
    PREDICTIONS,
    REGISTRY,
    SQLITE_SIDECARS,
    BackupError,
    CorruptBackupError,
    StateExistsError,
    layout,
    log_counts,
    registry_facts,
)
from pipelines.registry import load_version_model

if TYPE_CHECKING:
    from core.settings import Settings

# Columns of MLflow's schema that hold absolute artifact URIs; columns an older schema lacks are skipped.
ARTIFACT_URI_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)


@dataclass(frozen=True)
class RestoreResult:
    state: Path
    manifest: dict[str, Any]
    installed: list[str]  # archive members put in place (a file or a folder each)
    replaced: list[str]  # existing state that --force replaced
    relocated_uris: int  # MLflow artifact URIs rewritten to the new artifact root
    dvc_objects_added: int
    champion: str | None
    rows: dict[str, int]


def extract_verified(archive: Path, into: Path) -> dict[str, Any]:
    """Unpack ``archive`` into ``into`` and check every member against the manifest; return the manifest.

    Raises:
        CorruptBackupError: unreadable archive, unsafe or unlisted member, missing member, checksum mismatch.
    """
    if not archive.is_file():
        raise BackupError(f"no backup archive at {archive}")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                relative = Path(member.name)
                if not (member.isfile() or member.isdir()) or relative.is_absolute() or ".." in relative.parts:
                    raise CorruptBackupError(
                        f"{archive.name}: refusing member {member.name!r} (not a plain relative file)"
                    )
            tar.extractall(into, filter="data")
            # Read to the end: tar stops at a garbled header as if the archive ended there, and gzip checks
            # its CRC only at the end of the stream. Draining it turns silent truncation into an error.
            while tar.fileobj is not None and tar.fileobj.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise CorruptBackupError(
            f"{archive} is not a readable backup ({type(err).__name__}: {err}): the file is truncated or damaged; "
            "use another copy of the backup"
        ) from err
    try:
        manifest: dict[str, Any] = json.loads((into / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise CorruptBackupError(f"{archive.name} has no readable {MANIFEST}: it is not an mlops-lab backup") from err
    if manifest.get("format") != FORMAT:
        raise CorruptBackupError(
            f"{archive.name} has manifest format {manifest.get('format')}; this version reads {FORMAT}"
        )
    listed: dict[str, dict[str, Any]] = manifest["files"]
    present = {p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file()} - {MANIFEST}
    if unlisted := sorted(present - set(listed)):
        raise CorruptBackupError(f"{archive.name}: members not in the manifest: {', '.join(unlisted[:5])}")
    if missing := sorted(set(listed) - present):
        raise CorruptBackupError(f"{archive.name}: members missing from the archive: {', '.join(missing[:5])}")
    for name, expected in listed.items():
        size, digest = (into / name).stat().st_size, file_sha256(into / name)
        if size != expected["bytes"] or digest != expected["sha256"]:
            raise CorruptBackupError(
                f"{archive.name}: member {name} does not match the manifest (sha256 {digest[:12]}..., "
                f"{size} bytes; expected {expected['sha256'][:12]}..., {expected['bytes']} bytes): the archive "
                "was damaged or altered after it was written; use another copy"
            )
    return manifest


def relocate_artifact_uris(db: Path, old_root: str, new_root: str) -> int:
    """Rewrite MLflow's stored artifact URIs from ``old_root`` to ``new_root``; return the rows changed."""
    old, new = old_root.rstrip("/"), new_root.rstrip("/")
    if old == new:
        return 0
    changed = 0
    with closing(sqlite3.connect(db)) as conn, conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, column in ARTIFACT_URI_COLUMNS:
            if table not in tables or column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                continue
            # Names come from ARTIFACT_URI_COLUMNS, values are bound parameters: no outside text reaches the SQL.
            sql = (
                f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608
                f"WHERE {column} = ? OR substr({column}, 1, ?) = ?"
            )
            changed += conn.execute(sql, (new, len(old) + 1, old, len(old) + 1, old + "/")).rowcount
    return changed


def _occupied(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def _merge_dvc_cache(source: Path, target: Path) -> int:
    """Add the archive's DVC objects the cache lacks; content-addressed, so existing ones are kept."""
    added = 0
    for file in (p for p in source.rglob("*") if p.is_file()):
        dest = target / file.relative_to(source)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, dest)
            added += 1
    return added


def restore(archive: Path, settings: Settings, force: bool = False) -> RestoreResult:
    """Verify ``archive``, then install it as the state named by ``settings``.

    Raises:
        CorruptBackupError: the archive fails verification (nothing was touched).
        StateExistsError: the target holds state and ``force`` is False (nothing was touched).
        BackupError: the installed state does not match the manifest (the previous state was put back).
    """
    lay = layout(settings)
    state = settings.state  # a folder restore fills from nothing is ours: marked, so `reset` may remove it
    fresh = not state.exists() or (state / STATE_MARKER).exists() or not any(state.iterdir())
    lay.registry_db.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".restore-", dir=lay.registry_db.parent))
    try:
        unpacked = work / "archive"
        manifest = extract_verified(archive, unpacked)
        log_db = lay.predictions_db or lay.registry_db
        # Every part the state has is replaced, also one the archive lacks: the result is the backup, not a mix.
        targets = {REGISTRY: lay.registry_db, ARTIFACTS: lay.artifacts}
        if lay.predictions_db is not None:
            targets[PREDICTIONS] = lay.predictions_db
        elif (unpacked / PREDICTIONS).exists():
            raise BackupError(
                "the archive has its own prediction log database, but MLOPS_PREDICTION_LOG_URL points at the "
                "registry's file: unset it to restore the log into the state folder"
            )
        occupied = [
            p for t in targets.values() for p in (t, *(Path(f"{t}{s}") for s in SQLITE_SIDECARS)) if _occupied(p)
        ]
        if occupied and not force:
            raise StateExistsError(
                f"state already exists ({', '.join(str(p) for p in occupied)}); restoring would replace it. "
                "Back it up first (`mlops-lab backup`), then restore with --force"
            )
        parked: list[tuple[Path, Path]] = []
        installed: list[Path] = []
        try:
            for n, path in enumerate(occupied):
                parked.append((path, work / f"parked-{n}"))
                shutil.move(path, parked[-1][1])
            for member, target in targets.items():
                if (unpacked / member).exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(unpacked / member, target)
                    installed.append(target)
            relocated = relocate_artifact_uris(lay.registry_db, manifest["source"]["artifact_root"], lay.artifact_root)
            facts, rows = registry_facts(lay.registry_db, manifest["registry"]["model_name"]), log_counts(log_db)
            if facts["aliases"] != manifest["registry"]["aliases"] or rows != manifest["prediction_log"]:
                raise BackupError(f"installed state does not match the manifest: {facts['aliases']}, {rows}")
        except BaseException:
            for path in installed:  # undo: the new state out, the old state back
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            for original, spot in parked:
                shutil.move(spot, original)
            raise
        added = 0
        if (unpacked / DVC_CACHE).is_dir() and lay.dvc_cache.parent.is_dir():
            added = _merge_dvc_cache(unpacked / DVC_CACHE, lay.dvc_cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if fresh and state.is_dir():
        (state / STATE_MARKER).touch()
    return RestoreResult(
        state=settings.state,
        manifest=manifest,
        installed=[m for m, t in targets.items() if t in installed],
        replaced=[str(p) for p in occupied],
        relocated_uris=relocated,
        dvc_objects_added=added,
        champion=facts["champion"],
        rows=rows,
    )


def load_champion(settings: Settings) -> tuple[str, Any]:
    """Ask MLflow itself for the restored champion and load it, as serving would; return (version, model).

    Raises:
        BackupError: MLflow cannot read the registry (e.g. a schema of another MLflow version) or load the model.
    """
    from mlflow.exceptions import MlflowException

    try:
        version = mlflow_client(settings).get_model_version_by_alias(settings.model_name, "champion").version
        return str(version), load_version_model(settings, str(version))
    except (MlflowException, OSError) as err:
        raise BackupError(
            f"MLflow cannot load the champion from the restored state ({err}); if the backup was made with "
            "another MLflow version, run `mlflow db upgrade <tracking uri>` first"
        ) from err
