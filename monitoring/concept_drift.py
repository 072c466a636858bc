"""Concept drift and performance decay: online accuracy from feedback, against the accuracy promised offline.

Concept: concept drift / performance decay (C34). When the relation between inputs and labels moves
(the world relabels the same flowers), the inputs look exactly as before, so data drift and
prediction drift stay quiet; only ground truth reveals it. The feedback loop supplies that truth
later: every labelled prediction in the log carries ``correct``. This check takes the newest
``params.monitoring.concept_drift.window`` labelled predictions *per model version* (versions are
never pooled: a canary's mistakes must not be blamed on the champion), and compares their accuracy
with the accuracy the version scored on its held-out test split when it was registered.

It fires when online accuracy trails offline accuracy by more than ``max_accuracy_drop``. With the
defaults (offline ~0.91, 50 labels) the noise of a 50-label accuracy is about 4 points, so a
10-point drop is some 2.5 standard errors away: rare as a false alarm, quick to see a real
collapse. A version with fewer than ``min_labels`` labels, or without a recorded offline accuracy,
is *inconclusive*, never "ok". Accuracy over consecutive blocks of the window shows the trend: a
sudden step (a relabelling) looks different from a slow slide (gradual decay).

Only versions that serve decide: the champion, and a challenger that is still in play (not rejected
or rolled back). A canary that was aborted for poor accuracy leaves poor labels behind; they are
shown, but a model nobody serves any more must not trigger a retrain of the one that does.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from core.findings import Finding, Status
from pipelines import registry

if TYPE_CHECKING:
    import pandas as pd

    from core.params import ConceptDriftParams
    from core.settings import Settings
    from pipelines.registry import VersionInfo

CHECK = "concept_drift"
REQUIRED_COLUMNS = ("model_version", "correct", "ts")


@dataclass(frozen=True)
class VersionAccuracy:
    """One model version's online accuracy over its window, and the verdict against its offline accuracy."""

    version: str
    labels: int
    online: float
    offline: float | None
    drop: float | None  # offline - online; positive = worse online
    status: Status
    blocks: list[float]  # accuracy per consecutive block of the window, oldest first
    block_size: int
    serving: bool = True  # False: no longer served (rejected, rolled back, replaced); shown, never judged


def block_accuracy(correct: Any, block_size: int) -> list[float]:
    """Accuracy per consecutive block, oldest first, blocks aligned to the newest label.

    The newest block is always full; a leftover shorter than ``block_size`` at the oldest end is
    dropped, so every number in the trend rests on the same number of labels.
    """
    import numpy as np

    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    values = np.asarray(correct, dtype=float)
    usable = len(values) - len(values) % block_size
    if usable == 0:
        return []
    return [float(b.mean()) for b in values[len(values) - usable :].reshape(-1, block_size)]


def _version_verdict(
    version: str, correct: pd.Series, offline: float | None, params: ConceptDriftParams, block_size: int
) -> VersionAccuracy:
    online = float(correct.mean())
    drop = None if offline is None else offline - online
    status: Status = "inconclusive"
    if offline is not None and len(correct) >= params.min_labels:
        status = "fired" if online < offline - params.max_accuracy_drop else "ok"
    blocks = block_accuracy(correct.to_numpy(), block_size)
    return VersionAccuracy(version, len(correct), online, offline, drop, status, blocks, block_size)


def _summary(per_version: list[VersionAccuracy], status: Status, params: ConceptDriftParams) -> str:
    if not per_version:
        return "no labelled predictions in the log yet: send feedback (POST /v1/feedback) to judge accuracy"

    def line(v: VersionAccuracy) -> str:
        offline = "offline unknown" if v.offline is None else f"offline {v.offline:.1%}"
        return f"v{v.version}: {v.online:.1%} online on {v.labels} labels vs {offline}"

    judged = [v for v in per_version if v.status == status and v.serving] or per_version
    verdict = {
        "fired": f"accuracy fell more than {params.max_accuracy_drop:.0%} below offline",
        "ok": "online accuracy within the allowed drop",
        "inconclusive": f"not enough to judge (need {params.min_labels} labels and an offline accuracy per version)",
    }[status]
    return f"{verdict}: " + "; ".join(line(v) for v in judged)


def check_concept_drift(
    labelled: pd.DataFrame,
    offline_accuracy: Mapping[str, float],
    params: ConceptDriftParams,
    block_size: int | None = None,
    serving: Collection[str] | None = None,
) -> Finding:
    """Compare each version's online accuracy (newest ``params.window`` labels) with its offline accuracy.

    Args:
        labelled: labelled predictions, as `serving.log_reader.labelled_window` returns them
            (needs ``model_version``, ``correct`` and ``ts``).
        offline_accuracy: model version -> held-out test accuracy (`offline_accuracy_from_registry`).
        params: ``params.monitoring.concept_drift``.
        block_size: labels per trend block; default ``params.min_labels``.
        serving: the versions in service (`serving_versions_from_registry`); the others are reported but
            never judged. None judges every version.

    Returns:
        A Finding: "fired" if any version with enough labels dropped too far, "ok" if at least one
        version could be judged and none dropped, else "inconclusive". ``score`` is the largest drop
        among judged versions.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in labelled.columns]
    if missing:
        raise ValueError(f"labelled frame lacks column(s) {missing}; read it with serving.log_reader.labelled_window")
    size = block_size or params.min_labels
    offline = {str(k): float(v) for k, v in offline_accuracy.items()}
    ordered = labelled.sort_values("ts", kind="stable")
    per_version = [
        replace(
            _version_verdict(
                version, group["correct"].astype(bool).tail(params.window), offline.get(version), params, size
            ),
            serving=serving is None or version in {str(v) for v in serving},
        )
        for version, group in ordered.groupby(ordered["model_version"].astype(str), sort=True)
    ]
    judged = [v for v in per_version if v.status != "inconclusive" and v.serving]
    status: Status = "fired" if any(v.status == "fired" for v in judged) else "ok" if judged else "inconclusive"
    drops = [v.drop for v in judged if v.drop is not None]
    return Finding(
        check=CHECK,
        status=status,
        score=max(drops) if drops else None,
        threshold=params.max_accuracy_drop,
        summary=_summary(per_version, status, params),
        rows=sum(v.labels for v in per_version),
        details={"versions": {v.version: asdict(v) for v in per_version}, "min_labels": params.min_labels},
    )


def serving_versions(versions: Iterable[VersionInfo]) -> set[str]:
    """The versions in service: the champion, and the challenger unless it was rejected or rolled back."""
    return {
        v.version
        for v in versions
        if "champion" in v.aliases or ("challenger" in v.aliases and v.status not in ("rejected", "rolled_back"))
    }


def offline_accuracy_from_registry(settings: Settings) -> dict[str, float]:
    """Held-out test accuracy of every registered version that logged one (version -> accuracy)."""
    return {v.version: v.accuracy for v in registry.list_versions(settings) if v.accuracy is not None}
