"""The error body of the native and admin APIs: one model, one way to build it.

Concept: bad input gets a clear error (C18, C44). Every 4xx and 5xx of the service has the same shape,
``{"error": "<one line>", "detail": [{"field", "msg", "type"}, ...]}``: the line says what to fix,
``detail`` names each field or header at fault (empty when none is). `ErrorResponse` documents it in the
OpenAPI document and `error_response` builds it, whether the problems come from the typed schema (a
pydantic validation error), JSON that does not parse or is not UTF-8, the routing-header policy, a
serving error, an unknown route (404) or method (405, with ``Allow``), or a bug (500, which names
nothing of the failure). The edge middlewares (`serving.limits`: 408, 413, 429) and the admin API's
authentication (`serving.admin.AdminAuth`) send it too. MLflow's ``/invocations`` and the Open Inference
Protocol keep their protocols' keys (``error_code`` and ``message``; ``error``) and carry ``error`` and
``detail`` beside them (`error_body`), so stock clients and our own read the same answer.
Not this shape: the health answers (/readyz, /v2/health/ready and model readiness are 503 with their
report), which are states, not errors.

The OpenAPI document lists every status a route can answer. The answers that do not come from the
route itself -- 408 (body too slow), 413 (body size) and 429 (rate, when on) from the edge middlewares
in `serving.limits`, 503 from the database-outage handler below -- are `shared_responses`, which
`serving.app` adds to every route; each route lists its own (`documented`), and a 422 is always this module's body.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from core.redact import redact
from serving.contract import Problem

log = logging.getLogger(__name__)
# A database that cannot answer now (locked past its busy timeout, down, out of connections): an
# outage, 503 with Retry-After, never a 500 (which would read as a bug and count against a canary).
DATABASE_OUTAGES = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
RETRY_AFTER_S = 5
UNPARSABLE_BODY = "There was an error parsing the body"  # FastAPI's 400 for a JSON body it cannot decode

_BRANCH_TAGS = (
    "row",
    "batch",
    "entity_row",
    "entity_batch",
)  # the discriminated union's branch names in pydantic error locations


class ErrorDetail(BaseModel):
    field: str
    msg: str
    type: str


class ErrorResponse(BaseModel):
    error: str
    detail: list[ErrorDetail] = []


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def documented(
    description: str, model: type[BaseModel] = ErrorResponse, *, retry_after: bool = False
) -> dict[str, Any]:
    """One entry of a route's ``responses=``: a JSON body of ``model``, with ``Retry-After`` when the answer sets it."""
    entry: dict[str, Any] = {"model": model, "description": description}
    return entry | ({"headers": RETRY_AFTER} if retry_after else {})


def shared_responses(rate_limited: bool) -> dict[int | str, dict[str, Any]]:
    """What any route may answer besides its own: 408 (body too slow), 413 (body over the limit), 503 (database
    outage), 429 if limited."""
    shared: dict[int | str, dict[str, Any]] = {
        408: documented(
            "The request body did not arrive within MLOPS_BODY_TIMEOUT_S of its headers (connection closed)"
        ),
        413: documented("The request body is over MLOPS_MAX_BODY_BYTES (refused before it is read)"),
        503: documented("The database is unavailable or busy; nothing was stored", retry_after=True),
    }
    return shared | ({429: documented("Rate limit of this client exceeded", retry_after=True)} if rate_limited else {})


def error_body(message: str, problems: Iterable[Problem] = ()) -> dict[str, Any]:
    """``{"error": message, "detail": [{field, msg, type}, ...]}``: the keys every error body has."""
    return {"error": message, "detail": [{"field": p.field, "msg": p.msg, "type": p.type} for p in problems]}


def error_response(
    status: int, message: str, problems: Iterable[Problem] = (), headers: Mapping[str, str] | None = None
) -> Response:
    """The JSON error answer: ``message`` and one detail entry per problem."""
    body = orjson.dumps(error_body(message, problems))
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def credential_problem(err: Any) -> Problem:
    """The detail entry of a refused credential (`serving.credentials.CredentialError`): the header at fault."""
    return Problem(err.field, str(err), "credential_refused")


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's HTTP errors in the one shape: 404 names the path, 405 the method (and keeps ``Allow``).

    A JSON body that is not even text (bytes that are not UTF-8) is invalid JSON like any other: the
    documented 422 naming the body, not FastAPI's undocumented 400 ``{"detail": "There was an error..."}``.
    """
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.detail == UNPARSABLE_BODY:
        return invalid_request([Problem("body", "JSON decode error: the body is not UTF-8 JSON", "json_invalid")])
    where = f"{request.method} {request.url.path}"[:200]
    if exc.status_code == 404:
        message, problems = (
            f"not found: {where}; the routes are listed at /docs",
            [Problem("path", "no such route", "not_found")],
        )
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"method not allowed: {where}; allowed: {allowed}"
        problems = [Problem("method", f"allowed: {allowed}", "method_not_allowed")]
    else:
        message, problems = str(exc.detail), []
    return error_response(exc.status_code, message, problems, exc.headers)


async def internal_error(_request: Request, _exc: Exception) -> Response:
    """500 in the one shape, naming nothing of the failure (the server log has the traceback)."""
    return error_response(500, "internal server error: nothing to fix on your side; the server log has the details")


async def database_unavailable(_request: Request, exc: Exception) -> Response:
    """503 with Retry-After for a database outage on a feedback or admin request; nothing was stored."""
    log.warning("database unavailable, answered 503: %s", redact(str(exc))[:300])
    return error_response(
        503,
        f"the database is unavailable or busy; nothing was stored, retry in {RETRY_AFTER_S} s",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def invalid_request(problems: Sequence[Problem]) -> Response:
    """422: the request breaks its contract; the line names every field or header at fault."""
    return error_response(422, "invalid request: " + "; ".join(f"{p.field}: {p.msg}" for p in problems), problems)


def validation_problems(errors: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """pydantic / FastAPI validation errors as problems: the field path, the message, the error type."""
    return [
        Problem(
            # A JSON syntax error's location is a character offset, not a field: the body is at fault.
            "body" if e.get("type") == "json_invalid" else field_name(e.get("loc", ())),
            str(e.get("msg")),
            str(e.get("type")),
        )
        for e in errors
    ]


def field_name(loc: Sequence[int | str]) -> str:
    """A dotted field path from a pydantic error location, without ``body`` and branch tags."""
    parts = [str(p) for p in loc if p != "body" and p not in _BRANCH_TAGS]
    return ".".join(parts) or "body"
