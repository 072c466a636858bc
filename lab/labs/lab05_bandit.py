"""Lab 5: a bandit phase and an A/B phase on the same two models; count the regret of each.

Concepts: multi-armed bandit routing (C25) against a fixed A/B split (C24). ``setup`` plants a clearly
worse challenger and resets the bandit's reward sums. The learner runs the service under the
``bandit`` strategy with labelled traffic in rounds (each round's labels are that round's rewards),
then under ``ab`` with the same amount of traffic. The checker reads both phases back from the
prediction log joined with feedback: the arms' online accuracy (pooled over both phases, so both
phases are judged by the same yardstick), each phase's share of requests sent to the better arm,
and its regret, the expected correct answers lost against always serving the better arm, per 100
requests: ``share_worse x (accuracy_better - accuracy_worse) x 100``. The answer (``bandit`` or
``ab``: which lost fewer) is compared with that computation on the learner's own traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lab.demos.prep import ensure_champion
from lab.demos.traffic import plant_bad_challenger
from lab.labs import Check
from lab.labs.scenario import LineNarrator, abort_stale_rollout, registered_at, version_tags
from pipelines.registry import current_aliases
from serving.log_reader import labelled_window
from serving.state_store import StateStore

if TYPE_CHECKING:
    import pandas as pd

    from core.context import LabContext

MIN_PHASE_LABELS = 200
PORT = 8705
ADMIN = f"MLOPS_ADMIN_TOKEN=workshop-admin-token mlops-lab admin --url http://127.0.0.1:{PORT}"
TRAFFIC = f"mlops-lab traffic --url http://127.0.0.1:{PORT} --rows 400 --users 400"
PHASES = {"bandit": "bandit", "ab": "ab"}  # answer -> routing strategy logged with each prediction


@dataclass(frozen=True)
class Phase:
    """One strategy's labelled traffic: requests per arm, the better arm's share, regret per 100 requests."""

    strategy: str
    requests: dict[str, int]
    better_share: float
    regret_per_100: float

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def arm_accuracy(frame: pd.DataFrame) -> dict[str, float]:
    """Online accuracy per arm over every labelled bandit or A/B prediction (both phases pooled)."""
    both = frame[frame["strategy"].isin(list(PHASES.values()))]
    return {str(arm): float(g["correct"].astype(bool).mean()) for arm, g in both.groupby("arm")}


def phase(frame: pd.DataFrame, strategy: str, accuracy: dict[str, float]) -> Phase:
    """Requests per arm, better arm's share and regret per 100 requests of one strategy's labelled rows."""
    rows = frame[frame["strategy"] == strategy]
    requests = {str(arm): int(n) for arm, n in rows["arm"].value_counts().items()}
    total = sum(requests.values())
    if not total or not accuracy:
        return Phase(strategy, requests, 0.0, 0.0)
    best = max(accuracy, key=accuracy.__getitem__)
    lost = sum(n * (accuracy[best] - accuracy.get(arm, accuracy[best])) for arm, n in requests.items())
    return Phase(strategy, requests, requests.get(best, 0) / total, 100 * lost / total)


def lower_regret(bandit: Phase, ab: Phase) -> str:
    """``bandit`` or ``ab``: the phase that lost fewer correct answers per 100 requests (a tie favours ab)."""
    return "bandit" if bandit.regret_per_100 < ab.regret_per_100 else "ab"


def setup(ctx: LabContext) -> list[str]:
    """A champion, no rollout in progress, a PLANTED worse challenger, and fresh bandit reward sums."""
    n = LineNarrator()
    n.lines.append(f"champion is v{ensure_champion(ctx, n)}")
    abort_stale_rollout(ctx, n, "lab 5 setup: the bandit needs the router")
    challenger = current_aliases(ctx.settings).get("challenger")
    tags = version_tags(ctx, challenger) if challenger else {}
    if challenger and tags.get("planted") == "true":
        n.lines.append(f"v{challenger} is already a planted (worse) challenger: keeping it")
    else:
        plant_bad_challenger(ctx, n)
    store = StateStore(ctx.settings.prediction_log_uri, ctx.params.routing)
    try:
        store.reset_bandit()
    finally:
        store.close()
    n.lines.append("bandit reward sums reset: the bandit starts from its prior")
    return n.lines


def check(ctx: LabContext, answer: str | None, since: datetime) -> list[Check]:
    """Both phases with enough labels, the bandit favoured the better arm, and which phase lost fewer answers."""
    s = ctx.settings
    aliases = current_aliases(s)
    versions = {"champion": aliases.get("champion"), "challenger": aliases.get("challenger")}
    registered = registered_at(ctx, versions["challenger"]) if versions["challenger"] else None
    since = max(since, registered or since)
    # Only traffic since the lab started and this challenger was registered: earlier A/B rows stay out.
    frame = labelled_window(s.prediction_log_uri, model_name=s.model_name, since=since)
    if len(frame):  # only the two current models, each on its own arm
        keep = (frame["arm"] == "champion") & (frame["model_version"].astype(str) == str(versions["champion"]))
        keep |= (frame["arm"] == "challenger") & (frame["model_version"].astype(str) == str(versions["challenger"]))
        frame = frame[keep]
    accuracy = arm_accuracy(frame) if len(frame) else {}
    bandit = phase(frame, "bandit", accuracy) if len(frame) else Phase("bandit", {}, 0.0, 0.0)
    ab = phase(frame, "ab", accuracy) if len(frame) else Phase("ab", {}, 0.0, 0.0)

    def counts(p: Phase) -> str:
        return ", ".join(f"{arm} {n}" for arm, n in sorted(p.requests.items())) or "none"

    checks = [
        Check(
            f"a bandit phase: at least {MIN_PHASE_LABELS} labelled bandit-routed requests",
            bandit.total >= MIN_PHASE_LABELS,
            f"labelled under bandit: {counts(bandit)}",
            f"`{ADMIN} strategy bandit`, then `{TRAFFIC} --feedback-every 20 --pause 1`",
        ),
        Check(
            f"an A/B phase: at least {MIN_PHASE_LABELS} labelled A/B-routed requests on both arms",
            ab.total >= MIN_PHASE_LABELS and len(ab.requests) == 2,
            f"labelled under ab: {counts(ab)}",
            f"`{ADMIN} strategy ab`, then `{TRAFFIC} --seed 1`",
        ),
    ]
    if not (checks[0].passed and checks[1].passed):
        return checks
    best = max(accuracy, key=accuracy.__getitem__)
    rates = ", ".join(f"{arm} {acc:.1%}" for arm, acc in sorted(accuracy.items()))
    checks.append(
        Check(
            "the bandit sent more traffic to the better arm than the fixed split",
            bandit.better_share > ab.better_share,
            f"online accuracy {rates}; {best}'s share: bandit {bandit.better_share:.0%}, A/B {ab.better_share:.0%}",
            "the bandit learns from feedback: send its traffic in rounds with a pause "
            f"(`{TRAFFIC} --feedback-every 20 --pause 1`) so the rewards reach the service between rounds",
        )
    )
    supported = lower_regret(bandit, ab)
    given = answer.strip().lower() if answer and answer.strip() else None
    regret = f"regret per 100 requests: bandit {bandit.regret_per_100:.1f}, A/B {ab.regret_per_100:.1f}"
    checks.append(
        Check(
            "your answer: the phase that lost fewer correct answers",
            given == supported,
            f"you answered {given}; {regret}" if given else "no answer yet",
            "work it out from the two traffic tables: regret per 100 = share of the worse arm x accuracy gap x 100; "
            "then `mlops-lab lab check 5 --answer bandit` or `--answer ab`"
            if given is None or given in PHASES
            else f"{given!r} is not a phase: answer bandit or ab",
        )
    )
    return checks
