"""Stream messages: what a feature event on the broker looks like, and what a worker does with each one.

Concept: streaming inference (C63). A feature event is one Redis stream entry whose field ``payload`` holds a
JSON object: the feature fields of one row, exactly as ``/v1/predict`` takes a flat row (the same
`serving.native_body.BodyParser` over the same `serving.contract.RequestContract`, so the stream accepts and
refuses the same values as HTTP), plus optional ``user_id`` (the sticky routing key and the log's pseudonymous
user key, as ``X-User-Id``) and ``request_id`` (the producer's own id, checked like ``X-Request-Id`` and named in
the worker's log lines; it is not the log's id, see below). It may also carry ``specimen_id`` (the feature
store's entity key: the worker then updates that specimen's rolling features, `serving.stream_features`) and
``event_timestamp`` (when the measurement was taken, ISO 8601 with a UTC offset; default: the message id's
milliseconds, i.e. when the broker received it).

The id the prediction log de-duplicates on is the *message id*: the broker made it, it is unique in the stream,
and a message redelivered after a crash carries it again, so the log's ``ON CONFLICT DO NOTHING`` writes its
prediction once however often it is scored. A producer's own id could collide, and a collision would silently
keep the other prediction.

Everything here is pure (bytes in, a decision out); `serving.stream_worker` does the broker and log I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import orjson
from fastapi.exceptions import RequestValidationError

from serving.contract import RequestContract
from serving.errors import validation_problems
from serving.headers import MAX_USER_ID, REQUEST_ID_PATTERN
from serving.native_body import BodyParser, Groups
from serving.predict import LogSaturatedError, NotReadyError, ScoringError
from serving.schemas import build_schemas

PAYLOAD = b"payload"  # the entry field that holds the JSON event
DEAD_REASON, DEAD_ORIGINAL_ID = b"dead_letter_reason", b"original_id"  # added to a dead letter's fields
MAX_PAYLOAD_BYTES = 64 * 1024  # one row is ~100 bytes; anything this large is not an event
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
ENTITY_KEY, EVENT_TIME = "specimen_id", "event_timestamp"  # as in pipelines.feature_history
_ENTITY_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@dataclass(frozen=True)
class Event:
    """A valid feature event: one row in contract order, and its routing keys."""

    message_id: str  # the prediction log's request id
    values: np.ndarray  # 1 x features, float64
    groups: Groups
    user_id: str | None  # routing key (else the message id) and, pseudonymised, the log's user key
    request_id: str | None  # the producer's own id, for its log lines
    entity_id: str | None = None  # the specimen whose rolling features this event updates
    event_ms: int = 0  # when it was measured (ms since the epoch, UTC): its place in the specimen's window


@dataclass(frozen=True)
class Poison:
    """A message that can never be scored: it goes to the dead-letter stream with this reason."""

    message_id: str
    reason: str


class Outcome(StrEnum):
    """What became of a message: scored (logged), dead-lettered, or left pending to be tried again."""

    SCORED = "scored"
    DEAD_LETTERED = "dead_lettered"
    RETRY = "retry"


class MessageReader:
    """Turns stream entries into `Event`s or `Poison`, with the HTTP service's own body parser and contract."""

    def __init__(self, contract: RequestContract) -> None:
        self.contract = contract
        self.parser = BodyParser(contract, build_schemas(contract))

    def read(self, message_id: str, fields: Mapping[bytes, bytes] | None) -> Event | Poison:
        """The event in a stream entry, or why it is poison (the reason names the field at fault)."""
        if fields is None:  # XAUTOCLAIM / a pending read of an entry deleted from the stream since
            return Poison(message_id, "the entry was deleted from the stream before it was scored")
        payload = fields.get(PAYLOAD)
        if payload is None:
            return Poison(message_id, f"no {PAYLOAD.decode()!r} field; send XADD <stream> * payload <JSON object>")
        if len(payload) > MAX_PAYLOAD_BYTES:
            return Poison(message_id, f"payload of {len(payload)} bytes; one event is at most {MAX_PAYLOAD_BYTES}")
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError as err:
            return Poison(message_id, f"payload is not JSON: {err}")
        if type(obj) is not dict:
            return Poison(message_id, f"payload must be a JSON object of feature fields, got {type(obj).__name__}")
        if "rows" in obj:
            return Poison(message_id, "one event per message: send each row as its own message, not 'rows'")
        request_id, user_id = obj.pop("request_id", None), obj.pop("user_id", None)
        entity_id, stamp = obj.pop(ENTITY_KEY, None), obj.pop(EVENT_TIME, None)
        if entity_id is not None and not (isinstance(entity_id, str) and _ENTITY_ID.fullmatch(entity_id)):
            return Poison(message_id, f"{ENTITY_KEY} must be a string of 1 to 64 letters, digits or ._:-")
        event_ms = event_millis(message_id, stamp)
        if event_ms is None:
            return Poison(message_id, f"{EVENT_TIME} must be an ISO 8601 time with a UTC offset, e.g. "
                                      "2025-01-31T12:00:00Z")  # fmt: skip
        if request_id is not None and not (isinstance(request_id, str) and _REQUEST_ID.fullmatch(request_id)):
            return Poison(message_id, f"request_id must be a string matching {REQUEST_ID_PATTERN}")
        if user_id is not None and not (isinstance(user_id, str) and 0 < len(user_id) <= MAX_USER_ID):
            return Poison(message_id, f"user_id must be a string of 1 to {MAX_USER_ID} characters")
        try:
            values, groups = self.parser.parse_request(orjson.dumps(obj))
        except RequestValidationError as err:
            problems = validation_problems(err.errors())
            return Poison(message_id, "; ".join(f"{p.field}: {p.msg}" for p in problems) or "invalid event")
        if (problem := self.contract.problem(values)) is not None:
            return Poison(message_id, f"{problem.field}: {problem.msg}")
        return Event(message_id, values, groups, user_id, request_id, entity_id, event_ms)


def event_millis(message_id: str, stamp: object) -> int | None:
    """The event time in ms: ``stamp`` (ISO 8601 with an offset) if given, else the message id's ms; None if bad."""
    if stamp is None:
        return int(message_id.split("-", 1)[0])
    if not isinstance(stamp, str):
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if when.tzinfo is None:  # a local time would be read differently on every machine
        return None
    return round(when.timestamp() * 1000)


def outcome_of(answer: object) -> tuple[Outcome, str | None]:
    """What to do with a message given what scoring it gave: a `Served`, or the error it raised.

    A model that fails on the row will fail again (its rows are in the log as errors): dead letter. No champion
    yet, or a full prediction log, passes: leave the message pending and try again (never ack an unlogged one).
    """
    if isinstance(answer, NotReadyError | LogSaturatedError):
        return Outcome.RETRY, None
    if isinstance(answer, ScoringError):
        return Outcome.DEAD_LETTERED, str(answer)
    if isinstance(answer, Exception):
        return Outcome.DEAD_LETTERED, f"{type(answer).__name__}: {answer}"
    return Outcome.SCORED, None


def may_ack(outcome: Outcome, log_durable: bool) -> bool:
    """Ack only what is finished: a scored message once its prediction is committed, a dead letter once written.

    A dead letter and its ack go in one Redis transaction, so the log's state does not matter for it.
    """
    if outcome is Outcome.RETRY:
        return False
    return log_durable or outcome is Outcome.DEAD_LETTERED


def dead_letter(message_id: str, fields: Mapping[bytes, bytes] | None, reason: str) -> dict[bytes, bytes]:
    """The dead-letter entry: the original fields untouched, the reason and the original message id."""
    return {**(fields or {}), DEAD_REASON: reason.encode("utf-8"), DEAD_ORIGINAL_ID: message_id.encode("ascii")}


def claim_due(now: float, last_claim: float | None, claim_idle_s: float) -> bool:
    """Look for a dead consumer's messages at start and then every half claim timeout (so none waits > 1.5x)."""
    return last_claim is None or now - last_claim >= claim_idle_s / 2
