"""The quality gate: the one decision that stands between a trained model and the champion alias.

Concept: automated promotion criteria (C14). A candidate is promoted only if it passes, in order:

1. an **absolute floor** (``gate.min_metric``), which also guards the very first model, when
   there is no champion to compare with;
2. a **comparison with the champion** on the *same* held-out data (scores on different data are
   not comparable), in one of two modes:
   - ``non_inferiority``: candidate >= champion - ``tolerance`` (retraining on fresh data may
     cost a little accuracy, but not more than the tolerance);
   - ``superiority``: candidate >= champion + ``margin`` (replace the champion only for a real gain);
3. **every check** (behavioural tests, slice parity): a model that scores well but is broken on
   its prototypes, flips under noise or fails a slice does not ship.

The gate is pure: numbers and check results in, a ``GateDecision`` out. Every failure is stated
with its numbers, so the decision logged to MLflow and shown on the model card explains itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.params import GateParams
from pipelines.behavioural import CheckResult

# Float slack: 0.8 - 0.1 evaluates to 0.7000000000000001, and a candidate at exactly 0.7 must count
# as "at the tolerance", not below it.
_EPS = 1e-9


@dataclass
class GateDecision:
    """Whether the candidate may be promoted, and why (JSON-ready via ``to_dict``)."""

    passed: bool
    reasons: list[str]
    comparisons: dict[str, Any] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "comparisons": self.comparisons,
            "checks": [c.to_dict() for c in self.checks],
        }

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "REJECTED"
        return f"{verdict}: " + "; ".join(self.reasons)


def _metric(metrics: Mapping[str, float], name: str, whose: str) -> float:
    if name not in metrics:
        raise ValueError(
            f"{whose} metrics have no {name!r} (have {sorted(metrics)}); evaluate it on the held-out set "
            f"or change gate.metric in params.yaml"
        )
    return float(metrics[name])


def evaluate_gate(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    checks: list[CheckResult],
    gate: GateParams,
) -> GateDecision:
    """Apply floor, champion comparison and checks; ``champion=None`` means this is the first model.

    ``champion`` metrics must come from scoring the current champion on the same held-out data as
    the candidate.
    """
    name = gate.metric
    score = _metric(candidate, name, "candidate")
    failures: list[str] = []

    floor_ok = score >= gate.min_metric - _EPS
    comparisons: dict[str, Any] = {
        "metric": name,
        "candidate": score,
        "floor": {"required": gate.min_metric, "actual": score, "passed": floor_ok},
    }
    if not floor_ok:
        failures.append(f"{name} {score:.4f} is below the floor min_metric {gate.min_metric:.4f}")

    if champion is not None:
        best = _metric(champion, name, "champion")
        if gate.mode == "non_inferiority":
            required, rule = best - gate.tolerance, f"champion {best:.4f} - tolerance {gate.tolerance:.4f}"
        else:
            required, rule = best + gate.margin, f"champion {best:.4f} + margin {gate.margin:.4f}"
        beat_ok = score >= required - _EPS
        comparisons["champion"] = {
            "mode": gate.mode,
            "champion": best,
            "required": required,
            "actual": score,
            "delta": score - best,
            "passed": beat_ok,
        }
        if not beat_ok:
            failures.append(f"{name} {score:.4f} is below {rule} = {required:.4f} ({gate.mode})")

    failures += [f"check {c.name} failed: {c.detail}" for c in checks if not c.passed]

    if failures:
        return GateDecision(False, failures, comparisons, list(checks))
    versus = (
        f"vs champion {comparisons['champion']['champion']:.4f} ({gate.mode}, required >= "
        f"{comparisons['champion']['required']:.4f})"
        if champion is not None
        else "first model, no champion"
    )
    line = f"{name} {score:.4f} >= floor {gate.min_metric:.4f}, {versus}; {len(checks)}/{len(checks)} checks passed"
    return GateDecision(True, [line], comparisons, list(checks))
