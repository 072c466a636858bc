"""Backups of the local state: registry, model artifacts, prediction log, DVC cache, and a manifest.

Concept: disaster recovery (C50). A backup nobody has restored is a hope, not a backup, so the
archive carries what a restore needs to prove it: a manifest with the size and sha256 of every
member, the library and schema versions, the champion version and the prediction log's row counts,
signed with a key kept outside the archive (``ops/backup_signing.py``): checksums catch damage, the
signature catches a forgery. ``ops/restore.py`` checks all of it before and after it installs anything.

Consistency while services run: SQLite databases are copied with SQLite's online backup API (a
consistent snapshot even in the middle of a write, which copying the file and its WAL is not), and
before the artifact folder, because MLflow writes a model's files before the registry row that
points at them. Scope: the embedded engines. A PostgreSQL database or an MLflow tracking server is
backed up where it lives (``pg_dump``, the artifact store's own snapshots); the command says so
instead of writing a partial archive. MLflow keeps absolute artifact URIs in its database, so a
restore into another folder rewrites them from the old artifact root to the new one.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import tarfile
import tempfile
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from core.digests import file_sha256
from core.redact import redact
from ops.backup_errors import BackupError as BackupError  # re-exported: callers import the errors from here
from ops.backup_errors import CorruptBackupError as CorruptBackupError
from ops.backup_errors import OutOfScopeError as OutOfScopeError
from ops.backup_errors import StateExistsError as StateExistsError
from ops.backup_signing import SIGNATURE, BackupKey, backup_key, sign

if TYPE_CHECKING:
    from core.settings import Settings

FORMAT = 1
MANIFEST = "manifest.json"
REGISTRY, PREDICTIONS, ARTIFACTS, DVC_CACHE = "mlflow.db", "predictions.db", "mlartifacts", "dvc-cache"
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
NOT_INCLUDED = "Prefect run history, reports and Data Docs: derived, rebuilt by running the flows again"


@dataclass(frozen=True)
class Layout:
    """Where each part of the state lives, resolved from the settings."""

    registry_db: Path
    artifacts: Path
    artifact_root: str  # the URI MLflow has stored for new experiments
    predictions_db: Path | None  # None: the prediction log shares the registry's file
    dvc_cache: Path


def _sqlite_file(url: str, role: str) -> Path:
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith("sqlite"):
        database = url.split(":///", 1)[1] if ":///" in url else ""
        if database and not database.startswith(":memory:"):
            return Path(unquote(database.split("?", 1)[0])).resolve()
        hint = "an in-memory database has nothing to back up"
    elif scheme.startswith("postgresql"):
        dump = role.replace(" ", "-").lower()
        hint = f"back it up with PostgreSQL's tools: `pg_dump --format=custom --file={dump}.dump <url>`, `pg_restore`"
    elif scheme in ("http", "https"):
        hint = "back up the tracking server's backend database (pg_dump) and its artifact store where they live"
    else:
        hint = "back it up with the tools of the system that holds it"
    raise OutOfScopeError(
        f"the {role} is not a local SQLite file ({redact(url)}): out of scope for `mlops-lab backup`, which "
        f"copies the embedded state only; {hint}"
    )


def local_folder(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(url2pathname(unquote(parsed.path))).resolve()
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and sys.platform == "win32"):
        return Path(uri).resolve()
    raise OutOfScopeError(
        f"the artifact root {uri} is not a local folder: out of scope for `mlops-lab backup`; snapshot that "
        "store with its own tools (object versioning or replication of the bucket, the server's volume)"
    )


def layout(settings: Settings) -> Layout:
    """Resolve the state's parts; raises OutOfScopeError for anything that is not local and embedded."""
    registry = _sqlite_file(settings.mlflow_tracking_uri, "MLflow tracking store")
    if settings.registry_uri and _sqlite_file(settings.registry_uri, "MLflow model registry") != registry:
        raise OutOfScopeError(
            "the model registry is a different database from the tracking store: unset MLOPS_REGISTRY_URI, "
            "or back up each database with its own tools"
        )
    predictions = _sqlite_file(settings.prediction_log_uri, "prediction log")
    artifact_root = settings.mlflow_artifact_root or ""  # None only on a tracking server, refused above
    return Layout(
        registry_db=registry,
        artifacts=local_folder(artifact_root),
        artifact_root=artifact_root,
        predictions_db=None if predictions == registry else predictions,
        dvc_cache=settings.project_dir.resolve() / ".dvc" / "cache",
    )


def snapshot_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (online backup API), as one self-contained file."""
    with closing(sqlite3.connect(source, timeout=30)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"{source} fails SQLite's integrity check ({check}): restore it from an older backup")
        dst.execute("PRAGMA journal_mode=DELETE")  # no -wal file to carry; the log re-enables WAL on open


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def registry_facts(db: Path, model_name: str) -> dict[str, Any]:
    """Aliases of the model and the MLflow schema revision, read from the registry database itself."""
    with closing(sqlite3.connect(db)) as conn:
        tables = _tables(conn)
        aliases = {}
        if "registered_model_aliases" in tables:
            query = "SELECT alias, version FROM registered_model_aliases WHERE name = ? ORDER BY alias"
            aliases = {alias: str(version) for alias, version in conn.execute(query, (model_name,))}
        schema = (
            conn.execute("SELECT version_num FROM alembic_version").fetchone() if "alembic_version" in tables else None
        )
    return {
        "model_name": model_name,
        "aliases": aliases,
        "champion": aliases.get("champion"),
        "schema": schema and schema[0],
    }


def log_counts(db: Path | None) -> dict[str, int]:
    """Rows in the prediction log's tables (0 for a table, or a database, that does not exist yet)."""
    counts = {"predictions": 0, "feedback": 0}
    if db is None or not db.is_file():
        return counts
    with closing(sqlite3.connect(db)) as conn:
        present = _tables(conn)
        for table in counts:
            if table in present:
                counts[table] = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608 - our names
    return counts


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p not in (root / MANIFEST, root / SIGNATURE))


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def build_manifest(staging: Path, settings: Settings, lay: Layout, now: datetime) -> dict[str, Any]:
    """Describe what the staged copy holds: every member's size and sha256, versions, champion, log counts."""
    files = {
        p.relative_to(staging).as_posix(): {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
        for p in _files(staging)
    }
    components: dict[str, dict[str, Any]] = {}
    for name, member in (("registry", REGISTRY), ("prediction_log", PREDICTIONS), ("artifacts", ARTIFACTS),
                         ("dvc_cache", DVC_CACHE)):  # fmt: skip
        chosen = [f for f in files if f == member or f.startswith(member + "/")]
        if chosen:
            components[name] = {"member": member, "files": len(chosen), "bytes": sum(files[f]["bytes"] for f in chosen)}
    if lay.predictions_db is None:
        components["prediction_log"] = {**components["registry"], "shared_with_registry": True}
    registry = registry_facts(staging / REGISTRY, settings.model_name)
    log_db = staging / (REGISTRY if lay.predictions_db is None else PREDICTIONS)
    return {
        "format": FORMAT,
        "created_at": now.isoformat(timespec="seconds"),
        "source": {"state": str(settings.state), "artifact_root": lay.artifact_root},
        "versions": {
            "mlops-lab": _version("mlops-lab"),
            "python": sys.version.split()[0],
            "mlflow": _version("mlflow"),
            "sqlite": sqlite3.sqlite_version,
            "mlflow_schema": registry.pop("schema"),
        },
        "registry": registry,
        "prediction_log": log_counts(log_db),
        "components": components,
        "files": files,
        "not_included": NOT_INCLUDED,
    }


@dataclass(frozen=True)
class BackupResult:
    archive: Path
    manifest: dict[str, Any]
    key: BackupKey  # the key that signed it (``created``: made by this backup, keep a copy)


def _archive_name(out_dir: Path, now: datetime) -> Path:
    stem = f"mlops-lab-backup-{now:%Y%m%dT%H%M%SZ}"
    candidate, n = out_dir / f"{stem}.tar.gz", 1
    while candidate.exists():
        n += 1
        candidate = out_dir / f"{stem}-{n}.tar.gz"
    return candidate


def backup(settings: Settings, out_dir: Path, now: datetime | None = None) -> BackupResult:
    """Write ``<out_dir>/mlops-lab-backup-<UTC time>.tar.gz``: the state's parts plus ``manifest.json``."""
    lay = layout(settings)
    if not lay.registry_db.is_file():
        raise BackupError(f"no registry at {lay.registry_db}: nothing to back up (train a model first)")
    key = backup_key(settings, create=True)  # before any work: a key problem is said at once
    now = now or datetime.now(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".backup-", dir=out_dir))
    try:
        snapshot_sqlite(lay.registry_db, staging / REGISTRY)  # databases first: see the module docstring
        if lay.predictions_db is not None and lay.predictions_db.is_file():
            snapshot_sqlite(lay.predictions_db, staging / PREDICTIONS)
        if lay.artifacts.is_dir():
            shutil.copytree(lay.artifacts, staging / ARTIFACTS)
        if lay.dvc_cache.is_dir():
            shutil.copytree(lay.dvc_cache, staging / DVC_CACHE, ignore=shutil.ignore_patterns("tmp"))
        manifest = build_manifest(staging, settings, lay, now)
        manifest_bytes = (json.dumps(manifest, indent=2) + "\n").encode()
        (staging / MANIFEST).write_bytes(manifest_bytes)
        (staging / SIGNATURE).write_bytes(sign(manifest_bytes, key))
        archive = _archive_name(out_dir, now)
        partial = archive.with_name(archive.name + ".part")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(staging / MANIFEST, arcname=MANIFEST)  # first, then its signature: restore reads them first
            tar.add(staging / SIGNATURE, arcname=SIGNATURE)
            for name in manifest["files"]:
                tar.add(staging / name, arcname=name, recursive=False)
        os.replace(partial, archive)  # a crash never leaves a half-written file under the final name
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BackupResult(archive, manifest, key)


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def counts(rows: dict[str, int]) -> str:
    return ", ".join(f"{n} {table}" for table, n in rows.items())


def component_rows(manifest: dict[str, Any]) -> list[list[str]]:
    """One row per backed-up part: component, archive member, files, size (the CLI and the demo print them)."""
    return [
        [name, info["member"] + (" (shared)" if info.get("shared_with_registry") else ""), str(info["files"]),
         human_size(info["bytes"])]
        for name, info in manifest["components"].items()
    ]  # fmt: skip
