"""Demo ``ab-test``: a fixed 50/50 split by user, true labels as outcomes, and an honest significance test.

Concept: A/B testing (C24). The router puts each user in arm A (champion) or B (challenger) by a
hash of the user id with its own salt, so the split is fixed, sticky and independent of any canary
assignment. Outcomes come from the feedback loop: every answer's true label arrives through
``POST /v1/feedback`` and is joined to the prediction in the log. The comparison is a two-proportion
z-test on online accuracy with a 95 % confidence interval for the difference, computed inline here
(scipy's normal distribution); the guard refuses to conclude anything below a minimum number of
labels per arm, because an early look at a handful of labels is mostly noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.context import LabContext
    from lab.demos.traffic import DemoService
    from lab.narrate import Narrator


@dataclass(frozen=True)
class ArmOutcome:
    labelled: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.labelled if self.labelled else float("nan")


@dataclass(frozen=True)
class Comparison:
    """B minus A in online accuracy: the difference, its 95 % CI, the z statistic and the two-sided p-value."""

    difference: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float


def two_proportion_test(a: ArmOutcome, b: ArmOutcome) -> Comparison:
    """Two-proportion z-test (pooled standard error) and a Wald 95 % interval for B - A."""
    from scipy.stats import norm

    pa, pb = a.accuracy, b.accuracy
    pooled = (a.correct + b.correct) / (a.labelled + b.labelled)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / a.labelled + 1 / b.labelled))
    z = (pb - pa) / se_pooled if se_pooled > 0 else 0.0
    se = math.sqrt(pa * (1 - pa) / a.labelled + pb * (1 - pb) / b.labelled)
    half = float(norm.ppf(0.975)) * se
    return Comparison(pb - pa, pb - pa - half, pb - pa + half, z, float(2 * norm.sf(abs(z))))


def labels_needed(baseline: float, drop: float, power: float = 0.8, alpha: float = 0.05) -> int:
    """Labels per arm to detect an accuracy drop of ``drop`` from ``baseline`` (normal approximation)."""
    from scipy.stats import norm

    p2 = max(baseline - drop, 0.0)
    spread = baseline * (1 - baseline) + p2 * (1 - p2)
    return math.ceil((norm.ppf(1 - alpha / 2) + norm.ppf(power)) ** 2 * spread / drop**2)


def outcomes(service: DemoService, since: datetime) -> dict[str, ArmOutcome]:
    """Labelled A/B predictions per arm since ``since``, from the prediction log joined with feedback."""
    from serving.log_reader import labelled_window

    service.flush()
    if service.runtime.log is None:
        return {}
    frame = labelled_window(service.runtime.log.engine, since=since)
    frame = frame[frame["strategy"] == "ab"]
    return {
        arm: ArmOutcome(len(group), int(group["correct"].astype(bool).sum())) for arm, group in frame.groupby("arm")
    }


def _report(n: Narrator, result: dict[str, ArmOutcome], minimum: int) -> Comparison | None:
    a, b = result.get("champion", ArmOutcome(0, 0)), result.get("challenger", ArmOutcome(0, 0))
    n.table(
        "online accuracy per arm (from feedback)",
        ["arm", "labelled", "correct", "accuracy"],
        [[name, o.labelled, o.correct, f"{o.accuracy:.1%}"] for name, o in (("A champion", a), ("B challenger", b))],
    )
    if min(a.labelled, b.labelled) < minimum:
        n.bad(f"not enough data yet: {a.labelled} and {b.labelled} labels, need {minimum} per arm; keep collecting")
        return None
    test = two_proportion_test(a, b)
    n.say(
        f"B - A = {test.difference:+.1%}, 95 % CI [{test.ci_low:+.1%}, {test.ci_high:+.1%}], "
        f"z = {test.z:.2f}, p = {test.p_value:.3f}"
    )
    return test


def run(n: Narrator, ctx: LabContext) -> None:
    """A 50/50 test: too early to tell, then enough labels for a test and a confidence interval."""
    from lab.demos.prep import ensure_champion
    from lab.demos.traffic import ARM_COLUMNS, arm_table, ensure_challenger, running_service, users

    minimum = ctx.params.rollout.min_feedback
    n.title("A/B test: fixed split, feedback as outcome, a test before a verdict", "C24 A/B test · C38 feedback")
    n.step("Split users 50/50 by a hash of their id (strategy ab, split 0.5)")
    ensure_champion(ctx, n)
    with running_service(ctx) as service:
        if ensure_challenger(ctx, n) is None:
            return
        service.refresh()
        state = service.route(strategy="ab", ab_split=0.5)
        started = datetime.now(UTC)
        n.say(f"routing state v{state.version}: strategy {state.strategy}, challenger share {state.ab_split:.0%}")
        n.why("a separate hash salt from the canary: being in B says nothing about being in a canary")

        n.step("First look after 40 requests (each answer gets its true label as feedback)")
        early = service.send(users("ab-user", 40), seed=21)
        n.table("40 users", ARM_COLUMNS, arm_table(early))
        _report(n, outcomes(service, started), minimum)
        n.why("peeking at a few labels and stopping when it looks good inflates false positives: fix the sample first")

        n.step("More traffic: the 40 users come back, 260 new ones arrive")
        later = service.send(users("ab-user", 300), seed=22)
        kept = sum(early.arm_of_user[u] == later.arm_of_user.get(u) for u in early.arm_of_user)
        n.table("300 users", ARM_COLUMNS, arm_table(later))
        n.ok(f"returning users kept their arm: {kept}/{len(early.arm_of_user)}")
        test = _report(n, outcomes(service, started), minimum)
        if test is not None:
            if test.ci_low > 0 or test.ci_high < 0:
                winner = "B (challenger)" if test.difference > 0 else "A (champion)"
                n.ok(f"significant at 95 %: {winner} is more accurate; the interval says by how much")
            else:
                n.ok("no significant difference at 95 %: the interval contains 0, so B has not earned a promotion")
            baseline = outcomes(service, started).get("champion", ArmOutcome(1, 1)).accuracy
            need = labels_needed(min(max(baseline, 0.5), 0.99), 0.05)
            n.say(f"to detect a 5-point drop from {baseline:.0%} with 80 % power: about {need} labels per arm")
        n.why(
            "a fixed split is fair for the test but costly: half the users get the worse arm until it ends "
            "(the bandit demo measures that regret)"
        )
    n.code(
        "serving/router.py (ab split, AB_SALT)",
        "serving/log_reader.py (labelled_window)",
        "lab/demos/ab_test.py (two_proportion_test)",
    )
