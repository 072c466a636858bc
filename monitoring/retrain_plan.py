"""Deciding to retrain, and what to retrain on: pure functions over findings and data frames.

Concept: retraining triggers (C37) and the feedback loop (C38). A retrain is started by a *trigger*:
a check named in ``monitoring.retrain.triggers`` fired (data drift, performance decay from feedback),
or an operator asked for one (manual), or a schedule did. An inconclusive check is not a trigger:
too little data must never start work. The new training set is the reference data plus the newest
*labelled* production rows -- what the model got wrong recently is exactly what it should learn --
and that production slice goes through the same data contract as any training data, so a broken
feed cannot train a model. Both decisions are plain functions so they are unit-tested without a
database, an orchestrator or a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from core.findings import Finding
    from core.params import DatasetConfig

MANUAL, SCHEDULE = "manual", "schedule"


@dataclass(frozen=True)
class Decision:
    """Retrain or not, and why (the triggers that fired, or why none did)."""

    retrain: bool
    reason: str
    triggers: list[str] = field(default_factory=list)


def decide(findings: Mapping[str, Finding], triggers: Sequence[str], requested: str | None = None) -> Decision:
    """Retrain when a trigger check fired, or when ``requested`` is "manual" / "schedule".

    Args:
        findings: the latest finding per check.
        triggers: the checks allowed to start a retrain (params ``monitoring.retrain.triggers``).
        requested: "manual" or "schedule" to retrain regardless of the findings, else None.
    """
    fired = [name for name in triggers if name in findings and findings[name].fired]
    if requested in (MANUAL, SCHEDULE):
        return Decision(True, f"{requested} retrain requested", [requested, *fired])
    if requested is not None:
        raise ValueError(f"requested must be {MANUAL!r}, {SCHEDULE!r} or None, got {requested!r}")
    if fired:
        summaries = "; ".join(f"{name}: {findings[name].summary}" for name in fired)
        return Decision(True, f"triggered by {summaries}", fired)
    inconclusive = [name for name in triggers if name in findings and findings[name].status == "inconclusive"]
    if inconclusive:
        return Decision(False, f"no trigger fired; inconclusive (too little data): {', '.join(inconclusive)}")
    return Decision(False, "no trigger fired")


def production_rows(labelled: pd.DataFrame, cfg: DatasetConfig, limit: int) -> pd.DataFrame:
    """The newest ``limit`` labelled predictions as training rows: the contract's features + the label as target.

    Identical rows are kept once when the contract wants unique rows: production repeats itself, a
    training set should not count a measurement twice.

    ``labelled`` is what ``serving.log_reader.labelled_window`` returns (one column per feature, ``label``, ``ts``).
    """
    import pandas as pd

    if limit <= 0 or labelled.empty:
        return pd.DataFrame(columns=cfg.required_columns)
    missing = [c for c in [*cfg.feature_names, "label"] if c not in labelled.columns]
    if missing:
        raise ValueError(f"the labelled window lacks column(s) {missing}; is the log from another dataset?")
    newest = labelled.sort_values("ts").tail(limit) if "ts" in labelled else labelled.tail(limit)
    rows = newest[cfg.feature_names].astype("float64").round(cfg.decimals)
    rows[cfg.target] = newest["label"].astype(str).to_numpy()
    if cfg.unique_rows:  # two flowers measured alike are one training row; the newest label wins
        rows = rows.drop_duplicates(subset=cfg.required_columns, keep="last")
    return rows.reset_index(drop=True)


def training_set(reference: pd.DataFrame, production: pd.DataFrame, cfg: DatasetConfig) -> pd.DataFrame:
    """Reference + production rows in the contract's columns, exact duplicates dropped (first kept)."""
    import pandas as pd

    columns = cfg.required_columns
    combined = pd.concat([reference[columns], production[columns]], ignore_index=True)
    return combined.round(cfg.decimals).drop_duplicates(ignore_index=True) if cfg.unique_rows else combined
