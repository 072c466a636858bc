"""Lab 5's checker, the pure part: regret per phase from pooled accuracy and the worse arm's share."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest


def test_regret_per_phase_uses_pooled_accuracy_and_the_worse_arms_share(ab_frame: Callable[..., pd.DataFrame]) -> None:
    from lab.labs.lab05_bandit import arm_accuracy, lower_regret, phase

    frame = ab_frame(
        ("bandit", "champion", "1", 90, 81),
        ("bandit", "challenger", "2", 10, 5),
        ("ab", "champion", "1", 50, 45),
        ("ab", "challenger", "2", 50, 25),
    )
    accuracy = arm_accuracy(frame)
    assert accuracy == {"champion": pytest.approx(0.9), "challenger": pytest.approx(0.5)}
    bandit, ab = phase(frame, "bandit", accuracy), phase(frame, "ab", accuracy)
    assert bandit.better_share == pytest.approx(0.9)
    assert ab.better_share == pytest.approx(0.5)
    assert bandit.regret_per_100 == pytest.approx(0.1 * 0.4 * 100)  # 10 % on the worse arm, 40 pts worse
    assert ab.regret_per_100 == pytest.approx(0.5 * 0.4 * 100)
    assert lower_regret(bandit, ab) == "bandit"
    assert lower_regret(ab, bandit) == "ab"
