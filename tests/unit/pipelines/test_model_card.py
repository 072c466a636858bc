"""The model card is a pure rendering of plain data: sections, numbers and the version placeholder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.params import Params
from pipelines.model_card import VERSION_PENDING, ModelCardInfo, dataset_fields, render_model_card


@pytest.fixture
def info(params: Params) -> ModelCardInfo:
    return ModelCardInfo(
        model_name="iris-classifier",
        version="7",
        created="2026-11-23T12:00:00+00:00",
        **dataset_fields(params.dataset),
        data_path="data/raw/iris.csv",
        data_md5="0123456789abcdef0123456789abcdef",
        data_rows=149,
        params={"estimator": "logistic_regression", "C": 0.3},
        test_metrics={"accuracy": 0.955555, "macro_f1": 0.9512},
        cv_metrics={"cv_accuracy_mean": 0.9612, "accuracy_std": 0.0213},
        per_class_metrics={
            "setosa": {"precision": 1.0, "recall": 1.0},
            "virginica": {"precision": 0.93, "recall": 0.9},
        },
        confusion=[[10, 0, 0], [0, 9, 1], [0, 2, 10]],
        slice_metrics={"source=field": {"accuracy": 0.94, "n": 40}},
        gate={
            "passed": True,
            "reasons": ["accuracy 0.956 >= champion 0.944 - 0.02"],
            "comparisons": {"metric": "accuracy", "floor": {"required": 0.85, "actual": 0.955555, "passed": True}},
            "checks": {"min_metric": True, "invariance": {"passed": True, "flip_rate": 0.0}},
        },
        run_id="abc123run",
        git_sha="deadbeef",
        params_hash="323e39073c122ad2",
        library_versions={"scikit-learn": "1.9.1", "mlflow": "3.17.2"},
    )


def test_card_has_every_section(info: ModelCardInfo) -> None:
    card = render_model_card(info)
    for heading in (
        "# Model card: iris-classifier version 7",
        "## Intended use and limits",
        "## Training data",
        "## Parameters",
        "## Metrics",
        "### Per class",
        "### Per slice",
        "## Quality gate",
        "## Lineage",
        "## Library versions",
    ):
        assert heading in card
    assert card.index("## Training data") < card.index("## Metrics") < card.index("## Lineage")


def test_card_carries_the_numbers(info: ModelCardInfo) -> None:
    card = render_model_card(info)
    assert "| test accuracy | 0.9556 |" in card
    assert "| cv accuracy_std | 0.0213 |" in card
    assert "| cv accuracy_mean | 0.9612 |" in card  # the prefix is not said twice ("cv cv_accuracy_mean")
    assert "cv cv_" not in card
    assert "| C | 0.3 |" in card  # parameters are shown as given, not rounded
    assert "| virginica | 0.9300 | 0.9000 |" in card
    assert "| source=field | 0.9400 | 40 |" in card
    assert "**Rows:** 149" in card
    assert "0123456789abcdef0123456789abcdef" in card
    assert "`abc123run`" in card
    assert "`deadbeef`" in card
    assert "`323e39073c122ad2`" in card
    assert "| scikit-learn | 1.9.1 |" in card


def test_card_states_the_data_contract_as_limits(info: ModelCardInfo, params: Params) -> None:
    card = render_model_card(info)
    limits = card.split("## Intended use and limits")[1].split("## Training data")[0]
    assert "setosa, versicolor, virginica" in limits
    spec = params.dataset.features["petal_width"]
    assert f"petal_width in [{spec.min}, {spec.max}]" in limits
    assert "Out of scope" in limits


def test_gate_result_reasons_and_checks(info: ModelCardInfo) -> None:
    card = render_model_card(info)
    assert "**Result:** PASSED" in card
    assert "- accuracy 0.956 >= champion 0.944 - 0.02" in card
    assert "| min_metric | yes |" in card
    assert "| invariance | yes | flip_rate 0.0000 |" in card
    assert "| accuracy vs floor | yes | required 0.8500, actual 0.9556 |" in card
    comparisons, checks_table = card.split("| comparison | passed | detail |")[1].split("| check | passed | detail |")
    assert "accuracy vs floor" in comparisons
    assert "accuracy vs floor" not in checks_table  # the checks table holds the checks alone: one row each
    assert checks_table.split("\n\n")[0].count("\n| ") == 2  # min_metric and invariance

    checks = [{"name": "slice_parity", "passed": False, "detail": "recall gap 0.31 > 0.25", "cases": [{"x": 1}]}]
    failed = render_model_card(replace(info, gate={"passed": False, "checks": checks}))
    assert "**Result:** FAILED" in failed
    assert "| slice_parity | no | recall gap 0.31 > 0.25 |" in failed
    assert "Not evaluated." in render_model_card(replace(info, gate=None))


def test_card_shows_the_confusion_matrix_actual_by_predicted(info: ModelCardInfo) -> None:
    card = render_model_card(info)
    table = card.split("### Confusion matrix (test split)")[1].split("###")[0]
    assert "| actual \\ predicted | setosa | versicolor | virginica |" in table
    assert "| versicolor | 0 | 9 | 1 |" in table
    assert "| virginica | 0 | 2 | 10 |" in table
    assert "### Confusion matrix" not in render_model_card(replace(info, confusion=[]))


def test_unregistered_card_carries_the_version_placeholder(info: ModelCardInfo) -> None:
    card = render_model_card(replace(info, version=None))
    assert f"version {VERSION_PENDING}" in card
    assert card.replace(VERSION_PENDING, "7") == render_model_card(info)


def test_pipe_characters_cannot_break_a_table(info: ModelCardInfo) -> None:
    card = render_model_card(replace(info, params={"note": "a|b"}))
    assert "| note | a\\|b |" in card


def test_the_onnx_section_says_whether_the_version_has_a_file_and_why(info: ModelCardInfo) -> None:
    assert "## ONNX" not in render_model_card(info)  # a card rendered before ONNX existed has no section
    onnx = {
        "status": "passed",
        "reason": "parity passed on 868 rows",
        "opset": 18,
        "converters": {"skl2onnx": "1.20.0", "onnxruntime": "1.32.0"},
        "size_bytes": 2656,
        "parity": {
            "rows_checked": 868,
            "class_mismatches": 0,
            "max_abs_diff": 2.2e-16,
            "tolerance": 1e-5,
            "rows_by_source": {"holdout": 45, "edge": 23},
        },
        "variants": [
            {
                "name": "int8 (dynamic)",
                "size_bytes": 2984,
                "size_ratio": 1.12,
                "accuracy": 0.9556,
                "accuracy_delta": 0.0,
                "max_abs_diff": 1.2e-7,
                "note": "nothing quantised",
            },
            {
                "name": "float16",
                "size_bytes": None,
                "size_ratio": None,
                "accuracy": None,
                "accuracy_delta": None,
                "max_abs_diff": None,
                "note": "not built: needs onnxconverter-common",
            },
        ],
    }
    card = render_model_card(replace(info, onnx=onnx))
    assert "- **Status:** passed (yes: may be served by ONNX Runtime)" in card
    assert "- **Converters:** onnxruntime 1.32.0, skl2onnx 1.20.0" in card
    assert "868 rows (holdout 45, edge 23); 0 class mismatches; max abs probability difference 2.2e-16" in card
    assert "| int8 (dynamic) | 2984 | 1.1200 | 0.9556 | 0.0000 | 1.2e-07 | nothing quantised |" in card
    assert "| float16 | - | - | - | - | - | not built: needs onnxconverter-common |" in card
    failed = render_model_card(replace(info, onnx={"status": "export_failed", "reason": "no converter"}))
    assert "- **Status:** export_failed (no: served by scikit-learn only)" in failed
    assert "- **Why:** no converter" in failed


def test_card_has_a_fairness_section_with_the_gates_verdict(info: ModelCardInfo) -> None:
    from pipelines.fairness import fairness_report

    report = fairness_report(
        ["virginica", "setosa"] * 4, ["virginica", "setosa"] * 2 + ["setosa"] * 4, ["a"] * 4 + ["b"] * 4, "virginica"
    )
    check = {"name": "fairness", "passed": False, "detail": "equalized-odds difference 1.000 exceeds the bound 0.300"}
    gate = {**(info.gate or {}), "passed": False, "checks": [check]}
    card = render_model_card(replace(info, fairness=report.to_dict(), gate=gate))
    section = card[card.index("## Fairness") : card.index("## Lineage")]
    assert "Gate check: FAIL - equalized-odds difference 1.000 exceeds the bound 0.300" in section
    assert '"virginica"' in section
    assert "| b | 4 | 2 | 0.000 | 0.000 | 0.000 | 0.500 |" in section
    assert "equalized-odds difference: 1.000" in section
    assert "four-fifths rule NOT met" in section
    unjudged = render_model_card(info)
    assert "Not judged: the gate ran no fairness check." in unjudged[unjudged.index("## Fairness") :]


def test_the_global_explanation_ranks_features_by_mean_absolute_contribution(info: ModelCardInfo) -> None:
    explanation = {
        "method": "linear",
        "output": "margin",
        "rows": 45,
        "background_rows": 0,
        "importance": {"sepal_width": 0.25, "petal_width": 1.5, "petal_length_x_petal_width": 0.75},
        "by_input": {"sepal_width": 0.25, "petal_length": 0.375, "petal_width": 1.875},
    }
    card = render_model_card(replace(info, explanation=explanation))
    section = card[card.index("## Global explanation") : card.index("## Quality gate")]
    assert "over 45 holdout rows (linear method, margin (logit) space)" in section
    assert section.index("| petal_width | 1.5000 |") < section.index("| petal_length_x_petal_width | 0.7500 |")
    assert section.index("| petal_length_x_petal_width | 0.7500 |") < section.index("| sepal_width | 0.2500 |")
    assert "| petal_width | 1.8750 |" in section  # the by-input table
    failed = render_model_card(replace(info, explanation={"error": "ValueError: no rows"}))
    assert "Not computed: ValueError: no rows" in failed
    assert "## Global explanation" not in render_model_card(info)


def test_training_explains_the_candidate_on_the_holdout(iris_frame, params: Params) -> None:
    from pipelines.data import LoadedData
    from pipelines.explain import Explainer
    from pipelines.fit import fit_and_evaluate
    from pipelines.training_steps import explain_on_holdout

    result = fit_and_evaluate(iris_frame.iloc[:120], params)
    holdout = LoadedData(iris_frame.iloc[120:], Path("holdout.csv"), "md5-of-the-holdout")
    explanation = explain_on_holdout(result, holdout, params)
    assert explanation["rows"] == 29
    assert (explanation["method"], explanation["output"]) == ("linear", "margin")
    values = iris_frame.iloc[120:][params.dataset.feature_names].to_numpy()
    assert explanation["importance"] == pytest.approx(Explainer(result.pipeline).global_importance(values))
    assert list(explanation["by_input"]) == params.dataset.feature_names
