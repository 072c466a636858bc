"""Quality gate rules: floor, non-inferiority, superiority and checks, with their boundaries."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from core.params import GateParams
from pipelines.behavioural import CheckResult
from pipelines.quality_gate import evaluate_gate

GOOD_CHECKS = [CheckResult("minimum_functionality", True, "3/3"), CheckResult("invariance", True, "0/20 flipped")]


def _gate(
    mode: Literal["non_inferiority", "superiority"] = "non_inferiority", tolerance: float = 0.02, floor: float = 0.85
) -> GateParams:
    return GateParams(mode=mode, metric="accuracy", tolerance=tolerance, margin=0.01, min_metric=floor)


def test_first_model_passes_on_the_floor_alone() -> None:
    decision = evaluate_gate({"accuracy": 0.9}, None, GOOD_CHECKS, _gate())
    assert decision.passed
    assert len(decision.reasons) == 1
    assert "first model" in decision.reasons[0]
    assert "champion" not in decision.comparisons


def test_first_model_below_the_floor_is_rejected_with_numbers() -> None:
    decision = evaluate_gate({"accuracy": 0.8}, None, GOOD_CHECKS, _gate())
    assert not decision.passed
    assert decision.reasons == ["accuracy 0.8000 is below the floor min_metric 0.8500"]


def test_floor_applies_even_when_the_champion_is_worse() -> None:
    decision = evaluate_gate({"accuracy": 0.84}, {"accuracy": 0.80}, GOOD_CHECKS, _gate())
    assert not decision.passed
    assert decision.comparisons["champion"]["passed"]
    assert not decision.comparisons["floor"]["passed"]


@pytest.mark.parametrize("mode", ["non_inferiority", "superiority"])
def test_worse_model_is_rejected_in_both_modes(mode: Literal["non_inferiority", "superiority"]) -> None:
    decision = evaluate_gate({"accuracy": 0.90}, {"accuracy": 0.95}, GOOD_CHECKS, _gate(mode))
    assert not decision.passed
    [reason] = decision.reasons
    assert "accuracy 0.9000" in reason
    assert "champion 0.9500" in reason
    assert mode in reason


def test_non_inferiority_reason_shows_the_arithmetic() -> None:
    decision = evaluate_gate({"accuracy": 0.90}, {"accuracy": 0.95}, GOOD_CHECKS, _gate())
    assert decision.reasons == [
        "accuracy 0.9000 is below champion 0.9500 - tolerance 0.0200 = 0.9300 (non_inferiority)"
    ]
    assert decision.comparisons["champion"]["delta"] == pytest.approx(-0.05)


def test_non_inferiority_accepts_a_slightly_worse_model_within_tolerance() -> None:
    decision = evaluate_gate({"accuracy": 0.94}, {"accuracy": 0.95}, GOOD_CHECKS, _gate())
    assert decision.passed, decision.reasons
    assert "vs champion 0.9500" in decision.summary()


@pytest.mark.parametrize(("candidate", "champion", "tolerance", "passed"), [
    (0.91, 0.93, 0.02, True),
    (0.9099, 0.93, 0.02, False),
    (0.70, 0.80, 0.10, True),  # 0.8 - 0.1 is 0.7000000000000001 in floating point: still "at the tolerance"
    (0.6999, 0.80, 0.10, False),
])  # fmt: skip
def test_non_inferiority_boundary_is_exactly_the_tolerance(
    candidate: float, champion: float, tolerance: float, passed: bool
) -> None:
    gate = _gate(tolerance=tolerance, floor=0.5)
    assert evaluate_gate({"accuracy": candidate}, {"accuracy": champion}, [], gate).passed is passed


def test_superiority_rejects_a_small_gain_below_the_margin() -> None:
    decision = evaluate_gate({"accuracy": 0.955}, {"accuracy": 0.95}, GOOD_CHECKS, _gate("superiority"))
    assert not decision.passed
    assert decision.reasons == ["accuracy 0.9550 is below champion 0.9500 + margin 0.0100 = 0.9600 (superiority)"]


@pytest.mark.parametrize(("candidate", "passed"), [(0.94, True), (0.9399, False)])
def test_superiority_boundary_is_exactly_the_margin(candidate: float, passed: bool) -> None:
    # 0.93 + 0.01 is 0.9400000000000001 in floating point.
    assert evaluate_gate({"accuracy": candidate}, {"accuracy": 0.93}, [], _gate("superiority")).passed is passed


def test_failing_check_fails_the_gate_despite_good_metrics() -> None:
    checks = [*GOOD_CHECKS, CheckResult("directional", False, "P(virginica) 0.30 -> 0.20 (should rise)")]
    decision = evaluate_gate({"accuracy": 0.99}, {"accuracy": 0.90}, checks, _gate("superiority"))
    assert not decision.passed
    assert decision.reasons == ["check directional failed: P(virginica) 0.30 -> 0.20 (should rise)"]


def test_every_failure_is_listed() -> None:
    checks = [CheckResult("invariance", False, "3/20 flipped"), CheckResult("slice_parity", False, "gap 0.5")]
    decision = evaluate_gate({"accuracy": 0.5}, {"accuracy": 0.9}, checks, _gate())
    assert len(decision.reasons) == 4
    assert decision.summary().startswith("REJECTED: accuracy 0.5000 is below the floor")


def test_decision_is_json_serialisable() -> None:
    checks = [CheckResult("directional", True, "1/1", [{"feature": "petal_length", "p_before": 0.1, "passed": True}])]
    decision = evaluate_gate({"accuracy": 0.96, "f1": 0.95}, {"accuracy": 0.95}, checks, _gate())
    payload = json.loads(json.dumps(decision.to_dict()))
    assert payload["passed"] is True
    assert payload["comparisons"]["champion"]["mode"] == "non_inferiority"
    assert payload["checks"][0]["cases"][0]["feature"] == "petal_length"
    assert decision.summary().startswith("PASSED: accuracy 0.9600 >= floor 0.8500")


@pytest.mark.parametrize(
    ("candidate", "champion", "whose"),
    [({"f1": 0.9}, None, "candidate"), ({"accuracy": 0.9}, {"f1": 0.9}, "champion")],
)
def test_missing_gate_metric_is_an_actionable_error(
    candidate: dict[str, float], champion: dict[str, float] | None, whose: str
) -> None:
    with pytest.raises(ValueError, match=f"{whose} metrics have no 'accuracy'.*gate.metric"):
        evaluate_gate(candidate, champion, [], _gate())
