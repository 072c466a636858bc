"""The routing headers, one policy for every protocol: request id, user id, forced arm.

Concept: standard protocols (C19) that route alike (C21-C25). A client may steer how its request is
routed and logged with three headers, and /v1/predict, MLflow's /invocations and the Open Inference
Protocol's /v2 infer routes read them with the rules below, document them with the same OpenAPI
parameters (`openapi_parameters`) and refuse a bad one as a client error naming the header, each in its
own protocol's error body (422 on /v1, 400 on /invocations and /v2):

- ``X-Request-Id``: the id the prediction is logged and answered under (a retried request is logged
  once). Optional; when sent it must match ``REQUEST_ID_PATTERN`` (no ``:``, which separates row and
  shadow ids in the log). Without it the service makes one; on /v2 the body's ``id`` is used when it
  is a valid request id (the body ``id`` itself is echoed as the protocol says, whatever it holds).
  A client-chosen id names one request: sent again with other features it is 409 Conflict naming the
  header, nothing answered (`serving.request_ids`); with the same features it is a retry.
- ``X-User-Id``: the routing key, so one user stays on one arm of a canary or an A/B test. Optional, at
  most ``MAX_USER_ID`` characters. Without it each request is routed on its own (by its request id).
- ``X-Force-Arm``: a debugging override to one arm or blue-green slot (``serving.router.OVERRIDES``),
  for operators only: it needs ``Authorization: Bearer <MLOPS_ADMIN_TOKEN>`` (`authorize_override`: 401
  without, 403 wrong, 429 after too many failures, each protocol in its own error body), and the row is
  logged with strategy ``forced``, which no analysis or monitoring window counts. Its value is checked
  where the request is routed (`serving.predict.Predictor.decide`), which also refuses an arm with no
  model loaded; every protocol answers that refusal as a client error naming it.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from serving.contract import Problem
from serving.credentials import AdminGate, bearer_token
from serving.router import OVERRIDES

REQUEST_ID_PATTERN = r"^[A-Za-z0-9._-]{1,40}$"
MAX_USER_ID = 200
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)

REQUEST_ID, USER_ID, FORCE_ARM = b"x-request-id", b"x-user-id", b"x-force-arm"
AUTHORIZATION = b"authorization"
NAMES = frozenset((REQUEST_ID, USER_ID, FORCE_ARM, AUTHORIZATION))  # what a hot route reads from the raw headers

_PARAMETERS: tuple[dict[str, Any], ...] = (
    {"name": "x-request-id", "in": "header", "required": False, "description": "Your id for this request.",
     "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN}},
    {"name": "x-user-id", "in": "header", "required": False, "description": "Routing key: a user stays on one arm.",
     "schema": {"type": "string", "maxLength": MAX_USER_ID}},
    {"name": "x-force-arm", "in": "header", "required": False,
     "description": "Operators only, with Authorization: Bearer <MLOPS_ADMIN_TOKEN>: serve from this arm or "
                    "blue-green slot (401 without the token, 403 wrong); logged as strategy 'forced', "
                    "which no analysis counts.",
     "schema": {"type": "string", "enum": list(OVERRIDES)}},
)  # fmt: skip


class HeaderError(ValueError):
    """Routing headers the policy refuses; ``problems`` name each header at fault."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.msg}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class RoutingHeaders:
    """The routing headers of one request, checked; ``request_id`` is never empty."""

    request_id: str
    user_id: str | None
    force_arm: str | None
    client_id: bool = False  # the client chose request_id (header, or /v2's body id): reuse is checked
    bearer: str | None = None  # the Authorization header's bearer token, if any


def routing_headers(headers: Mapping[bytes, str], fallback_id: str | None = None) -> RoutingHeaders:
    """Check the routing headers (lower-case raw names -> values) and fill in the request id.

    Args:
        headers: at least the `NAMES` a request sent, e.g. from `serving.hot_routes.header_values`.
        fallback_id: the id to use when no ``X-Request-Id`` was sent, if it is a valid one (V2's body id).

    Raises:
        HeaderError: ``X-Request-Id`` or ``X-User-Id`` breaks the policy (every problem is named).
    """
    rid, user_id = headers.get(REQUEST_ID), headers.get(USER_ID)
    problems = []
    if rid is not None and not valid_request_id(rid):
        problems.append(Problem("X-Request-Id", f"String should match pattern '{REQUEST_ID_PATTERN}'", "pattern"))
    if user_id is not None and len(user_id) > MAX_USER_ID:
        problems.append(Problem("X-User-Id", f"String should have at most {MAX_USER_ID} characters", "too_long"))
    if problems:
        raise HeaderError(problems)
    chosen = rid is not None or (fallback_id is not None and valid_request_id(fallback_id))
    if rid is None:
        rid = fallback_id if fallback_id is not None and valid_request_id(fallback_id) else new_request_id()
    return RoutingHeaders(rid, user_id, headers.get(FORCE_ARM), chosen, bearer_token(headers.get(AUTHORIZATION)))


def authorize_override(routing: RoutingHeaders, gate: AdminGate, client: str) -> None:
    """A forced arm needs the admin token (`serving.credentials.AdminGate.check`); no header, nothing to check.

    Raises:
        CredentialError: 401 without a bearer token, 403 with a wrong one, 429 after too many failures.
    """
    if routing.force_arm is not None:
        gate.check(client, routing.bearer, "X-Force-Arm")


def openapi_parameters() -> list[dict[str, Any]]:
    """The routing headers as OpenAPI header parameters (the routes read them raw, so they are declared here)."""
    return [dict(p) for p in _PARAMETERS]


def valid_request_id(value: str | None) -> bool:
    """True for a client-chosen request id the prediction log can key on."""
    return bool(value) and _REQUEST_ID.fullmatch(value or "") is not None


_IDS = random.Random()  # noqa: S311 - ids, not secrets; seeded from os.urandom
os.register_at_fork(after_in_child=_IDS.seed)  # a forked worker must not repeat its parent's ids


def new_request_id() -> str:
    """A 128-bit id as 32 hex digits: 48 bits of Unix milliseconds, then 80 random bits (UUIDv7's layout).

    Request ids must be unique, not secret, so a per-process PRNG seeded from the OS is enough. The
    time prefix makes ids sort by arrival, so the prediction log's primary-key index grows at its end
    instead of at random pages.
    """
    return f"{time.time_ns() // 1_000_000:012x}{_IDS.getrandbits(80):020x}"
