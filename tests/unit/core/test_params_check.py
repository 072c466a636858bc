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
    assert "gate.fairness.positive_class: unknown class(es) ['virginica']" in text
    assert len(problems) == 13  # each problem once: none repeated, none lost behind the first
    assert str(caught.value).startswith(f"invalid parameters in {tmp_path / 'params.yaml'}: 13 problem(s)")


def test_the_sections_that_name_columns_emptied_the_file_loads(tmp_path: Path) -> None:
    raw = _only_the_dataset_changed()
    raw["dataset"]["features"]["proline"] = {"min": 200.0, "max": 2000.0}
    raw["features"] = {"products": [], "ratios": [["alcohol", "proline"]]}
    raw["gate"]["directional"] = [
        {"feature": "alcohol", "from_class": "class_0", "towards_class": "class_1", "delta": 1.0}
    ]
    raw["batches"] = {"covariate_shift": {"features": ["alcohol"]}, "prior_shift": {"weights": [0.5, 0.3, 0.2]}}
    raw["gate"]["fairness"]["positive_class"] = "class_2"
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


def test_every_search_space_problem_is_listed_in_one_error(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    space = raw["train"]["search"]["space"]
    space["logistic_regression"] = {"C": {"type": "float", "low": 0.0, "high": 10.0, "log": True}}
    space["random_forest"]["max_depth"] = {"type": "int", "low": 12, "high": 3}
    space["random_forest"]["min_samples_leaf"] = {"type": "int", "low": 1.5, "high": 4}
    space["svc"]["gama"] = {"type": "float", "low": 0.1, "high": 1.0}
    space["knn"]["weights"] = {"type": "categorical", "choices": []}
    space["xgboost"] = {"eta": {"low": 0.1, "high": 0.3}}
    raw["train"]["search"]["min_folds"] = 5  # cv_folds is 5: pruning could never stop a trial early
    with pytest.raises(ParamsError) as caught:
        load_params(_write(tmp_path, raw))
    problems = caught.value.problems
    text = "\n".join(problems)
    assert "train.search.space.logistic_regression.C: a log range needs low > 0 (got 0)" in text
    assert "train.search.space.random_forest.max_depth: low (12) must be below high (3)" in text
    assert "train.search.space.random_forest.min_samples_leaf: an int range needs whole-number bounds" in text
    assert "train.search.space.svc.gama: not a hyperparameter the search may vary for svc" in text
    assert "train.search.space.knn.weights: a categorical needs a non-empty list of choices" in text
    assert "train.search.space.xgboost: unknown estimator" in text
    assert "train.search.min_folds: 5 is not below train.cv_folds (5)" in text
    assert len(problems) == 7, problems


def test_the_configured_estimator_needs_a_space(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["train"]["estimator"] = "knn"
    raw["train"]["hyperparams"] = {}
    del raw["train"]["search"]["space"]["knn"]
    with pytest.raises(ParamsError) as caught:
        load_params(_write(tmp_path, raw))
    assert caught.value.problems == [
        "train.search.space: no space for the configured estimator 'knn' "
        "(spaces given: ['logistic_regression', 'random_forest', 'svc'])"
    ]


def test_each_searchable_name_is_a_parameter_of_its_estimator() -> None:
    from core.params import TrainParams
    from core.params_check import SEARCHABLE
    from pipelines.features import make_estimator

    for estimator, names in SEARCHABLE.items():
        model = make_estimator(TrainParams(estimator=estimator))  # type: ignore[arg-type]
        inner = model.estimator if estimator == "svc" else model  # svc is wrapped in a calibrator
        accepted = set(inner.get_params(deep=False))
        assert names <= accepted, (estimator, names - accepted)
    assert set(SEARCHABLE) == set(TrainParams.model_fields["estimator"].annotation.__args__)
    assert set(TrainParams().search.space) == set(SEARCHABLE)  # the defaults cover every estimator


def test_a_params_file_with_the_old_grid_sweep_is_told_what_replaced_it(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["train"]["sweep"] = {"C": [0.1, 1.0, 10.0]}
    with pytest.raises(ParamsError) as caught:
        load_params(_write(tmp_path, raw))
    assert caught.value.problems == [
        "train.sweep: the grid sweep was replaced by a search (`mlops-lab train --search`); give ranges under "
        "train.search.space.<estimator> instead (see params.yaml)"
    ]
