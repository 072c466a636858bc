"""A stream entry becomes an event or a reasoned poison message; the ack decision never acks an unlogged one."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from core.params import Params
from serving.contract import RequestContract
from serving.predict import LogSaturatedError, NotReadyError, ScoringError
from serving.stream_messages import (
    DEAD_ORIGINAL_ID,
    DEAD_REASON,
    PAYLOAD,
    Event,
    MessageReader,
    Outcome,
    Poison,
    claim_due,
    dead_letter,
    may_ack,
    outcome_of,
)

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.fixture(scope="module")
def reader(params: Params) -> MessageReader:
    return MessageReader(RequestContract.from_dataset(params.dataset))


def entry(obj: object) -> dict[bytes, bytes]:
    return {PAYLOAD: orjson.dumps(obj)}


def test_a_valid_event_is_one_row_in_contract_order_with_its_routing_key(reader: MessageReader) -> None:
    shuffled = dict(reversed(list(ROW.items())))
    event = reader.read("1-0", entry({**shuffled, "user_id": "u-7", "request_id": "r1", "source": "site-a"}))
    assert isinstance(event, Event)
    assert event.message_id == "1-0"
    np.testing.assert_array_equal(event.values, [[5.1, 3.5, 1.4, 0.2]])
    assert (event.user_id, event.request_id) == ("u-7", "r1")
    assert event.groups == ("site-a",)
    bare = reader.read("1-1", entry(ROW))
    assert isinstance(bare, Event)
    assert (bare.user_id, bare.request_id, bare.groups) == (None, None, None)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({PAYLOAD: b"{not json"}, "payload is not JSON"),
        ({b"data": orjson.dumps(ROW)}, "no 'payload' field"),
        (entry([1, 2, 3]), "must be a JSON object of feature fields, got list"),
        (entry({"rows": [ROW]}), "one event per message"),
        (entry({k: v for k, v in ROW.items() if k != "petal_width"}), "petal_width: Field required"),
        (entry({**ROW, "petal_width": 99.0}), "petal_width"),
        (entry({**ROW, "sepal_length": "5.1"}), "sepal_length"),
        (entry({**ROW, "colour": "blue"}), "colour"),
        (entry({**ROW, "request_id": "has:colon"}), "request_id must be a string matching"),
        (entry({**ROW, "user_id": ""}), "user_id must be a string of 1 to"),
        ({PAYLOAD: b" " * 70_000}, "one event is at most"),
        (None, "deleted from the stream"),
    ],
)
def test_poison_gets_a_reason_naming_what_is_wrong(
    reader: MessageReader, fields: dict[bytes, bytes] | None, reason: str
) -> None:
    poison = reader.read("9-0", fields)
    assert isinstance(poison, Poison), poison
    assert reason in poison.reason
    assert poison.message_id == "9-0"


def test_the_stream_refuses_exactly_what_the_contract_refuses(reader: MessageReader) -> None:
    low, high = reader.contract.ranges["petal_width"]
    assert isinstance(reader.read("1-0", entry({**ROW, "petal_width": low})), Event)
    assert isinstance(reader.read("1-0", entry({**ROW, "petal_width": high})), Event)
    assert isinstance(reader.read("1-0", entry({**ROW, "petal_width": high + 0.01})), Poison)


def test_only_finished_messages_are_acked() -> None:
    assert outcome_of(NotReadyError("no champion")) == (Outcome.RETRY, None)
    assert outcome_of(LogSaturatedError("full")) == (Outcome.RETRY, None)
    assert outcome_of(ScoringError("model version 3 failed")) == (Outcome.DEAD_LETTERED, "model version 3 failed")
    assert outcome_of(object())[0] is Outcome.SCORED
    assert may_ack(Outcome.SCORED, log_durable=True)
    assert not may_ack(Outcome.SCORED, log_durable=False)  # committed first, acked second
    assert not may_ack(Outcome.RETRY, log_durable=True)
    assert may_ack(Outcome.DEAD_LETTERED, log_durable=False)  # its ack rides in the dead letter's transaction


def test_a_dead_letter_keeps_the_original_fields_and_says_why() -> None:
    letter = dead_letter("5-0", {PAYLOAD: b"{oops"}, "payload is not JSON")
    assert letter == {PAYLOAD: b"{oops", DEAD_REASON: b"payload is not JSON", DEAD_ORIGINAL_ID: b"5-0"}


def test_claims_run_at_start_and_every_half_timeout() -> None:
    assert claim_due(100.0, None, 30)
    assert not claim_due(114.9, 100.0, 30)
    assert claim_due(115.0, 100.0, 30)


def test_an_event_names_its_specimen_and_its_time_or_takes_the_message_ids_milliseconds(reader: MessageReader) -> None:
    timed = reader.read(
        "1700000000000-3", entry({**ROW, "specimen_id": "sp-00007", "event_timestamp": "2025-01-31T12:00:00.250Z"})
    )
    assert isinstance(timed, Event)
    assert (timed.entity_id, timed.event_ms) == ("sp-00007", 1738324800250)
    offset = reader.read("1-0", entry({**ROW, "event_timestamp": "2025-01-31T13:00:00.250+01:00"}))
    assert isinstance(offset, Event)
    assert offset.event_ms == 1738324800250  # the same instant
    plain = reader.read("1700000000123-0", entry(ROW))
    assert isinstance(plain, Event)
    assert (plain.entity_id, plain.event_ms) == (None, 1700000000123)  # the broker's receive time


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"specimen_id": 7}, "specimen_id"),
        ({"specimen_id": ""}, "specimen_id"),
        ({"specimen_id": "sp 7"}, "specimen_id"),
        ({"event_timestamp": "2025-01-31T12:00:00"}, "event_timestamp"),  # no offset: whose local time?
        ({"event_timestamp": "yesterday"}, "event_timestamp"),
        ({"event_timestamp": 1738324800}, "event_timestamp"),
    ],
)
def test_a_bad_specimen_or_time_is_poison_naming_the_field(reader: MessageReader, extra: dict, field: str) -> None:
    poison = reader.read("1-0", entry({**ROW, **extra}))
    assert isinstance(poison, Poison)
    assert poison.reason.startswith(field)
