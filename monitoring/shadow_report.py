"""The shadow's online accuracy next to the champion's, on the same labelled requests (C23).

Concept: shadow deployment. With strategy ``shadow`` the champion answers every request and the
challenger scores a copy after the response; its answer is logged under ``<row id>:shadow`` (arm
``shadow``) and nobody ever sees it. Feedback arrives for the *served* row id. Because the label here
is the true class of the input, it does not depend on which answer was served, so the same label
scores both answers: each labelled request is a *pair* (champion right?, shadow right?). This
report joins the served row, its shadow row and the label in SQL and compares the two models on
exactly the same denominator, with McNemar's exact test on the discordant pairs (the rows exactly
one of them got right) -- a paired test, more sensitive than comparing two independent accuracies.

When it is not possible: if the label is a reaction to the answer (a click on a recommendation, a
purchase after a price), the shadow's answer was never shown, so there is no outcome for it; that
needs counterfactual (off-policy) evaluation or a canary / A/B test, where users do see it.

Latency: the champion's ``latency_ms`` is the server's time from the request's arrival to the scored
answer (before serialisation and the network). The shadow's is its own model time on a background
worker after the response was sent: the price of the challenger, never part of what users wait for.
Rows whose shadow scoring raised are counted, not scored; steered requests are never mirrored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import sqlalchemy as sa

from serving.log_reader import _connect, _utc
from serving.predict import SHADOW_ARM
from serving.prediction_log import feedback_table, predictions_table

ALPHA = 0.05


@dataclass(frozen=True)
class Latency:
    """Percentiles of a logged ``latency_ms`` over rows (a batch's rows share their request's time)."""

    rows: int
    p50_ms: float
    p95_ms: float

    @classmethod
    def of(cls, values: list[float]) -> Latency:
        if not values:
            return cls(0, float("nan"), float("nan"))
        return cls(len(values), float(np.percentile(values, 50)), float(np.percentile(values, 95)))


@dataclass(frozen=True)
class ShadowComparison:
    """One (champion version, shadow version) pair over the mirrored rows of the window."""

    champion_version: str
    shadow_version: str
    mirrored: int  # served rows with a shadow answer (labelled or not)
    shadow_errors: int  # mirrored rows whose shadow scoring raised
    labelled: int  # mirrored rows with a label and a shadow answer: the shared denominator
    champion_correct: int
    shadow_correct: int
    only_champion: int  # discordant pairs: champion right, shadow wrong
    only_shadow: int  # discordant pairs: shadow right, champion wrong
    champion_latency: Latency
    shadow_latency: Latency

    @property
    def champion_accuracy(self) -> float:
        return self.champion_correct / self.labelled if self.labelled else float("nan")

    @property
    def shadow_accuracy(self) -> float:
        return self.shadow_correct / self.labelled if self.labelled else float("nan")

    @property
    def p_value(self) -> float:
        """McNemar's exact test, two-sided: the discordant pairs under H0 split 50/50 (1.0 with none)."""
        discordant = self.only_champion + self.only_shadow
        if discordant == 0:
            return 1.0
        from scipy.stats import binomtest

        return float(binomtest(self.only_shadow, discordant, 0.5).pvalue)

    def interval(self, correct: int) -> tuple[float, float]:
        """95 % Wilson interval of one model's accuracy on the labelled pairs."""
        if not self.labelled:
            return float("nan"), float("nan")
        from statsmodels.stats.proportion import proportion_confint

        low, high = proportion_confint(correct, self.labelled, alpha=ALPHA, method="wilson")
        return float(low), float(high)

    def verdict(self) -> str:
        """One sentence: which model is more accurate on these pairs, and whether the test says so."""
        if not self.labelled:
            return "no labelled mirrored rows yet: send feedback for the served request ids"
        diff = self.shadow_accuracy - self.champion_accuracy
        p = self.p_value
        if p < ALPHA:
            better = "shadow" if diff > 0 else "champion"
            return f"{better} is more accurate ({100 * diff:+.1f} points, McNemar exact p={p:.3g} < {ALPHA})"
        return f"no significant difference ({100 * diff:+.1f} points, McNemar exact p={p:.3g} >= {ALPHA})"


def shadow_report(
    engine_or_url: sa.Engine | str, *, since: datetime | None = None, model_name: str | None = None
) -> list[ShadowComparison]:
    """Pair every served row of strategy ``shadow`` with its shadow answer and its label, per version pair."""
    served, mirror = predictions_table.alias("served"), predictions_table.alias("mirror")
    s, m, f = served.c, mirror.c, feedback_table.c
    stmt = (
        sa.select(
            s.model_version,
            m.model_version.label("shadow_version"),
            s.prediction,
            m.prediction.label("shadow_prediction"),
            m.status.label("shadow_status"),
            s.latency_ms,
            m.latency_ms.label("shadow_latency_ms"),
            f.label,
        )
        .select_from(served)
        .join(mirror, m.request_id == s.request_id + ":" + SHADOW_ARM)
        .outerjoin(feedback_table, f.request_id == s.request_id)
        .where(s.strategy == "shadow", s.arm != SHADOW_ARM, s.status == "ok", m.arm == SHADOW_ARM)
    )
    if since is not None:
        stmt = stmt.where(s.ts >= _utc(since))
    if model_name is not None:
        stmt = stmt.where(s.model_name == model_name)
    with _connect(engine_or_url) as conn:
        rows = conn.execute(stmt.order_by(s.ts, s.request_id)).all() if conn is not None else []
    groups: dict[tuple[str, str], list[sa.Row[tuple[object, ...]]]] = {}
    for row in rows:
        groups.setdefault((str(row.model_version), str(row.shadow_version)), []).append(row)
    return [_compare(champion, shadow, members) for (champion, shadow), members in groups.items()]


def _compare(champion: str, shadow: str, rows: list[sa.Row[tuple[object, ...]]]) -> ShadowComparison:
    answered = [r for r in rows if r.shadow_status == "ok"]
    pairs = [(r.prediction == r.label, r.shadow_prediction == r.label) for r in answered if r.label is not None]
    return ShadowComparison(
        champion_version=champion,
        shadow_version=shadow,
        mirrored=len(rows),
        shadow_errors=len(rows) - len(answered),
        labelled=len(pairs),
        champion_correct=sum(c for c, _ in pairs),
        shadow_correct=sum(sh for _, sh in pairs),
        only_champion=sum(c and not sh for c, sh in pairs),
        only_shadow=sum(sh and not c for c, sh in pairs),
        champion_latency=Latency.of([float(r.latency_ms) for r in rows if r.latency_ms is not None]),
        shadow_latency=Latency.of([float(r.shadow_latency_ms) for r in answered if r.shadow_latency_ms is not None]),
    )


def render(comparisons: list[ShadowComparison]) -> list[str]:
    """Plain lines for the CLI and the demo."""
    if not comparisons:
        return ["no shadow traffic in the prediction log (switch the strategy to shadow: mlops-lab admin strategy)"]
    lines: list[str] = []
    for c in comparisons:
        lines.append(
            f"champion v{c.champion_version} served, shadow v{c.shadow_version} mirrored: {c.mirrored} rows, "
            f"{c.labelled} labelled pairs, {c.shadow_errors} shadow errors"
        )
        for name, correct in (("champion", c.champion_correct), ("shadow", c.shadow_correct)):
            low, high = c.interval(correct)
            acc = correct / c.labelled if c.labelled else float("nan")
            lines.append(f"  {name:<8} accuracy {acc:.3f} ({correct}/{c.labelled}), 95% Wilson [{low:.3f}, {high:.3f}]")
        lines.append(
            f"  discordant pairs: champion-only right {c.only_champion}, shadow-only right {c.only_shadow}; "
            + c.verdict()
        )
        lines.append(
            f"  latency: champion in-server p50 {c.champion_latency.p50_ms:.2f} ms"
            f" / p95 {c.champion_latency.p95_ms:.2f} ms; shadow model time p50 {c.shadow_latency.p50_ms:.2f} ms"
            f" / p95 {c.shadow_latency.p95_ms:.2f} ms"
            " (on a background worker after the response: not user-facing)"
        )
    lines.append(
        "valid because a label here is the true class, whatever was served; where a label reacts to the shown "
        "answer (a click), the shadow has no outcome: use a canary or an A/B test"
    )
    return lines
