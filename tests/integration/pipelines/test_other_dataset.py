"""Another iris-style CSV (wine: 13 numeric features, 3 classes, with missing values) works by
configuration alone: same code, a different params file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_wine

from core.params import load_params
from pipelines.data import write_csv
from pipelines.registry import current_aliases
from pipelines.training_steps import run_training
from pipelines.validation import validate_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]


def _wine_csv(path: Path) -> tuple[Path, list[str]]:
    bunch = load_wine(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.lower().replace("/", "_per_").replace(" ", "_"))
    frame["cultivar"] = [f"cultivar_{i}" for i in frame.pop("target")]
    rng = np.random.default_rng(0)
    features = [c for c in frame.columns if c != "cultivar"]
    for column in features[:3]:  # a few gaps, as real exports have
        frame.loc[rng.choice(len(frame), 6, replace=False), column] = np.nan
    return write_csv(frame, path), features


def _wine_params(tmp_path: Path, data: Path, features: list[str], frame_ranges: dict) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["dataset"] = {
        "name": "wine",
        "path": str(data),
        "target": "cultivar",
        "classes": ["cultivar_0", "cultivar_1", "cultivar_2"],
        "features": {f: frame_ranges[f] for f in features},
        "allow_missing": True,
        "unique_rows": True,
        "row_count": {"min": 50, "max": 100000},
        "decimals": 3,
    }
    raw["features"] = {"products": [], "ratios": [["flavanoids", "proline"]]}
    raw["gate"]["directional"] = []
    raw["batches"]["covariate_shift"]["features"] = features[:2]  # the batch shifts name columns and classes too
    raw["batches"]["concept_shift"]["swap"] = ["cultivar_0", "cultivar_1"]
    raw["gate"]["min_metric"] = 0.8
    raw["gate"]["fairness"]["positive_class"] = "cultivar_2"  # params.yaml names an iris class
    raw["gate"]["holdout"]["path"] = str(tmp_path / "wine-holdout.csv")  # its own: drawn from wine.csv at train
    out = tmp_path / "wine-params.yaml"
    out.write_text(yaml.safe_dump(raw))
    return out


def test_wine_validates_trains_and_registers_from_configuration(tmp_path: Path, make_settings) -> None:
    data, features = _wine_csv(tmp_path / "wine.csv")
    bunch = load_wine(as_frame=True).frame.rename(columns=lambda c: c.lower().replace("/", "_per_").replace(" ", "_"))
    ranges = {f: {"min": 0.0, "max": float(bunch[f].max() * 2)} for f in features}
    params_path = _wine_params(tmp_path, data, features, ranges)
    params = load_params(params_path)
    settings = make_settings(tmp_path / "state", params_file=params_path, model_name="wine")

    result = validate_file(data, params.dataset)
    assert result.success, result.summary()

    outcome = run_training(settings, params, data)
    assert outcome.status == "registered", outcome.gate["reasons"]
    holdout = (tmp_path / "wine-holdout.csv").read_text().splitlines()
    assert holdout[0].split(",")[-1] == "cultivar"
    assert len(holdout) - 1 == math.ceil(0.3 * 178)  # the gate's share of wine.csv (as scikit-learn rounds it)
    assert current_aliases(settings) == {"champion": outcome.version}
    assert outcome.metrics["test_accuracy"] > 0.85


def test_wine_with_nulls_is_refused_when_the_contract_forbids_them(tmp_path: Path) -> None:
    data, features = _wine_csv(tmp_path / "wine.csv")
    ranges = {f: {"min": 0.0, "max": 10000.0} for f in features}
    raw = yaml.safe_load(_wine_params(tmp_path, data, features, ranges).read_text())
    raw["dataset"]["allow_missing"] = False
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(raw))
    result = validate_file(data, load_params(strict).dataset)
    assert not result.success
    assert any(f.column == features[0] for f in result.failures)


def test_a_holdout_of_another_dataset_is_refused_with_the_fix(tmp_path: Path, make_settings) -> None:
    from core.params import load_params as load
    from pipelines.holdout import HoldoutMismatchError, load_holdout

    data, features = _wine_csv(tmp_path / "wine.csv")
    ranges = {f: {"min": 0.0, "max": 10000.0} for f in features}
    raw = yaml.safe_load(_wine_params(tmp_path, data, features, ranges).read_text())
    iris_holdout = tmp_path / "iris-holdout.csv"
    iris_holdout.write_text("sepal_length,sepal_width,petal_length,petal_width,species\n5.1,3.5,1.4,0.2,setosa\n")
    raw["gate"]["holdout"]["path"] = str(iris_holdout)
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(yaml.safe_dump(raw))
    settings = make_settings(tmp_path / "state", params_file=mixed, model_name="wine")
    with pytest.raises(HoldoutMismatchError, match=r"not of dataset 'wine'.*gate\.holdout\.path"):
        load_holdout(settings, load(mixed))
