"""Everything one monitoring check needs, read in one place: the window, the reference, the model.

Concept: monitoring reads production, not training (C32-C34). The *window* is the newest served
predictions from the prediction log (successful rows only: a failed request has no prediction to
judge); the *labelled* window is the subset whose ground truth came back through ``/v1/feedback``;
the *reference* is the champion's training data (monitoring/reference.py); the *model* is the
champion itself, for checks that ask it questions (prediction drift's reference answers, attribution).
The checks themselves (monitoring/checks.py) are pure functions of this bundle, so they are tested
without a registry or a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monitoring.concept_drift import serving_versions
from monitoring.reference import champion_reference
from pipelines import registry
from pipelines.registry import load_alias_model
from serving.log_reader import labelled_window, recent_predictions
from serving.prediction_log import make_engine

if TYPE_CHECKING:
    import pandas as pd

    from core.params import Params
    from core.settings import Settings
    from monitoring.reference import Reference


@dataclass
class CheckInputs:
    """The window of production traffic and what it is compared with."""

    reference: Reference
    window: pd.DataFrame  # newest served predictions (status ok), one column per feature
    labelled: pd.DataFrame  # predictions with a feedback label (``label``, ``correct``)
    model: Any | None  # the champion's fitted pipeline, None before the first model
    offline_accuracy: dict[str, float] = field(default_factory=dict)  # version -> held-out test accuracy
    serving_versions: set[str] | None = None  # versions in service; concept drift judges only these


def load_inputs(settings: Settings, params: Params, window: int | None = None) -> CheckInputs:
    """Read the newest ``window`` predictions (default ``monitoring.window``) and everything to compare them with."""
    size = window or params.monitoring.window
    engine = make_engine(settings.prediction_log_uri)
    try:
        served = recent_predictions(engine, last_n=size, model_name=settings.model_name)
        labelled = labelled_window(
            engine, last_n=params.monitoring.concept_drift.window * 4, model_name=settings.model_name
        )
    finally:
        engine.dispose()
    if "status" in served:
        served = served[served["status"] == "ok"].reset_index(drop=True)
    versions = registry.list_versions(settings)
    return CheckInputs(
        reference=champion_reference(settings, params),
        window=served,
        labelled=labelled,
        model=load_alias_model(settings, "champion"),
        offline_accuracy={v.version: v.accuracy for v in versions if v.accuracy is not None},
        serving_versions=serving_versions(versions),
    )
