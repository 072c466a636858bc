"""Restore a backup archive into the state folder, proving it before and after.

Concept: disaster recovery (C50), the half that matters. Nothing is written before the manifest's
signature matches the backup key (``ops/backup_signing.py``): a manifest re-hashed after a model file
was swapped is a forgery, not damage. The members are then unpacked one at a time, each refused at
its header if the manifest does not list it or gives it another size, and hashed while it is
written, so a truncated, bit-rotted or tampered archive fails with the member's name and never
writes more than the manifest's total (itself capped by ``MLOPS_RESTORE_MAX_BYTES``). Existing state
is only replaced with ``force``, and what was there is parked until the new state is installed and
verified: a failed restore puts it back. Afterwards the champion and the prediction log's row counts
are read from the installed databases and compared with the manifest, and the champion is loaded
through the safe loader (skops only, our types, its registered digest), never MLflow's unpickler.
A restore needs the state's lease alone (`core.state_lease`): while a service runs, it is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from core.mlflow_config import mlflow_client
from core.startup import STATE_MARKER
from core.state_lease import StateInUseError, exclusive_lease
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
    Layout,
    StateExistsError,
    layout,
    log_counts,
    registry_facts,
)
from ops.backup_errors import ServicesRunningError
from ops.backup_signing import SIGNATURE, BackupKey, backup_key, check_signature
from pipelines.model_files import UntrustedModelError
from pipelines.registry import load_version_model

if TYPE_CHECKING:
    from core.settings import Settings

CHUNK = 1 << 20
MANIFEST_MAX_BYTES = 64 << 20  # the manifest and its signature are read before they are trusted
MAX_TRAILING_BYTES = 1 << 20  # tar pads its end with zeros (10 KiB records); far more is not ours
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


def _read_small(tar: tarfile.TarFile, member: tarfile.TarInfo, archive_name: str) -> bytes:
    """Read the manifest or its signature: bounded, since it is read before the signature is checked."""
    if not member.isfile() or member.size > MANIFEST_MAX_BYTES:
        raise CorruptBackupError(f"{archive_name}: {member.name} is not a plain file under {MANIFEST_MAX_BYTES} bytes")
    source = tar.extractfile(member)
    assert source is not None  # a regular file always has a reader
    return source.read()


def _parse_manifest(archive_name: str, raw: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
        files = manifest["files"]
        well_formed = all(isinstance(i["bytes"], int) and isinstance(i["sha256"], str) for i in files.values())
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CorruptBackupError(f"{archive_name} has no readable {MANIFEST}: it is not an mlops-lab backup") from err
    if not well_formed:
        raise CorruptBackupError(f"{archive_name}: {MANIFEST} lists a member without a size or a sha256")
    if manifest.get("format") != FORMAT:
        raise CorruptBackupError(
            f"{archive_name} has manifest format {manifest.get('format')}; this version reads {FORMAT}"
        )
    return dict(manifest)


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, expected: Any, into: Path, name: str) -> int:
    """Write one member while hashing it; its size was checked against the manifest before. Returns bytes written.

    Raises:
        CorruptBackupError: not a plain file, an unsafe name, or content whose sha256 differs from the manifest.
    """
    relative = PurePosixPath(member.name)
    if not member.isfile() or relative.is_absolute() or ".." in relative.parts:
        raise CorruptBackupError(f"{name}: refusing member {member.name!r} (not a plain relative file)")
    target = into / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    assert source is not None
    digest, written = hashlib.sha256(), 0
    with target.open("xb") as out:  # tarfile reads exactly member.size bytes: the manifest's size
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            written += len(chunk)
    if digest.hexdigest() != expected["sha256"]:
        raise CorruptBackupError(
            f"{name}: member {member.name} does not match the manifest (sha256 {digest.hexdigest()[:12]}...; "
            f"expected {expected['sha256'][:12]}...): the archive was damaged or altered after it was written; "
            "use another copy"
        )
    return written


def extract_verified(archive: Path, into: Path, key: BackupKey, max_bytes: int) -> dict[str, Any]:
    """Check the manifest's signature, then unpack the members one by one, each checked as it is written.

    Nothing is written before the signature matches and the manifest's total fits ``max_bytes``. A member
    the manifest does not list, or whose size in the archive differs, is refused at its header, before
    any of its bytes; a member's sha256 is computed while it is written. So a forged or damaged archive
    writes at most the manifest's own total, and a bomb of zeros is refused before it expands.

    Raises:
        CorruptBackupError: unreadable or unsigned archive, a foreign signature, an unlisted, resized,
            repeated or missing member, a checksum mismatch, or a total over ``max_bytes``.
    """
    if not archive.is_file():
        raise BackupError(f"no backup archive at {archive}")
    name = archive.name
    try:
        with tarfile.open(archive, "r|gz") as tar:  # a stream: members in archive order, none read ahead
            first = tar.next()
            if first is None or first.name != MANIFEST:
                raise CorruptBackupError(f"{name} does not start with {MANIFEST}: it is not an mlops-lab backup")
            raw = _read_small(tar, first, name)
            second = tar.next()
            signature = _read_small(tar, second, name) if second is not None and second.name == SIGNATURE else None
            check_signature(name, raw, signature, key)
            manifest = _parse_manifest(name, raw)
            listed: dict[str, dict[str, Any]] = manifest["files"]
            total = sum(int(info["bytes"]) for info in listed.values())
            if total > max_bytes:
                raise CorruptBackupError(
                    f"{name} would write {total} bytes, over the restore limit of {max_bytes} "
                    "(MLOPS_RESTORE_MAX_BYTES): raise the limit if this backup is really that large"
                )
            seen: set[str] = set()
            written = 0
            while (member := tar.next()) is not None:
                expected = listed.get(member.name)
                if expected is None or member.name in seen:
                    why = "appears twice" if expected is not None else "is not in the manifest"
                    raise CorruptBackupError(f"{name}: member {member.name} {why}; nothing of it was written")
                if member.size != expected["bytes"]:
                    raise CorruptBackupError(
                        f"{name}: member {member.name} does not match the manifest ({member.size} bytes in the "
                        f"archive, {expected['bytes']} listed); nothing of it was written; use another copy"
                    )
                written += _extract_member(tar, member, expected, into, name)
                seen.add(member.name)
                if written > total:  # cannot happen with the checks above; cheap to keep
                    raise CorruptBackupError(f"{name}: more bytes than the manifest lists")
            # Read to the end (bounded): gzip checks its CRC only at the end of the stream, and anything
            # after the tar's end marker beyond its padding is not ours.
            trailing = 0
            while tar.fileobj is not None and (chunk := tar.fileobj.read(CHUNK)):
                trailing += len(chunk)
                if trailing > MAX_TRAILING_BYTES:
                    raise CorruptBackupError(f"{name}: data after the last member; the archive was altered")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise CorruptBackupError(
            f"{archive} is not a readable backup ({type(err).__name__}: {err}): the file is truncated or damaged; "
            "use another copy of the backup"
        ) from err
    if missing := sorted(set(listed) - seen):
        raise CorruptBackupError(f"{name}: members missing from the archive: {', '.join(missing[:5])}")
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
        ServicesRunningError: a service holds the state's lease (nothing was touched): stop it first.
        BackupError: the installed state does not match the manifest (the previous state was put back).
    """
    lay = layout(settings)
    key = backup_key(settings, create=False)
    state = settings.state  # a folder restore fills from nothing is ours: marked, so `reset` may remove it
    fresh = not state.exists() or (state / STATE_MARKER).exists() or not any(state.iterdir())
    try:
        with exclusive_lease(state, "restore"):  # no service may hold the files we are about to replace
            result = _install(archive, settings, lay, key, force)
    except StateInUseError as err:
        raise ServicesRunningError(str(err)) from err
    if fresh and state.is_dir():
        (state / STATE_MARKER).touch()
    return result


def _install(archive: Path, settings: Settings, lay: Layout, key: BackupKey, force: bool) -> RestoreResult:
    lay.registry_db.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".restore-", dir=lay.registry_db.parent))
    try:
        unpacked = work / "archive"
        manifest = extract_verified(archive, unpacked, key, settings.restore_max_bytes)
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
    except UntrustedModelError as err:
        raise BackupError(
            f"the restored champion is refused and was not loaded ({err}); its code never ran. Restore another "
            "backup with --force"
        ) from err
    except (MlflowException, OSError) as err:
        raise BackupError(
            f"MLflow cannot load the champion from the restored state ({err}); if the backup was made with "
            "another MLflow version, run `mlflow db upgrade <tracking uri>` first"
        ) from err
