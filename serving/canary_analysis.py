"""Automated canary analysis: may the challenger take more traffic, must it be pulled, or is it too early?

Concept: progressive delivery with automatic rollback (C21, C26), the job of Argo Rollouts' and Flagger's
analysis. Between weight steps (``rollout.steps`` in params.yaml) the challenger's live metrics are compared
with the champion's *over the same window* (the caller's job: ``rollout.analysis_windows``): error rate
(absolute and as an increase over the champion), p99 latency and online accuracy from feedback. Each check
needs its own minimum sample (``min_requests``, ``min_feedback``); without it the check is *inconclusive*,
never a pass: empty metrics silently passing (or aborting) a rollout is the classic failure of such
controllers. Verdict: any breach with enough data -> ``breach`` (one bad signal is enough, even if others
still lack data); else anything inconclusive -> ``inconclusive``; else ``pass``.

Online accuracy is decided by a test, not by comparing two point estimates (``accuracy_test``): a one-sided
test of harm beyond a tolerance margin m, H0: p_challenger - p_champion >= -m against H1: the challenger is
worse by more than m. It breaches when the upper one-sided (1 - alpha) Newcombe hybrid-score bound on the
difference (statsmodels ``confint_proportions_2indep``, method ``newcomb``) lies below -m. The unit is a
labelled prediction; the caller passes exactly the first ``min_feedback`` labels of each arm in the window,
so each step's test is one look at a fixed sample. This is a harm test: "pass" means no evidence of harm
beyond m at that sample, not a proof of non-inferiority. Error rate and p99 latency stay guard rails on
their observed values (a value exactly at its limit passes, "may not exceed"). The error rates of this rule
over the whole step plan are measured by ``bench/canary_study.py`` (docs/canary-study.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from core.params import RolloutParams

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

Verdict = Literal["pass", "breach", "inconclusive"]
_EPS = 1e-9  # float slack: 0.90 - 0.85 is 0.05000000000000004, and exactly-at-the-limit must pass


@dataclass(frozen=True)
class ArmMetrics:
    """What one arm served in the analysis window; give raw ``latencies_ms`` or a precomputed ``p99_ms``.

    ``errors`` are failed requests (5xx); ``labelled``/``correct`` count predictions with feedback.
    """

    requests: int = 0
    errors: int = 0
    latencies_ms: Sequence[float] = ()
    p99_ms: float | None = None
    labelled: int = 0
    correct: int = 0

    def __post_init__(self) -> None:
        counts = f"requests={self.requests} errors={self.errors} labelled={self.labelled} correct={self.correct}"
        if min(self.requests, self.errors, self.labelled, self.correct) < 0:
            raise ValueError(f"arm metrics must be non-negative counts, got {counts}")
        if self.errors > self.requests or self.correct > self.labelled:
            raise ValueError(f"errors must be <= requests and correct <= labelled, got {counts}")
        if self.p99_ms is not None and len(self.latencies_ms):
            raise ValueError("give either latencies_ms or p99_ms, not both")

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def p99(self) -> float | None:
        if self.p99_ms is not None:
            return float(self.p99_ms)
        return float(np.percentile(self.latencies_ms, 99)) if len(self.latencies_ms) else None

    @property
    def online_accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


@dataclass(frozen=True)
class Check:
    """One guard rail: its status, the observed value against its limit, and why, with numbers."""

    name: str
    status: Verdict
    reason: str
    observed: float | None = None
    limit: float | None = None


@dataclass(frozen=True)
class Analysis:
    """The verdict of one analysis and every check behind it."""

    verdict: Verdict
    checks: tuple[Check, ...]

    @property
    def reasons(self) -> list[str]:
        """The reasons behind the verdict (breaches for a breach, shortfalls when inconclusive)."""
        return [c.reason for c in self.checks if c.status == self.verdict]

    def summary(self) -> str:
        return f"{self.verdict}: " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shortfall(name: str, counts: Mapping[str, int], need: int, unit: str) -> Check | None:
    short = [f"{arm} has {n} {unit}" for arm, n in counts.items() if n < need]
    return Check(name, "inconclusive", f"{name}: {', '.join(short)}, need {need}") if short else None


def _judge(name: str, observed: float, limit: float, detail: str) -> Check:
    ok = observed <= limit + _EPS
    verdict: Verdict = "pass" if ok else "breach"
    return Check(name, verdict, f"{name}: {detail} ({'within' if ok else 'BREACH of'} limit)", observed, limit)


def _error_rate(chall: ArmMetrics, p: RolloutParams) -> Check:
    if short := _shortfall("error_rate", {"challenger": chall.requests}, p.min_requests, "requests"):
        return short
    rate = chall.errors / chall.requests
    detail = f"challenger {chall.errors}/{chall.requests} = {rate:.2%}, max {p.max_error_rate:.2%}"
    return _judge("error_rate", rate, p.max_error_rate, detail)


def _error_rate_increase(champ: ArmMetrics, chall: ArmMetrics, p: RolloutParams) -> Check:
    counts = {"challenger": chall.requests, "champion": champ.requests}
    if short := _shortfall("error_rate_increase", counts, p.min_requests, "requests"):
        return short
    c, k = chall.errors / chall.requests, champ.errors / champ.requests
    detail = (
        f"challenger {c:.2%} vs champion {k:.2%}: {100 * (c - k):+.2f} pts, max +{100 * p.max_error_rate_increase:.2f}"
    )
    return _judge("error_rate_increase", c - k, p.max_error_rate_increase, detail)


def _p99_latency(chall: ArmMetrics, p: RolloutParams) -> Check:
    if short := _shortfall("p99_latency", {"challenger": chall.requests}, p.min_requests, "requests"):
        return short
    if (p99 := chall.p99) is None:
        return Check("p99_latency", "inconclusive", "p99_latency: challenger has no latency samples")
    return _judge(
        "p99_latency", p99, p.max_p99_latency_ms, f"challenger {p99:.1f} ms, max {p.max_p99_latency_ms:.1f} ms"
    )


def accuracy_test(
    chall_correct: ArrayLike,
    chall_labelled: ArrayLike,
    champ_correct: ArrayLike,
    champ_labelled: ArrayLike,
    margin: float,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The accuracy decision: (breach, upper bound), element-wise over arrays of counts.

    ``upper`` is the one-sided (1 - alpha) upper confidence bound on p_challenger - p_champion (the two-sided
    1 - 2 alpha Newcombe hybrid-score interval's upper end); ``breach`` is ``upper < -margin``: the data reject
    "the challenger is at most ``margin`` worse" at level alpha. Vectorised, so the seeded study
    (bench/canary_study.py) runs this very function over thousands of simulated steps.
    """
    from statsmodels.stats.proportion import confint_proportions_2indep  # heavy import, only when deciding

    if not 0 <= margin < 1 or not 0 < alpha < 0.5:
        raise ValueError(f"margin must be in [0, 1) and alpha in (0, 0.5), got {margin} and {alpha}")
    _, upper = confint_proportions_2indep(
        np.asarray(chall_correct),
        np.asarray(chall_labelled),
        np.asarray(champ_correct),
        np.asarray(champ_labelled),
        method="newcomb",
        compare="diff",
        alpha=2 * alpha,
    )
    upper = np.asarray(upper, dtype=float)
    return upper < -margin - _EPS, upper


def _online_accuracy(champ: ArmMetrics, chall: ArmMetrics, p: RolloutParams) -> Check:
    counts = {"challenger": chall.labelled, "champion": champ.labelled}
    if short := _shortfall("online_accuracy", counts, p.min_feedback, "labelled predictions"):
        return short
    breach, upper = accuracy_test(
        chall.correct, chall.labelled, champ.correct, champ.labelled, p.accuracy_margin, p.accuracy_alpha
    )
    bound, limit = float(upper), -p.accuracy_margin
    c, k = chall.correct / chall.labelled, champ.correct / champ.labelled
    verdict: Verdict = "breach" if bool(breach) else "pass"
    outcome = "harm beyond the margin: BREACH" if verdict == "breach" else "no evidence of harm beyond the margin"
    reason = (
        f"online_accuracy: challenger {chall.correct}/{chall.labelled} = {c:.2%} vs champion "
        f"{champ.correct}/{champ.labelled} = {k:.2%}: difference {100 * (c - k):+.2f} pts, "
        f"{100 * (1 - p.accuracy_alpha):g} % upper bound {100 * bound:+.2f} pts vs margin {100 * limit:+.2f} "
        f"({outcome})"
    )
    return Check("online_accuracy", verdict, reason, bound, limit)


def analyse(champion: ArmMetrics, challenger: ArmMetrics, params: RolloutParams) -> Analysis:
    """Compare the arms over the same window (the current step) and give a verdict with per-check reasons.

    At the 100 % step the champion serves nothing: the caller passes the champion's metrics from the
    previous step's window, the last one in which both arms served (``rollout.analysis_windows``).
    """
    checks = (
        _error_rate(challenger, params),
        _error_rate_increase(champion, challenger, params),
        _p99_latency(challenger, params),
        _online_accuracy(champion, challenger, params),
    )
    statuses = {c.status for c in checks}
    verdict: Verdict = "breach" if "breach" in statuses else "inconclusive" if "inconclusive" in statuses else "pass"
    return Analysis(verdict, checks)
