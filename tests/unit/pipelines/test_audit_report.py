"""The readable audit trail: 80 columns whatever the actor or reason, nothing of the reason lost."""

from __future__ import annotations

from pipelines.audit import AuditEntry
from pipelines.audit_report import WIDTH, compact_lines, version_markdown

LONG_REASON = "canary passed every step: " + " ".join(f"check{i}=ok" for i in range(40)) + " " + "x" * 130
ENTRIES = [
    AuditEntry(1, "2026-12-07T11:20:05+00:00", "alice", "register", "champion", None, "1", "first model"),
    AuditEntry(
        2,
        "2026-12-07T11:21:00+00:00",
        "a-very-long-actor-name@example.org",
        "request_approval",
        "challenger",
        "2",
        "2",
        LONG_REASON,
    ),
    AuditEntry(3, "2026-12-07T11:22:00+00:00", "bob", "promote", "champion", "1", "2", "approved: fine | ok"),
]


def test_every_line_fits_80_columns_and_the_whole_reason_is_kept() -> None:
    lines = compact_lines(ENTRIES)
    assert max(len(line) for line in lines) <= WIDTH == 80
    assert len(lines) > len(ENTRIES) + 3  # the long reason wrapped over several lines
    reason_lines = [line.strip() for line in lines if line.startswith("      ")]
    assert "".join(reason_lines).replace(" ", "") == "".join(e.reason for e in ENTRIES).replace(
        " ", ""
    )  # every character of every reason, in order
    assert "   2 2026-12-07 11:21 a-very-long-a… request_approval challenger v2" in lines
    assert "   3 2026-12-07 11:22 bob            promote          champion v1 → v2" in lines


def test_the_version_page_lists_its_state_and_only_its_entries() -> None:
    tags = {"status": "promoted", "approval": "approved", "approved_by": "bob", "unrelated": "x"}
    page = version_markdown("iris", "2", tags, ENTRIES, "2026-12-07T11:23:00+00:00")
    assert page.startswith("# Audit trail: iris version 2\n")
    assert "| approved_by | bob |" in page
    assert "unrelated" not in page
    assert "## Entries (2)" in page  # seq 2 and 3 name v2; the first registration does not
    assert "| 3 | 2026-12-07 11:22:00+00:00 | bob | promote | champion v1 → v2 | approved: fine \\| ok |" in page
    assert "first model" not in page
