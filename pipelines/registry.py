"""The model registry: versions, aliases, promotion and rollback.

Concepts: model registry (C12), rollback (C15), governance (C16). Every model that passed the
quality gate becomes a numbered version of one registered model in MLflow. Where a version stands
is said by *aliases* (MLflow stages are deprecated): ``champion`` serves traffic, ``challenger``
waits for promotion, ``previous`` is the champion before the last promotion. Serving loads
``models:/<name>@champion``, so promotion and rollback are alias moves: instant, nothing rebuilt.

Every alias move records who, when and why in the registry itself (the tag format is
``pipelines.audit``; ``audit_log`` here reads a model's trail back). Version tags keep each version's own story:
``gate.*``, ``champion_since``, ``rolled_back``... and ``status``, the last decision on it
(``candidate`` → ``promoted``, ``superseded``, ``rejected`` or ``rolled_back``). Rollback restores
``previous`` and clears it: one level of undo, so a second rollback is an error, not a surprise.
Writes assume one writer at a time (the CLI, a flow or the rollout controller).

Production mode (``settings.approval == "required"``, C60) puts a person between a challenger and the
champion alias: ``request_approval`` marks the challenger ``approval=pending`` (who asked, when, why),
``approve`` by anyone but the requester marks it ``approved`` and promotes it, and ``promote`` refuses a
challenger that is not ``approved``; a rejection (``reject_challenger``) closes a pending request. In
development mode (the default) ``promote`` needs no approval, as before. After every operation the
Markdown page of each version it touched (``audit_trail.md``, ``pipelines.audit_report``) is rewritten
with the trail so far and logged on the version's run (tag ``audit_trail``).

Gotcha: ``search_model_versions`` returns ``aliases=[]`` (mlflow#9783), so aliases are always read
from ``get_registered_model().aliases``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.digests import file_sha256
from core.mlflow_config import mlflow_client, require_mlflow_configured
from pipelines.audit import AUDIT_PREFIX as AUDIT_PREFIX
from pipelines.audit import AuditEntry as AuditEntry
from pipelines.audit import append_entry, entries_from_tags
from pipelines.audit_report import AUDIT_ARTIFACT, version_markdown
from pipelines.model_card import VERSION_PENDING
from pipelines.model_files import UntrustedModelError, load_verified_model, model_file

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import RegisteredModel

    from core.settings import Settings

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"  # the ``approval`` tag of a challenger
# Actors that are processes, not people: none of them may approve a promotion.
AUTOMATED_ACTORS = frozenset({"rollout-controller", "controller", "unknown"})
ACCURACY_KEYS = ("test_accuracy", "accuracy")


class RegistryError(RuntimeError):
    """A registry operation cannot go ahead; the message says how to fix it."""


@dataclass(frozen=True)
class AliasChange:
    action: str
    champion_before: str | None
    champion_after: str
    entries: list[AuditEntry]


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    alias: str  # champion (first model) or challenger
    run_id: str
    replaced: str | None  # the older challenger this one displaced


@dataclass(frozen=True)
class VersionInfo:
    version: str
    aliases: list[str]
    run_id: str
    status: str
    gate_status: str
    gate_summary: str
    metrics: dict[str, float]
    created: str
    description: str
    approval: str = ""  # pending / approved / rejected (production mode), "" when never requested

    @property
    def accuracy(self) -> float | None:
        """Held-out accuracy if the run logged it (``test_accuracy`` preferred)."""
        for key in ACCURACY_KEYS:
            if key in self.metrics:
                return self.metrics[key]
        return next((v for k, v in sorted(self.metrics.items()) if "accuracy" in k), None)


# MLflow 3's UI opens an experiment on the view its kind names: the runs table and model metrics for classic
# model training, instead of the GenAI traces view it otherwise may pick.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_TAGS = {EXPERIMENT_KIND_TAG: "custom_model_development"}


def ensure_experiment(settings: Settings) -> str:
    """Create the experiment (artifacts under ``mlflow_artifact_root``) if missing; make it active."""
    import mlflow

    require_mlflow_configured(settings)  # runs are started through the fluent API, on the configured store
    client = mlflow_client(settings)
    exp = client.get_experiment_by_name(settings.experiment_name)
    if exp is None:
        exp_id = client.create_experiment(
            settings.experiment_name, artifact_location=settings.mlflow_artifact_root, tags=EXPERIMENT_TAGS
        )
    else:
        exp_id = exp.experiment_id
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp_id)
        if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_TAGS[EXPERIMENT_KIND_TAG]:  # made by an older version
            client.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, EXPERIMENT_TAGS[EXPERIMENT_KIND_TAG])
    mlflow.set_experiment(experiment_id=exp_id)
    return str(exp_id)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _model(client: MlflowClient, name: str) -> RegisteredModel:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            msg = f"no registered model {name!r} yet: train and register one first (`mlops-lab train`)"
            raise RegistryError(msg) from err
        raise


def _aliases(client: MlflowClient, name: str) -> dict[str, str]:
    return {alias: str(version) for alias, version in _model(client, name).aliases.items()}


class _Operation:
    """One governed registry change: who makes it and why, the aliases as they stand, the audit entries."""

    def __init__(self, settings: Settings, action: str, actor: str, reason: str) -> None:
        self.client, self.name = mlflow_client(settings), settings.model_name
        self.action, self.actor, self.reason = action, actor, reason
        self.aliases = _aliases(self.client, self.name)
        self.entries: list[AuditEntry] = []

    def tag(self, version: str, **tags: str) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, version, key, value)

    def move(self, alias: str, to_v: str | None) -> None:
        """Point ``alias`` at ``to_v`` (remove it when None) and audit the move."""
        from_v = self.aliases.get(alias)
        if from_v == to_v:
            return
        if to_v is None:
            self.client.delete_registered_model_alias(self.name, alias)
            del self.aliases[alias]
        else:
            self.client.set_registered_model_alias(self.name, alias, to_v)
            self.aliases[alias] = to_v
        self.audit(alias, from_v, to_v)

    def audit(self, alias: str, from_v: str | None, to_v: str | None) -> None:
        entry = append_entry(self.client, self.name, _now(), self.actor, self.action, alias, from_v, to_v, self.reason)
        self.entries.append(entry)

    def change(self, champion_before: str | None) -> AliasChange:
        self.publish()
        return AliasChange(self.action, champion_before, self.aliases[CHAMPION], self.entries)

    def publish(self) -> None:
        """Rewrite the Markdown audit page of every version this operation's entries name."""
        touched = {v for e in self.entries for v in (e.from_version, e.to_version) if v is not None}
        if touched:
            write_audit_pages(self.client, self.name, sorted(touched, key=int))


def write_audit_pages(client: MlflowClient, name: str, versions: Sequence[str]) -> None:
    """Log ``audit_trail.md`` for each version on its run and tag the version with where it is.

    The page is a rendering of the trail, which stays in the registered model's tags: a page that cannot
    be written (the run deleted, the artifact store down) is logged as a warning and the operation stands.
    """
    import logging

    from mlflow.exceptions import MlflowException

    entries, written = entries_from_tags(client.get_registered_model(name).tags), _now()
    for version in versions:
        try:
            mv = client.get_model_version(name, version)
            if not mv.run_id:
                continue
            client.log_text(mv.run_id, version_markdown(name, version, mv.tags, entries, written), AUDIT_ARTIFACT)
            if mv.tags.get("audit_trail") != (where := f"runs:/{mv.run_id}/{AUDIT_ARTIFACT}"):
                client.set_model_version_tag(name, version, "audit_trail", where)
        except (MlflowException, OSError) as err:
            logging.getLogger(__name__).warning("audit page of %s v%s not written: %s", name, version, err)


def _gate_summary(gate: dict[str, Any]) -> str:
    if "summary" in gate:
        return str(gate["summary"])[:500]
    checks = gate.get("checks") or {}
    values = checks.values() if isinstance(checks, dict) else checks
    flags = [c.get("passed") if isinstance(c, dict) else c for c in values]
    # The gate's own reasons already summarise it; count the checks only when it gave none.
    parts = [str(r) for r in gate.get("reasons") or []]
    if not parts and flags:
        parts = [f"{sum(bool(f) for f in flags)}/{len(flags)} checks passed"]
    return "; ".join(parts)[:500] or "passed"


def register_candidate(
    settings: Settings,
    run_id: str,
    model_uri: str,
    gate: dict[str, Any],
    card_markdown: str | None,
    actor: str,
    reason: str,
    extra_tags: Mapping[str, str] | None = None,
) -> RegisteredVersion:
    """Register a gated model: the first one becomes champion, later ones challenger.

    ``extra_tags`` are set on the new version with the governance tags, e.g. the ``onnx.*`` tags of
    `pipelines.onnx_registry` (they cannot override those: ``model_sha256``, ``gate.*``, ``status``...).

    Raises:
        RegistryError: the gate result is not an explicit pass (such a model never reaches the registry).
    """
    import mlflow

    summary = _gate_summary(gate)
    if gate.get("passed") is not True:  # absent counts as failed: only an explicit pass reaches the registry
        raise RegistryError(
            f"run {run_id} did not pass the quality gate ({summary}); fix the model or data and retrain"
        )
    tags = {
        **(extra_tags or {}),
        "model_sha256": _model_sha256(settings, model_uri),  # checked at every load (pipelines.model_files)
        "gate.status": "passed",
        "gate.summary": summary,
        "gate.result": json.dumps(gate, default=str)[:20_000],
        "run_id": run_id,
        "status": "candidate",
        "registered_by": actor,
        "registration_reason": reason,
    }
    require_mlflow_configured(settings)  # register_model writes to the configured registry
    with _without_mlflow_event_lines():
        version = str(mlflow.register_model(model_uri, settings.model_name, tags=tags).version)
    op = _Operation(settings, "register", actor, reason)
    op.client.update_model_version(
        op.name, version, description=f"From run {run_id}; gate passed ({summary}). {reason}"
    )
    if card_markdown is not None:
        op.client.log_text(run_id, card_markdown.replace(VERSION_PENDING, version), "model_card.md")
        op.tag(version, model_card=f"runs:/{run_id}/model_card.md")

    alias = CHALLENGER if CHAMPION in op.aliases else CHAMPION
    replaced = op.aliases.get(CHALLENGER) if alias == CHALLENGER else None
    if replaced and op.client.get_model_version(op.name, replaced).tags.get("status") == "candidate":
        op.tag(replaced, status="superseded", superseded_by=version)
    if alias == CHAMPION:
        op.tag(version, status="promoted", champion_since=_now(), promoted_by=actor)
    op.move(alias, version)
    op.publish()
    return RegisteredVersion(name=op.name, version=version, alias=alias, run_id=run_id, replaced=replaced)


@contextmanager
def _without_mlflow_event_lines() -> Iterator[None]:
    """Silence MLflow's event stream for one registration ("Successfully registered model", "Created version").

    Those lines go to stderr in the middle of a narrated demo or a `train` run, and say less than what
    the caller prints anyway (the version and its alias) and what the audit log keeps. Only MLflow's own
    event stream is paused, for this call; Python warnings and exceptions pass as before.
    """
    from mlflow.utils.logging_utils import MLFLOW_LOGGING_STREAM

    was_enabled = MLFLOW_LOGGING_STREAM.enabled
    MLFLOW_LOGGING_STREAM.enabled = False
    try:
        yield
    finally:
        MLFLOW_LOGGING_STREAM.enabled = was_enabled


def promote(settings: Settings, actor: str, reason: str) -> AliasChange:
    """champion ← challenger; the old champion becomes ``previous``; the challenger alias goes."""
    op = _Operation(settings, "promote", actor, reason)
    challenger = op.aliases.get(CHALLENGER)
    if challenger is None:
        raise RegistryError(
            f"{op.name!r} has no challenger to promote (aliases: {op.aliases or 'none'}); "
            "register a candidate that passes the quality gate first (`mlops-lab train`)"
        )
    tags = op.client.get_model_version(op.name, challenger).tags
    if tags.get("status") == "rejected":
        raise RegistryError(
            f"challenger v{challenger} was rejected ({tags.get('rejection_reason', 'no reason')}); "
            "train and register a new candidate instead of promoting it"
        )
    if settings.approval == "required" and tags.get("approval") != APPROVED:
        raise RegistryError(
            f"production mode (MLOPS_APPROVAL=required): challenger v{challenger} needs a person's approval "
            f"before promotion (approval: {tags.get('approval') or 'not requested'}); request it "
            "(`mlops-lab registry request-approval`), then someone else approves (`mlops-lab registry approve`)"
        )
    old, now = op.aliases.get(CHAMPION), _now()
    if old is not None:
        op.tag(old, champion_until=now)
        op.move(PREVIOUS, old)
    op.tag(challenger, status="promoted", champion_since=now, promoted_by=actor, promotion_reason=reason)
    op.move(CHAMPION, challenger)
    op.move(CHALLENGER, None)
    return op.change(old)


def rollback(settings: Settings, actor: str, reason: str) -> AliasChange:
    """champion ← previous; the rolled-back version is tagged ``rolled_back=true`` with the reason."""
    op = _Operation(settings, "rollback", actor, reason)
    previous = op.aliases.get(PREVIOUS)
    if previous is None:
        raise RegistryError(
            f"{op.name!r} has no previous champion to roll back to (aliases: {op.aliases or 'none'}); "
            "rollback undoes one promotion, so promote a challenger first"
        )
    old, now = op.aliases.get(CHAMPION), _now()
    if old is not None and old != previous:
        op.tag(
            old,
            status="rolled_back",
            rolled_back="true",
            rollback_reason=reason,
            rolled_back_by=actor,
            rolled_back_at=now,
            champion_until=now,
        )
    op.tag(previous, champion_since=now, restored_by=actor)
    op.move(CHAMPION, previous)
    op.move(PREVIOUS, None)
    return op.change(old)


def reject_challenger(settings: Settings, actor: str, reason: str) -> str:
    """Mark the challenger ``status=rejected`` (alias kept, so it stays visible); returns its version."""
    op = _Operation(settings, "reject", actor, reason)
    challenger = op.aliases.get(CHALLENGER)
    if challenger is None:
        raise RegistryError(f"{op.name!r} has no challenger to reject; nothing to do")
    op.tag(challenger, status="rejected", rejection_reason=reason, rejected_by=actor, rejected_at=_now())
    if op.client.get_model_version(op.name, challenger).tags.get("approval") == PENDING:
        op.tag(challenger, approval=REJECTED)  # the rejection answers the pending request
    op.audit(CHALLENGER, challenger, challenger)
    op.publish()
    return challenger


def _challenger_tags(op: _Operation, doing: str) -> tuple[str, dict[str, str]]:
    challenger = op.aliases.get(CHALLENGER)
    if challenger is None:
        raise RegistryError(
            f"{op.name!r} has no challenger to {doing} (aliases: {op.aliases or 'none'}); "
            "register a candidate that passes the quality gate first (`mlops-lab train`)"
        )
    tags = dict(op.client.get_model_version(op.name, challenger).tags)
    if tags.get("status") in ("rejected", "rolled_back"):
        raise RegistryError(f"challenger v{challenger} is {tags['status']}: it never goes out again; train a new one")
    return challenger, tags


def request_approval(settings: Settings, actor: str, reason: str, requester: str | None = None) -> str:
    """Mark the challenger ``approval=pending``: a person other than ``requester`` must approve it.

    ``requester`` (default ``actor``) is who asks; the rollout controller asks on behalf of whoever started
    the canary. Asking again while a request is pending changes nothing (the first requester stands), so
    a retried request is harmless. Returns the challenger's version.

    Raises:
        RegistryError: no challenger, or one that was rejected or rolled back.
    """
    op = _Operation(settings, "request_approval", actor, reason)
    challenger, tags = _challenger_tags(op, "request approval for")
    if tags.get("approval") == PENDING:
        return challenger
    who = requester or actor
    op.tag(challenger, approval=PENDING, approval_requested_by=who, approval_requested_at=_now())
    op.tag(challenger, approval_request_reason=reason[:500])
    op.audit(CHALLENGER, challenger, challenger)
    op.publish()
    return challenger


def approve(settings: Settings, approver: str, reason: str) -> AliasChange:
    """A person other than the requester approves the pending challenger; it is promoted at once.

    Raises:
        RegistryError: no pending request; the approver is the requester (four eyes: two people) or a
            process (``AUTOMATED_ACTORS``); a challenger that was rejected or rolled back.
    """
    op = _Operation(settings, "approve", approver, reason)
    challenger, tags = _challenger_tags(op, "approve")
    if tags.get("approval") != PENDING:
        raise RegistryError(
            f"challenger v{challenger} has no pending approval request (approval: {tags.get('approval') or 'none'}); "
            "request one first (`mlops-lab registry request-approval`, or a canary that passed every step)"
        )
    requester = tags.get("approval_requested_by", "")
    if approver == requester:
        raise RegistryError(
            f"{approver!r} requested the approval of v{challenger} and cannot approve it too: another person "
            "must (set MLOPS_ACTOR or X-Actor to who is approving)"
        )
    if approver in AUTOMATED_ACTORS:
        raise RegistryError(f"{approver!r} is a process, not a person: an approval needs a person's name")
    op.tag(challenger, approval=APPROVED, approved_by=approver, approved_at=_now(), approval_reason=reason[:500])
    op.audit(CHALLENGER, challenger, challenger)
    op.publish()
    return promote(settings, approver, f"approved: {reason}")


def _model_sha256(settings: Settings, model_uri: str) -> str:
    """The sha256 of a logged model's skops file (refused here already if it is not skops)."""
    from mlflow.artifacts import download_artifacts

    local = download_artifacts(artifact_uri=model_uri, tracking_uri=settings.mlflow_tracking_uri)
    return file_sha256(model_file(Path(local)))


def load_version_model(settings: Settings, version: str, features: Sequence[str] | None = None) -> Any:
    """The fitted pipeline of one registered version, loaded without running code from the artifact.

    Every reader of a registered model (serving, the gate, monitoring, reproduce, restore) loads it here,
    through ``pipelines.model_files``: skops only, this project's own types, and the file whose sha256
    was recorded at registration; never through MLflow's own loader, which unpickles what it is given.

    Args:
        features: the data contract's features; when given, a version whose signature takes other
            columns is refused too (serving and rollouts pass them).

    Raises:
        UntrustedModelError: the version's file is not skops, needs foreign types, or was replaced, or
            its signature does not match ``features``.
    """
    from mlflow.artifacts import download_artifacts

    client = mlflow_client(settings)  # the settings' stores, whatever this process's fluent MLflow points at
    expected = client.get_model_version(settings.model_name, version).tags.get("model_sha256")
    where = client.get_model_version_download_uri(settings.model_name, version)
    local = Path(download_artifacts(artifact_uri=where, tracking_uri=settings.mlflow_tracking_uri))
    return load_verified_model(local, expected, f"{settings.model_name} v{version}", features)


def servable_challenger(settings: Settings, features: Sequence[str]) -> str:
    """The challenger's version, if it may get traffic: not rejected or rolled back, and loadable as served.

    Raises:
        RegistryError: no challenger; one marked rejected or rolled back (it never goes out again); or one
            that would not load or takes other columns than ``features`` (it would answer 500).
    """
    version = current_aliases(settings).get(CHALLENGER)
    if version is None:
        raise RegistryError("no challenger to roll out: train one that passes the gate first (`mlops-lab train`)")
    tags = mlflow_client(settings).get_model_version(settings.model_name, version).tags
    if tags.get("status") in ("rejected", "rolled_back"):
        why = tags.get("rejection_reason") or tags.get("rollback_reason") or "no reason recorded"
        raise RegistryError(
            f"v{version} is marked {tags['status']} ({why}): it never goes out again; train a new challenger"
        )
    try:
        load_version_model(settings, version, features)
        if settings.serving_runtime != "sklearn":  # served through its ONNX file when it has one: that file too
            from pipelines.onnx_registry import load_version_onnx

            load_version_onnx(settings, version, features)
    except UntrustedModelError as err:
        raise RegistryError(f"v{version} cannot go out as a canary: {err}") from err
    return version


def load_alias_model(settings: Settings, alias: str) -> Any | None:
    """The fitted pipeline behind a registry alias, or None when the alias (or the model) is not set."""
    from mlflow.exceptions import MlflowException

    try:
        version = mlflow_client(settings).get_model_version_by_alias(settings.model_name, alias).version
    except MlflowException:
        return None
    return load_version_model(settings, str(version))


OUTSIDE_MOVE = "alias moved outside mlops-lab"


def move_audited(settings: Settings, alias: str, version: str | None) -> bool:
    """Does the trail's latest entry for ``alias`` lead to ``version`` (None: the alias removed)?"""
    entries = [e for e in audit_log(settings) if e.alias == alias]
    return bool(entries) and entries[-1].to_version == version


def record_outside_move(settings: Settings, alias: str, from_version: str | None, to_version: str | None) -> AuditEntry:
    """Audit a move nobody recorded (a plain MLflow client): actor ``unknown``, action ``outside_move``."""
    client = mlflow_client(settings)
    entry = append_entry(
        client, settings.model_name, _now(), "unknown", "outside_move", alias, from_version, to_version, OUTSIDE_MOVE
    )
    write_audit_pages(client, settings.model_name, [v for v in (from_version, to_version) if v is not None])
    return entry


GATE_REJECT = "gate_reject"  # audit action: a trained candidate the quality gate kept out of the registry
CANDIDATE = "candidate"  # the alias field of a gate rejection: no alias moved, no version was made


def record_gate_rejection(settings: Settings, run_id: str, reasons: str, actor: str) -> AuditEntry | None:
    """Audit a candidate the gate refused: actor, run and the gate's reasons, on the registered model's trail.

    No version exists for such a model, so the entry names the run (``from``/``to`` stay empty). Before the
    first registration there is no trail to write to: None, and the reasons stay on the run (tags, decision).
    """
    client = mlflow_client(settings)
    try:
        _model(client, settings.model_name)
    except RegistryError:
        return None
    reason = f"run {run_id}: {reasons}"[:2000]
    return append_entry(client, settings.model_name, _now(), actor, GATE_REJECT, CANDIDATE, None, None, reason)


APPROVAL_TAGS = ("approval", "approval_requested_by", "approval_requested_at", "approved_by", "rejected_by")


def challenger_approval(settings: Settings, version: str | None = None) -> dict[str, str]:
    """The challenger's version and approval tags (``{}`` without a challenger), for the admin state.

    ``version``: the challenger's version when the caller knows it already (one registry read, not two).
    """
    version = version or current_aliases(settings).get(CHALLENGER)
    if version is None:
        return {}
    tags = mlflow_client(settings).get_model_version(settings.model_name, version).tags
    return {"version": version} | {key: tags[key] for key in APPROVAL_TAGS if key in tags}


def audit_log(settings: Settings) -> list[AuditEntry]:
    """The registry-side audit trail, oldest first; empty when nothing is registered yet."""
    try:
        tags = _model(mlflow_client(settings), settings.model_name).tags
    except RegistryError:
        return []
    return entries_from_tags(tags)


def current_aliases(settings: Settings) -> dict[str, str]:
    """Alias → version; empty when nothing is registered yet."""
    try:
        return _aliases(mlflow_client(settings), settings.model_name)
    except RegistryError:
        return {}


def list_versions(settings: Settings) -> list[VersionInfo]:
    """Every version, oldest first, with its aliases, governance tags and run metrics."""
    from mlflow.exceptions import MlflowException

    client, name = mlflow_client(settings), settings.model_name
    try:
        by_version: dict[str, list[str]] = {}
        for alias, version in _aliases(client, name).items():
            by_version.setdefault(version, []).append(alias)
    except RegistryError:
        return []
    out = []
    for mv in client.search_model_versions(f"name='{name}'", order_by=["version_number ASC"]):
        try:
            metrics = dict(client.get_run(mv.run_id).data.metrics) if mv.run_id else {}
        except MlflowException:  # run deleted or in another tracking store: the version still lists
            metrics = {}
        created = datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds")
        out.append(
            VersionInfo(
                version=str(mv.version),
                aliases=sorted(by_version.get(str(mv.version), [])),
                run_id=mv.run_id or "",
                status=mv.tags.get("status", ""),
                gate_status=mv.tags.get("gate.status", ""),
                gate_summary=mv.tags.get("gate.summary", ""),
                metrics=metrics,
                created=created,
                description=mv.description or "",
                approval=mv.tags.get("approval", ""),
            )
        )
    return out
