"""The registry audit trail: who moved which alias, when and why, stored in the registry itself.

Concept: governance (C16). Every alias move made by ``pipelines.registry`` (register, promote,
rollback, reject) appends one entry here. The trail is kept as registered-model tags
``audit/<6-digit seq>`` holding compact JSON, so it travels with the registry (backups, the MLflow
UI) instead of living in a side file that can drift or get lost. Zero-padded keys sort in order,
so reading the trail back is a sorted scan of the tags; the next sequence number is one past the
highest existing key. Writes assume one writer at a time (the CLI, a flow or the rollout controller).

This module only reads and writes the tags; deciding *what* to move, and reading a registered
model's trail (``pipelines.registry.audit_log``), is ``pipelines.registry``'s job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

AUDIT_PREFIX = "audit/"


@dataclass(frozen=True)
class AuditEntry:
    """One alias move: sequence number, UTC time, who, which operation, which alias, from/to version, why."""

    seq: int
    ts: str
    actor: str
    action: str
    alias: str
    from_version: str | None
    to_version: str | None
    reason: str


def append_entry(
    client: MlflowClient,
    name: str,
    ts: str,
    actor: str,
    action: str,
    alias: str,
    from_version: str | None,
    to_version: str | None,
    reason: str,
) -> AuditEntry:
    """Write the next ``audit/NNNNNN`` tag on registered model ``name`` and return its entry."""
    tags = client.get_registered_model(name).tags
    seq = max((int(k.removeprefix(AUDIT_PREFIX)) for k in tags if k.startswith(AUDIT_PREFIX)), default=0) + 1
    entry = AuditEntry(seq, ts, actor, action, alias, from_version, to_version, reason)
    payload = json.dumps({k: v for k, v in asdict(entry).items() if k != "seq"}, separators=(",", ":"))
    client.set_registered_model_tag(name, f"{AUDIT_PREFIX}{seq:06d}", payload)
    return entry


def entries_from_tags(tags: Mapping[str, str]) -> list[AuditEntry]:
    """The audit entries among a registered model's tags, oldest first."""
    keys = sorted(k for k in tags if k.startswith(AUDIT_PREFIX))
    return [AuditEntry(seq=int(k.removeprefix(AUDIT_PREFIX)), **json.loads(tags[k])) for k in keys]
