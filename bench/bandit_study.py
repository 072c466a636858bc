"""How much does Thompson sampling save over an A/B split when labels arrive days later, or an arm changes?

Concept: multi-armed bandit routing (C25). The offline comparison in `monitoring.ab_stats.compare_regret`
rewards every request at once. The service does not work like that: a reward is added to the shared
state when its label arrives (``POST /v1/feedback``, often days after the answer) and each worker re-reads
the posterior once per poll (``Settings.poll_interval_s``, 5 s by default). This seeded, vectorised
simulation replays exactly that: request ``t``'s reward becomes visible ``delay`` requests later, and the
posterior used for routing is the one read at the last poll. Pseudo-regret (the true rates' gap to the best
arm *at that time*, summed over requests) measures each policy:

- **fixed split**: an A/B test that keeps 50/50 for the whole horizon;
- **explore-then-commit**: 50/50 until the planned sample size's labels have *arrived* (test length plus
  the delay), a two-sided two-proportion z-test, then everything to the winner (the incumbent on a tie);
- **Thompson**: Beta(1, 1) priors, as serving/bandit.py routes;
- **discounted Thompson**: the same, but old evidence decays by ``DISCOUNT`` per request (an effective
  window of about 1 / (1 - DISCOUNT) requests), so an arm that changes is noticed.

Scenarios: ``stationary`` (champion 0.90, challenger 0.95 throughout) and ``drifting`` (the challenger
is 0.95 for the first half and 0.85 after it: the best arm flips mid-way). Traffic: ``REQUESTS_PER_DAY``
labelled requests a day, so the 5 s poll is at most one request; delays are in days of that traffic.
Monte-Carlo error: each mean regret comes with its standard error over ``reps`` seeded runs. Not covered:
delays that vary per label, labels that never arrive, more than two arms, or a bandit that resets.
``mlops-lab study bandit`` regenerates docs/bandit-study.md and docs/bandit-study.png.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

COMMAND = "uv run mlops-lab study bandit"
DOC_REPS, DOC_SEED = 200, 20250
POLL_INTERVAL_S = 5.0  # core.settings.Settings.poll_interval_s default: how often a worker re-reads the posterior
REQUESTS_PER_DAY = 1000
DAYS = 14
DELAYS_DAYS = (0.0, 1.0, 3.0, 7.0)
DISCOUNT = 0.999  # per request: evidence 1,000 requests (one day) old weighs 1/e
CHECKPOINTS = 140  # points of each regret curve (one per 0.1 day)
ALPHA, POWER = 0.05, 0.8  # the explore-then-commit test's plan
CHAMPION, CHALLENGER = 0.90, 0.95
DRIFTED = 0.85  # the challenger's accuracy after the mid-point in the drifting scenario
POLICIES = ("fixed_split", "explore_then_commit", "thompson", "discounted_thompson")


@dataclass(frozen=True)
class Scenario:
    """True success rates of (champion, challenger) before and after ``change_at`` (a request index)."""

    name: str
    before: tuple[float, float]
    after: tuple[float, float]
    change_at: int

    def rates(self, n: int) -> np.ndarray:
        """n x 2 true rates, one row per request."""
        rates = np.empty((n, 2))
        rates[: self.change_at], rates[self.change_at :] = self.before, self.after
        return rates


def scenarios(steps: int) -> tuple[Scenario, Scenario]:
    return (
        Scenario("stationary", (CHAMPION, CHALLENGER), (CHAMPION, CHALLENGER), steps),
        Scenario("drifting", (CHAMPION, CHALLENGER), (CHAMPION, DRIFTED), steps // 2),
    )


def requests_per_poll(per_day: float = REQUESTS_PER_DAY, poll_s: float = POLL_INTERVAL_S) -> int:
    """Requests routed on one posterior read: traffic during one poll interval, at least one."""
    return max(1, math.ceil(per_day * poll_s / 86_400))


@dataclass(frozen=True)
class Run:
    """One policy in one scenario at one delay: regret per seeded run and the mean curve."""

    policy: str
    scenario: str
    delay: int  # requests between an answer and its label
    totals: np.ndarray  # total regret per run
    curve: np.ndarray  # mean cumulative regret at each checkpoint
    at: np.ndarray  # request counts of the checkpoints

    @property
    def mean(self) -> float:
        return float(self.totals.mean())

    @property
    def stderr(self) -> float:
        """Standard error of the mean over the seeded runs (the Monte-Carlo error)."""
        return float(self.totals.std(ddof=1) / math.sqrt(len(self.totals))) if len(self.totals) > 1 else math.nan


def _checkpoints(steps: int, count: int) -> np.ndarray:
    return np.unique(np.linspace(0, steps, min(count, steps) + 1).astype(int)[1:])


def _gaps(rates: np.ndarray) -> np.ndarray:
    """Per request and arm: how much worse than the best arm at that time."""
    return rates.max(axis=1, keepdims=True) - rates


def thompson(
    scenario: Scenario,
    steps: int,
    delay: int,
    reps: int,
    seed: int,
    discount: float = 1.0,
    per_poll: int = 1,
    checkpoints: int = CHECKPOINTS,
) -> Run:
    """Thompson sampling whose rewards arrive ``delay`` requests late and whose posterior is read per poll.

    All ``reps`` runs advance together (numpy over the runs). ``discount`` < 1 decays the evidence by that
    factor per request before new labels are added (discounted Thompson sampling).
    """
    rng = np.random.default_rng(seed)
    rates = scenario.rates(steps)
    uniform = rng.random((reps, steps), dtype=np.float32)  # request t's answer is right if uniform < its arm's rate
    picks = np.zeros((reps, steps), dtype=np.intp)  # 1 = challenger
    rewards = np.zeros((reps, steps), dtype=np.float64)
    successes, failures = np.zeros((reps, 2)), np.zeros((reps, 2))
    rows, within, arrived = np.arange(reps), np.arange(per_poll)[None, :], 0
    for start in range(0, steps, per_poll):
        # The poll: the labels of requests answered at least `delay` requests ago have arrived.
        visible = max(0, start - delay)
        if discount < 1.0:
            successes *= discount**per_poll
            failures *= discount**per_poll
        for k in range(arrived, visible):  # one request per poll at the study's traffic: one column
            arm, won = picks[:, k], rewards[:, k]
            successes[rows, arm] += won
            failures[rows, arm] += 1.0 - won
        arrived = max(arrived, visible)
        end = min(start + per_poll, steps)
        draws = rng.beta(1.0 + successes[:, None, :], 1.0 + failures[:, None, :], size=(reps, end - start, 2))
        chosen = draws.argmax(axis=2)
        picks[:, start:end] = chosen
        rewards[:, start:end] = uniform[:, start:end] < rates[start:end][within[:, : end - start], chosen]
    lost = np.cumsum(_gaps(rates)[np.arange(steps)[None, :], picks], axis=1)  # cumulative regret per run
    at = _checkpoints(steps, checkpoints)
    curve = lost[:, at - 1].mean(axis=0)
    name = "discounted_thompson" if discount < 1.0 else "thompson"
    return Run(name, scenario.name, delay, lost[:, -1], curve, at)


def fixed_split(scenario: Scenario, steps: int, reps: int, seed: int, checkpoints: int = CHECKPOINTS) -> Run:
    """A 50/50 split for the whole horizon: the challenger's picks per segment are binomial."""
    return _split_then_commit("fixed_split", scenario, steps, 0, steps, reps, seed, checkpoints)


def planned_test_length(
    baseline: float = CHAMPION, effect: float = CHALLENGER - CHAMPION, alpha: float = ALPHA, power: float = POWER
) -> int:
    """Requests of a 50/50 test (both arms) planned to detect ``effect`` (statsmodels' normal power)."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    size = proportion_effectsize(baseline + effect, baseline)
    per_arm = NormalIndPower().solve_power(effect_size=size, alpha=alpha, power=power, ratio=1.0)
    return 2 * math.ceil(per_arm)


def explore_then_commit(
    scenario: Scenario, steps: int, delay: int, reps: int, seed: int, test_length: int, checkpoints: int = CHECKPOINTS
) -> Run:
    """50/50 until the test's labels arrived (test length + delay), then all traffic to the winner."""
    return _split_then_commit("explore_then_commit", scenario, steps, delay, test_length, reps, seed, checkpoints)


def _split_then_commit(
    policy: str, scenario: Scenario, steps: int, delay: int, test_length: int, reps: int, seed: int, checkpoints: int
) -> Run:
    rng = np.random.default_rng(seed)
    rates, at = scenario.rates(steps), _checkpoints(steps, checkpoints)
    gaps = _gaps(rates)
    test_length = min(test_length, steps)
    decided_at = min(steps, test_length + delay)  # the last test label arrives `delay` requests after its answer
    # The test's outcome: per arm, labelled requests and successes over the first test_length requests.
    n_b = rng.binomial(test_length, 0.5, size=reps)
    n_a = test_length - n_b
    p_a, p_b = rates[:test_length, 0].mean(), rates[:test_length, 1].mean()
    s_a, s_b = rng.binomial(n_a, p_a), rng.binomial(n_b, p_b)
    winner = np.zeros(reps, dtype=int)  # the incumbent keeps the traffic unless the challenger wins the test
    if policy != "fixed_split":
        with np.errstate(divide="ignore", invalid="ignore"):
            pooled = (s_a + s_b) / np.maximum(n_a + n_b, 1)
            se = np.sqrt(pooled * (1 - pooled) * (1 / np.maximum(n_a, 1) + 1 / np.maximum(n_b, 1)))
            z = (s_b / np.maximum(n_b, 1) - s_a / np.maximum(n_a, 1)) / se
        from scipy.stats import norm

        significant = np.nan_to_num(2 * norm.sf(np.abs(z)), nan=1.0) < ALPHA
        winner = np.where(significant & (z > 0), 1, 0)
    # Regret per segment between checkpoints: 50/50 before the decision, the winner's gap after it.
    bounds = np.unique(np.concatenate([[0], at, [decided_at, min(scenario.change_at, steps)]]))  # gaps constant within
    cumulative, curve_at = np.zeros(reps), {}
    for lo, hi in itertools.pairwise(bounds):
        if hi <= lo:
            continue
        if hi <= decided_at:
            to_b = rng.binomial(hi - lo, 0.5, size=reps)  # the challenger's share of this segment's requests
            cumulative += (hi - lo - to_b) * gaps[lo, 0] + to_b * gaps[lo, 1]
        else:
            cumulative += gaps[lo:hi][:, winner].sum(axis=0)
        curve_at[int(hi)] = float(cumulative.mean())
    return Run(policy, scenario.name, delay, cumulative, np.array([curve_at[int(p)] for p in at]), at)


@dataclass(frozen=True)
class Study:
    steps: int
    reps: int
    seed: int
    per_poll: int
    test_length: int
    runs: list[Run]

    def run(self, policy: str, scenario: str, delay: int) -> Run:
        return next(r for r in self.runs if (r.policy, r.scenario, r.delay) == (policy, scenario, delay))

    @property
    def delays(self) -> list[int]:
        return sorted({r.delay for r in self.runs})


def run_study(
    reps: int,
    seed: int,
    days: float = DAYS,
    per_day: int = REQUESTS_PER_DAY,
    delays_days: tuple[float, ...] = DELAYS_DAYS,
    checkpoints: int = CHECKPOINTS,
) -> Study:
    """Every policy x scenario x delay over the same seeds (one seed stream per cell)."""
    steps = int(days * per_day)
    per_poll, test_length = requests_per_poll(per_day), planned_test_length()
    runs: list[Run] = []
    for i, scenario in enumerate(scenarios(steps)):
        split = fixed_split(scenario, steps, reps, seed + 100 * i, checkpoints)  # ignores labels: any delay
        for j, delay in enumerate(int(d * per_day) for d in delays_days):
            cell = seed + 100 * i + 10 * j
            runs += [
                Run(split.policy, split.scenario, delay, split.totals, split.curve, split.at),
                explore_then_commit(scenario, steps, delay, reps, cell + 1, test_length, checkpoints),
                thompson(scenario, steps, delay, reps, cell + 2, per_poll=per_poll, checkpoints=checkpoints),
                thompson(scenario, steps, delay, reps, cell + 3, DISCOUNT, per_poll, checkpoints),
            ]
    return Study(steps, reps, seed, per_poll, test_length, runs)


def plot(
    study: Study, path: Path, per_day: int = REQUESTS_PER_DAY
) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """Cumulative regret curves (mean over runs), one panel per scenario; returns the series as drawn.

    The returned series are read back from the figure's lines (x in days, y in regret), so a test can
    check that the picture shows the study's numbers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = sorted({study.delays[0], study.delays[min(1, len(study.delays) - 1)], study.delays[-1]})
    dashes = dict(zip(shown, ("-", "-.", "--"), strict=False))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    drawn: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    styles = {
        "fixed_split": "k",
        "explore_then_commit": "tab:gray",
        "thompson": "tab:blue",
        "discounted_thompson": "tab:orange",
    }
    for ax, scenario in zip(axes, ("stationary", "drifting"), strict=True):
        for delay in shown:
            for policy in POLICIES:
                if policy == "fixed_split" and delay != shown[0]:
                    continue
                run = study.run(policy, scenario, delay)
                label = policy if policy == "fixed_split" else f"{policy}, labels {delay / per_day:g} d late"
                ax.plot(
                    run.at / per_day,
                    run.curve,
                    color=styles[policy],
                    linestyle=dashes[delay],
                    label=label,
                )
        ax.set_title(
            f"{scenario}: "
            + (
                f"challenger {CHALLENGER} vs {CHAMPION}"
                if scenario == "stationary"
                else f"challenger {CHALLENGER} -> {DRIFTED} at mid-point"
            )
        )
        ax.set_xlabel(f"days ({per_day:,} labelled requests a day)")
        ax.grid(alpha=0.3)
        drawn[scenario] = {
            line.get_label(): ([float(x) for x in line.get_xdata()], [float(y) for y in line.get_ydata()])
            for line in ax.get_lines()
        }
    axes[0].set_ylabel("cumulative regret (expected lost correct answers)")
    axes[1].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Bandit vs A/B split, {study.reps} seeded runs per curve", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def render_markdown(study: Study, seconds: float, png_name: str, per_day: int = REQUESTS_PER_DAY) -> str:
    lines = [
        "# Bandit vs A/B split: delayed labels and a drifting arm",
        "",
        f"Generated by `{COMMAND}` on {datetime.now(UTC):%Y-%m-%d} in {seconds:.1f} s (seed {study.seed}, "
        f"{study.reps} seeded runs per cell); see bench/bandit_study.py for the method.",
        "",
        f"- horizon: {study.steps:,} labelled requests ({study.steps / per_day:g} days at {per_day:,} a day); "
        f"the posterior is re-read once per poll ({POLL_INTERVAL_S:g} s = {study.per_poll} request(s) at this traffic)",
        "- a label arrives a fixed delay after its answer ("
        + ", ".join(f"{d / per_day:g}" for d in study.delays)
        + " days); until then the bandit cannot use it",
        f"- stationary: champion {CHAMPION}, challenger {CHALLENGER}; drifting: the challenger drops to {DRIFTED} "
        "at the mid-point, so the best arm flips",
        f"- explore-then-commit: 50/50 for the planned {study.test_length:,} requests (alpha {ALPHA}, power {POWER}, "
        "5 points), decided when their labels have arrived, two-sided z-test; "
        f"discounted Thompson: evidence x{DISCOUNT} per request (about a one-day window)",
        "- regret: the true-rate gap to the best arm at that time, summed over requests (expected lost correct "
        "answers); each cell is the mean over runs ± its standard error (Monte-Carlo error)",
        "",
        "| scenario | label delay | fixed split | explore-then-commit | Thompson | discounted Thompson | "
        "Thompson saves vs split |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scenario in ("stationary", "drifting"):
        for delay in study.delays:
            cells = [study.run(p, scenario, delay) for p in POLICIES]
            split, ts = cells[0], cells[2]
            saved = 1 - ts.mean / split.mean if split.mean > 0 else math.nan
            lines.append(
                f"| {scenario} | {delay / per_day:g} d | "
                + " | ".join(f"{c.mean:.1f} ± {c.stderr:.1f}" for c in cells)
                + f" | {100 * saved:.0f} % |"
            )
    lines += [
        "",
        f"![Cumulative regret, bandit vs A/B split, with and without label delay]({png_name})",
        "",
        "Reading: with labels that arrive at once Thompson sampling loses a small fraction of what a 50/50 split "
        "loses. A label delay makes it route blind (50/50 on its priors) until the first labels arrive, so its "
        "advantage shrinks as the delay grows towards the horizon. When the better arm gets worse mid-way, plain "
        "Thompson keeps serving it on old evidence and can lose more than the split; discounting old evidence "
        "recovers, at some cost when nothing changes. Explore-then-commit pays the whole test plus the wait for "
        "its labels and never revisits its decision.",
        "",
        "Not covered: delays that vary per label, labels that never arrive, more than two arms, user-sticky "
        "assignment (the service's bandit routes each request on its own), and the poll at higher traffic "
        "(at 10 requests/s one posterior read routes 50 requests).",
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Written:
    """What `write_doc` produced: the two files, the study and the series the picture shows."""

    doc: Path
    png: Path
    study: Study
    drawn: dict[str, dict[str, tuple[list[float], list[float]]]]


def write_doc(out: Path, reps: int = DOC_REPS, seed: int = DOC_SEED, **kwargs: Any) -> Written:
    """Run the study, draw the PNG next to the doc (same name, .png) and write the Markdown table."""
    start = time.perf_counter()
    per_day = kwargs.get("per_day", REQUESTS_PER_DAY)
    study = run_study(reps, seed, **kwargs)
    png = out.with_suffix(".png")
    drawn = plot(study, png, per_day)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(study, time.perf_counter() - start, png.name, per_day), encoding="utf-8")
    return Written(out, png, study, drawn)
