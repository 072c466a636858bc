"""The canary study: seeded, run through the controller's own decision, and the doc's defaults are params.yaml's.

Bounds: 400 simulated rollouts per cell. With the chosen defaults the equally good challenger's
false-abort rate must stay at or below the 0.05 target plus three standard errors of a 0.05 rate at 400
runs (0.033), and the 5-point-worse challenger must be stopped before 100 % at least 0.80 minus three
standard errors of a 0.80 rate (0.06) of the time; the doc measured 0.041 and 0.839 at 2,000 runs.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import bench.canary_study as study
import serving.canary_analysis
from core.params import RolloutParams, load_params

REPO = Path(__file__).resolve().parents[3]
STEPS, REPS = [10, 25, 50, 100], 400


def _rates_in_table(markdown: str, margin: float, alpha: float) -> dict[int, tuple[float, float]]:
    """min_feedback -> (false abort, detection) from the rendered table, for one margin and alpha."""
    rows: dict[int, tuple[float, float]] = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 8 and cells[0][:1].isdigit() and (float(cells[1]), float(cells[2])) == (margin, alpha):
            rows[int(cells[0].split()[0])] = (float(cells[3].split()[0]), float(cells[4].split()[0]))
    return rows


def test_the_study_runs_the_controllers_own_decision_function(monkeypatch: pytest.MonkeyPatch) -> None:
    assert study.accuracy_test is serving.canary_analysis.accuracy_test  # the same object, not a copy
    calls: list[int] = []
    real = serving.canary_analysis.accuracy_test

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(study, "accuracy_test", counting)
    study.abort_steps(STEPS, 50, 0.02, 0.1, 0.0, reps=20, seed=1)
    assert len(calls) == len(STEPS)  # one vectorised call per step covers every simulated rollout


def test_the_defaults_keep_false_aborts_and_detection_on_target_within_monte_carlo_error() -> None:
    p = RolloutParams()
    good = study.simulate(STEPS, p.min_feedback, p.accuracy_margin, p.accuracy_alpha, 0.0, REPS, seed=7)
    bad = study.simulate(STEPS, p.min_feedback, p.accuracy_margin, p.accuracy_alpha, study.WORSE_BY, REPS, seed=8)
    assert good.rate <= study.MAX_FALSE_ABORT + 3 * math.sqrt(0.05 * 0.95 / REPS)
    assert bad.rate >= study.MIN_DETECTION - 3 * math.sqrt(0.8 * 0.2 / REPS)
    assert bad.abort_rate >= bad.detection_rate  # aborting at 100 % too counts as aborted, not as detected


def test_detection_grows_with_labels_per_step_and_the_run_is_reproducible() -> None:
    grid = study.run_grid(STEPS, REPS, seed=3, min_feedback=(50, 400), margins=(0.02,), alphas=(0.1,))
    (_, few), (_, many) = grid
    assert few.rate < many.rate
    again = study.run_grid(STEPS, REPS, seed=3, min_feedback=(50, 400), margins=(0.02,), alphas=(0.1,))
    assert [(g.abort_counts, b.abort_counts) for g, b in again] == [(g.abort_counts, b.abort_counts) for g, b in grid]


def test_the_plot_draws_the_tables_numbers(tmp_path: Path) -> None:
    grid = study.run_grid(STEPS, 100, seed=5, min_feedback=(50, 200), margins=(0.0, 0.02), alphas=(0.1,))
    chosen = grid[-1]  # min_feedback 200, margin 0.02, alpha 0.1
    series = study.write_plot(grid, chosen, tmp_path / "canary.png")
    assert (tmp_path / "canary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = _rates_in_table(
        study.render_markdown(STEPS, grid, chosen, 5, 0.1, study.TrafficModel(), "canary.png"), 0.02, 0.1
    )
    plotted = {
        int(n): (round(f, 3), round(d, 3))
        for n, f, d in zip(series["min_feedback"], series["false_abort"], series["detection"], strict=True)
    }
    assert plotted == table
    assert sorted(table) == [50, 200]


def test_a_plan_without_a_shared_step_is_refused() -> None:
    with pytest.raises(ValueError, match="no shared step"):
        study.abort_steps([100], 50, 0.02, 0.1, 0.0, reps=10, seed=1)


def test_params_yaml_carries_the_defaults_the_committed_study_chose() -> None:
    doc = (REPO / "docs" / "canary-study.md").read_text(encoding="utf-8")
    found = re.search(r"min_feedback (\d+), accuracy_margin ([\d.]+), accuracy_alpha ([\d.]+)", doc)
    assert found, "docs/canary-study.md names no chosen defaults: run `mlops-lab study canary`"
    rollout = load_params(REPO / "params.yaml").rollout
    assert (rollout.min_feedback, rollout.accuracy_margin, rollout.accuracy_alpha) == (
        int(found[1]),
        float(found[2]),
        float(found[3]),
    )
    assert f"steps {rollout.steps} %" in doc  # the study ran the configured plan
    defaults = RolloutParams()
    assert (defaults.min_feedback, defaults.accuracy_margin, defaults.accuracy_alpha) == (
        rollout.min_feedback,
        rollout.accuracy_margin,
        rollout.accuracy_alpha,
    )
