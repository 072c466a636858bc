"""The admin API: change routing, promote, roll back and steer a rollout on a running service.

Concepts: runtime configuration (C27) behind API security (C44). Progressive delivery is only useful
if an operator can act without a redeploy: switch strategy, move a weight, flip blue-green, promote,
roll back, pause or abort a canary. Each endpoint is a thin shell over a core function:

- routing changes go to the shared `StateStore` with compare-and-swap (``update_routing``), so two
  operators (or an operator and the rollout controller) never overwrite each other;
- registry changes go through ``pipelines.registry`` (audited with the actor from ``X-Actor``);
- then the change is applied in *this* worker at once (routing from the store; models too after a
  registry change); every other worker and replica picks it up within ``poll_interval_s``. ``loaded``
  in the answer shows what this worker serves now. Reading the state calls the registry once (the
  challenger's approval tags), and not at all while the model poller reports it down, so ``GET /state`` and
  routing changes answer at once while MLflow is known to be down.

Security: the router is mounted only when ``MLOPS_ADMIN_TOKEN`` is set (otherwise ``/v1/admin/*`` is a
plain 404: nothing to probe). Requests need ``Authorization: Bearer <token>``: none is 401 with
``WWW-Authenticate``, a wrong one 403 (`serving.credentials.AdminGate`, the one check shared with
``X-Force-Arm`` and operator feedback, and one failed-authentication budget per client for all of them).
The check runs before the body is read (`AdminAuth`, an ASGI middleware): a stranger's body, however
malformed or large, is never parsed, so it gets 401 / 403, not a 422 that describes our schema.
The comparison is ``hmac.compare_digest``, whose time does not depend on where the strings differ, so the
token cannot be guessed a byte at a time from latencies. A token shorter than 16 characters stops the
service at start-up, and a client that fails to authenticate more than 10 times is answered 429 before
its token is even compared, for one more try every 6 s.
``X-Actor`` only *attributes* a change in the audit log; the token is what authorises it. Approvals can be
personal: with ``MLOPS_APPROVER_TOKENS`` (name -> token) the approval routes take a person's own token, the
actor is its owner, and the shared admin token can no longer ask for or answer an approval, so "not the
requester" is a fact about two credentials, not two header values. A personal token opens nothing else.

Approval (C60): ``POST /approval/request | approve | reject`` ask for and answer a person's approval of
the challenger, which production mode (``MLOPS_APPROVAL=required``) needs before any promotion. The
registry refuses an approval by the requester (the ``X-Actor`` that asked, or that started the canary),
by a process, or with nothing pending (409). ``approval`` in every answer: the mode, the canary awaiting
approval, and the challenger's approval tags as the registry has them now (however they were set).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Security
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from mlflow.exceptions import MlflowException
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from pipelines import registry
from serving import rollout_controller
from serving.contract import Problem
from serving.credentials import MIN_TOKEN_CHARS, AdminGate, CredentialError, bearer_token
from serving.errors import documented, error_response
from serving.limits import client_key
from serving.rollout import ACTIVE, RolloutTransitionError
from serving.router import RoutingState, Strategy, switch_slot, with_ab_split, with_strategy, with_weight
from serving.state_store import StateConflictError, StateStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.types import ASGIApp, Receive, Scope, Send

    from serving.runtime import Runtime

log = logging.getLogger(__name__)
PREFIX = "/v1/admin"
DEFAULT_ACTOR = "admin-api"
APPROVAL = PREFIX + "/approval/"  # the routes a personal approval token (MLOPS_APPROVER_TOKENS) may call
bearer = HTTPBearer(auto_error=False, description="MLOPS_ADMIN_TOKEN of the service")
Fraction = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
ACTOR_PATTERN = r"^[\w.@:-]{1,100}$"
Actor = Annotated[str | None, Header(pattern=ACTOR_PATTERN, description="Who acts (audit log).")]


class AdminError(Exception):
    """An admin request that cannot go ahead: HTTP status, message with the fix, the field at fault."""

    def __init__(self, status: int, message: str, field: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.field, self.headers = status, field, headers


class StrategyBody(BaseModel):
    """Body of PUT /strategy."""

    model_config = ConfigDict(extra="forbid")
    strategy: Strategy


class WeightsBody(BaseModel):
    """Body of PUT /weights: either weight or both; an absent one keeps its value.

    "At least one" spans two fields, so the JSON schema says it too (``anyOf``): a body the document
    allows is one this model accepts.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "number"}}} for name in ("canary_weight", "ab_split")
            ]
        },
    )
    canary_weight: Fraction | None = None
    ab_split: Fraction | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> WeightsBody:
        if self.canary_weight is None and self.ab_split is None:
            raise ValueError("send canary_weight, ab_split or both (numbers in [0, 1])")
        return self


class ReasonBody(BaseModel):
    """Why an audited operation is done (promote, rollback, rollout pause/resume/abort)."""

    model_config = ConfigDict(extra="forbid")
    reason: Reason


class AdminState(BaseModel):
    """What every admin endpoint answers: what happened, and the state after it."""

    message: str
    routing: dict[str, Any]
    rollout: dict[str, Any]
    aliases: dict[str, str] = Field(
        description="Registry aliases (alias -> version): all of them after a registry action; otherwise the "
        "champion and challenger as this worker's poller last read them."
    )
    loaded: dict[str, str] = Field(description="What this worker serves now (alias -> version).")
    registry_error: str | None = Field(
        default=None, description="Why this worker's last model refresh failed (registry unreachable, a model refused)."
    )
    approval: dict[str, str] = Field(
        default_factory=dict,
        description="Approval mode (automatic | required), the version a canary awaits approval for, and the "
        "challenger's approval tags as the registry has them (approval: pending | approved | rejected, who asked...; "
        "left out while registry_error says the registry is down).",
    )


class WeakAdminTokenError(ValueError):
    """MLOPS_ADMIN_TOKEN is too short to resist guessing; the service does not start with it."""


def _approval_path(path: str) -> bool:
    """The routes a personal approval token may call (`APPROVAL`)."""
    return path.startswith(APPROVAL)


def _authorize(gate: AdminGate) -> Callable[..., None]:
    def authorize(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
    ) -> None:
        token, personal = credentials.credentials if credentials else None, _approval_path(request.scope["path"])
        try:
            request.state.approver = gate.check(client_key(request.scope), token, "admin API", personal=personal)
        except CredentialError as err:
            raise AdminError(err.status, str(err), err.field, err.headers) from err

    return authorize


class AdminAuth:
    """Authenticate every ``/v1/admin`` request before a byte of its body is read or judged.

    Pure ASGI, mounted inside the rate limit and outside the body limits (`serving.limits.install`), so an
    unauthenticated request is 401 / 403 / 429 in the API's error shape whatever its body: malformed JSON,
    bytes that are not UTF-8, a body over ``MLOPS_MAX_BODY_BYTES`` or one that never finishes arriving.
    FastAPI would decode the JSON body before any route dependency runs (a 422 to a stranger). The route
    dependency (`_authorize`) checks again, so the router is never open without this middleware.
    """

    def __init__(self, app: ASGIApp, gate: AdminGate) -> None:
        self.app, self.gate = app, gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == PREFIX or path.startswith(PREFIX + "/"):
            authorization = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
            try:
                self.gate.check(
                    client_key(scope), bearer_token(authorization), "admin API", personal=_approval_path(path)
                )
            except CredentialError as err:
                refusal = error_response(
                    err.status, str(err), [Problem(err.field, str(err), "admin_error")], err.headers
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def before_body(runtime: Runtime) -> list[tuple[Callable[..., ASGIApp], dict[str, Any]]]:
    """The middleware that authenticates the admin API before its bodies (`serving.limits.install`), if it is on."""
    return [(AdminAuth, {"gate": runtime.gate})] if (runtime.settings.admin_token or "").strip() else []


async def _admin_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AdminError)
    problems = [Problem(exc.field, str(exc), "admin_error")] if exc.field else []
    return error_response(exc.status, str(exc), problems, exc.headers)


# A registry that cannot answer (database gone, server down) is an outage: 503, retry later. An
# MlflowException that *answers* (no such model or version, a bad value) is not.
ANSWERED = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS")
WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "The scheme to use: Bearer.", "schema": {"type": "string"}}}
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: documented("No bearer token") | {"headers": WWW_AUTHENTICATE},
    403: documented("Wrong token"),
    429: documented("Too many failed authentications from this client", retry_after=True),
    422: documented("Invalid request, naming the field"),
    503: documented("Starting, the model registry or the database is unreachable (nothing changed)", retry_after=True),
}
CONFLICTS = (registry.RegistryError, RolloutTransitionError, StateConflictError)


def outage(err: Exception) -> str | None:
    """The outage message for a registry error, or None when the registry did answer."""
    if isinstance(err, MlflowException) and err.error_code in ANSWERED:
        return None
    return f"registry unreachable ({type(err).__name__}: {err})"[:500]


class AdminApi:
    """The ``/v1/admin`` routes over ``runtime``; every route requires the admin token (``runtime.gate``)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime, self.settings = runtime, runtime.settings
        r = self.router = APIRouter(
            tags=["admin"],
            dependencies=[Depends(_authorize(runtime.gate))],
            responses=REFUSALS,
        )
        r.add_api_route("/state", self.state, methods=["GET"], response_model=AdminState)
        r.add_api_route("/strategy", self.put_strategy, methods=["PUT"], response_model=AdminState)
        r.add_api_route("/weights", self.put_weights, methods=["PUT"], response_model=AdminState)
        for path, endpoint, refused in (
            ("/blue-green/switch", self.blue_green_switch, "Not blue-green"),
            ("/promote", self.promote, "Nothing to promote"),
            ("/rollback", self.rollback, "Nothing to roll back"),
            ("/rollout/start", self.rollout_start, "Cannot start"),
            ("/rollout/{operation}", self.rollout_operate, "Not now"),
            ("/approval/{decision}", self.approval, "Self-approval, nothing pending, or not now"),
        ):
            r.add_api_route(
                path, endpoint, methods=["POST"], response_model=AdminState, responses={409: documented(refused)}
            )

    def state(self) -> AdminState:
        """Routing state, rollout state, registry aliases and what this worker serves."""
        return self.answer("")

    def put_strategy(self, body: StrategyBody) -> AdminState:
        """Switch the routing strategy (canary, blue_green, shadow, ab, bandit) without a redeploy."""
        return self.route_change(lambda s: with_strategy(s, body.strategy), lambda s: f"strategy is now {s.strategy}")

    def put_weights(self, body: WeightsBody) -> AdminState:
        """Set the canary weight and/or the A/B split (the challenger's share, in [0, 1])."""

        def change(s: RoutingState) -> RoutingState:
            s = s if body.canary_weight is None else with_weight(s, body.canary_weight)
            return s if body.ab_split is None else with_ab_split(s, body.ab_split)

        return self.route_change(change, lambda s: f"canary weight {s.canary_weight:g}, A/B split {s.ab_split:g}")

    def blue_green_switch(self) -> AdminState:
        """Make the idle slot active (and back again): one new state, seen whole or not at all."""

        def change(s: RoutingState) -> RoutingState:
            if s.strategy != "blue_green":
                raise AdminError(409, f"strategy is {s.strategy}, not blue_green: PUT {PREFIX}/strategy first")
            return switch_slot(s)

        return self.route_change(change, lambda s: f"active slot is now {s.active_slot} ({s.slots[s.active_slot]})")

    def promote(self, body: ReasonBody, x_actor: Actor = None) -> AdminState:
        """champion <- challenger (the old champion becomes ``previous``); the canary weight goes to 0."""

        def act() -> str:
            rollout = self.store().rollout()
            if rollout.status in ACTIVE:  # the controller owns a running canary
                finish = "approve it (POST /approval/approve)" if rollout.status == "awaiting_approval" else ""
                raise AdminError(
                    409,
                    f"a canary of v{rollout.challenger_version} is {rollout.status}: "
                    f"{finish or 'let the controller promote it'}, or abort it (POST {PREFIX}/rollout/abort) first",
                )
            change = registry.promote(self.settings, x_actor or DEFAULT_ACTOR, body.reason)
            self.store().update_routing(lambda s: with_weight(s, 0.0))  # nothing left to canary
            return f"promoted v{change.champion_after} to champion (was v{change.champion_before})"

        return self.carry_out(act)

    def rollback(self, body: ReasonBody, x_actor: Actor = None) -> AdminState:
        """champion <- previous (one level of undo); the rolled-back version is tagged with the reason."""

        def act() -> str:
            change = registry.rollback(self.settings, x_actor or DEFAULT_ACTOR, body.reason)
            return f"rolled back to v{change.champion_after} (was v{change.champion_before})"

        return self.carry_out(act)

    def rollout_start(self, x_actor: Actor = None) -> AdminState:
        """Start a canary of the current challenger at the first of ``rollout.steps``."""
        params, actor = self.runtime.params, x_actor or DEFAULT_ACTOR
        return self.carry_out(
            lambda: rollout_controller.begin_rollout(self.settings, params, self.store(), actor=actor).action.reason
        )

    def rollout_operate(
        self, operation: Literal["pause", "resume", "abort"], body: ReasonBody, x_actor: Actor = None
    ) -> AdminState:
        """Pause (hold the weight), resume, or abort (weight 0, challenger marked rejected) the rollout."""

        def act() -> str:
            actor = x_actor or DEFAULT_ACTOR
            tick = rollout_controller.operate(self.settings, self.store(), operation, actor, body.reason)
            return f"rollout {tick.state.status}: {tick.action.reason}"

        return self.carry_out(act)

    def approval(
        self,
        decision: Literal["request", "approve", "reject"],
        body: ReasonBody,
        request: Request,
        x_actor: Actor = None,
    ) -> AdminState:
        """Ask for the challenger's approval, or answer it: approve promotes it, reject aborts its canary.

        With personal approval tokens (``MLOPS_APPROVER_TOKENS``) the actor is the token's owner; without
        them it is ``X-Actor``, an attribution behind the one shared admin token.
        """
        actor = self.approver(getattr(request.state, "approver", None), x_actor)

        def act() -> str:
            if decision == "request":
                version = registry.request_approval(self.settings, actor, body.reason)
                return f"approval of v{version} requested by {actor}"
            tick = rollout_controller.answer_approval(self.settings, self.store(), decision, actor, body.reason)
            done = {"approve": "approved", "reject": "rejected"}[decision]
            return f"{done} by {actor}: {tick.action.reason}"

        return self.carry_out(act)

    def approver(self, owner: str | None, x_actor: str | None) -> str:
        """Who asks or answers: the personal token's owner when the service has personal tokens, else X-Actor."""
        if not self.runtime.gate.personal:
            return x_actor or DEFAULT_ACTOR
        if owner is None:
            raise AdminError(
                403,
                "this service takes approvals with personal tokens (MLOPS_APPROVER_TOKENS): send your own token "
                "(MLOPS_APPROVER_TOKEN); the shared admin token cannot ask for or answer an approval",
                "Authorization",
            )
        if x_actor is not None and x_actor != owner:
            raise AdminError(403, f"X-Actor {x_actor!r} is not the owner of this approval token", "X-Actor")
        return owner

    # ---- shared steps ------------------------------------------------------------------------
    def store(self) -> StateStore:
        if self.runtime.store is None or self.runtime.poller is None:
            raise AdminError(503, "the service is starting (lifespan not run yet); retry in a moment")
        return self.runtime.store

    def answer(self, message: str, *, registry_changed: bool = False) -> AdminState:
        """Apply the stored state in this worker now, then report it.

        Routing, rollout and ``aliases`` come from the shared store and this worker's memory: ``aliases`` are
        the champion and challenger as the model poller last read them, and ``registry_error`` its last error.
        The one registry read is the challenger's approval tags, so a request made elsewhere (the CLI) shows
        at once; it is skipped while the poller's last refresh failed (``registry_error`` set), so the answer
        comes at once during a known outage, without them. After an action on the registry (which just
        answered) the models are refreshed here at once and the aliases read afresh.
        """
        state_store = self.store()
        poller, cache = self.runtime.poller, self.runtime.cache
        assert poller is not None, "store() checked that the lifespan ran"
        assert cache is not None
        aliases: dict[str, str] = dict(cache.aliases)
        if registry_changed:
            poller.refresh()
            try:
                aliases = registry.current_aliases(self.settings)
            except (MlflowException, OSError) as err:  # gone again since the action: report what we know
                if outage(err) is None:
                    raise
        else:
            poller.refresh_state()  # the database only: a routing change applies here even with MLflow down
        approval: dict[str, str] = {"mode": self.settings.approval}
        if self.runtime.gate.personal:
            approval["approvers"] = "personal tokens (MLOPS_APPROVER_TOKENS)"
        rollout_state = state_store.rollout()
        if rollout_state.status == "awaiting_approval" and rollout_state.challenger_version:
            approval["awaiting"] = rollout_state.challenger_version
        challenger = aliases.get("challenger")
        if challenger is not None and (registry_changed or not cache.health.degraded):
            try:  # one registry read: the challenger's tags
                approval |= registry.challenger_approval(self.settings, challenger)
            except (MlflowException, OSError) as err:
                if outage(err) is None:
                    raise
        return AdminState(
            message=message,
            approval=approval,
            routing=state_store.routing().to_dict(),
            rollout=rollout_state.to_dict(),
            aliases=aliases,
            loaded={alias: model.version for alias, model in cache.snapshot().items()},
            registry_error=cache.health.last_error,
        )

    def route_change(
        self, fn: Callable[[RoutingState], RoutingState], describe: Callable[[RoutingState], str]
    ) -> AdminState:
        """Compare-and-swap ``fn`` into the shared routing state, apply it here, report it."""
        try:
            new = self.store().update_routing(fn)
        except StateConflictError as err:
            raise AdminError(409, str(err)) from err
        return self.answer(describe(new))

    def carry_out(self, action: Callable[[], str]) -> AdminState:
        """Run a registry or rollout ``action`` (returns what it did); its refusals are 409 with the reason."""
        try:
            message = action()
        except CONFLICTS as err:
            raise AdminError(409, str(err)) from err
        except (MlflowException, OSError) as err:
            problem = outage(err)
            if problem is None:
                raise
            raise AdminError(503, f"{problem}; nothing was changed, retry when the registry is back") from err
        return self.answer(message, registry_changed=True)


def check_admin_token(token: str) -> None:
    """Refuse a token shorter than ``MIN_TOKEN_CHARS`` (the message never shows the token).

    Raises:
        WeakAdminTokenError: names the length and how to make a good token.
    """
    if len(token) < MIN_TOKEN_CHARS:
        raise WeakAdminTokenError(
            f"MLOPS_ADMIN_TOKEN has {len(token)} characters; it needs at least {MIN_TOKEN_CHARS} to resist guessing. "
            "Make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def check_approver_tokens(tokens: dict[str, str], admin_token: str) -> None:
    """Refuse personal approval tokens that are guessable, shared, the admin token, or owned by a bad name.

    Raises:
        WeakAdminTokenError: names the owner and what is wrong (never the token).
    """
    seen: set[str] = set()
    for name, secret in tokens.items():
        value = secret.strip()
        if not re.fullmatch(ACTOR_PATTERN, name):
            raise WeakAdminTokenError(f"MLOPS_APPROVER_TOKENS: the name {name[:40]!r} must match {ACTOR_PATTERN}")
        if len(value) < MIN_TOKEN_CHARS:
            raise WeakAdminTokenError(
                f"MLOPS_APPROVER_TOKENS: {name}'s token has {len(value)} characters; it needs at least "
                f"{MIN_TOKEN_CHARS}"
            )
        if value == admin_token or value in seen:
            raise WeakAdminTokenError(
                f"MLOPS_APPROVER_TOKENS: {name}'s token is the admin token or another person's; each must be its own"
            )
        seen.add(value)


def install(app: FastAPI, runtime: Runtime, shared: dict[int | str, dict[str, Any]] | None = None) -> None:
    """Mount the admin API under ``/v1/admin`` if ``settings.admin_token`` is set; leave it absent otherwise.

    ``shared``: the responses every route documents (`serving.errors.shared_responses`).
    """
    token = (runtime.settings.admin_token or "").strip()
    if not token:
        return
    check_admin_token(token)
    check_approver_tokens(runtime.settings.approver_tokens, token)
    app.include_router(AdminApi(runtime).router, prefix=PREFIX, responses=shared)
    app.add_exception_handler(AdminError, _admin_error)
