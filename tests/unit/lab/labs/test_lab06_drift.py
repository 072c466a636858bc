"""Lab 6's checker, the pure part: which training files the retraining flow wrote."""

from __future__ import annotations


def test_only_the_retraining_flows_files_count_as_trained_by_the_retrain(tmp_path, make_settings, params) -> None:
    from core.context import LabContext
    from lab.labs.lab06_drift import made_by_retrain

    ctx = LabContext(make_settings(tmp_path / "state"), params)
    assert made_by_retrain(ctx, str(ctx.settings.state / "retrain" / "train-20260101T000000.csv"))
    assert not made_by_retrain(ctx, str(ctx.settings.state / "iris.csv"))
    assert not made_by_retrain(ctx, None)
