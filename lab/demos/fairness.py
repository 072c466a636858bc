"""Demo ``fairness`` (C58, C41): fairness metrics by name on a planted bias, the gate's verdict, a mitigation.

Two sites measure flowers; site B (30 % of the rows) reads petals 0.6 cm short (pipelines/fair_groups.py,
seeded). A model trained on both without knowing the site misses site B's virginica. The demo prints
fairlearn's figures for "predicted virginica" (one-vs-rest) per site, the gate's fairness check on the
candidate's test split (the function the gate calls), then per-site thresholds (fairlearn's
ThresholdOptimizer, equalized odds) fitted on other rows, before and after side by side with the
accuracy, then the same check on labelled production rows and how often the bound errs at our size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from pipelines.fair_groups import DEFAULT_SHARE_B, DEFAULT_SHIFT_CM, SITES, biased_rows
from pipelines.fairness import (
    FairnessReport,
    fairness_check,
    fairness_report,
    mitigate_with_thresholds,
    positive_class_of,
)

if TYPE_CHECKING:
    from core.context import LabContext
    from lab.narrate import Narrator


def _rate(value: float) -> str:
    return "n/a" if value != value else f"{value:.3f}"  # NaN: a group without positives (or negatives)


def _error(difference: float, refused: float, bound: float) -> str:
    return f"false refusal {refused:.1%}" if difference <= bound else f"false pass {1 - refused:.1%}"


def _groups_table(n: Narrator, title: str, report: FairnessReport) -> None:
    rates = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")
    rows = [[g.group, g.n, g.positives, *(_rate(getattr(g, k)) for k in rates)] for g in report.groups]
    n.table(title, ["site", "rows", "virginica", "selection rate", "recall (TPR)", "FPR", "accuracy"], rows)


def _before_after(n: Narrator, before: FairnessReport, after: FairnessReport) -> None:
    def site_b(report: FairnessReport) -> str:
        return _rate(next(g.true_positive_rate for g in report.groups if g.group == SITES[1]))

    figures = {
        "demographic parity difference": "demographic_parity_difference",
        "equalized-odds difference": "equalized_odds_difference",
        "disparate impact ratio (4/5 rule)": "disparate_impact_ratio",
    }
    rows = [
        ["accuracy (3 classes)", f"{before.accuracy:.3f}", f"{after.accuracy:.3f}"],
        ["site-b recall of virginica", site_b(before), site_b(after)],
        *([name, f"{getattr(before, key):.3f}", f"{getattr(after, key):.3f}"] for name, key in figures.items()),
    ]
    n.table("before / after per-site thresholds (1,000 new rows)", ["figure", "before", "after"], rows)


def run(n: Narrator, ctx: LabContext) -> None:
    from bench.fairness_study import gate_error_study, judged_rows_per_group
    from monitoring.fairness_check import check_fairness
    from pipelines.data import build_raw_frame
    from pipelines.fit import fit_and_evaluate

    n.title("Fairness metrics and mitigation", "C58 C41")
    params = ctx.params
    cfg, column = params.gate.fairness, params.dataset.group_column or "source"
    features, target, classes = params.dataset.feature_names, params.dataset.target, list(params.dataset.classes)
    positive = positive_class_of(cfg, classes)
    reference = build_raw_frame(params.dataset, params.ingest)

    n.step(f"A planted bias: {SITES[1]} ({DEFAULT_SHARE_B:.0%} of rows) reads petals {DEFAULT_SHIFT_CM} cm short")
    train = biased_rows(reference, params, rows=400, seed=1)
    calibrate = biased_rows(reference, params, rows=400, seed=2)
    fresh = biased_rows(reference, params, rows=1000, seed=3)
    n.say(f"seeded rows from pipelines/fair_groups.py: {len(train)} to train, {len(calibrate)} to fit thresholds,")
    n.say(f"{len(fresh)} new ones to measure; the labels are true, only site B's instrument is off")
    result = fit_and_evaluate(train, params)
    model = result.pipeline

    n.step(f'Fairlearn\'s metrics by name, positive outcome = "predicted {positive}" (one-vs-rest)')
    before = fairness_report(fresh[target], model.predict(fresh[features]), fresh[column], positive, column)
    _groups_table(n, f"per {column}, the trained model", before)
    for cls, figures in before.per_class.items():
        n.say(
            f"{cls:<11} demographic parity difference {figures['demographic_parity_difference']:.3f}, "
            f"equalized-odds difference {figures['equalized_odds_difference']:.3f}"
        )
    n.why("each class is its own yes/no question; the gate judges the one in gate.fairness.positive_class")
    verdict = "met" if before.four_fifths_met else "not met"
    n.say(f"four-fifths rule: selection-rate ratio {before.disparate_impact_ratio:.3f}, {verdict};")
    n.say("a rule for outcomes that are a benefit (a hire, a loan): for a species it is a figure, not a verdict")

    n.step(f"The quality gate's check on the candidate's test split (bound {cfg.max_equalized_odds_difference})")
    split = result.split
    check, _ = fairness_check(split.y_test, result.evaluation.predictions, split.groups_test, cfg, classes, column)
    (n.ok if check.passed else n.bad)(f"{'passed' if check.passed else 'refused'}: {check.detail}")
    n.why("in `mlops-lab train` this refusal becomes gate.reason on the run, gate/fairness.json and the card")

    n.step("Mitigation: per-site thresholds on P(virginica), fitted for equalized odds on other rows")
    mitigation = mitigate_with_thresholds(
        model, calibrate[features], calibrate[target], calibrate[column], positive, classes, seed=0
    )
    mitigated = mitigation.predict(fresh[features], fresh[column])
    after = fairness_report(fresh[target], mitigated, fresh[column], positive, column)
    _groups_table(n, f"per {column}, with per-site thresholds", after)
    _before_after(n, before, after)
    change = after.accuracy - before.accuracy
    n.say(f"accuracy {'gained' if change >= 0 else 'lost'} {abs(change):.3f}: here the bias is a measurement offset,")
    n.say("so a lower threshold for site B undoes it; when groups truly differ, equal error rates cost accuracy")
    n.why("ThresholdOptimizer (post-processing), not reweighting: the model never sees the site, so weights cannot")
    n.why("move site B's boundary; the price is that the site is needed at prediction time, and ties are randomised")

    n.step("Monitoring: the same check on labelled production rows that carry a site")
    labelled = pd.DataFrame(
        {"prediction": model.predict(fresh[features]), "label": fresh[target], "sensitive_group": fresh[column]}
    )
    finding = check_fairness(labelled, params)
    (n.bad if finding.fired else n.ok)(f"fairness {finding.status}: {finding.summary}")

    n.step("How often the bound decides wrong at the size the gate judges (bench/fairness_study.py)")
    size = judged_rows_per_group(params)
    bound = cfg.max_equalized_odds_difference
    study = gate_error_study(bound, [size], [0.0, 0.2, 0.4], draws=2000)
    n.table(
        f"{size} rows per site, 2,000 simulated gates each",
        ["true difference", "refused", "error"],
        [[f"{r.true_difference:.1f}", f"{r.refused:.1%}", _error(r.true_difference, r.refused, bound)] for r in study],
    )
    n.why("a few positives per site: the bound only separates large gaps (docs/fairness-study.md)")
    n.code("pipelines/fairness.py", "pipelines/fair_groups.py", "monitoring/fairness_check.py")
