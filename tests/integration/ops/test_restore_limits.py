"""Hostile archives: a small file that would expand hugely must be refused before it is written out.

Each archive here is a few hundred KiB of gzip holding a 128 MiB member of zeros, and each is refused
for another reason: no signature, a signature made with another key, a member the manifest does not
list, a member whose size differs from the manifest's, or a signed manifest whose total is over the
restore limit. What the restore wrote is measured in its work folder just before it is removed.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from ops.backup import BackupError, CorruptBackupError
from ops.backup_signing import SIGNATURE, BackupKey, backup_key, sign
from ops.restore import restore

pytestmark = [pytest.mark.integration]
BOMB = 128 << 20  # bytes of zeros in the bomb member
SMALL = 1024


class Zeros(io.RawIOBase):
    """``size`` zero bytes, produced as they are read (the test never holds the bomb in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def zeros_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for start in range(0, size, 1 << 20):
        digest.update(bytes(min(1 << 20, size - start)))
    return digest.hexdigest()


def write_archive(path: Path, listed: dict[str, int], members: dict[str, int], key: BackupKey | None) -> Path:
    """A backup-shaped archive: a manifest listing ``listed`` (name: bytes of zeros), members of zeros."""
    files = {name: {"bytes": size, "sha256": zeros_sha256(size)} for name, size in listed.items()}
    manifest = json.dumps({"format": 1, "files": files}).encode()
    with tarfile.open(path, "w:gz", compresslevel=9) as tar:
        entries = [("manifest.json", len(manifest), io.BytesIO(manifest))]
        if key is not None:
            signature = sign(manifest, key)
            entries.append((SIGNATURE, len(signature), io.BytesIO(signature)))
        entries += [(name, size, Zeros(size)) for name, size in members.items()]
        for name, size, source in entries:
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, source)  # type: ignore[arg-type]
    return path


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes in each restore work folder at the moment it is cleaned up: all the restore wrote."""
    sizes: list[int] = []
    real_rmtree = shutil.rmtree

    def measuring_rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        if Path(path).name.startswith(".restore-"):
            sizes.append(sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()))
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", measuring_rmtree)
    return sizes


ATTACKER = BackupKey(b"an attacker's key, not ours: example", "attacker")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unsigned", "has no manifest.json.hmac"),
        ("foreign-key", "signature does not match"),
        ("size-lie", f"member mlflow.db does not match the manifest \\({BOMB} bytes in the archive, {SMALL} listed"),
        ("unlisted-member", "member mlartifacts/bomb is not in the manifest"),
        ("over-the-limit", f"would write {BOMB} bytes, over the restore limit of {1 << 20}"),
    ],
)
def test_a_small_archive_that_would_expand_hugely_is_refused_before_it_is_written(
    case: str, expected: str, tmp_path: Path, make_settings, written: list[int]
) -> None:
    target = make_settings(tmp_path / "target", restore_max_bytes=1 << 20)
    (target.state / "mlflow.db").unlink()
    ours = backup_key(target, create=True)
    archive = tmp_path / "bomb.tar.gz"
    if case == "unsigned":
        write_archive(archive, {"mlflow.db": BOMB}, {"mlflow.db": BOMB}, key=None)
    elif case == "foreign-key":  # re-hashed by someone without our key
        write_archive(archive, {"mlflow.db": BOMB}, {"mlflow.db": BOMB}, key=ATTACKER)
    elif case == "size-lie":  # signed, but the member's header says otherwise
        write_archive(archive, {"mlflow.db": SMALL}, {"mlflow.db": BOMB}, key=ours)
    elif case == "unlisted-member":
        write_archive(archive, {"mlflow.db": SMALL}, {"mlflow.db": SMALL, "mlartifacts/bomb": BOMB}, key=ours)
    else:  # signed and honest, but over the restore limit (1 MiB here)
        write_archive(archive, {"mlflow.db": BOMB}, {"mlflow.db": BOMB}, key=ours)
    assert archive.stat().st_size < BOMB // 100  # a small file...

    with pytest.raises(BackupError) as refused:
        restore(archive, target)

    assert written, "the restore's work folder was not cleaned up"
    assert max(written) <= SMALL  # ...of which at most the one small listed member was written
    assert isinstance(refused.value, CorruptBackupError)
    assert re.search(expected, str(refused.value))
    assert not (target.state / "mlflow.db").exists()
    assert not list(target.state.glob(".restore-*"))
