"""The narrated monitoring demos run on a fresh state and print the verdicts they claim.

The drift demo runs twice on one state folder: first with an empty registry (it fits a pipeline on
the spot), then after a champion was trained (it must use that one). The verdicts are deterministic:
fixed seeds, the params.yaml thresholds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.context import LabContext

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, make_settings, demo_context) -> LabContext:
    settings = make_settings(tmp_path_factory.mktemp("monitoring-demos") / "state")
    return demo_context(settings)


def assert_drift_verdicts(out: str) -> None:
    assert "data drift inconclusive" in out  # the tiny window
    assert "clean: data drift ok" in out
    assert "clean: prediction drift ok" in out
    assert "covariate-shift: data drift FIRED" in out
    assert "2 of 4 features drifted (sepal_length, sepal_width)" in out
    assert "prior-shift: data drift FIRED" in out
    assert "prior-shift: prediction drift FIRED" in out
    assert "concept-shift: data drift ok" in out  # invisible to input drift ...
    assert "concept-shift: prediction drift ok" in out  # ... and to output drift
    assert "Traceback" not in out


def test_drift_demo_shows_what_each_check_can_see(run_demo, ctx: LabContext) -> None:
    out = run_demo("drift", ctx, width=220)
    assert "no champion registered" in out
    assert_drift_verdicts(out)
    reports = ctx.settings.reports_dir / "drift-demo"
    for kind in ("clean", "covariate-shift", "prior-shift", "concept-shift"):
        html = reports / kind / "data-drift.html"
        assert html.stat().st_size > 100_000  # Evidently's self-contained page
        assert str(Path(kind) / "data-drift.html") in out
    assert (reports / "findings-over-time.png").stat().st_size > 10_000  # the windows' scores, drawn
    assert "drift-demo/findings-over-time.png" in out


def test_drift_demo_uses_the_champion_when_there_is_one(run_demo, ctx: LabContext) -> None:
    from lab.demos.prep import ensure_champion

    version = ensure_champion(ctx)
    out = run_demo("drift", ctx, width=220)
    assert f"model: the champion, version {version}" in out
    assert_drift_verdicts(out)
