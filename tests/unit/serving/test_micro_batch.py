"""Micro-batching logic without a server: chunking, and a model failure kept to the requests it fails on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from core.params import load_params
from serving.bandit import DEFAULT_ARMS, BanditState
from serving.metrics import Metrics
from serving.micro_batch import MicroBatcher, _chunks
from serving.model_cache import LoadedModel
from serving.predict import Predictor, Request, ScoringError, Served
from serving.router import RoutingState


class FailsOnNegativeRows:
    """A real fitted classifier that refuses any row with a negative value (a model bug, planted)."""

    def __init__(self) -> None:
        X = np.array([[1.0, 1.0], [2.0, 2.0], [8.0, 8.0], [9.0, 9.0]])
        self.inner = LogisticRegression().fit(X, ["small", "small", "big", "big"])
        self.classes_ = self.inner.classes_
        self.calls: list[int] = []  # rows per call

    def predict_proba(self, values: np.ndarray) -> Any:
        self.calls.append(len(values))
        if (values < 0).any():
            raise ValueError("negative measurement")
        return self.inner.predict_proba(values)


class OneModel:
    """The model cache and routing source for one champion (what the runtime would hold)."""

    def __init__(self, model: Any) -> None:
        self.loaded = LoadedModel("champion", "1", "run", model, 0.0)
        params = load_params(Path(__file__).parents[3] / "params.yaml")
        self.state = RoutingState.from_params(params.routing)
        self.bandit_state = BanditState.from_params(params.routing.bandit, DEFAULT_ARMS)

    def snapshot(self) -> dict[str, LoadedModel]:
        return {"champion": self.loaded}

    def current(self) -> RoutingState:
        return self.state

    def bandit(self) -> BanditState:
        return self.bandit_state


def predictor(model: Any) -> Predictor:
    source = OneModel(model)
    return Predictor("m", ["a", "b"], source, source, Metrics())  # type: ignore[arg-type]


def test_a_model_failure_stays_with_the_requests_the_model_fails_on() -> None:
    model = FailsOnNegativeRows()
    requests = [Request(np.array([[v, v]]), f"r{i}") for i, v in enumerate([1.0, -1.0, 9.0])]

    answers = predictor(model).serve_many(requests)

    assert isinstance(answers[1], ScoringError)
    assert [a.scored.labels for i, a in enumerate(answers) if i != 1] == [["small"], ["big"]]  # type: ignore[union-attr]
    assert model.calls == [3, 1, 1, 1]  # the shared call failed, then each request alone


def test_a_batch_scores_once_and_splits_multi_row_requests_back() -> None:
    model = FailsOnNegativeRows()
    requests = [Request(np.array([[1.0, 1.0], [9.0, 9.0]]), "two"), Request(np.array([[8.0, 8.0]]), "one")]

    two, one = predictor(model).serve_many(requests)

    assert model.calls == [3]
    assert isinstance(two, Served)
    assert isinstance(one, Served)
    assert (two.row_ids, two.scored.labels) == (["two:0", "two:1"], ["small", "big"])
    assert (one.row_ids, one.scored.labels) == (["one"], ["big"])
    assert two.scored.probabilities is not None
    assert two.scored.probabilities.shape == (2, 2)


def request(rows: int) -> Request:
    return Request(np.zeros((rows, 2)), f"r{rows}")


@pytest.mark.parametrize(
    ("sizes", "max_rows", "expected"),
    [
        ([1, 1, 1], 64, [[1, 1, 1]]),
        ([1, 1, 1], 2, [[1, 1], [1]]),
        ([3, 70, 1], 64, [[3], [70], [1]]),  # a request bigger than the cap stays whole, on its own
        ([], 64, []),
    ],
)
def test_chunks_hold_at_most_max_rows_and_keep_the_order(sizes: list[int], max_rows: int, expected: Any) -> None:
    chunks = _chunks([request(n) for n in sizes], max_rows)
    assert [[len(r.values) for r in chunk] for chunk in chunks] == expected


def test_the_batcher_answers_every_request_of_a_burst_with_its_own_result() -> None:
    model = FailsOnNegativeRows()
    batcher = MicroBatcher(lambda: predictor(model), max_rows=64)

    async def burst() -> list[Any]:
        values = [np.array([[v, v]]) for v in (1.0, -2.0, 9.0, 2.0)]
        return await asyncio.gather(*(batcher.serve(v, f"r{i}") for i, v in enumerate(values)), return_exceptions=True)

    answers = asyncio.run(burst())

    assert batcher.flushes == 1
    assert isinstance(answers[1], ScoringError)
    assert [a.scored.labels[0] for i, a in enumerate(answers) if i != 1] == ["small", "big", "small"]


def test_a_cancelled_leader_still_answers_the_requests_that_joined_it() -> None:
    model = FailsOnNegativeRows()
    batcher = MicroBatcher(lambda: predictor(model), max_rows=64)

    async def scenario() -> tuple[Any, Any]:
        leader = asyncio.create_task(batcher.serve(np.array([[1.0, 1.0]]), "leader"))
        follower = asyncio.create_task(batcher.serve(np.array([[9.0, 9.0]]), "follower"))
        await asyncio.sleep(0)  # the leader yields once, the follower joins its batch
        leader.cancel()  # e.g. the server shuts down under it
        answered = await asyncio.wait_for(follower, timeout=5)
        with pytest.raises(asyncio.CancelledError):
            await leader
        return answered, batcher._leading

    answered, still_leading = asyncio.run(scenario())

    assert answered.scored.labels == ["big"]
    assert not still_leading  # the next request leads a new batch
    assert model.calls == [2]


def test_a_request_alone_in_its_worker_is_scored_without_a_loop_turn() -> None:
    model = FailsOnNegativeRows()
    batcher = MicroBatcher(lambda: predictor(model), max_rows=64)
    ran: list[str] = []

    async def note() -> None:
        ran.append("bystander")

    async def scenario() -> Served:
        bystander = asyncio.get_running_loop().create_task(note())
        try:  # not a request: only the worker's request tasks count, and this task is the only one
            current = asyncio.current_task()
            assert current is not None
            served = await batcher.serve(np.array([[9.0, 9.0]]), "alone", in_flight={current})
            assert ran == []  # any yield would have let the bystander run first
            return served
        finally:
            await bystander

    served = asyncio.run(scenario())

    assert served.scored.labels == ["big"]
    assert (batcher.flushes, batcher.alone, model.calls) == (1, 1, [1])


def test_requests_in_flight_together_still_share_one_model_call() -> None:
    model = FailsOnNegativeRows()
    batcher = MicroBatcher(lambda: predictor(model), max_rows=64)

    async def scenario() -> list[Any]:
        in_flight: set[asyncio.Task[Any]] = set()  # as uvicorn's: both tasks are in it before either runs
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(batcher.serve(np.array([[v, v]]), f"r{v}", in_flight)) for v in (1.0, 9.0)]
        in_flight.update(tasks)
        return await asyncio.gather(*tasks)

    answers = asyncio.run(scenario())

    assert [a.scored.labels for a in answers] == [["small"], ["big"]]
    assert (batcher.flushes, batcher.alone, model.calls) == (1, 0, [2])


def test_a_finished_request_still_in_the_set_does_not_keep_a_lone_request_waiting() -> None:
    model = FailsOnNegativeRows()
    batcher = MicroBatcher(lambda: predictor(model), max_rows=64)

    async def scenario() -> None:
        finished = asyncio.get_running_loop().create_task(asyncio.sleep(0))
        await finished  # done, but uvicorn removes it from the set only in a later callback
        current = asyncio.current_task()
        assert current is not None
        await batcher.serve(np.array([[1.0, 1.0]]), "next", in_flight={finished, current})

    asyncio.run(scenario())

    assert (batcher.flushes, batcher.alone) == (1, 1)
