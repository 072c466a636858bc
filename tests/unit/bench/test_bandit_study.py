"""The bandit study: small seeded runs of the delayed, polled Thompson sampler against its baselines.

Bounds are Monte-Carlo errors: each comparison needs a margin of several standard errors of the means
(30-200 runs), and the vectorised sampler is checked against the service's own `serving.bandit.simulate`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from bench.bandit_study import (
    CHALLENGER,
    CHAMPION,
    POLICIES,
    Run,
    explore_then_commit,
    fixed_split,
    requests_per_poll,
    scenarios,
    thompson,
    write_doc,
)
from serving.bandit import simulate

STEPS = 1000
STATIONARY, DRIFTING = scenarios(STEPS)


def apart(a: Run, b: Run) -> float:
    """How many standard errors of the difference separate two means."""
    return (b.mean - a.mean) / math.hypot(a.stderr, b.stderr)


def test_the_vectorised_sampler_matches_the_services_thompson_sampling_without_delay() -> None:
    ours = thompson(STATIONARY, STEPS, delay=0, reps=200, seed=1)
    theirs = np.array(
        [simulate({"champion": CHAMPION, "challenger": CHALLENGER}, STEPS, seed=s).total_regret for s in range(60)]
    )
    theirs_se = theirs.std(ddof=1) / math.sqrt(len(theirs))
    assert abs(ours.mean - theirs.mean()) <= 4 * math.hypot(ours.stderr, theirs_se)


def test_a_fixed_split_loses_half_the_gap_per_request_and_a_frozen_posterior_is_a_split() -> None:
    split = fixed_split(STATIONARY, STEPS, reps=200, seed=2)
    expected = 0.5 * (CHALLENGER - CHAMPION) * STEPS
    assert abs(split.mean - expected) <= 4 * split.stderr
    frozen = thompson(STATIONARY, STEPS, delay=0, reps=200, seed=3, per_poll=STEPS)  # one poll: priors only
    assert abs(frozen.mean - expected) <= 4 * frozen.stderr + 4 * split.stderr


def test_label_delay_erodes_thompsons_advantage() -> None:
    runs = [thompson(STATIONARY, STEPS, delay=d, reps=100, seed=4 + d) for d in (0, 300, 600)]
    split = fixed_split(STATIONARY, STEPS, reps=100, seed=5)
    assert apart(runs[0], runs[1]) > 4
    assert apart(runs[1], runs[2]) > 4
    assert apart(runs[2], split) > 4  # still better than the split while labels arrive within the horizon
    late = thompson(STATIONARY, STEPS, delay=STEPS, reps=60, seed=6)  # no label arrives in time: a 50/50 split
    assert abs(late.mean - split.mean) <= 4 * math.hypot(late.stderr, split.stderr)
    etc = explore_then_commit(STATIONARY, STEPS, delay=STEPS, reps=60, seed=7, test_length=400)
    assert etc.mean == pytest.approx(split.mean, rel=0.2)  # the test never decides in time: a split


def test_plain_thompson_trails_a_drifting_arm_and_discounting_recovers() -> None:
    plain = thompson(DRIFTING, STEPS, delay=0, reps=60, seed=8)
    discounted = thompson(DRIFTING, STEPS, delay=0, reps=60, seed=9, discount=0.99)
    assert apart(discounted, plain) > 4
    steady = thompson(STATIONARY, STEPS, delay=0, reps=60, seed=10)
    assert apart(steady, thompson(STATIONARY, STEPS, delay=0, reps=60, seed=11, discount=0.99)) > 4  # its price


def test_the_poll_routes_one_request_per_read_at_the_studys_traffic() -> None:
    assert requests_per_poll(1000, 5.0) == 1
    assert requests_per_poll(10 * 86_400, 5.0) == 50


def test_doc_and_picture_come_from_the_same_study(tmp_path: Path) -> None:
    written = write_doc(tmp_path / "bandit-study.md", reps=20, seed=12, days=4, per_day=250, delays_days=(0, 1, 2))
    assert written.png.stat().st_size > 10_000
    text = written.doc.read_text(encoding="utf-8")
    assert "uv run mlops-lab study bandit" in text
    assert f"![Cumulative regret, bandit vs A/B split, with and without label delay]({written.png.name})" in text
    study = written.study
    for scenario in ("stationary", "drifting"):
        for delay in study.delays:
            cells = [study.run(p, scenario, delay) for p in POLICIES]
            row = f"| {scenario} | {delay / 250:g} d | " + " | ".join(f"{c.mean:.1f} ± {c.stderr:.1f}" for c in cells)
            assert row in text
        for label, (x, y) in written.drawn[scenario].items():
            policy, _, late = label.partition(", labels ")
            delay = int(float(late.split()[0]) * 250) if late else 0
            run = study.run(policy, scenario, delay)
            assert y == pytest.approx(list(run.curve))  # the drawn line is the run's mean curve
            assert y[-1] == pytest.approx(run.mean)  # ... ending at the table's number
            assert x[-1] == pytest.approx(4.0)
    labels = set(written.drawn["stationary"])
    assert {"fixed_split", "thompson, labels 0 d late", "thompson, labels 2 d late"} <= labels
    assert re.search(r"\| stationary \| 2 d \| [0-9.]+ ± [0-9.]+ \|", text)
