"""All monitoring checks on one window, each answering with a `Finding`.

Concept: four kinds of drift plus anomalies (C32-C36), because each sees what the others miss:
data drift sees moved inputs before any label arrives; prediction drift sees the model's answers
change (a prior shift, a broken upstream default); concept drift sees accuracy fall from feedback
labels while the inputs look unchanged; attribution drift sees the model lean on different features;
the anomaly detector sees sudden jumps in latency, errors or confidence; the fairness check (C58)
sees one group's errors grow apart from another's on labelled rows that carry a group. A check that
has too little data says ``inconclusive``; a check that breaks says so in its finding instead of hiding the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.findings import Finding
from monitoring.anomaly import check_anomalies
from monitoring.attribution_drift import check_attribution_drift
from monitoring.concept_drift import check_concept_drift
from monitoring.data_drift import data_drift
from monitoring.explanation_drift import with_explanations
from monitoring.fairness_check import check_fairness
from monitoring.prediction_drift import prediction_drift, predictions_from_log, reference_predictions

if TYPE_CHECKING:
    from core.params import Params
    from monitoring.window import CheckInputs

log = logging.getLogger(__name__)


def _data_drift(inputs: CheckInputs, params: Params, out_dir: Path) -> Finding:

    return data_drift(inputs.reference.frame, inputs.window, params.dataset.feature_names, params.monitoring, out_dir)


def _concept_drift(inputs: CheckInputs, params: Params, out_dir: Path) -> Finding:

    return check_concept_drift(
        inputs.labelled, inputs.offline_accuracy, params.monitoring.concept_drift, serving=inputs.serving_versions
    )


def _prediction_drift(inputs: CheckInputs, params: Params, out_dir: Path) -> Finding:

    if inputs.model is None:
        return Finding("prediction_drift", "inconclusive", None, None, "no champion: no reference predictions")
    window = inputs.window
    if inputs.reference.champion is not None and "model_version" in window:  # the champion's answers only
        window = window[window["model_version"].astype(str) == inputs.reference.champion]
    ref_classes, ref_conf = reference_predictions(inputs.model, inputs.reference.frame, params.dataset.feature_names)
    cur_classes, cur_conf = predictions_from_log(window)
    return prediction_drift(ref_classes, ref_conf, cur_classes, cur_conf, params.monitoring)


def _attribution_drift(inputs: CheckInputs, params: Params, out_dir: Path) -> Finding:

    if inputs.model is None:
        return Finding("attribution_drift", "inconclusive", None, None, "no champion to attribute")
    finding = _permutation_attribution(inputs, params)
    # beside it, the SHAP-style global explanation of the served rows against the training-time one (C57)
    seed = params.monitoring.attribution_drift.seed
    features = params.dataset.feature_names
    return with_explanations(finding, inputs.model, inputs.reference.frame, inputs.window, features, seed)


def _permutation_attribution(inputs: CheckInputs, params: Params) -> Finding:
    features, knobs, target = params.dataset.feature_names, params.monitoring, params.dataset.target
    reference = inputs.reference.frame
    if len(inputs.labelled) >= knobs.min_rows:  # with feedback labels it also sees a changed concept
        labelled = inputs.labelled.tail(knobs.window)
        return check_attribution_drift(
            inputs.model,
            reference,
            labelled,
            features,
            knobs.attribution_drift,
            reference_labels=reference[target].astype(str),
            window_labels=labelled["label"].astype(str),
            min_rows=knobs.min_rows,
        )
    return check_attribution_drift(
        inputs.model, reference, inputs.window, features, knobs.attribution_drift, min_rows=knobs.min_rows
    )


def _anomaly(inputs: CheckInputs, params: Params, out_dir: Path) -> Finding:

    return check_anomalies(inputs.window, params.monitoring.anomaly, out_dir=out_dir)


def _fairness(inputs: CheckInputs, params: Params, out_dir: Path) -> Finding:

    return check_fairness(inputs.labelled, params, champion=inputs.reference.champion)


CHECKS: dict[str, Callable[[CheckInputs, Params, Path], Finding]] = {
    "data_drift": _data_drift,
    "prediction_drift": _prediction_drift,
    "concept_drift": _concept_drift,
    "attribution_drift": _attribution_drift,
    "anomaly": _anomaly,
    "fairness": _fairness,
}


def run_checks(inputs: CheckInputs, params: Params, out_dir: Path) -> list[Finding]:
    """Run every check on the window; reports go to ``out_dir``."""
    findings = []
    for name, check in CHECKS.items():
        try:
            findings.append(check(inputs, params, out_dir))
        except (ValueError, KeyError, RuntimeError) as err:  # a broken check must not hide the others
            log.warning("monitoring check %s failed: %s", name, err)
            findings.append(Finding(name, "inconclusive", None, None, f"check failed: {type(err).__name__}: {err}"))
    return findings
