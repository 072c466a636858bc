"""Lab 3's checker, the pure part: the metric an abort reason names."""

from __future__ import annotations


def test_abort_reasons_name_the_metric_that_breached() -> None:
    from lab.labs.lab03_canary import metric_named

    assert metric_named("analysis at 10 %: breach: online_accuracy: challenger 20/68") == "online_accuracy"
    assert metric_named("analysis at 10 %: breach: error_rate_increase: +3 pts") == "error_rate_increase"
    assert metric_named("operator: looked wrong to me") is None
