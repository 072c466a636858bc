"""How often does the canary abort an equally good challenger, and how often does it stop a worse one?

Concept: automatic rollback is a statistical decision (C21, C26). This seeded simulation walks the
configured step plan (``rollout.steps`` in params.yaml) many times. At each step both arms contribute
exactly ``min_feedback`` labelled predictions (the controller tests the first that many labels per arm
and step: one look per step), drawn as binomial counts of correct answers; at the 100 % step the champion's
sample is the previous step's (its baseline, as in ``serving.rollout.analysis_windows``). Each step is
judged by the controller's own decision function, ``serving.canary_analysis.accuracy_test``, over all
simulated rollouts at once. The first breach aborts; a rollout with no breach is promoted.

Two challengers: one exactly as accurate as the champion (any abort is a *false abort*) and one
``WORSE_BY`` accuracy points below it (an abort before the 100 % step is a *detection*: it never served
every user). Each rate carries its binomial Monte-Carlo standard error sqrt(p (1 - p) / reps). The grid
varies min_feedback, accuracy_margin and accuracy_alpha; ``recommend`` picks the defaults in params.yaml.
A simple traffic model (requests per minute, labelled share, label delay) turns the abort step into the
requests a worse challenger served and the hours a good rollout takes. Not simulated: the error-rate and
latency guard rails (a challenger that only differs in accuracy never trips them), label noise, a label
mix that changes between steps (which the 100 % step's historical baseline would confound), and
correlation between a user's requests (the unit here is a labelled prediction).
``mlops-lab study canary`` regenerates docs/canary-study.md and docs/canary-study.png in a few seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from serving.canary_analysis import accuracy_test

if TYPE_CHECKING:
    from core.params import RolloutParams

COMMAND = "uv run mlops-lab study canary"
DOC_REPS, DOC_SEED = 2000, 20261
CHAMPION_ACCURACY = 0.95  # the iris champion's accuracy is about this; the variance is largest far from 0 and 1
WORSE_BY = 0.05
MIN_FEEDBACK = (50, 100, 200, 400)
MARGINS = (0.0, 0.01, 0.02)
ALPHAS = (0.01, 0.05, 0.10)
MAX_FALSE_ABORT, MIN_DETECTION = 0.05, 0.80  # what the defaults must achieve (point estimates)


@dataclass(frozen=True)
class TrafficModel:
    """Live traffic for turning abort steps into exposure and time (expected values, not simulated)."""

    requests_per_minute: float = 60.0
    label_share: float = 0.5  # share of predictions that ever get a label
    label_delay_minutes: float = 30.0  # a label arrives this long after its prediction

    def step_minutes(self, weight: float, labels: int) -> float:
        """Minutes until both arms have ``labels`` labels (at 100 % only the challenger serves)."""
        share = weight if weight >= 1.0 else min(weight, 1.0 - weight)
        return labels / (self.requests_per_minute * self.label_share * share) + self.label_delay_minutes


@dataclass(frozen=True)
class Cell:
    """One rule (min_feedback, margin, alpha) against one challenger (``drop`` points below the champion)."""

    min_feedback: int
    margin: float
    alpha: float
    drop: float
    reps: int
    abort_counts: tuple[int, ...]  # rollouts aborted at each step of the plan
    challenger_requests: float  # mean requests the challenger served until abort or promotion
    minutes: float  # mean minutes until abort or promotion

    @property
    def aborted(self) -> int:
        return sum(self.abort_counts)

    @property
    def aborted_before_full(self) -> int:
        """Aborts at a step below 100 %: the challenger never served every user."""
        return sum(self.abort_counts[:-1]) if len(self.abort_counts) > 1 else self.aborted

    @property
    def abort_rate(self) -> float:
        return self.aborted / self.reps

    @property
    def detection_rate(self) -> float:
        return self.aborted_before_full / self.reps

    @property
    def rate(self) -> float:
        """The rate that matters for this challenger: false aborts if equally good, else detection."""
        return self.abort_rate if self.drop == 0 else self.detection_rate


def standard_error(rate: float, reps: int) -> float:
    """Binomial Monte-Carlo standard error of a simulated rate."""
    return math.sqrt(rate * (1 - rate) / reps)


def abort_steps(
    steps: Sequence[int],
    min_feedback: int,
    margin: float,
    alpha: float,
    drop: float,
    reps: int,
    seed: int,
    champion_accuracy: float = CHAMPION_ACCURACY,
) -> np.ndarray:
    """For each simulated rollout, the index of the step that aborted it (``len(steps)``: promoted)."""
    if list(steps) == [100]:
        raise ValueError("a plan of only 100 % has no shared step to compare in (params refuse it too)")
    rng = np.random.default_rng(seed)
    n = min_feedback
    abort_at = np.full(reps, len(steps))
    champion = np.zeros(reps, dtype=int)
    for i, step in enumerate(steps):
        challenger = rng.binomial(n, champion_accuracy - drop, size=reps)
        if step < 100:  # at 100 % the champion's baseline is the previous step's sample
            champion = rng.binomial(n, champion_accuracy, size=reps)
        breach, _ = accuracy_test(challenger, n, champion, n, margin, alpha)
        abort_at[(abort_at == len(steps)) & breach] = i
    return abort_at


def simulate(
    steps: Sequence[int],
    min_feedback: int,
    margin: float,
    alpha: float,
    drop: float,
    reps: int,
    seed: int,
    traffic: TrafficModel | None = None,
) -> Cell:
    """Run ``reps`` rollouts of the plan for one rule and one challenger; count aborts per step."""
    traffic = traffic or TrafficModel()
    at = abort_steps(steps, min_feedback, margin, alpha, drop, reps, seed)
    counts = np.bincount(at, minlength=len(steps) + 1)
    weights = [s / 100 for s in steps]
    minutes = np.array([traffic.step_minutes(w, min_feedback) for w in weights])
    served = np.array([w * traffic.requests_per_minute * m for w, m in zip(weights, minutes, strict=True)])
    # A rollout aborted at step i ran steps 0..i; a promoted one ran them all.
    upto = np.minimum(at, len(steps) - 1)
    cum_minutes, cum_served = np.cumsum(minutes), np.cumsum(served)
    return Cell(
        min_feedback,
        margin,
        alpha,
        drop,
        reps,
        tuple(int(c) for c in counts[: len(steps)]),
        float(cum_served[upto].mean()),
        float(cum_minutes[upto].mean()),
    )


def run_grid(
    steps: Sequence[int],
    reps: int,
    seed: int,
    min_feedback: Sequence[int] = MIN_FEEDBACK,
    margins: Sequence[float] = MARGINS,
    alphas: Sequence[float] = ALPHAS,
    traffic: TrafficModel | None = None,
) -> list[tuple[Cell, Cell]]:
    """(equally good, worse) cells for every rule on the grid; each rule gets its own seeds."""
    out = []
    for k, (n, m, a) in enumerate(product(min_feedback, margins, alphas)):
        good = simulate(steps, n, m, a, 0.0, reps, seed + 2 * k, traffic)
        bad = simulate(steps, n, m, a, WORSE_BY, reps, seed + 2 * k + 1, traffic)
        out.append((good, bad))
    return out


def recommend(grid: list[tuple[Cell, Cell]]) -> tuple[Cell, Cell] | None:
    """The defaults: fewest labels per step meeting both targets; among those, the fewest false aborts."""
    ok = [(g, b) for g, b in grid if g.rate <= MAX_FALSE_ABORT and b.rate >= MIN_DETECTION]
    return min(ok, key=lambda gb: (gb[0].min_feedback, gb[0].rate, -gb[1].rate)) if ok else None


def figure_series(grid: list[tuple[Cell, Cell]], chosen: tuple[Cell, Cell]) -> dict[str, list[float]]:
    """What the plot draws: both rates against min_feedback at the chosen margin and alpha."""
    g0 = chosen[0]
    rows = [(g, b) for g, b in grid if (g.margin, g.alpha) == (g0.margin, g0.alpha)]
    return {
        "min_feedback": [float(g.min_feedback) for g, _ in rows],
        "false_abort": [g.rate for g, _ in rows],
        "false_abort_se": [standard_error(g.rate, g.reps) for g, _ in rows],
        "detection": [b.rate for _, b in rows],
        "detection_se": [standard_error(b.rate, b.reps) for _, b in rows],
    }


def write_plot(grid: list[tuple[Cell, Cell]], chosen: tuple[Cell, Cell], out: Path) -> dict[str, list[float]]:
    """Left: both rates against min_feedback; right: the whole grid's trade-off. Returns the left series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = figure_series(grid, chosen)
    g0 = chosen[0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = series["min_feedback"]
    detection = f"detection ({100 * WORSE_BY:g} pts worse, before 100 %)"
    bars = {"marker": "o", "capsize": 3}
    left.errorbar(x, series["detection"], yerr=[1.96 * e for e in series["detection_se"]], label=detection, **bars)
    false_abort = [1.96 * e for e in series["false_abort_se"]]
    left.errorbar(x, series["false_abort"], yerr=false_abort, label="false abort (equally good)", **bars)
    left.axhline(MIN_DETECTION, color="tab:blue", linestyle=":", linewidth=1, label=f"target >= {MIN_DETECTION:g}")
    left.axhline(
        MAX_FALSE_ABORT, color="tab:orange", linestyle=":", linewidth=1, label=f"target <= {MAX_FALSE_ABORT:g}"
    )
    left.set_xscale("log", base=2)
    left.set_xticks(x, [f"{v:g}" for v in x])
    left.set_xlabel("min_feedback (labels per arm and step)")
    left.set_ylabel("share of simulated rollouts")
    left.set_ylim(0, 1)
    left.legend(loc="center right", fontsize=8)
    left.set_title(f"margin {100 * g0.margin:g} pts, alpha {g0.alpha:g} (bars: 95 % MC)")
    for n in sorted({g.min_feedback for g, _ in grid}):
        pts = [(g.rate, b.rate) for g, b in grid if g.min_feedback == n]
        right.scatter([p[0] for p in pts], [p[1] for p in pts], label=f"min_feedback {n}", s=18)
    right.scatter([g0.rate], [chosen[1].rate], s=140, facecolors="none", edgecolors="black", label="chosen default")
    right.axvline(MAX_FALSE_ABORT, color="grey", linestyle=":", linewidth=1)
    right.axhline(MIN_DETECTION, color="grey", linestyle=":", linewidth=1)
    right.set_xlabel("false-abort rate")
    right.set_ylabel("detection rate")
    right.set_title("every margin x alpha on the grid")
    right.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return series


def _without_margin(grid: list[tuple[Cell, Cell]], chosen: Cell) -> str:
    """The chosen rule's false aborts next to the same labels with no margin at alpha 0.05, from the grid."""
    same = [g for g, _ in grid if (g.min_feedback, g.margin, g.alpha) == (chosen.min_feedback, 0.0, 0.05)]
    if not same:
        return ""
    return (
        f"with {chosen.min_feedback} labels, alpha {chosen.alpha:g} and a {100 * chosen.margin:g}-point margin an "
        f"equally good challenger is aborted {chosen.rate:.1%} of the time; alpha 0.05 without a margin aborts "
        f"{same[0].rate:.1%}."
    )


def _pm(rate: float, reps: int) -> str:
    return f"{rate:.3f} ± {standard_error(rate, reps):.3f}"


def render_markdown(
    steps: Sequence[int],
    grid: list[tuple[Cell, Cell]],
    chosen: tuple[Cell, Cell] | None,
    seed: int,
    seconds: float,
    traffic: TrafficModel,
    image: str | None,
) -> str:
    reps = grid[0][0].reps
    lines = [
        "# Canary analysis: false aborts and detection over the step plan",
        "",
        f"Generated by `{COMMAND}` on {datetime.now(UTC):%Y-%m-%d} in {seconds:.1f} s (seed {seed}, "
        f"{reps} simulated rollouts per cell); see bench/canary_study.py for the method.",
        "",
        f"- plan: steps {list(steps)} % (rollout.steps in params.yaml); both arms over the current step's window,"
        " at 100 % the champion's sample of the previous step",
        "- rule per step: abort if the upper one-sided (1 - alpha) Newcombe bound on challenger - champion accuracy"
        " is below -margin (`serving.canary_analysis.accuracy_test`, the controller's own function), on exactly "
        "the first min_feedback labels per arm; no verdict before them",
        f"- champion accuracy {CHAMPION_ACCURACY}; challenger equally good (false abort = aborted at any step) or "
        f"{100 * WORSE_BY:g} points worse (detection = aborted before the 100 % step)",
        "- ± is the binomial Monte-Carlo standard error sqrt(p (1 - p) / reps)",
        f"- traffic model for exposure and time: {traffic.requests_per_minute:g} requests/min, "
        f"{traffic.label_share:.0%} labelled, labels {traffic.label_delay_minutes:g} min late (expected values)",
        "",
    ]
    if chosen is not None:
        g, b = chosen
        lines += [
            f"**Chosen defaults** (params.yaml): min_feedback {g.min_feedback}, accuracy_margin {g.margin:g}, "
            f"accuracy_alpha {g.alpha:g}: false aborts **{_pm(g.rate, g.reps)}**, detection **{_pm(b.rate, b.reps)}** "
            f"(aborted at any step, 100 % included: {b.abort_rate:.3f}). Rule: the fewest labels per step with "
            f"false aborts <= {MAX_FALSE_ABORT:g} and detection >= {MIN_DETECTION:g}, then the fewest false aborts. "
            f"A good rollout takes about {g.minutes / 60:.1f} h; a worse challenger serves about "
            f"{b.challenger_requests:,.0f} requests before it is stopped or promoted.",
            "",
            "Why these targets: a false abort throws away a good model and a retraining cycle, so at most one "
            "rollout in twenty; 80 % is the conventional power for the smallest harm worth catching (5 points). "
            "Labels per step are the cost (each step waits for them at 10 % of traffic), so the fewest that meet "
            "both win. alpha is per step, not per rollout, and the margin moves the null away from equality: "
            + _without_margin(grid, g)
            + " A challenger less than the margin worse is, by design, not what this rule stops.",
            "",
        ]
    else:
        lines += ["**No rule on the grid meets both targets**: more labels per step are needed.", ""]
    if image:
        lines += [f"![false aborts and detection against min_feedback]({image})", ""]
    lines += [
        "| min_feedback | margin | alpha | false abort | detection (before 100 %) | worse: aborted at all |"
        " worse: challenger requests | good: hours to promote |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for g, b in grid:
        mark = " **(default)**" if chosen is not None and (g, b) == chosen else ""
        lines.append(
            f"| {g.min_feedback}{mark} | {g.margin:g} | {g.alpha:g} | {_pm(g.rate, g.reps)} | {_pm(b.rate, b.reps)} | "
            f"{b.abort_rate:.3f} | {b.challenger_requests:,.0f} | {g.minutes / 60:.1f} |"
        )
    lines += [
        "",
        "Reading: each step is one test at level alpha on a fresh challenger sample, so an equally good challenger "
        "has up to four chances to be falsely aborted: at most about 1 - (1 - alpha)^4 with margin 0, less with a "
        "margin (the margin moves the null away from equality). Detection grows with labels per step; a margin "
        "buys fewer false aborts at the price of detection, because a 5-point drop is then only 5 - margin points "
        "beyond the null. The 100 % step reuses the champion's previous sample, so its test is correlated with "
        "the step before. What is not covered: the error-rate and latency guard rails "
        "(observed-value limits, re-read at every tick while a step waits for labels), label noise or delay that "
        "differs by arm, a traffic or label mix that shifts between steps (the 100 % baseline is historical), "
        "and users with many requests (the unit is a labelled prediction, not a user).",
        "",
    ]
    return "\n".join(lines)


def write_doc(
    params: RolloutParams, out: Path, reps: int = DOC_REPS, seed: int = DOC_SEED, traffic: TrafficModel | None = None
) -> Path:
    """Run the grid on the configured step plan; write the Markdown table and the plot next to it."""
    start = time.perf_counter()
    traffic = traffic or TrafficModel()
    grid = run_grid(params.steps, reps, seed, traffic=traffic)
    chosen = recommend(grid)
    image = None
    if chosen is not None:
        png = out.with_suffix(".png")
        write_plot(grid, chosen, png)
        image = png.name
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render_markdown(params.steps, grid, chosen, seed, time.perf_counter() - start, traffic, image)
    out.write_text(text, encoding="utf-8")
    return out
