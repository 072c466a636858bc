"""Lab 4: run an A/B test on live traffic, read its statistics, and decide: ship, keep or wait.

Concepts: A/B testing (C24) on outcomes from the feedback loop (C38). The learner switches a running
service to the ``ab`` strategy, sends labelled traffic (every answer's true label comes back through
``/v1/feedback``) and decides from the statistics. The checker recomputes those statistics from the
prediction log with the same code as the ``ab-test`` demo (``monitoring/ab_stats.py::decide``): the
first labels to arrive, up to the planned horizon per arm, of A/B-routed predictions of the current
champion (arm A) and challenger (arm B), with the user as the unit. The decision it accepts follows
from the test, never from a stored string:

- ``wait``: an arm has fewer labels than the fixed horizon (``ab_stats.horizon``: 435 per arm with
  the default params), so no test has run yet, however the numbers look;
- ``ship``: B is significantly more accurate (p < alpha);
- ``keep``: A is significantly better, or there is no significant difference (B has not earned it).

Running ``lab check 4`` without an answer prints the statistics to read; every check also draws them
(``reports/lab04/ab-interval.png`` in the state: the interval against zero and the planned effect, and the
labels per arm against the horizon).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from lab.demos.prep import ensure_champion
from lab.demos.traffic import ensure_challenger
from lab.labs import Check
from lab.labs.scenario import LineNarrator, abort_stale_rollout, registered_at
from monitoring.ab_picture import PICTURE_NAME, write_ab_picture
from monitoring.ab_stats import ArmOutcome, arm_outcomes, decide, horizon
from pipelines.registry import current_aliases
from serving.log_reader import labelled_window, recent_predictions

if TYPE_CHECKING:
    import pandas as pd

    from core.context import LabContext
    from core.params import ABTestParams
    from monitoring.ab_stats import Decision

ANSWERS = {"inconclusive": "wait", "b_better": "ship", "a_better": "keep", "no_difference": "keep"}
PORT = 8704
ADMIN = f"MLOPS_ADMIN_TOKEN=workshop-admin-token mlops-lab admin --url http://127.0.0.1:{PORT}"
TRAFFIC = f"mlops-lab traffic --url http://127.0.0.1:{PORT}"


def normalise(answer: str | None) -> str | None:
    """``--answer`` in lower case without spaces; ``ship``, ``keep`` or ``wait`` are the valid ones."""
    return answer.strip().lower() if answer and answer.strip() else None


def ab_outcomes(frame: pd.DataFrame, champion: str, challenger: str, planned: int) -> tuple[ArmOutcome, ArmOutcome]:
    """(A, B): the first ``planned`` labelled A/B-routed predictions of the champion and the challenger version.

    ``frame`` is ``serving.log_reader.labelled_window`` output (columns arm, model_version, strategy,
    correct, label_ts, request_id, user_key); per user counts as `monitoring.ab_stats.arm_outcomes` makes them.
    """
    if not len(frame):
        return ArmOutcome(0, 0), ArmOutcome(0, 0)
    ab = frame[frame["strategy"] == "ab"]
    pair = ((ab["arm"] == "champion") & (ab["model_version"].astype(str) == str(champion))) | (
        (ab["arm"] == "challenger") & (ab["model_version"].astype(str) == str(challenger))
    )
    arms = arm_outcomes(ab[pair], planned)
    return arms.get("champion", ArmOutcome(0, 0)), arms.get("challenger", ArmOutcome(0, 0))


def describe(a: ArmOutcome, b: ArmOutcome, decision: Decision, params: ABTestParams) -> str:
    """The numbers a learner decides from (labels, accuracies, difference, interval, p), not the verdict."""

    def arm(name: str, o: ArmOutcome) -> str:
        return f"{name} {o.correct}/{o.labelled} right" + (f" = {o.accuracy:.1%}" if o.labelled else "")

    text = f"{arm('A', a)}, {arm('B', b)}"
    test = decision.comparison
    if test is None:
        return f"{text}; the test runs once, at {horizon(params)} labels per arm (the planned sample)"
    return (
        f"{text}; B - A = {100 * test.difference:+.1f} pts, {test.confidence:.0%} CI "
        f"[{100 * test.ci_low:+.1f}, {100 * test.ci_high:+.1f}], p = {test.p_value:.3f} (alpha {params.alpha})"
    )


def setup(ctx: LabContext) -> list[str]:
    """A champion and a challenger that passed the quality gate (trained if missing); no rollout in progress."""
    n = LineNarrator()
    n.lines.append(f"champion is v{ensure_champion(ctx, n)}")
    abort_stale_rollout(ctx, n, "lab 4 setup: an A/B test needs fixed arms")
    challenger = ensure_challenger(ctx, n)
    n.lines.append(f"challenger is v{challenger}" if challenger else "no usable challenger: the gate refused it")
    return n.lines


def check(ctx: LabContext, answer: str | None, since: datetime) -> list[Check]:
    """A/B traffic on both arms, labels joined, enough of them, and the decision the test supports.

    Only traffic since the lab started and since the challenger was registered counts.
    """
    s, stats = ctx.settings, ctx.params.monitoring.ab_test
    aliases = current_aliases(s)
    champion, challenger = aliases.get("champion"), aliases.get("challenger")
    if champion is None or challenger is None:
        return [
            Check(
                "a champion and a challenger to compare",
                False,
                f"aliases: {aliases or 'none'}",
                "`mlops-lab lab setup 4` trains what is missing",
            )
        ]
    # A/B traffic of this pair in this attempt only: none can predate the challenger or the lab's start.
    since = max(since, registered_at(ctx, challenger) or since)
    served = recent_predictions(s.prediction_log_uri, model_name=s.model_name, since=since)
    ab = served[served["strategy"] == "ab"] if len(served) else served
    counts = {
        arm: int(((ab["arm"] == arm) & (ab["model_version"].astype(str) == v)).sum()) if len(ab) else 0
        for arm, v in (("champion", champion), ("challenger", challenger))
    }
    planned = horizon(stats)
    a, b = ab_outcomes(
        labelled_window(s.prediction_log_uri, model_name=s.model_name, since=since), champion, challenger, planned
    )
    decision = decide(a, b, stats)
    picture = s.reports_dir / "lab04" / PICTURE_NAME
    write_ab_picture(decision, a, b, stats, planned, picture)
    supported = ANSWERS[decision.verdict]
    given = normalise(answer)
    if given is None:
        verdict_hint = "read the numbers above and give your decision: `mlops-lab lab check 4 --answer ship|keep|wait`"
    elif given not in set(ANSWERS.values()):
        verdict_hint = f"{given!r} is not a decision: answer ship, keep or wait"
    else:
        verdict_hint = (
            "look again: fewer labels than planned means no verdict yet, whatever the gap; p >= alpha means B has "
            "not shown it is better; only a significant gain in B's favour ships it"
        )
    return [
        Check(
            "the A/B strategy served both arms",
            min(counts.values()) > 0,
            f"A/B-routed requests: A = champion v{champion} {counts['champion']}, "
            f"B = challenger v{challenger} {counts['challenger']}",
            f"switch the running service to A/B: `{ADMIN} strategy ab`, then `{TRAFFIC} --rows 60`",
        ),
        Check(
            "true labels joined to both arms",
            min(a.labelled, b.labelled) > 0,
            f"labelled: A {a.labelled}, B {b.labelled}",
            f"send traffic with feedback (the default): `{TRAFFIC} --rows 60`",
        ),
        Check(
            f"{planned} labels per arm (the planned sample)",
            min(a.labelled, b.labelled) >= planned,
            f"A {a.labelled}, B {b.labelled} of {planned} each (the test uses the first {planned} to arrive)",
            f"more A/B traffic: `{TRAFFIC} --rows 1000 --seed 1 --users 1000`",
        ),
        Check(
            "your decision is the one the statistics support",
            given == supported,
            describe(a, b, decision, stats) + f"; picture: {picture}" + (f"; you answered {given}" if given else ""),
            verdict_hint,
        ),
    ]
