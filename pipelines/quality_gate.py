"""The quality gate: the one decision that stands between a trained model and the champion alias.

Concept: automated promotion criteria (C14). Candidate and champion are both scored on the
**holdout** (``pipelines/holdout.py``): rows drawn once at ingest that neither model trained on, with
the same md5 on both sides. A candidate is promoted only if it passes, in order:

1. an **absolute floor**: ``gate.metric`` on the holdout >= ``gate.min_metric``;
2. a **paired comparison with the champion**, row by row on the same holdout. Only the discordant
   rows carry information: ``b`` = champion right and candidate wrong, ``c`` = candidate right and
   champion wrong. Under "equally good" each discordant row is a fair coin, so McNemar's exact test
   is a binomial test of ``b`` out of ``b + c``, one-sided at ``gate.alpha``:
   - ``non_inferiority`` (default): **rejected if significantly worse**, P(X >= b) < alpha;
   - ``superiority``: **passed only if significantly better**, P(X >= c) < alpha.
   There is no tolerance on the point estimate any more: on 45 rows one error moves accuracy by
   2.2 points, so "candidate >= champion - 0.02" rejected a model for a single extra error, about
   one retrain in three between equally good models (``mlops-lab study gate``, docs/gate-study.md).
   The price is resolution, stated with every decision: at alpha 0.05 a rejection needs at least 5
   discordant rows all against the candidate (5 rows = 11 points on 45 rows); smaller worsenings
   pass. A bigger holdout is the only way to see smaller differences.
3. **every check** (behavioural tests, slice parity).

*Advisory* checks are reported with the decision (summary, markdown, ``to_dict``, model card) but never
decide it: the ONNX parity check (`pipelines.onnx_registry`) is one. A model whose ONNX export fails or
diverges is still a good scikit-learn model; it is registered without the ONNX file, which is the
consequence, so it is not in ``checks``, where any failure rejects.

First model (no champion): floor and checks only; ``register_candidate`` then makes it champion. That
is a policy, not an accident: without a champion there is nothing to compare with, and refusing
would leave serving with no model. The risk is that the floor is the only guard on model one (and on
a model after the registry was wiped); C14 and C01 say so.

A comparison on different holdouts is refused: the candidate and the champion must be scored on the
same holdout md5, and a champion trained against another holdout (tag ``holdout_md5`` on its run)
may have trained on the rows it is scored on. A champion without that tag (registered before the
holdout existed) is compared but flagged as unverified.

The gate is pure: per-row outcomes and check results in, a ``GateDecision`` out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from core.params import GateParams
from pipelines.behavioural import CheckResult

# Float slack: a candidate exactly at the floor must count as "at the floor", not below it.
_EPS = 1e-9


@dataclass(frozen=True)
class HoldoutScore:
    """One model scored on the holdout: metrics, whether each row was right, and which holdout."""

    metrics: Mapping[str, float]
    correct: Sequence[bool]  # per holdout row, in the holdout file's order
    holdout_md5: str  # the holdout these numbers come from
    trained_against: str | None  # holdout md5 the model's training excluded (run tag); None: unknown
    label: str = "candidate"


@dataclass
class GateDecision:
    """Whether the candidate may be promoted, and why (JSON-ready via ``to_dict``)."""

    passed: bool
    reasons: list[str]
    comparisons: dict[str, Any] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    advisory: list[CheckResult] = field(default_factory=list)  # reported, never a reason to reject

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "comparisons": self.comparisons,
            "checks": [c.to_dict() for c in self.checks],
            "advisory": [c.to_dict() for c in self.advisory],
        }

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "REJECTED"
        notes = [f"advisory {c.name}: {c.detail}" for c in self.advisory]
        return f"{verdict}: " + "; ".join([*self.reasons, *notes])

    def markdown(self) -> str:
        """The decision as a Markdown page (logged as ``gate/summary.md`` on the run): verdict, reasons, checks."""
        lines = [f"# Quality gate: {'passed' if self.passed else 'rejected'}", "", "## Why", ""]
        lines += [f"- {reason}" for reason in self.reasons] or ["- (no reason given)"]
        if self.checks:
            lines += ["", "## Checks", "", "| check | result | detail |", "|---|---|---|"]
            for check in self.checks:
                detail = check.detail.replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {check.name} | {'pass' if check.passed else 'FAIL'} | {detail} |")
        if self.advisory:
            lines += ["", "## Advisory checks (reported, never a reason to reject)", ""]
            lines += ["| check | result | detail |", "|---|---|---|"]
            for check in self.advisory:
                detail = check.detail.replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {check.name} | {'pass' if check.passed else 'not passed'} | {detail} |")
        return "\n".join(lines) + "\n"


@lru_cache(maxsize=4096)
def upper_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2): McNemar's exact one-sided p-value for k of n discordant rows."""
    if n == 0:
        return 1.0
    from statsmodels.stats.proportion import binom_test

    return float(binom_test(k, n, 0.5, alternative="larger"))


def discordant(champion: Sequence[bool], candidate: Sequence[bool]) -> tuple[int, int]:
    """(b, c): rows only the champion got right, rows only the candidate got right."""
    b = sum(1 for old, new in zip(champion, candidate, strict=True) if old and not new)
    c = sum(1 for old, new in zip(champion, candidate, strict=True) if new and not old)
    return b, c


def paired_verdict(b: int, c: int, alpha: float, mode: str) -> tuple[bool, float]:
    """(passed, one-sided p-value) of the paired comparison, the rule described in the module docstring."""
    if mode == "superiority":
        p = upper_tail(c, b + c)
        return p < alpha, p
    p = upper_tail(b, b + c)
    return not p < alpha, p


def smallest_rejectable(discordant_rows: int, alpha: float) -> int | None:
    """The fewest rows against the candidate (of ``discordant_rows``) that the test calls significant."""
    return next((k for k in range(discordant_rows + 1) if upper_tail(k, discordant_rows) < alpha), None)


def resolution(n: int, discordant_rows: int, alpha: float) -> dict[str, Any]:
    """What the holdout can tell apart: one row's weight, and the smallest worsening the test can flag."""
    floor_rows = math.floor(math.log(alpha) / math.log(0.5)) + 1  # fewest b (with c = 0): 0.5**b < alpha
    k = smallest_rejectable(discordant_rows, alpha)
    return {
        "rows": n,
        "one_row": 1 / n if n else None,
        "min_rows_against": floor_rows,  # with no row in the candidate's favour
        "min_detectable_drop": floor_rows / n if n else None,
        "discordant": discordant_rows,
        "rejectable_at": k,  # b needed among the discordant rows seen; None: no split of them could reject
        "drop_at_seen_discordance": None if k is None or not n else (2 * k - discordant_rows) / n,
    }


def _metric(metrics: Mapping[str, float], name: str, whose: str) -> float:
    if name not in metrics:
        raise ValueError(
            f"{whose} metrics have no {name!r} (have {sorted(metrics)}); evaluate it on the holdout "
            f"or change gate.metric in params.yaml"
        )
    return float(metrics[name])


def _resolution_text(res: dict[str, Any], alpha: float) -> str:
    seen = (
        f"with {res['discordant']} discordant rows no split could be significant"
        if res["rejectable_at"] is None
        else f"with {res['discordant']} discordant rows it takes b >= {res['rejectable_at']} "
        f"(a drop of {res['drop_at_seen_discordance']:.3f})"
    )
    return (
        f"resolution: 1 row = {res['one_row']:.4f} on {res['rows']} holdout rows; at alpha {alpha:g} a rejection "
        f"needs >= {res['min_rows_against']} rows against the candidate (a drop of at least "
        f"{res['min_detectable_drop']:.3f}); {seen}"
    )


def _compare(candidate: HoldoutScore, champion: HoldoutScore, gate: GateParams) -> tuple[dict[str, Any], list[str]]:
    """The paired comparison's numbers, and its failures (empty if it passed)."""
    failures: list[str] = []
    if champion.holdout_md5 != candidate.holdout_md5 or len(champion.correct) != len(candidate.correct):
        failures.append(
            f"refused: candidate scored on holdout {candidate.holdout_md5} ({len(candidate.correct)} rows), "
            f"{champion.label} on {champion.holdout_md5} ({len(champion.correct)} rows): scores on different rows "
            "are not comparable"
        )
        return {"passed": False, "refused": "different holdouts"}, failures
    verified = champion.trained_against == candidate.holdout_md5
    if champion.trained_against is not None and not verified:
        failures.append(
            f"refused: {champion.label} was trained against holdout {champion.trained_against}, not the current "
            f"{candidate.holdout_md5}; it may have trained on the rows it is scored on. Retrain it on the current "
            "holdout or promote by hand (audited)"
        )
        return {"passed": False, "refused": "champion trained against another holdout"}, failures
    b, c = discordant(champion.correct, candidate.correct)
    n = len(candidate.correct)
    passed, p = paired_verdict(b, c, gate.alpha, gate.mode)
    name = gate.metric
    best = _metric(champion.metrics, name, champion.label)
    res = resolution(n, b + c, gate.alpha)
    info: dict[str, Any] = {
        "mode": gate.mode,
        "test": "McNemar exact, one-sided",
        "champion": best,
        "b_champion_only": b,
        "c_candidate_only": c,
        "p_value": p,
        "alpha": gate.alpha,
        "difference": (c - b) / n if n else 0.0,
        "resolution": res,
        "champion_holdout_verified": verified,
        "passed": passed,
    }
    if not passed:
        verdict = "significantly worse than" if gate.mode == "non_inferiority" else "not significantly better than"
        failures.append(
            f"candidate is {verdict} the {champion.label} on the holdout: b={b} rows only the {champion.label} "
            f"got right, c={c} only the candidate, difference {(c - b) / n:+.4f}, one-sided McNemar exact "
            f"p={p:.4g} vs alpha {gate.alpha:g} ({gate.mode}); {_resolution_text(res, gate.alpha)}"
        )
    return info, failures


def evaluate_gate(
    candidate: HoldoutScore,
    champion: HoldoutScore | None,
    checks: list[CheckResult],
    gate: GateParams,
) -> GateDecision:
    """Apply floor, paired champion comparison and checks; ``champion=None`` means this is the first model."""
    name = gate.metric
    score = _metric(candidate.metrics, name, "candidate")
    n = len(candidate.correct)
    failures: list[str] = []

    floor_ok = score >= gate.min_metric - _EPS
    comparisons: dict[str, Any] = {
        "metric": name,
        "candidate": score,
        "holdout": {"md5": candidate.holdout_md5, "rows": n},
        "floor": {"required": gate.min_metric, "actual": score, "passed": floor_ok},
    }
    if not floor_ok:
        failures.append(f"{name} {score:.4f} on {n} holdout rows is below the floor min_metric {gate.min_metric:.4f}")
    if candidate.trained_against is not None and candidate.trained_against != candidate.holdout_md5:
        failures.append(
            f"refused: the candidate was trained against holdout {candidate.trained_against}, "
            f"not the {candidate.holdout_md5} it is scored on"
        )
    if champion is not None:
        comparisons["champion"], champion_failures = _compare(candidate, champion, gate)
        failures += champion_failures

    failures += [f"check {c.name} failed: {c.detail}" for c in checks if not c.passed]

    if failures:
        return GateDecision(False, failures, comparisons, list(checks))
    if champion is None:
        versus = "first model, no champion: floor and checks only (policy: it becomes champion)"
    else:
        cmp = comparisons["champion"]
        unverified = "" if cmp["champion_holdout_verified"] else " (champion's training holdout unknown: unverified)"
        versus = (
            f"vs {champion.label} {cmp['champion']:.4f}: b={cmp['b_champion_only']}, c={cmp['c_candidate_only']}, "
            f"difference {cmp['difference']:+.4f}, one-sided McNemar exact p={cmp['p_value']:.4g} "
            f"(alpha {gate.alpha:g}, {gate.mode}){unverified}; {_resolution_text(cmp['resolution'], gate.alpha)}"
        )
    line = (
        f"{name} {score:.4f} on {n} holdout rows >= floor {gate.min_metric:.4f}, {versus}; "
        f"{len(checks)}/{len(checks)} checks passed"
    )
    return GateDecision(True, [line], comparisons, list(checks))
