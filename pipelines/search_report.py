"""The search's comparison report: a table of every trial and a plot of the objective by trial.

Concept: hyperparameter search (C56). Both are logged to the study's parent MLflow run (``search/``). The plot
returns the series it drew, read back from the figure (core/figures.py), so a test compares it with the trials.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pipelines.search import COMPLETE, PRUNED, StudyOutcome, TrialRecord

COLUMNS = ["trial", "state", "params", "cv_mean", "cv_sd", "folds_run"]


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def trial_rows(outcome: StudyOutcome) -> list[list[Any]]:
    """One row per trial, in trial order: number, state, params, CV mean, CV sd, folds run."""
    return [[t.number, t.state, _params_text(t.params), t.mean, t.std, t.folds_run] for t in outcome.trials]


def trials_csv(outcome: StudyOutcome) -> str:
    """The table as CSV, at full precision (params as JSON-like ``k=v`` text)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(trial_rows(outcome))
    return out.getvalue()


def trials_markdown(outcome: StudyOutcome, folds: int) -> str:
    """The table as Markdown, the winner marked, with a line on what pruning saved."""
    summary = outcome.summary()
    lines = [
        "# Hyperparameter search",
        "",
        f"{summary['trials']} trials ({summary['complete']} complete, {summary['pruned']} pruned); "
        f"the winner by mean CV accuracy on the training part is trial {summary['best_trial']} "
        f"({_params_text(summary['best_params'])}, {summary['best_cv_accuracy_mean']:.4f}).",
        f"Folds evaluated: {sum(t.folds_run for t in outcome.trials)} of {folds * len(outcome.trials)} "
        "(pruned trials stop early).",
        "",
        "| trial | state | params | CV mean ± sd | folds run |",
        "|---:|---|---|---|---:|",
    ]
    for t in outcome.trials:
        mark = " **best**" if t.number == outcome.best.number else ""
        lines.append(
            f"| {t.number}{mark} | {t.state} | {_params_text(t.params)} | {t.mean:.4f} ± {t.std:.4f} | "
            f"{t.folds_run}/{folds} |"
        )
    return "\n".join(lines) + "\n"


def best_so_far(trials: list[TrialRecord]) -> tuple[list[float], list[float]]:
    """(trial number, best complete CV mean up to it), from the first complete trial on."""
    xs, ys, best = [], [], float("-inf")
    for t in trials:
        if t.state == COMPLETE:
            best = max(best, t.mean)
        if best > float("-inf"):
            xs.append(float(t.number))
            ys.append(best)
    return xs, ys


def plot_objective(outcome: StudyOutcome, path: Path) -> dict[str, tuple[list[float], list[float]]]:
    """PNG of the CV mean by trial (pruned ones at the mean they were stopped with) and the best-so-far line.

    Returns the series as drawn: ``complete``, ``pruned`` and ``best_so_far``, each (x, y).
    """
    from core.figures import drawn, pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    series: dict[str, tuple[list[float], list[float]]] = {}
    for state, marker, colour in ((COMPLETE, "o", "tab:blue"), (PRUNED, "x", "tab:red")):
        chosen = [t for t in outcome.trials if t.state == state]
        points = ax.scatter(
            [float(t.number) for t in chosen],
            [t.mean for t in chosen],
            marker=marker,
            color=colour,
            label=f"{state.lower()} ({len(chosen)})",
        )
        xs, ys = drawn(points)
        series[state.lower()] = ([float(x) for x in xs], ys)
    xs, ys = best_so_far(outcome.trials)
    (line,) = ax.step(xs, ys, where="post", color="black", label="best so far")
    line_x, line_y = drawn(line)
    series["best_so_far"] = ([float(x) for x in line_x], line_y)
    ax.set_xlabel("trial")
    ax.set_ylabel("mean CV accuracy (training part)")
    ax.set_title("Objective by trial (pruned: mean of the folds run)")
    ax.legend(loc="best")
    save(fig, path)
    return series
