"""params.yaml is held to its schema (a typo or an unknown column is refused); the digest follows the model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.params import Params, load_params

REPO = Path(__file__).resolve().parents[3]


def _raw_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_params_reject_a_typo_with_the_key_named(tmp_path: Path) -> None:
    raw = _raw_params()
    raw["train"]["test_sise"] = 0.2
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="test_sise"):
        load_params(path)


def test_params_reject_derived_feature_on_unknown_column(tmp_path: Path) -> None:
    raw = _raw_params()
    raw["features"]["products"] = [["petal_length", "stem_length"]]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="stem_length"):
        load_params(path)


def test_params_digest_changes_with_shaping_knobs_only(params: Params) -> None:
    changed_train = params.model_copy(update={"train": params.train.model_copy(update={"seed": 1})})
    changed_gate = params.model_copy(update={"gate": params.gate.model_copy(update={"alpha": 0.5})})
    assert changed_train.digest() != params.digest()
    assert changed_gate.digest() == params.digest()
