"""Demo ``ab-test``: a fixed 50/50 split by user, true labels as outcomes, and an honest significance test.

Concept: A/B testing (C24). The router puts each user in arm A (champion) or B (challenger) by a
hash of the user id with its own salt, so the split is fixed, sticky and independent of any canary
assignment. Outcomes come from the feedback loop: every answer's true label arrives through
``POST /v1/feedback`` and is joined to the prediction in the log, with the user's pseudonymous key.
The rule is fixed-horizon (``monitoring/ab_stats.py``): a power calculation plans the labels per arm,
no verdict is given before both arms have them, and then one score test with a Newcombe 95 %
interval for the difference runs on the first ones to arrive, with the user as the unit. The demo
plans for a 10-point difference so that it fits in a few hundred requests; ``params.yaml`` plans for
5 points (435 labels per arm). A seeded simulation then prices the fixed split: the correct answers
it loses against a bandit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lab.demos.prep import display_path, ensure_champion
from lab.demos.traffic import ARM_COLUMNS, arm_table, ensure_challenger, running_service, users
from monitoring.ab_picture import PICTURE_NAME, write_ab_picture
from monitoring.ab_stats import ArmOutcome, Decision, arm_outcomes, compare_regret, decide, horizon
from serving.log_reader import labelled_window

if TYPE_CHECKING:
    from core.context import LabContext
    from core.params import ABTestParams
    from lab.demos.traffic import DemoService
    from lab.narrate import Narrator


DEMO_EFFECT = 0.10  # the demo's smallest difference worth detecting: a horizon a few hundred requests reach


def outcomes(service: DemoService, since: datetime, planned: int) -> dict[str, ArmOutcome]:
    """Per arm, the first ``planned`` labelled A/B predictions since ``since`` (per user), from the log."""
    service.flush()
    if service.runtime.log is None:
        return {}
    frame = labelled_window(service.runtime.log.engine, since=since)
    return arm_outcomes(frame[frame["strategy"] == "ab"], planned)


def _report(n: Narrator, ctx: LabContext, result: dict[str, ArmOutcome], params: ABTestParams, name: str) -> Decision:
    """The arms' table and the decision, said and drawn (``reports/ab-test/<name>`` in the demo's state)."""
    a, b = result.get("champion", ArmOutcome(0, 0)), result.get("challenger", ArmOutcome(0, 0))
    n.table(
        "online accuracy per arm (from feedback)",
        ["arm", "labelled", "correct", "accuracy"],
        [[name, o.labelled, o.correct, f"{o.accuracy:.1%}"] for name, o in (("A champion", a), ("B challenger", b))],
    )
    decision = decide(a, b, params)
    picture = ctx.settings.reports_dir / "ab-test" / name
    write_ab_picture(decision, a, b, params, horizon(params), picture)
    n.say(f"picture of the interval and the labels vs the horizon: {display_path(ctx, picture)}")
    test = decision.comparison
    if test is None:
        n.bad(f"no verdict yet: {decision.reason}")
        return decision
    n.say(
        f"B - A = {test.difference:+.1%}, {test.confidence * 100:.0f} % CI [{test.ci_low:+.1%}, {test.ci_high:+.1%}], "
        f"z = {test.z:.2f}, p = {test.p_value:.3f} (score test, Newcombe interval, {a.users} + {b.users} users)"
    )
    return decision


def _price_of_the_split(n: Narrator, params: ABTestParams) -> None:
    rates, steps = {"champion": 0.95, "challenger": 0.90}, 2000
    result = compare_regret(rates, steps, params, seeds=range(10))
    names = {
        "fixed_split": "fixed 50/50 for the whole run",
        "explore_then_commit": f"50/50 for {result.test_length} requests, then the winner",
        "thompson": "Thompson-sampling bandit",
    }
    n.table(
        f"{steps} simulated requests, true accuracy {rates}, mean of {result.seeds} seeds",
        ["policy", "regret (correct answers lost)"],
        [[names[p], f"{r:.1f}"] for p, r in result.regret.items()],
    )
    n.ok(f"the bandit loses {result.ratio('thompson'):.0f}x fewer answers than a split held to the end")


def run(n: Narrator, ctx: LabContext) -> None:
    """A 50/50 test: too early to tell, then enough labels for a test and a confidence interval."""
    stats = ctx.params.monitoring.ab_test.model_copy(update={"min_effect": DEMO_EFFECT})
    planned = horizon(stats)
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
        n.say(
            f"planned before the test: {planned} labels per arm detect a {DEMO_EFFECT:.0%} drop from "
            f"{stats.baseline:.0%} with {stats.power:.0%} power at alpha {stats.alpha} (params.yaml plans a "
            f"{ctx.params.monitoring.ab_test.min_effect:.0%} drop: {horizon(ctx.params.monitoring.ab_test)} per arm)"
        )

        n.step("First look after 40 requests (each answer gets its true label as feedback)")
        early = service.send(users("ab-user", 40), seed=21)
        n.table("40 users", ARM_COLUMNS, arm_table(early))
        _report(n, ctx, outcomes(service, started, planned), stats, "ab-interval-first-look.png")
        n.why(
            "peeking and stopping when it looks good inflates false positives (`mlops-lab study ab`): "
            "no verdict before the horizon, then one test on the first labels that arrived"
        )

        n.step("More traffic: the 40 users come back, 260 new ones arrive")
        later = service.send(users("ab-user", 300), seed=22)
        kept = sum(early.arm_of_user[u] == later.arm_of_user.get(u) for u in early.arm_of_user)
        n.table("300 users", ARM_COLUMNS, arm_table(later))
        n.ok(f"returning users kept their arm: {kept}/{len(early.arm_of_user)}")
        decision = _report(n, ctx, outcomes(service, started, planned), stats, PICTURE_NAME)
        if decision.verdict in ("a_better", "b_better"):
            winner = "B (challenger)" if decision.verdict == "b_better" else "A (champion)"
            n.ok(f"significant ({decision.reason}): {winner} is more accurate; the interval says by how much")
        elif decision.verdict == "no_difference":
            n.ok(f"no significant difference ({decision.reason}), so B has not earned a promotion")
    n.step("The price of a fixed split: regret, simulated offline")
    _price_of_the_split(n, stats)
    n.why(
        "a fixed split is fair for the test but costly: half the users get the worse arm until it ends; "
        "stopping at the planned sample size and shipping the winner cuts the cost, a bandit cuts it further "
        "but gives up the clean comparison"
    )
    n.code(
        "serving/router.py (ab split, AB_SALT)",
        "serving/log_reader.py (labelled_window)",
        "monitoring/ab_stats.py (labels_needed, arm_outcomes, two_proportion_test, decide, compare_regret)",
    )
