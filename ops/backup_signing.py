"""Signed backup manifests: an HMAC-SHA256 over the manifest's exact bytes, with a key the archive never holds.

Concept: disaster recovery (C50) and security (C44). A sha256 per member proves an archive was not
damaged, not that we wrote it: whoever can replace a model file can re-hash the manifest too. So
``backup`` signs the manifest with a secret key, and ``restore`` refuses, before extracting a single
member, an archive whose signature is missing or made with another key. The manifest lists every
member's size and sha256, so the signature covers the whole archive.

Where the key lives: ``MLOPS_BACKUP_KEY`` (a secret store, a CI secret), else a key file created on
the first backup with mode 0600, by default ``$XDG_CONFIG_HOME/mlops-lab/backup.key``: per user,
outside the state folder it signs (lost and restored with it otherwise), outside the repository
(committed otherwise) and outside the backup folder (whoever can write an archive could read it
there). A restore on another machine needs the same key: keep a copy off the machine with the backups,
in a different place.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ops.backup_errors import BackupError, CorruptBackupError

if TYPE_CHECKING:
    from core.settings import Settings

SIGNATURE = "manifest.json.hmac"  # the archive's second member, right after the manifest
ALGORITHM = "hmac-sha256"
MIN_KEY_CHARS = 16


@dataclass(frozen=True)
class BackupKey:
    secret: bytes
    source: str  # "MLOPS_BACKUP_KEY" or the key file's path, for messages
    created: bool = False  # made by this call: the CLI says to keep a copy

    @property
    def key_id(self) -> str:
        """A short public name for the key, so a refusal can say which key signed an archive."""
        return hashlib.sha256(b"mlops-lab backup key id:" + self.secret).hexdigest()[:12]


def _check_file(path: Path, settings: Settings) -> None:
    if path.resolve().is_relative_to(settings.state):
        raise BackupError(
            f"the backup key file {path} is inside the state folder it signs: it would be lost with it; "
            "set MLOPS_BACKUP_KEY_FILE to a path outside it"
        )
    if path.exists() and path.stat().st_mode & 0o077:
        raise BackupError(f"the backup key file {path} is readable by other users: `chmod 600 {path}`")


def backup_key(settings: Settings, create: bool) -> BackupKey:
    """The key that signs and checks manifests: the setting, else the key file (made when ``create``).

    Raises:
        BackupError: the key is too short, the file is shared with other users or inside the state, or
            there is no key and ``create`` is False (a restore: it needs the key the backup was made with).
    """
    if settings.backup_key is not None:
        if len(settings.backup_key) < MIN_KEY_CHARS:
            raise BackupError(f"MLOPS_BACKUP_KEY must have at least {MIN_KEY_CHARS} characters")
        return BackupKey(settings.backup_key.encode(), "MLOPS_BACKUP_KEY")
    path = settings.backup_key_file.expanduser()
    _check_file(path, settings)
    if path.is_file():
        return BackupKey(path.read_text().strip().encode(), str(path))
    if not create:
        raise CorruptBackupError(
            f"no backup key (MLOPS_BACKUP_KEY is unset and {path} does not exist): a backup can only be restored "
            "with the key it was signed with; set MLOPS_BACKUP_KEY or MLOPS_BACKUP_KEY_FILE to that key"
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never replaces a key made meanwhile
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return BackupKey(path.read_text().strip().encode(), str(path), created=True)


def sign(manifest: bytes, key: BackupKey) -> bytes:
    """The signature member's bytes: algorithm, key id and the HMAC of the manifest's exact bytes."""
    digest = hmac.new(key.secret, manifest, hashlib.sha256).hexdigest()
    return (json.dumps({"algorithm": ALGORITHM, "key_id": key.key_id, "hmac": digest}) + "\n").encode()


def check_signature(archive_name: str, manifest: bytes, signature: bytes | None, key: BackupKey) -> None:
    """Refuse a manifest that is not signed, or not signed with ``key``.

    Raises:
        CorruptBackupError: no signature, an unreadable one, or one that does not match (altered or foreign).
    """
    if signature is None:
        raise CorruptBackupError(
            f"{archive_name} has no {SIGNATURE}: it is unsigned (made by an older mlops-lab, or stripped) and "
            "its content cannot be told from a forgery; it is not restored. Restore a signed backup"
        )
    try:
        claimed = json.loads(signature)
        algorithm, key_id, digest = claimed["algorithm"], str(claimed["key_id"]), str(claimed["hmac"])
    except (ValueError, KeyError, TypeError) as err:
        raise CorruptBackupError(f"{archive_name}: {SIGNATURE} is unreadable; the archive is not restored") from err
    expected = hmac.new(key.secret, manifest, hashlib.sha256).hexdigest()
    if algorithm != ALGORITHM or not hmac.compare_digest(digest, expected):
        other = key_id != key.key_id
        raise CorruptBackupError(
            f"{archive_name}: the manifest's signature does not match "
            + (
                f"(it names key {key_id}; this key, from {key.source}, is {key.key_id}): give the key "
                "the backup was made with (MLOPS_BACKUP_KEY or MLOPS_BACKUP_KEY_FILE)"
                if other
                else f"the key {key.key_id} that signed it: the manifest was altered after signing; use another copy"
            )
        )
