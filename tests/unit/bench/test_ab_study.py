"""The A/B study: a small seeded run shows the fixed-horizon per-user rule within alpha where peeking and
per-request tests are not, gives power for a 5-point effect, and plots exactly the table's numbers.

Bounds: 1,500 replications per row. A rate at alpha = 0.05 has a Monte-Carlo standard error of
sqrt(0.05 * 0.95 / 1500) = 0.0056; the product's rule must stay below alpha + 3 SE = 0.067. Peeking at
9 looks measured about 0.15 (independent) and 0.21 (returning users), the per-request single test on
returning users about 0.10, so the bounds below tell the rules apart.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.ab_study import POPULATIONS, RULES, looks, plot, render_markdown, run_study, simulate
from core.params import ABTestParams
from monitoring.ab_stats import ArmOutcome, decide, horizon

PARAMS = ABTestParams()
REPS = 1500
LIMIT = PARAMS.alpha + 3 * math.sqrt(PARAMS.alpha * (1 - PARAMS.alpha) / REPS)


@pytest.fixture(scope="module")
def cells() -> list:
    return run_study(PARAMS, REPS, seed=11)


def rate(cells: list, population: str, effect: float, rule: str) -> float:
    return next(c.rate for c in cells if (c.population, c.effect, c.rule) == (population, effect, rule))


def test_the_products_rule_keeps_alpha_and_peeking_or_ignoring_users_does_not(cells: list) -> None:
    product, per_request, peeking = RULES
    for population in POPULATIONS:
        assert rate(cells, population, 0.0, product) <= LIMIT
        assert rate(cells, population, 0.0, peeking) > 2 * PARAMS.alpha  # the old rule: a look every 50 labels
    assert rate(cells, "returning users", 0.0, per_request) > LIMIT  # clustered users break the request-level test
    assert looks(horizon(PARAMS)) == [100, 150, 200, 250, 300, 350, 400, 435]


def test_power_for_a_five_point_drop_is_the_planned_eighty_percent_with_independent_labels(cells: list) -> None:
    product = RULES[0]
    assert rate(cells, "one label per user", 0.05, product) == pytest.approx(PARAMS.power, abs=0.04)
    # returning users carry less information per label: the same horizon buys less power
    assert rate(cells, "returning users", 0.05, product) < rate(cells, "one label per user", 0.05, product) - 0.05


def test_the_vectorised_rule_is_the_product_decide() -> None:
    """A few replications replayed one by one through `decide` give the same rejections as the study."""
    import numpy as np

    from bench.ab_study import draw_arm, per_user

    n = horizon(PARAMS)
    rng = np.random.default_rng(3)
    ca, ua = draw_arm(rng, 30, n, 0.95, returning=True)
    cb, ub = draw_arm(rng, 30, n, 0.95, returning=True)  # the draws `simulate` makes with seed 3
    cell = simulate(PARAMS, "returning users", 0.0, 30, seed=3)[0]
    hits = 0
    for i in range(30):
        arms = []
        for correct, users in ((ca, ua), (cb, ub)):
            labelled, right = per_user(correct[i : i + 1], users[i : i + 1])
            units = tuple((int(a), int(b)) for a, b in zip(labelled[0], right[0], strict=True) if a > 0)
            arms.append(ArmOutcome(n, int(correct[i].sum()), units))
        hits += decide(arms[0], arms[1], PARAMS).verdict != "no_difference"
    assert hits == cell.rejected


def test_the_plot_shows_the_tables_numbers(cells: list, tmp_path: Path) -> None:
    image = tmp_path / "ab.png"
    plotted = plot(cells, PARAMS.alpha, image)
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for population in POPULATIONS:
        for effect in (0.0, 0.05):
            assert plotted[f"{effect:g}/{population}"] == [rate(cells, population, effect, r) for r in RULES]
    table = render_markdown(PARAMS, cells, 11, 0.1, image.name)
    assert "**435 labels per arm**" in table
    assert (
        f"| returning users | A/A (false positive) | {RULES[0]} | {rate(cells, 'returning users', 0.0, RULES[0]):.3f} |"
        in table
    )
    assert "![false-positive rate and power per rule](ab.png)" in table
    assert run_study(PARAMS, 50, seed=11) == run_study(PARAMS, 50, seed=11)  # seeded
