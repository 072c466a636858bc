"""Fairness metrics by name, a gate check on them, and a post-processing mitigation.

Concept: fairness metrics and mitigation (C58). Slice parity (C41) asks "is accuracy similar for
every group?"; fairness metrics ask sharper questions about one *outcome*:

- **demographic parity difference**: the largest gap between groups in how often the outcome is
  predicted (its selection rate), whatever the truth;
- **equalized-odds difference**: the largest gap between groups in the true-positive rate *or* the
  false-positive rate of the outcome (errors are shared evenly, given the truth);
- **four-fifths rule** (disparate impact): the lowest group's selection rate divided by the highest
  must be at least 0.8. It comes from hiring law, where the outcome is a benefit; for a class label
  with no benefit attached it is reported as a figure, not a verdict.

Iris is multiclass, so "positive" is defined one-vs-rest: a row's outcome is positive when the model
predicts ``positive_class`` (and truly positive when its label is that class). The report gives the
chosen class's figures plus the two headline differences for every class, each computed the same way.
Per-group accuracy uses the full multiclass prediction. Metrics come from fairlearn's ``MetricFrame``
and its named functions; fairlearn is imported inside the functions (the CLI's help must stay fast).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from core.params import FairnessGateParams
from pipelines.behavioural import CheckResult

FOUR_FIFTHS = 0.8
_EPS = 1e-9  # float slack: a difference of exactly the bound is within it


@dataclass(frozen=True)
class GroupFigures:
    """One group's figures for the positive outcome, and its multiclass accuracy."""

    group: str
    n: int
    positives: int  # rows whose true class is the positive class
    selection_rate: float  # share predicted positive
    true_positive_rate: float  # recall of the positive class (nan without positives)
    false_positive_rate: float  # nan without negatives
    accuracy: float  # multiclass accuracy on the group's rows


@dataclass(frozen=True)
class FairnessReport:
    """Fairness of one set of predictions across the groups of one column (groups under min size left out)."""

    group_column: str
    positive_class: str
    groups: list[GroupFigures]
    demographic_parity_difference: float
    equalized_odds_difference: float
    disparate_impact_ratio: float  # lowest / highest selection rate; the four-fifths rule wants >= 0.8
    accuracy: float  # overall multiclass accuracy of the judged rows
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)  # class -> the two differences
    left_out: dict[str, int] = field(default_factory=dict)  # group -> rows, too few to judge

    @property
    def four_fifths_met(self) -> bool:
        return self.disparate_impact_ratio >= FOUR_FIFTHS - _EPS

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["four_fifths_met"] = self.four_fifths_met
        return _rounded(out)

    def markdown(self) -> list[str]:
        """The report as Markdown lines (the model card's fairness section uses the same text)."""
        return fairness_markdown(self.to_dict())


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return None if np.isnan(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def fairness_markdown(report: dict[str, Any]) -> list[str]:
    """Markdown lines for a ``FairnessReport.to_dict()`` (plain data, as stored on the run and in the card)."""
    positive, column = report["positive_class"], report["group_column"]
    lines = [
        f'Groups: `{column}`. Positive outcome (one-vs-rest): the model predicts "{positive}".',
        "",
        "| group | n | positives | selection rate | recall (TPR) | FPR | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in report["groups"]:
        cells = [g[k] for k in ("n", "positives", "selection_rate", "true_positive_rate", "false_positive_rate")]
        lines.append(f"| {g['group']} | " + " | ".join(_cell(v) for v in [*cells, g["accuracy"]]) + " |")
    verdict = "met" if report["four_fifths_met"] else "NOT met (informational: a class label is not a benefit)"
    lines += [
        "",
        f"- demographic parity difference: {_cell(report['demographic_parity_difference'])}",
        f"- equalized-odds difference: {_cell(report['equalized_odds_difference'])}",
        f"- disparate impact ratio: {_cell(report['disparate_impact_ratio'])} (four-fifths rule {verdict})",
    ]
    others = ", ".join(
        f"{cls} {_cell(v['demographic_parity_difference'])}/{_cell(v['equalized_odds_difference'])}"
        for cls, v in report.get("per_class", {}).items()
    )
    if others:
        lines.append(f"- per class, demographic parity / equalized-odds difference: {others}")
    if report.get("left_out"):
        lines.append(f"- left out (too few rows, or no rows of one outcome): {report['left_out']}")
    if (what_if := report.get("mitigation")) is not None:
        lines += ["", *mitigation_markdown(what_if)]
    return lines


def mitigation_markdown(what_if: dict[str, Any]) -> list[str]:
    """The what-if mitigation lines of a fairness report (`pipelines.fairness_what_if`)."""
    if "error" in what_if:
        return [f"What a mitigation would give: not computed ({what_if['error']})."]
    before, after = what_if["before"], what_if["after"]
    return [
        f"What a mitigation would give (not served): {what_if['method']}, fitted on {what_if['fitted_on']}.",
        "",
        "| | equalized-odds difference | demographic parity difference | accuracy |",
        "|---|---|---|---|",
        *(
            f"| {name} | " + " | ".join(_cell(f[k]) for k in ("equalized_odds_difference",
                                                           "demographic_parity_difference", "accuracy")) + " |"
            for name, f in (("as trained", before), ("mitigated", after))
        ),
    ]  # fmt: skip


def _differences(truth: np.ndarray, pred: np.ndarray, groups: np.ndarray, positive: str) -> tuple[float, float]:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    yt, yp = (truth == positive).astype(int), (pred == positive).astype(int)
    both = _with_both_outcomes(yt, groups)  # a rate over no rows is no evidence (fairlearn would count it as 0)
    rated = np.isin(groups, both)
    odds = (
        float(equalized_odds_difference(yt[rated], yp[rated], sensitive_features=groups[rated]))
        if len(both) >= 2
        else float("nan")
    )
    return float(demographic_parity_difference(yt, yp, sensitive_features=groups)), odds


def _with_both_outcomes(positive: np.ndarray, groups: np.ndarray) -> list[str]:
    """Groups with at least one truly positive and one truly negative row: the ones with a TPR and an FPR."""
    return [g for g in dict.fromkeys(groups.tolist()) if 0 < positive[groups == g].sum() < (groups == g).sum()]


def fairness_report(
    y_true: Any,
    y_pred: Any,
    groups: Any,
    positive_class: str,
    group_column: str = "group",
    min_group_size: int = 1,
) -> FairnessReport:
    """Fairlearn's metrics for the outcome "predicted ``positive_class``" across ``groups`` (aligned by position).

    Groups with fewer than ``min_group_size`` rows, or without a truly positive or a truly negative row
    (no true-positive or false-positive rate to compare), are listed in ``left_out`` and take no part.
    """
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

    truth, pred, group = (np.asarray(v).astype(str) for v in (y_true, y_pred, groups))
    if not len(truth) == len(pred) == len(group):
        raise ValueError(
            f"row-aligned inputs needed: {len(truth)} labels, {len(pred)} predictions, {len(group)} groups"
        )
    sizes = pd.Series(group).value_counts()
    positive = truth == positive_class
    rated = _with_both_outcomes(positive, group)
    left_out = {str(g): int(n) for g, n in sizes.items() if n < min_group_size or g not in rated}
    keep = ~np.isin(group, list(left_out))
    truth, pred, group = truth[keep], pred[keep], group[keep]
    if len(set(group)) < 2:
        raise ValueError(
            f"fairness needs two groups with >= {min_group_size} rows, each with rows of {positive_class!r} "
            f"and of other classes; got {dict(sizes)}"
        )
    yt, yp = (truth == positive_class).astype(int), (pred == positive_class).astype(int)
    rates = MetricFrame(
        metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=yt,
        y_pred=yp,
        sensitive_features=pd.Series(group, name=group_column),
    )
    accuracy = MetricFrame(metrics=accuracy_score, y_true=truth, y_pred=pred, sensitive_features=group)
    table = rates.by_group
    figures = [
        GroupFigures(
            group=str(g),
            n=int((group == g).sum()),
            positives=int(yt[group == g].sum()),
            selection_rate=float(table.loc[g, "selection_rate"]),
            true_positive_rate=float(table.loc[g, "tpr"]),
            false_positive_rate=float(table.loc[g, "fpr"]),
            accuracy=float(accuracy.by_group.loc[g]),
        )
        for g in table.index
    ]
    dpd, eod = _differences(truth, pred, group, positive_class)
    selection = [f.selection_rate for f in figures]
    ratio = min(selection) / max(selection) if max(selection) > 0 else 1.0
    classes = sorted(set(truth) | set(pred))
    per_class = {}
    for cls in classes:
        d, e = _differences(truth, pred, group, cls)
        per_class[cls] = {"demographic_parity_difference": d, "equalized_odds_difference": e}
    return FairnessReport(
        group_column=group_column,
        positive_class=positive_class,
        groups=figures,
        demographic_parity_difference=dpd,
        equalized_odds_difference=eod,
        disparate_impact_ratio=float(ratio),
        accuracy=float(accuracy.overall),
        per_class=per_class,
        left_out=left_out,
    )


def positive_class_of(params: FairnessGateParams, classes: list[str]) -> str:
    """The configured positive class, or the last class when none is configured."""
    return params.positive_class or classes[-1]


def fairness_check(
    y_true: Any, y_pred: Any, groups: Any | None, params: FairnessGateParams, classes: list[str], group_column: str
) -> tuple[CheckResult, FairnessReport | None]:
    """The gate's check: the equalized-odds difference of the positive outcome must stay within the bound.

    Without a group column, or with fewer than two groups big enough to judge, it passes and says why:
    no data is not evidence of unfairness, and the card shows that nothing was judged.
    """
    bound = params.max_equalized_odds_difference
    if not params.enabled:
        return CheckResult("fairness", True, "disabled (gate.fairness.enabled: false)"), None
    if groups is None:
        return CheckResult("fairness", True, f"no {group_column!r} column in the test rows: nothing to judge"), None
    positive = positive_class_of(params, classes)
    try:
        report = fairness_report(y_true, y_pred, groups, positive, group_column, params.min_group_size)
    except ValueError as err:
        return CheckResult("fairness", True, f"not judged: {err}"), None
    eod = report.equalized_odds_difference
    passed = eod <= bound + _EPS
    worst = "within" if passed else "exceeds"
    detail = (
        f"equalized-odds difference {eod:.3f} for predicted {positive!r} across {group_column} "
        f"{worst} the bound {bound:.3f} (demographic parity difference {report.demographic_parity_difference:.3f})"
    )
    cases = [asdict(g) for g in report.groups]
    return CheckResult("fairness", passed, detail, _rounded(cases)), report


class _OneVsRest(ClassifierMixin, BaseEstimator):
    """A fitted multiclass model seen as a binary scorer for one class (what ThresholdOptimizer post-processes)."""

    def __init__(self, model: Any, index: int) -> None:
        self.model = model
        self.index = index
        self.classes_ = np.array([0, 1])  # fitted already: check_is_fitted looks for a trailing underscore

    def fit(self, X: Any, y: Any) -> _OneVsRest:  # prefit: nothing to learn
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.model.predict_proba(X)[:, self.index] >= 0.5, dtype=int)

    def predict_proba(self, X: Any) -> np.ndarray:
        p = self.model.predict_proba(X)[:, self.index]
        return np.column_stack([1 - p, p])


@dataclass
class ThresholdMitigation:
    """Group-specific thresholds on one class's probability (fairlearn ThresholdOptimizer, equalized odds).

    ``predict`` keeps the model's multiclass answer except where the thresholded decision disagrees:
    a row newly judged positive gets the positive class, a row no longer positive gets the model's best
    other class. The group must be known at prediction time: the mitigation's main operational cost.
    """

    model: Any
    positive_class: str
    classes: list[str]
    optimizer: Any
    seed: int

    def predict(self, X: pd.DataFrame, groups: Any) -> np.ndarray:
        proba = np.asarray(self.model.predict_proba(X))
        positive = np.asarray(
            self.optimizer.predict(X, sensitive_features=np.asarray(groups).astype(str), random_state=self.seed)
        ).astype(bool)
        return relabel(proba, positive, self.classes, self.positive_class)


def relabel(proba: np.ndarray, positive: np.ndarray, classes: list[str], positive_class: str) -> np.ndarray:
    """Multiclass answers from a thresholded yes/no on ``positive_class``: yes gives that class, no the model's
    most probable other class (the model's own answer wherever the two agree)."""
    others = np.array(proba, dtype="float64", copy=True)
    others[:, classes.index(positive_class)] = -1.0
    return np.where(positive, positive_class, np.asarray(classes)[others.argmax(axis=1)])


def mitigate_with_thresholds(
    model: Any, X: pd.DataFrame, y: Any, groups: Any, positive_class: str, classes: list[str], seed: int
) -> ThresholdMitigation:
    """Fit per-group thresholds (equalized odds) for ``positive_class`` on rows the model did not train on."""
    from fairlearn.postprocessing import ThresholdOptimizer

    optimizer = ThresholdOptimizer(
        estimator=_OneVsRest(model, classes.index(positive_class)),
        constraints="equalized_odds",
        objective="balanced_accuracy_score",
        prefit=True,
        predict_method="predict_proba",
    )
    truth = (np.asarray(y).astype(str) == positive_class).astype(int)
    optimizer.fit(X, truth, sensitive_features=np.asarray(groups).astype(str))
    return ThresholdMitigation(model, positive_class, list(classes), optimizer, seed)
