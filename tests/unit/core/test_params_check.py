"""A params file is checked as a whole: one error lists every problem, schema and cross-references alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.params import ParamsError, load_params

REPO = Path(__file__).resolve().parents[3]


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _only_the_dataset_changed() -> dict:
    """What the README used to suggest: rewrite `dataset:` for another CSV, leave the rest as it is."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["dataset"] = {
        "name": "wine",
        "path": "data/wine.csv",
        "target": "cultivar",
        "classes": ["class_0", "class_1", "class_2"],
        "features": {"alcohol": {"min": 10.0, "max": 15.0}, "proline": {"min": 2000.0, "max": 200.0}},
    }
    return raw


def test_every_problem_is_listed_in_one_error(tmp_path: Path) -> None:
    raw = _only_the_dataset_changed()
    raw["train"]["test_size"] = 3  # a schema error elsewhere does not hide the cross-references
    with pytest.raises(ParamsError) as caught:
        load_params(_write(tmp_path, raw))
    problems = caught.value.problems
    text = "\n".join(problems)
    assert "dataset.features.proline: min (2000.0) must be below max (200.0)" in text
    assert "train.test_size" in text
    for where in ("features.products[0]", "features.products[1]", "features.ratios[0]", "features.ratios[1]"):
        assert f"{where}: unknown column(s)" in text
    assert "gate.directional[0].feature: unknown column(s) ['petal_length']" in text
    assert "gate.directional[1]: unknown class(es) ['setosa', 'versicolor']" in text
    assert "batches.covariate_shift.features: unknown column(s) ['sepal_length', 'sepal_width']" in text
    assert "batches.concept_shift.swap: unknown class(es) ['versicolor', 'virginica']" in text
    assert len(problems) == 12  # each problem once: none repeated, none lost behind the first
    assert str(caught.value).startswith(f"invalid parameters in {tmp_path / 'params.yaml'}: 12 problem(s)")


def test_the_sections_that_name_columns_emptied_the_file_loads(tmp_path: Path) -> None:
    raw = _only_the_dataset_changed()
    raw["dataset"]["features"]["proline"] = {"min": 200.0, "max": 2000.0}
    raw["features"] = {"products": [], "ratios": [["alcohol", "proline"]]}
    raw["gate"]["directional"] = [
        {"feature": "alcohol", "from_class": "class_0", "towards_class": "class_1", "delta": 1.0}
    ]
    raw["batches"] = {"covariate_shift": {"features": ["alcohol"]}, "prior_shift": {"weights": [0.5, 0.3, 0.2]}}
    raw["model_name"] = "wine-classifier"
    params = load_params(_write(tmp_path, raw))
    assert params.model_name == "wine-classifier"
    assert params.dataset.feature_names == ["alcohol", "proline"]


def test_slice_column_and_class_list_problems_are_named(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["dataset"]["group_column"] = "species"
    raw["dataset"]["classes"] = ["setosa", "setosa", "versicolor", "virginica"]
    raw["batches"]["prior_shift"]["weights"] = [0.5, 0.5]
    with pytest.raises(ParamsError) as caught:
        load_params(_write(tmp_path, raw))
    text = "\n".join(caught.value.problems)
    assert "dataset.group_column: 'species' is a feature or the target" in text
    assert "dataset.classes: listed twice: ['setosa']" in text
    assert "batches.prior_shift.weights: 2 weight(s) for 4 classes" in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [("dataset: [unclosed\n", "not readable as YAML"), ("- a\n- b\n", "not a mapping")],
)
def test_a_file_that_is_not_a_params_mapping_is_one_problem(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(content)
    with pytest.raises(ParamsError, match=expected):
        load_params(path)
