"""Demo ``bandit``: Thompson sampling moves live traffic to the arm whose answers turn out right.

Concept: multi-armed bandit routing (C25) fed by the feedback loop (C38). With strategy ``bandit``
each request goes to the arm whose draw from its Beta posterior (prior + rewards) is highest. The
reward is the feedback: the first true label for a bandit-routed prediction adds 1 (correct) or 0 to
its arm's sums in the shared store, atomically, so every worker learns from every worker's traffic
and a repeated label never counts twice. Pollers re-read the sums, so routing shifts within one
poll interval. A planted worse challenger makes the shift visible; the offline simulation then
compares the regret (reward lost against always serving the best arm) with a fixed A/B split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.demos.prep import ensure_champion
from lab.demos.traffic import plant_bad_challenger, running_service, users
from pipelines.registry import reject_challenger
from serving.bandit import expected_rewards, simulate, simulate_fixed_split

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator

ROUNDS = 5
PER_ROUND = 40
SIMULATED = {"champion": 0.95, "challenger": 0.90}  # a subtler gap than the planted model's


def _simulate(n: Narrator) -> None:

    steps = 2000
    runs = [
        ("A/B fixed 50/50", simulate_fixed_split(SIMULATED, steps, seed=7)),
        ("epsilon-greedy (0.1)", simulate(SIMULATED, steps, algorithm="epsilon_greedy", seed=7)),
        ("Thompson sampling", simulate(SIMULATED, steps, algorithm="thompson", seed=7)),
    ]
    best = max(SIMULATED, key=SIMULATED.__getitem__)
    n.table(
        f"{steps} simulated requests, true accuracy {SIMULATED} (seed 7)",
        ["policy", f"served by {best}", f"{best} share, 2nd half", "regret (correct answers lost)"],
        [[name, r.choices.get(best, 0), f"{r.late_share(best):.0%}", f"{r.total_regret:.1f}"] for name, r in runs],
    )
    fixed, thompson = runs[0][1].total_regret, runs[2][1].total_regret
    n.ok(f"Thompson sampling lost {thompson:.0f} correct answers where the fixed split lost {fixed:.0f}")


def run(n: Narrator, ctx: LabContext) -> None:
    """Live bandit over the API with feedback rewards, then the seeded regret comparison."""
    s = ctx.settings
    n.title("Multi-armed bandit: traffic follows the feedback", "C25 bandit · C38 feedback")
    n.step("Two arms: the champion and a PLANTED worse challenger")
    ensure_champion(ctx, n)
    with running_service(ctx) as service:
        plant_bad_challenger(ctx, n)
        service.refresh()
        service.store.reset_bandit()  # a new experiment: forget earlier rewards
        state = service.route(strategy="bandit")
        cfg = ctx.params.routing.bandit
        n.say(f"routing state v{state.version}: strategy bandit, {cfg.algorithm}, prior Beta{tuple(cfg.prior)}")
        n.why("no split to choose: each arm's share follows how often its answers turn out right")

        n.step(f"{ROUNDS} rounds of {PER_ROUND} requests; the true labels come back as rewards after each round")
        rows: list[list[object]] = []
        shares: list[float] = []
        for r in range(ROUNDS):
            traffic = service.send(users(f"bandit-r{r}", PER_ROUND), seed=30 + r)
            service.refresh()  # every worker's poller re-reads the shared reward sums
            means = expected_rewards(service.runtime.routing.bandit()) if service.runtime.routing else {}
            shares.append(traffic.share("champion"))
            rows.append(
                [
                    r + 1,
                    traffic.arms["champion"],
                    traffic.arms["challenger"],
                    f"{shares[-1]:.0%}",
                    f"{means.get('champion', 0):.2f} / {means.get('challenger', 0):.2f}",
                ]
            )
        n.table(
            "live traffic through /v1/predict, rewards through /v1/feedback",
            ["round", "champion", "challenger", "champion share", "posterior mean champion / challenger"],
            rows,
        )
        (n.ok if shares[-1] > 0.7 else n.bad)(
            f"the bandit shifted traffic to the better arm: champion share {shares[0]:.0%} in round 1, "
            f"{shares[-1]:.0%} in round {ROUNDS}"
        )
        n.why("Thompson sampling still tries the weaker arm while it is uncertain; the evidence ends that quickly")
        version = reject_challenger(s, s.actor, "planted by the bandit demo: never promote")
        service.store.reset_bandit()  # leave no rewards of a planted model behind
        n.say(f"clean-up: planted v{version} tagged rejected, reward sums reset; routing goes back as found")

    n.step("Offline: how much does learning cost compared with a fixed A/B split? (seeded simulation)")
    _simulate(n)
    n.why(
        "an A/B test keeps sending half the users to the worse arm until it ends; a bandit cuts that regret, "
        "at the price of a less clean statistical comparison"
    )
    n.code(
        "serving/bandit.py (choose, simulate)",
        "serving/runtime.py (record_feedback)",
        "serving/state_store.py (add_reward)",
    )
