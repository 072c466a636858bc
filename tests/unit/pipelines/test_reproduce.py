"""Reading what a run logged: runs from before the search (with the retired grid sweep) still reproduce."""

from __future__ import annotations

import json

from core.params import Params
from pipelines.reproduce import logged_params


def test_params_logged_with_the_retired_grid_sweep_are_read_without_it(params: Params) -> None:
    raw = json.loads(params.model_dump_json())
    del raw["train"]["search"]  # as logged before the search existed
    raw["train"]["sweep"] = {"C": [0.1, 1.0, 10.0]}
    read = logged_params(json.dumps(raw))
    assert read.train.hyperparams == params.train.hyperparams
    assert read.model_dump(exclude={"train": {"search"}}) == params.model_dump(exclude={"train": {"search"}})


def test_params_logged_today_read_back_equal(params: Params) -> None:
    assert logged_params(params.model_dump_json()) == params
