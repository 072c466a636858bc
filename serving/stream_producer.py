"""Feature events onto the stream: the rows of a seeded production batch, and a few poison messages.

Concept: streaming inference (C63). What a real producer (a sensor gateway, an app backend) would send: one entry
per row, ``XADD <stream> * payload <JSON object>`` (`serving.stream_messages`), each row drawn from the clean
production batch of `pipelines.batches`. Poison messages (for demos and tests) cover what a dead-letter stream
exists for: bytes that are not JSON, a missing field, a value outside the contract, a JSON value that is not an
object.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from serving.stream_messages import PAYLOAD

if TYPE_CHECKING:
    import pandas as pd
    import redis

    from serving.contract import RequestContract

MAX_EVENTS = 1_000_000  # a bound for one producer call


def feature_payloads(frame: pd.DataFrame, features: Sequence[str]) -> list[bytes]:
    """One JSON object per row, with the contract's feature fields (floats) and nothing else."""
    columns = frame[list(features)].astype("float64")
    return [orjson.dumps(dict(zip(features, row, strict=True))) for row in columns.itertuples(index=False)]


def poison_payloads(count: int, contract: RequestContract) -> list[bytes]:
    """``count`` messages no worker can score, the four kinds in turn (each with one defect)."""
    features = contract.features
    row = {f: round((low + high) / 2, 1) for f, (low, high) in contract.ranges.items()}  # valid but for the defect
    kinds = [
        b"{this is not json",
        orjson.dumps({k: v for k, v in row.items() if k != features[-1]}),  # a field missing
        orjson.dumps({**row, features[0]: 1e6}),  # outside the contract's range
        orjson.dumps([1, 2, 3]),  # JSON, but not an object
    ]
    return [kinds[i % len(kinds)] for i in range(count)]


def produce(client: redis.Redis, stream: str, payloads: Sequence[bytes], *, seed: int = 0) -> list[str]:
    """Append the payloads in a seeded order (poison among the clean ones) in pipelined batches; their ids."""
    if len(payloads) > MAX_EVENTS:
        raise ValueError(f"at most {MAX_EVENTS} events per call, got {len(payloads)}")
    order = list(payloads)
    random.Random(seed).shuffle(order)  # noqa: S311 - test data, not crypto
    ids: list[str] = []
    for start in range(0, len(order), 1000):
        with client.pipeline(transaction=False) as pipe:
            for payload in order[start : start + 1000]:
                pipe.xadd(stream, {PAYLOAD: payload})
            ids += [i.decode() if isinstance(i, bytes) else str(i) for i in pipe.execute()]
    return ids
