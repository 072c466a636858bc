"""Demo ``attribution``: which features the model leans on, before and after the traffic changed.

Concept: feature-attribution drift (C35). A quick model (the project's pipeline, trained in
process on the raw iris data) is explained by permutation importance on its reference data and on
three windows of traffic: a clean one, one where the petal sensors are stuck at a single reading,
and a concept-shift batch (same inputs, two labels swapped). Without labels the model's own
predictions are the targets, which shows how its *decisions* depend on each feature; with feedback
labels the targets are the truth, which shows which features still *help*.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.demos.prep import ensure_raw_data
from monitoring.attribution_drift import check_attribution_drift
from pipelines.batches import generate_batch
from pipelines.data import read_csv
from pipelines.fit import fit_and_evaluate

if TYPE_CHECKING:
    import pandas as pd

    from core.context import LabContext
    from core.findings import Finding
    from lab.narrate import Narrator

WINDOW_ROWS = 1000


def _shares_table(n: Narrator, title: str, finding: Finding, features: list[str]) -> None:
    ref, cur = finding.details["reference"]["shares"], finding.details["window"]["shares"]
    n.table(
        title,
        ["feature", "reference share", "window share", "change"],
        [[f, f"{ref[f]:.0%}", f"{cur[f]:.0%}", f"{cur[f] - ref[f]:+.0%}"] for f in features],
    )
    rho = finding.details.get("spearman")
    rank = "undefined" if rho is None else f"{rho:+.2f}"
    (n.bad if finding.fired else n.ok)(f"attribution_drift {finding.status}: {finding.summary}; rank corr {rank}")


def run(n: Narrator, ctx: LabContext) -> None:
    """Importance shares on reference vs window: quiet on clean traffic, loud when the deciding features change."""
    p, cfg = ctx.params, ctx.params.monitoring.attribution_drift
    features, target = p.dataset.feature_names, p.dataset.target
    n.title("Attribution drift: has the model changed its reasons?", "C35 feature-attribution drift")

    n.step("Train a quick model on the raw data; its training data is the reference")
    raw = read_csv(ensure_raw_data(ctx, n))
    model = fit_and_evaluate(raw, p).pipeline
    n.say(f"{p.train.estimator} pipeline, {len(raw)} reference rows; windows of {WINDOW_ROWS} rows")
    n.why(
        f"permutation importance: shuffle one feature, count the accuracy lost ({cfg.n_repeats} repeats, "
        f"seed {cfg.seed}, at most {cfg.max_rows} rows a side); shares make a harder window comparable"
    )

    def check(window: pd.DataFrame, labels: bool) -> Finding:
        return check_attribution_drift(
            model,
            raw,
            window,
            features,
            cfg,
            reference_labels=raw[target] if labels else None,
            window_labels=window[target] if labels else None,
            min_rows=p.monitoring.min_rows,
        )

    n.step("A clean window, no labels yet: the model's own predictions are the targets")
    clean = generate_batch("clean", raw, p, rows=WINDOW_ROWS, seed=51)
    _shares_table(n, "clean traffic", check(clean, labels=False), features)
    n.why(f"score = half the L1 distance between the share vectors (0 same, 1 disjoint); fires above {cfg.threshold}")

    n.step("The petal sensors get stuck at one reading (4.9 cm, 1.7 cm)")
    stuck = generate_batch("clean", raw, p, rows=WINDOW_ROWS, seed=52)
    stuck["petal_length"], stuck["petal_width"] = 4.9, 1.7
    _shares_table(n, "stuck petal sensors", check(stuck, labels=False), features)
    n.why("the petals no longer vary, so the sepals now decide every answer: the model works on other evidence")

    n.step("A concept shift: the same inputs, versicolor and virginica relabelled")
    shifted = generate_batch("concept-shift", raw, p, rows=WINDOW_ROWS, seed=53)
    _shares_table(n, "concept shift, predictions as targets", check(shifted, labels=False), features)
    n.why("without labels the check sees the same decisions on the same inputs: it is blind to a new truth")
    _shares_table(n, "concept shift, feedback labels as targets", check(shifted, labels=True), features)
    n.why("with labels, shuffling a petal feature no longer costs accuracy where the truth moved: the reasons broke")
    n.say(
        "SHAP would give per-row attributions, but here one share per feature is the signal, and it costs no dependency"
    )
    n.code(
        "monitoring/attribution_drift.py::check_attribution_drift",
        "monitoring/attribution_drift.py::attribution_change",
    )
