"""The admin API: change routing, promote, roll back and steer a rollout on a running service.

Concepts: runtime configuration (C27) behind API security (C44). Progressive delivery is only useful
if an operator can act without a redeploy: switch strategy, move a weight, flip blue-green, promote,
roll back, pause or abort a canary. Each endpoint is a thin shell over a core function:

- routing changes go to the shared `StateStore` with compare-and-swap (``update_routing``), so two
  operators (or an operator and the rollout controller) never overwrite each other;
- registry changes go through ``pipelines.registry`` (audited with the actor from ``X-Actor``);
- then ``poller.refresh()`` applies the change in *this* worker at once; every other worker and
  replica picks it up from the store within ``poll_interval_s``. ``loaded`` in the answer shows what
  this worker serves now.

Security: the router is mounted only when ``MLOPS_ADMIN_TOKEN`` is set (otherwise ``/v1/admin/*`` is a
plain 404: nothing to probe). Requests need ``Authorization: Bearer <token>``: none is 401 with
``WWW-Authenticate``, a wrong one 403. The comparison is ``hmac.compare_digest``, whose time does not
depend on where the strings differ, so the token cannot be guessed a byte at a time from latencies.
``X-Actor`` only *attributes* a change in the audit log; the token is what authorises it.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from pipelines import registry
from serving import rollout_controller
from serving.rollout import RolloutTransitionError
from serving.router import RoutingState, Strategy, switch_slot, with_ab_split, with_strategy, with_weight
from serving.state_store import StateConflictError

if TYPE_CHECKING:
    from collections.abc import Callable

    from serving.runtime import Runtime
    from serving.state_store import StateStore

log = logging.getLogger(__name__)
PREFIX = "/v1/admin"
DEFAULT_ACTOR = "admin-api"
MIN_TOKEN_CHARS = 16
bearer = HTTPBearer(auto_error=False, description="MLOPS_ADMIN_TOKEN of the service")
Fraction = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Actor = Annotated[str | None, Header(pattern=r"^[\w.@:-]{1,100}$", description="Who acts (audit log).")]


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
    """Body of PUT /weights: either weight or both; an absent one keeps its value."""

    model_config = ConfigDict(extra="forbid")
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
    aliases: dict[str, str] = Field(description="Registry aliases now (alias -> version); empty if unreachable.")
    loaded: dict[str, str] = Field(description="What this worker serves now (alias -> version).")
    registry_error: str | None = Field(default=None, description="Why the registry could not be read, if it could not.")


def _authorize(token: str) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    expected = token.encode()

    def authorize(credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> None:
        if credentials is None:
            raise AdminError(
                401,
                "admin API: send the header Authorization: Bearer <MLOPS_ADMIN_TOKEN>",
                "Authorization",
                {"WWW-Authenticate": 'Bearer realm="mlops-lab admin"'},
            )
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise AdminError(403, "admin API: wrong token; use the service's MLOPS_ADMIN_TOKEN", "Authorization")

    return authorize


async def _admin_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AdminError)
    detail = [{"field": exc.field, "msg": str(exc), "type": "admin_error"}] if exc.field else []
    return JSONResponse({"error": str(exc), "detail": detail}, status_code=exc.status, headers=exc.headers)


def build_router(runtime: Runtime, token: str) -> APIRouter:
    """The ``/v1/admin`` routes over ``runtime``; every route requires ``token``."""
    from mlflow.exceptions import MlflowException

    conflicts = (registry.RegistryError, RolloutTransitionError, StateConflictError)
    # A registry that cannot answer (database gone, server down) is an outage: 503, retry later. An
    # MlflowException that *answers* (no such model or version, a bad value) is not.
    answered = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS")

    def outage(err: MlflowException | OSError) -> str | None:
        """The outage message for ``err``, or None when the registry did answer."""
        if isinstance(err, MlflowException) and err.error_code in answered:
            return None
        return f"registry unreachable ({type(err).__name__}: {err})"[:500]

    refusals: dict[int | str, dict[str, Any]] = {
        401: {"description": "No bearer token"},
        403: {"description": "Wrong token"},
        422: {"description": "Invalid request, naming the field"},
        503: {"description": "Starting, or the model registry is unreachable (nothing changed)"},
    }
    router = APIRouter(tags=["admin"], dependencies=[Depends(_authorize(token))], responses=refusals)
    settings = runtime.settings

    def store() -> StateStore:
        if runtime.store is None or runtime.poller is None:
            raise AdminError(503, "the service is starting (lifespan not run yet); retry in a moment")
        return runtime.store

    def answer(message: str) -> AdminState:
        """Apply the stored state in this worker now, then report it."""
        state_store = store()
        if runtime.poller is not None:  # store() checked it; this tells the type checker
            runtime.poller.refresh()
        snapshot = runtime.cache.snapshot() if runtime.cache else {}
        aliases: dict[str, str] = {}
        problem = None
        try:
            aliases = registry.current_aliases(settings)
        except (MlflowException, OSError) as err:  # routing and rollout state still come from the shared store
            problem = outage(err)
            if problem is None:
                raise
        return AdminState(
            message=message,
            routing=state_store.routing().to_dict(),
            rollout=state_store.rollout().to_dict(),
            aliases=aliases,
            loaded={alias: model.version for alias, model in snapshot.items()},
            registry_error=problem,
        )

    def route_change(fn: Callable[[RoutingState], RoutingState], describe: Callable[[RoutingState], str]) -> AdminState:
        """Compare-and-swap ``fn`` into the shared routing state, apply it here, report it."""
        try:
            new = store().update_routing(fn)
        except StateConflictError as err:
            raise AdminError(409, str(err)) from err
        return answer(describe(new))

    def carry_out(action: Callable[[], str]) -> AdminState:
        """Run a registry or rollout ``action`` (returns what it did); its refusals are 409 with the reason."""
        try:
            message = action()
        except conflicts as err:
            raise AdminError(409, str(err)) from err
        except (MlflowException, OSError) as err:
            problem = outage(err)
            if problem is None:
                raise
            raise AdminError(503, f"{problem}; nothing was changed, retry when the registry is back") from err
        return answer(message)

    @router.get("/state", response_model=AdminState)
    def state() -> AdminState:
        """Routing state, rollout state, registry aliases and what this worker serves."""
        return answer("")

    @router.put("/strategy", response_model=AdminState)
    def put_strategy(body: StrategyBody) -> AdminState:
        """Switch the routing strategy (canary, blue_green, shadow, ab, bandit) without a redeploy."""
        return route_change(lambda s: with_strategy(s, body.strategy), lambda s: f"strategy is now {s.strategy}")

    @router.put("/weights", response_model=AdminState)
    def put_weights(body: WeightsBody) -> AdminState:
        """Set the canary weight and/or the A/B split (the challenger's share, in [0, 1])."""

        def change(s: RoutingState) -> RoutingState:
            s = s if body.canary_weight is None else with_weight(s, body.canary_weight)
            return s if body.ab_split is None else with_ab_split(s, body.ab_split)

        return route_change(change, lambda s: f"canary weight {s.canary_weight:g}, A/B split {s.ab_split:g}")

    @router.post("/blue-green/switch", response_model=AdminState, responses={409: {"description": "Not blue-green"}})
    def blue_green_switch() -> AdminState:
        """Make the idle slot active (and back again): one new state, seen whole or not at all."""

        def change(s: RoutingState) -> RoutingState:
            if s.strategy != "blue_green":
                raise AdminError(409, f"strategy is {s.strategy}, not blue_green: PUT {PREFIX}/strategy first")
            return switch_slot(s)

        return route_change(change, lambda s: f"active slot is now {s.active_slot} ({s.slots[s.active_slot]})")

    @router.post("/promote", response_model=AdminState, responses={409: {"description": "Nothing to promote"}})
    def promote(body: ReasonBody, x_actor: Actor = None) -> AdminState:
        """champion <- challenger (the old champion becomes ``previous``); the canary weight goes to 0."""

        def act() -> str:
            rollout = store().rollout()
            if rollout.status in ("running", "paused"):  # the controller owns a running canary
                raise AdminError(
                    409,
                    f"a canary of v{rollout.challenger_version} is {rollout.status}: let the controller promote "
                    f"it, or abort it (POST {PREFIX}/rollout/abort) first",
                )
            change = registry.promote(settings, x_actor or DEFAULT_ACTOR, body.reason)
            store().update_routing(lambda s: with_weight(s, 0.0))  # nothing left to canary
            return f"promoted v{change.champion_after} to champion (was v{change.champion_before})"

        return carry_out(act)

    @router.post("/rollback", response_model=AdminState, responses={409: {"description": "Nothing to roll back"}})
    def rollback(body: ReasonBody, x_actor: Actor = None) -> AdminState:
        """champion <- previous (one level of undo); the rolled-back version is tagged with the reason."""

        def act() -> str:
            change = registry.rollback(settings, x_actor or DEFAULT_ACTOR, body.reason)
            return f"rolled back to v{change.champion_after} (was v{change.champion_before})"

        return carry_out(act)

    @router.post("/rollout/start", response_model=AdminState, responses={409: {"description": "Cannot start"}})
    def rollout_start() -> AdminState:
        """Start a canary of the current challenger at the first of ``rollout.steps``."""
        return carry_out(lambda: rollout_controller.begin_rollout(settings, runtime.params, store()).action.reason)

    @router.post("/rollout/{operation}", response_model=AdminState, responses={409: {"description": "Not now"}})
    def rollout_operate(
        operation: Literal["pause", "resume", "abort"], body: ReasonBody, x_actor: Actor = None
    ) -> AdminState:
        """Pause (hold the weight), resume, or abort (weight 0, challenger marked rejected) the rollout."""

        def act() -> str:
            tick = rollout_controller.operate(settings, store(), operation, x_actor or DEFAULT_ACTOR, body.reason)
            return f"rollout {tick.state.status}: {tick.action.reason}"

        return carry_out(act)

    return router


def install(app: FastAPI, runtime: Runtime) -> None:
    """Mount the admin API under ``/v1/admin`` if ``settings.admin_token`` is set; leave it absent otherwise."""
    token = (runtime.settings.admin_token or "").strip()
    if not token:
        return
    if len(token) < MIN_TOKEN_CHARS:
        log.warning(
            "MLOPS_ADMIN_TOKEN has %d characters; use a long random one: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            len(token),
        )
    app.include_router(build_router(runtime, token), prefix=PREFIX)
    app.add_exception_handler(AdminError, _admin_error)
