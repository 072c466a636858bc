"""Quality gate rules: floor, the paired (McNemar exact) comparison on one holdout, and checks."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from statsmodels.stats.contingency_tables import mcnemar

from core.params import GateParams
from pipelines.behavioural import CheckResult
from pipelines.quality_gate import GateDecision, HoldoutScore, evaluate_gate, paired_verdict, resolution, upper_tail

GOOD_CHECKS = [CheckResult("minimum_functionality", True, "3/3"), CheckResult("invariance", True, "0/20 flipped")]
MD5 = "0" * 32
N = 45  # the holdout's size with params.yaml (149 rows * 0.3)


def _gate(mode: Literal["non_inferiority", "superiority"] = "non_inferiority", floor: float = 0.85) -> GateParams:
    return GateParams(mode=mode, metric="accuracy", alpha=0.05, min_metric=floor)


def _paired(both: int, champion_only: int, candidate_only: int, n: int = N) -> tuple[HoldoutScore, HoldoutScore]:
    """Candidate and champion outcomes on n rows: both right, only champion right (b), only candidate (c)."""
    neither = n - both - champion_only - candidate_only
    old = [True] * both + [True] * champion_only + [False] * candidate_only + [False] * neither
    new = [True] * both + [False] * champion_only + [True] * candidate_only + [False] * neither
    return _score(new, "candidate"), _score(old, "champion v1")


def _score(correct: list[bool], label: str, md5: str = MD5, trained_against: str | None = MD5) -> HoldoutScore:
    return HoldoutScore({"accuracy": sum(correct) / len(correct)}, correct, md5, trained_against, label)


def test_first_model_passes_on_the_floor_alone_and_the_policy_is_stated() -> None:
    candidate, _ = _paired(42, 0, 0)
    decision = evaluate_gate(candidate, None, GOOD_CHECKS, _gate())
    assert decision.passed
    [reason] = decision.reasons
    assert "first model, no champion: floor and checks only (policy: it becomes champion)" in reason
    assert "champion" not in decision.comparisons


def test_first_model_below_the_floor_is_rejected_with_numbers() -> None:
    candidate = _score([True] * 36 + [False] * 9, "candidate")  # 0.8
    decision = evaluate_gate(candidate, None, GOOD_CHECKS, _gate())
    assert not decision.passed
    assert decision.reasons == ["accuracy 0.8000 on 45 holdout rows is below the floor min_metric 0.8500"]


def test_one_extra_error_on_45_rows_is_not_a_rejection() -> None:
    # The old rule (candidate >= champion - 0.02) rejected this: 43/45 vs 44/45 is a 0.0222 drop.
    candidate, champion = _paired(43, 1, 0)
    decision = evaluate_gate(candidate, champion, GOOD_CHECKS, _gate())
    assert decision.passed, decision.reasons
    cmp = decision.comparisons["champion"]
    assert (cmp["b_champion_only"], cmp["c_candidate_only"]) == (1, 0)
    assert cmp["p_value"] == pytest.approx(0.5)
    assert cmp["difference"] == pytest.approx(-1 / 45)
    assert "needs >= 5 rows against the candidate (a drop of at least 0.111)" in decision.reasons[0]


def test_a_clearly_worse_candidate_is_rejected_with_b_c_p_and_the_resolution() -> None:
    candidate, champion = _paired(36, 7, 1)  # 7 rows lost, 1 won: p = 9/256
    decision = evaluate_gate(candidate, champion, GOOD_CHECKS, _gate(floor=0.5))
    assert not decision.passed
    [reason] = decision.reasons
    assert "significantly worse than the champion v1" in reason
    assert "b=7" in reason
    assert "c=1" in reason
    assert "p=0.03516" in reason
    assert "1 row = 0.0222 on 45 holdout rows" in reason


@pytest.mark.parametrize(
    ("b", "c", "passed"),
    [(4, 0, True), (5, 0, False), (6, 1, True), (7, 1, False), (0, 0, True), (0, 9, True)],
)
def test_non_inferiority_boundary_is_the_exact_binomial_tail(b: int, c: int, passed: bool) -> None:
    candidate, champion = _paired(30, b, c)
    assert evaluate_gate(candidate, champion, [], _gate(floor=0.0)).passed is passed


@pytest.mark.parametrize(("b", "c"), [(5, 0), (7, 1), (9, 3), (12, 2)])
def test_one_sided_p_is_half_of_statsmodels_two_sided_mcnemar(b: int, c: int) -> None:
    assert upper_tail(b, b + c) == pytest.approx(mcnemar([[0, b], [c, 0]], exact=True).pvalue / 2)


def test_superiority_needs_a_significant_gain() -> None:
    small = _paired(40, 0, 3)
    assert not evaluate_gate(*small, [], _gate("superiority")).passed
    clear = _paired(38, 0, 5)
    assert evaluate_gate(*clear, [], _gate("superiority")).passed
    assert paired_verdict(0, 5, 0.05, "superiority") == (True, pytest.approx(1 / 32))


def test_resolution_states_what_the_holdout_can_tell_apart() -> None:
    res = resolution(45, 10, 0.05)
    assert res["one_row"] == pytest.approx(1 / 45)
    assert res["min_rows_against"] == 5
    assert res["rejectable_at"] == 9  # P(X >= 9 | 10, 1/2) = 11/1024 < 0.05, P(X >= 8) = 56/1024 is not
    assert resolution(45, 3, 0.05)["rejectable_at"] is None


def test_floor_applies_even_when_the_champion_is_worse() -> None:
    candidate, champion = _paired(30, 0, 5)
    decision = evaluate_gate(candidate, champion, GOOD_CHECKS, _gate())
    assert not decision.passed
    assert decision.comparisons["champion"]["passed"]
    assert not decision.comparisons["floor"]["passed"]


def test_a_comparison_on_different_holdouts_is_refused() -> None:
    candidate, champion = _paired(43, 0, 0)
    other = _score(list(champion.correct), "champion v1", md5="1" * 32, trained_against="1" * 32)
    decision = evaluate_gate(candidate, other, [], _gate())
    assert not decision.passed
    assert "scores on different rows are not comparable" in decision.reasons[0]


def test_a_champion_trained_against_another_holdout_is_refused_and_an_untagged_one_flagged() -> None:
    candidate, champion = _paired(43, 0, 0)
    stale = _score(list(champion.correct), "champion v1", trained_against="2" * 32)
    refused = evaluate_gate(candidate, stale, [], _gate())
    assert not refused.passed
    assert "may have trained on the rows it is scored on" in refused.reasons[0]
    untagged = _score(list(champion.correct), "champion v1", trained_against=None)
    flagged = evaluate_gate(candidate, untagged, [], _gate())
    assert flagged.passed
    assert "unverified" in flagged.reasons[0]
    assert flagged.comparisons["champion"]["champion_holdout_verified"] is False


def test_failing_check_fails_the_gate_despite_good_metrics() -> None:
    checks = [*GOOD_CHECKS, CheckResult("directional", False, "P(virginica) 0.30 -> 0.20 (should rise)")]
    decision = evaluate_gate(*_paired(44, 0, 0), checks, _gate())
    assert not decision.passed
    assert decision.reasons == ["check directional failed: P(virginica) 0.30 -> 0.20 (should rise)"]


def test_every_failure_is_listed() -> None:
    checks = [CheckResult("invariance", False, "3/20 flipped"), CheckResult("slice_parity", False, "gap 0.5")]
    decision = evaluate_gate(*_paired(10, 20, 0), checks, _gate())
    assert len(decision.reasons) == 4
    assert decision.summary().startswith("REJECTED: accuracy 0.2222 on 45 holdout rows is below the floor")


def test_decision_is_json_serialisable() -> None:
    checks = [CheckResult("directional", True, "1/1", [{"feature": "petal_length", "p_before": 0.1, "passed": True}])]
    decision = evaluate_gate(*_paired(43, 1, 1), checks, _gate())
    payload = json.loads(json.dumps(decision.to_dict()))
    assert payload["passed"] is True
    assert payload["comparisons"]["champion"]["mode"] == "non_inferiority"
    assert payload["comparisons"]["holdout"] == {"md5": MD5, "rows": 45}
    assert payload["checks"][0]["cases"][0]["feature"] == "petal_length"
    assert decision.summary().startswith("PASSED: accuracy 0.9778 on 45 holdout rows >= floor 0.8500")


def test_missing_gate_metric_is_an_actionable_error() -> None:
    candidate = HoldoutScore({"f1": 0.9}, [True], MD5, MD5)
    with pytest.raises(ValueError, match=r"candidate metrics have no 'accuracy'.*gate.metric"):
        evaluate_gate(candidate, None, [], _gate())


def test_the_markdown_summary_lists_every_reason_and_check_without_breaking_its_table() -> None:
    checks = [CheckResult("invariance", True, "5 of 5 stable"), CheckResult("directional", False, "a | b\nc")]
    text = GateDecision(False, ["check directional failed"], checks=checks).markdown()
    assert text.startswith("# Quality gate: rejected\n")
    assert "- check directional failed" in text
    assert "| invariance | pass | 5 of 5 stable |" in text
    assert "| directional | FAIL | a \\| b c |" in text  # a pipe or newline in a detail stays inside its cell


def test_an_advisory_check_is_reported_everywhere_but_never_decides() -> None:
    """The ONNX parity check: a diverged export is shown with the decision, and the model still passes."""
    decision = evaluate_gate(*_paired(43, 1, 1), GOOD_CHECKS, _gate())
    decision.advisory.append(CheckResult("onnx_parity", False, "diverged: 15 class mismatches"))
    assert decision.passed
    assert decision.to_dict()["advisory"] == [
        {"name": "onnx_parity", "passed": False, "detail": "diverged: 15 class mismatches", "cases": []}
    ]
    assert decision.summary().endswith("; advisory onnx_parity: diverged: 15 class mismatches")
    text = decision.markdown()
    assert "## Advisory checks (reported, never a reason to reject)" in text
    assert "| onnx_parity | not passed | diverged: 15 class mismatches |" in text
