"""Lab 7's checker, the pure part: which promotion the rollback undid, read from the audit log."""

from __future__ import annotations

from lab.labs.lab07_rollback import find_release
from pipelines.audit import AuditEntry


def _entry(seq: int, action: str, alias: str, src: str | None, dst: str | None) -> AuditEntry:
    return AuditEntry(seq, "2026-01-01T00:00:00+00:00", "ana", action, alias, src, dst, "why")


def test_find_release_pairs_the_last_promotion_with_the_rollback_that_undid_it() -> None:
    entries = [
        _entry(1, "register", "champion", None, "1"),
        _entry(2, "promote", "champion", "1", "2"),
        _entry(3, "rollback", "champion", "2", "1"),
        _entry(4, "promote", "champion", "1", "3"),
    ]
    release, undone = find_release(entries[:3])
    assert release is not None
    assert undone is not None
    assert (release.seq, undone.seq) == (2, 3)
    release, undone = find_release(entries)
    assert release is not None
    assert release.to_version == "3"
    assert undone is None  # the newest release is still live
    assert find_release(entries[:1]) == (None, None)  # registering the first champion is no release
