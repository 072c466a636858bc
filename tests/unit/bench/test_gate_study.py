"""The gate study: a small seeded run keeps the false-rejection rate within alpha, and power grows with the drop.

Bounds: 400 holdouts of 45 rows per cell. For an equally good candidate the gate's rate must stay at or
below alpha (0.05) plus three standard errors of a 0.05 rate at 400 runs (0.033); the old tolerance
rule on the same draws rejects far more (measured about 0.3-0.4), so the test tells the rules apart.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.gate_study import DISAGREEMENTS, plot, render_markdown, run_study, simulate, size_study

N, ALPHA, REPS = 45, 0.05, 400


def test_an_equally_good_candidate_is_falsely_rejected_at_most_alpha_within_monte_carlo_error() -> None:
    cell = simulate(N, drop=0.0, fixes=0.05, reps=REPS, seed=1, alpha=ALPHA)
    assert cell.rate <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)
    assert cell.old_rate > 0.2  # the 0.02 tolerance rejects one extra error on 45 rows


def test_detection_grows_with_the_drop_and_is_reproducible() -> None:
    cells = run_study(N, ALPHA, REPS, seed=3, drops=(0.0, 0.05, 0.10))
    by_fixes = [cells[:3], cells[3:]]
    for row in by_fixes:
        assert row[0].rate < row[1].rate < row[2].rate
    assert [c.rejected for c in run_study(N, ALPHA, REPS, seed=3, drops=(0.0, 0.05, 0.10))] == [
        c.rejected for c in cells
    ]
    table = render_markdown(N, ALPHA, cells, 3, 0.1)
    assert "a rejection needs >= 5 rows against the candidate, a drop of at least 0.111" in table


def test_the_plot_and_the_size_table_show_the_same_numbers(tmp_path: Path) -> None:
    cells = run_study(N, ALPHA, 200, seed=5, drops=(0.0, 0.05))
    sizes = size_study(ALPHA, 200, seed=5, sizes=(45, 200))
    image = tmp_path / "gate.png"
    plotted = plot(cells, sizes, N, image)
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for fixes in DISAGREEMENTS:
        row = [c for c in cells if c.fixes == fixes]
        assert plotted[f"gate, fixes {fixes:g}"] == [c.rate for c in row]
        assert plotted[f"old rule, fixes {fixes:g}"] == [c.old_rate for c in row]
    assert plotted["equally good: false rejection"] == [s[1].rate for s in sizes]
    assert plotted["5 points worse: detection"] == [s[2].rate for s in sizes]
    assert sizes[1][2].rate > sizes[0][2].rate  # a bigger holdout catches the same drop more often
    table = render_markdown(N, ALPHA, cells, 5, 0.1, sizes, image.name)
    assert f"| 200 | 0.0050 | 0.025 | {sizes[1][1].rate:.3f} | {sizes[1][2].rate:.3f} |" in table
    assert "![rejection rate by drop and by holdout size](gate.png)" in table
