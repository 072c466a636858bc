"""The contract against its own reference data: absent columns and classes, ranges that exclude values."""

from __future__ import annotations

import pandas as pd

from core.params import DatasetConfig
from pipelines.params_against_data import problems_against_data


def _contract(**changes: object) -> DatasetConfig:
    base: dict[str, object] = {
        "name": "toy",
        "path": "toy.csv",
        "target": "kind",
        "classes": ["a", "b", "c"],
        "features": {"x": {"min": 0.0, "max": 10.0}, "y": {"min": 0.0, "max": 1.0}},
    }
    return DatasetConfig.model_validate({**base, **changes})


FRAME = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0.5, 3.0, 7.0, None], "kind": ["a", "b", "a", "b"]})


def test_every_mismatch_with_the_data_is_listed() -> None:
    cfg = _contract(features={"x": {"min": 0.0, "max": 10.0}, "y": {"min": 0.0, "max": 1.0}, "z": {"min": 0, "max": 1}})
    problems = problems_against_data(cfg, FRAME, "toy.csv")
    assert problems == [
        "dataset: column(s) ['z'] are not in toy.csv (its columns: ['kind', 'x', 'y'])",
        "dataset.classes: ['c'] do not occur in toy.csv (it has ['a', 'b'])",
        "dataset.features.y: range 0.0..1.0 excludes 2 of 3 values of toy.csv (they span 0.5..7)",
    ]


def test_a_contract_that_fits_its_data_has_no_problem() -> None:
    cfg = _contract(classes=["a", "b"], features={"x": {"min": 0.0, "max": 10.0}, "y": {"min": 0.0, "max": 7.0}})
    assert problems_against_data(cfg, FRAME) == []
