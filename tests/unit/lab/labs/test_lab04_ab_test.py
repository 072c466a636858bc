"""Lab 4's checker, the pure parts: the A/B rows of the two versions counted, the accepted decision."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest


def test_ab_outcomes_count_only_ab_rows_of_the_two_versions(ab_frame: Callable[..., pd.DataFrame]) -> None:
    from lab.labs.lab04_ab_test import ab_outcomes

    frame = ab_frame(
        ("ab", "champion", "1", 120, 110),
        ("ab", "challenger", "2", 100, 97),
        ("canary", "champion", "1", 50, 0),  # not A/B
        ("ab", "challenger", "9", 40, 0),  # another challenger
    )
    a, b = ab_outcomes(frame, "1", "2", planned=435)
    assert (a.labelled, a.correct, b.labelled, b.correct) == (120, 110, 100, 97)
    # Past the horizon only the first labels to arrive count: the champion's first 100 hold 100 right ones.
    a, b = ab_outcomes(frame, "1", "2", planned=100)
    assert (a.labelled, a.correct, b.labelled, b.correct) == (100, 100, 100, 97)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((30, 28), (40, 40), "wait"),  # too few labels, whatever it looks like
        ((400, 300), (400, 380), "wait"),  # B clearly better, but 35 labels short of the horizon in each arm
        ((435, 330), (435, 410), "ship"),  # B clearly better at the horizon
        ((435, 410), (435, 330), "keep"),  # A clearly better
        ((435, 413), (435, 415), "keep"),  # no significant difference
    ],
)
def test_the_supported_decision_follows_the_ab_test(params, a, b, expected) -> None:
    from lab.labs.lab04_ab_test import ANSWERS, normalise
    from monitoring.ab_stats import ArmOutcome, decide

    verdict = decide(ArmOutcome(*a), ArmOutcome(*b), params.monitoring.ab_test).verdict
    assert ANSWERS[verdict] == expected
    assert normalise(f"  {expected.upper()} ") == expected
    assert normalise(" ") is None
