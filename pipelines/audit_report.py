"""The audit trail made readable: compact lines for a terminal, a Markdown page for a model version.

Concepts: governance (C16), approval workflow and audit trail (C60). The trail itself stays what
``pipelines.audit`` stores (one compact JSON tag per entry, read by machines); this module only renders
it, purely, from entries and tags:

- ``compact_lines``: two columns of facts per entry on one line (sequence, UTC minute, actor, action,
  alias and versions) and the reason wrapped beneath it, every line at most ``width`` characters, so
  ``mlops-lab registry audit`` reads in an 80-column terminal without losing a word of the reason;
- ``version_markdown``: the page attached to a registered version (``audit_trail.md``): its status and
  approval tags, then every entry that moved an alias to or from it, oldest first.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence

from pipelines.audit import AuditEntry

WIDTH = 80
ACTOR_CHARS = 14
ACTION_CHARS = 16
REASON_INDENT = " " * 6
AUDIT_ARTIFACT = "audit_trail.md"
# The version tags the Markdown page opens with, when they are set.
STATE_TAGS = (
    "status",
    "approval",
    "approval_requested_by",
    "approval_requested_at",
    "approved_by",
    "approved_at",
    "rejected_by",
    "rejection_reason",
    "promoted_by",
    "champion_since",
    "champion_until",
    "rolled_back_by",
    "rollback_reason",
)


def _v(version: str | None) -> str:
    return f"v{version}" if version else "-"


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def move(entry: AuditEntry) -> str:
    """``alias from → to``; one version when the entry marks a version without moving it (reject, approval)."""
    if entry.from_version == entry.to_version:
        return f"{entry.alias} {_v(entry.to_version)}"
    return f"{entry.alias} {_v(entry.from_version)} → {_v(entry.to_version)}"


def compact_lines(entries: Iterable[AuditEntry], width: int = WIDTH) -> list[str]:
    """The trail as lines of at most ``width`` characters: facts on one, the whole reason wrapped beneath."""
    lines = [f"{'seq':>4} {'when (UTC)':<16} {'actor':<{ACTOR_CHARS}} {'action':<{ACTION_CHARS}} change"]
    for e in entries:
        when = e.ts.replace("T", " ")[:16]
        head = f"{e.seq:>4} {when:<16} {_clip(e.actor, ACTOR_CHARS):<{ACTOR_CHARS}} "
        head += f"{_clip(e.action, ACTION_CHARS):<{ACTION_CHARS}} {move(e)}"
        lines.append(_clip(head, width))
        reason = " ".join(e.reason.split()) or "(no reason given)"
        lines.extend(textwrap.wrap(reason, width, initial_indent=REASON_INDENT, subsequent_indent=REASON_INDENT))
    return lines


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def concerns(entry: AuditEntry, version: str) -> bool:
    """Did this entry move an alias to or from ``version`` (or mark it)?"""
    return version in (entry.from_version, entry.to_version)


def version_markdown(
    model_name: str, version: str, tags: Mapping[str, str], entries: Sequence[AuditEntry], written_at: str
) -> str:
    """The audit page of one version: its governance tags, then the trail entries that concern it."""
    mine = [e for e in entries if concerns(e, version)]
    out = [
        f"# Audit trail: {model_name} version {version}",
        "",
        f"Written {written_at} (UTC) by the registry operation that last touched this version; the "
        "machine-readable trail is the registered model's `audit/NNNNNN` tags.",
        "",
        "## State",
        "",
        "| tag | value |",
        "| --- | --- |",
        *(f"| {key} | {_cell(tags[key])} |" for key in STATE_TAGS if tags.get(key)),
        "",
        f"## Entries ({len(mine)})",
        "",
        "| seq | when (UTC) | actor | action | change | reason |",
        "| ---: | --- | --- | --- | --- | --- |",
        *(
            f"| {e.seq} | {e.ts.replace('T', ' ')} | {_cell(e.actor)} | {e.action} | {_cell(move(e))} "
            f"| {_cell(e.reason)} |"
            for e in mine
        ),
    ]
    return "\n".join(out) + "\n"
