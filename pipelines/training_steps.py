"""The training steps, as plain functions: load → validate → train → gate → register.

Concept: the quality gate in the training path (C14) and "bad input loses nothing" (C06).
`run_training` is the one sequence of the steps; the Prefect flow (`pipelines.training_flow`) runs
the same sequence with each step as a task. Order matters: data is validated before
anything is trained or logged; every training set loses the holdout rows (``pipelines/holdout.py``)
before it is split; a candidate is logged, but only one that passes the gate against the champion,
both scored on the *same* holdout (its md5 is a run tag), is registered and gets an alias.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.mlflow_config import mlflow_client
from pipelines.behavioural import run_behavioural_checks
from pipelines.data import LoadedData, load_data
from pipelines.evaluate import evaluate_model
from pipelines.fairness import fairness_check
from pipelines.fairness_what_if import mitigation_what_if
from pipelines.feature_training import TAG_PREFIX as FEATURE_TAG_PREFIX
from pipelines.feature_training import feature_lineage_tags
from pipelines.fit import fit_and_evaluate
from pipelines.holdout import load_holdout, without_holdout
from pipelines.lineage import lineage_tags
from pipelines.model_card import NOT_REGISTERED, VERSION_PENDING, ModelCardInfo, dataset_fields, render_model_card
from pipelines.onnx_registry import OnnxOutcome, log_onnx, onnx_for_candidate
from pipelines.quality_gate import HoldoutScore, evaluate_gate
from pipelines.registry import load_alias_model, record_gate_rejection, register_candidate
from pipelines.slices import parity_check, slice_metrics
from pipelines.tracking import log_training_run
from pipelines.validation import FIRST_DATA_LINE, validate_frame

if TYPE_CHECKING:
    from core.params import Params
    from core.settings import Settings
    from pipelines.fit import TrainResult
    from pipelines.quality_gate import GateDecision
    from pipelines.slices import SliceMetric
    from pipelines.tracking import LoggedRun


@dataclass
class TrainingOutcome:
    """What one training run ended with; printed by the CLI and returned by the flow."""

    status: str  # "registered" | "rejected"
    run_id: str
    metrics: dict[str, float]
    gate: dict[str, Any]
    version: str | None = None
    alias: str | None = None
    champion_metrics: dict[str, float] | None = None
    search_run_ids: list[str] = field(default_factory=list)  # the search's parent run, then its trials in order
    search: dict[str, Any] | None = None  # the study's summary (trials, pruned, best params and CV mean)


@dataclass(frozen=True)
class SearchInfo:
    """What a search left besides its candidate: its MLflow runs and the study's summary."""

    parent_run_id: str
    trial_run_ids: list[str]
    summary: dict[str, Any]


# Training's validation runs are stored in Great Expectations (Data Docs, results) as "training:<file>", so
# a refusal by training names the file it checked and is told apart from a `mlops-lab validate` run (named
# after the file alone; a file name cannot hold ":" on every system); lab 1 reads it.
VALIDATION_RUN_PREFIX = "training:"


def training_validation_name(path: Path) -> str:
    """The Data Docs run name of training's validation of ``path``: ``training:iris.csv``."""
    return f"{VALIDATION_RUN_PREFIX}{path.name}"


def validate_data(data: LoadedData, params: Params, docs_dir: Path | None) -> dict[str, Any]:
    """Run the expectation suite; raise DataValidationError (nothing trained) on any failure."""
    name = training_validation_name(data.path)
    result = validate_frame(data.frame, params.dataset, docs_dir=docs_dir, batch_name=name, first_line=FIRST_DATA_LINE)
    result.raise_for_failures()
    return {"success": result.success, "statistics": result.statistics, "docs": str(result.docs_path or "")}


def train_candidate(
    settings: Settings, params: Params, data: LoadedData, search: bool = False
) -> tuple[TrainResult, LoggedRun, SearchInfo | None]:
    """Fit and log the candidate to MLflow; with ``search``, the winner of a hyperparameter search.

    A search (`pipelines.search_tracking`) chooses on cross-validation accuracy of the training part only,
    never on the test split or the holdout, so the held-out scores the gate uses stay honest estimates.
    The holdout's rows are removed first, whatever the file (a retrain's file holds the raw rows too);
    its md5 is tagged ``holdout_md5``.
    """
    holdout = load_holdout(settings, params, data.frame)
    frame = without_holdout(data.frame, holdout.frame, params.dataset)
    tags = {
        **lineage_tags(settings.project_dir, data.path, data.md5, params.digest()),
        "holdout_md5": holdout.md5,
        "holdout_path": str(holdout.path),
        "holdout_rows_removed": str(len(data.frame) - len(frame)),
        **feature_lineage_tags(data.path),  # feature_store.* when the file was exported from the feature store
    }
    if not search:
        result = fit_and_evaluate(frame, params)
        return result, log_training_run(settings, params, result, tags, run_name="candidate"), None
    from pipelines.search_tracking import search_candidate

    result, logged, runs, study = search_candidate(settings, params, frame, tags)
    return result, logged, SearchInfo(runs.parent_id, runs.trial_ids, study.summary())


@dataclass(frozen=True)
class GateReport:
    decision: GateDecision
    champion_metrics: dict[str, float] | None  # the champion's metrics on the holdout
    slices: list[SliceMetric]
    holdout_metrics: dict[str, float] = field(default_factory=dict)  # the candidate's, on the holdout
    onnx: OnnxOutcome | None = None  # export + parity check (advisory: decides the ONNX file, not the gate)
    fairness: dict[str, Any] | None = None  # `FairnessReport.to_dict()` of the test rows, None when not judged
    explanation: dict[str, Any] | None = None  # global explanation on the holdout, for the model card

    @property
    def slice_table(self) -> dict[str, dict[str, float]]:
        """Slices as {"class=setosa": {"recall": 1.0, "n": 15}} for the model card."""
        return {f"{s.family}={s.slice}": {s.metric: s.value, "n": float(s.n)} for s in self.slices}


def score_on_holdout(
    model: Any, holdout: LoadedData, params: Params, trained_against: str | None, label: str
) -> HoldoutScore:
    """Score one model on the holdout: its metrics and, row by row, whether it was right."""
    from pipelines.data import split_features_target

    X, y = split_features_target(holdout.frame, params.dataset)
    evaluation = evaluate_model(model, X, y, params.dataset.classes)
    correct = [pred == true for pred, true in zip(evaluation.predictions, y.astype(str), strict=True)]
    return HoldoutScore(evaluation.metrics, correct, holdout.md5, trained_against, label)


def _trained_against(settings: Settings, alias: str) -> tuple[str | None, str | None]:
    """(version, holdout md5 its run was trained against) of an alias; (None, None) when the alias is unset."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings)
    try:
        version = client.get_model_version_by_alias(settings.model_name, alias)
    except MlflowException:
        return None, None
    run_id = version.run_id
    return str(version.version), client.get_run(run_id).data.tags.get("holdout_md5") if run_id else None


def gate_candidate(settings: Settings, params: Params, result: TrainResult) -> GateReport:
    """Behavioural checks + slice parity + a paired comparison with the champion on the same holdout."""
    holdout = load_holdout(settings, params)
    split = result.split
    checks = run_behavioural_checks(result.pipeline, split.X_train, split.y_train, split.X_test, params.gate)
    groups = None if split.groups_test is None else {params.dataset.group_column or "group": split.groups_test}
    slices = slice_metrics(split.y_test, pd.Series(result.evaluation.predictions, index=split.y_test.index), groups)
    checks.append(parity_check(slices, params.gate.slice_parity))
    fairness, fairness_figures = fairness_check(
        split.y_test,
        result.evaluation.predictions,
        split.groups_test,
        params.gate.fairness,
        list(params.dataset.classes),
        params.dataset.group_column or "group",
    )
    checks.append(fairness)
    # The candidate was trained by train_candidate a moment ago, against this holdout (tagged on its run).
    candidate = score_on_holdout(result.pipeline, holdout, params, holdout.md5, "candidate")
    champion_score = None
    champion = load_alias_model(settings, "champion")
    if champion is not None:
        version, trained_against = _trained_against(settings, "champion")
        champion_score = score_on_holdout(champion, holdout, params, trained_against, f"champion v{version}")
    decision = evaluate_gate(candidate, champion_score, checks, params.gate)
    reference = split.X_train.assign(**{params.dataset.target: split.y_train})  # the batch generator fits to it
    onnx = onnx_for_candidate(result.pipeline, params, holdout.frame, reference)
    decision.advisory.append(onnx.check())  # shown with the gate; it decides the ONNX file only
    champion_metrics = None if champion_score is None else dict(champion_score.metrics)
    fairness_dict = None if fairness_figures is None else fairness_figures.to_dict()
    if fairness_dict is not None:  # what a threshold mitigation would give, in the same report (never served)
        fairness_dict["mitigation"] = mitigation_what_if(result.pipeline, split, params)
    explanation = explain_on_holdout(result, holdout, params)
    return GateReport(decision, champion_metrics, slices, dict(candidate.metrics), onnx, fairness_dict, explanation)


def explain_on_holdout(result: TrainResult, holdout: LoadedData, params: Params) -> dict[str, Any]:
    """The candidate's global explanation on the holdout (C57); an error is reported on the card, never fatal."""
    from pipelines.explain import global_explanation

    features = params.dataset.feature_names
    try:
        background = result.split.X_train[features].to_numpy(dtype="float64")
        values = holdout.frame[features].to_numpy(dtype="float64")
        return global_explanation(result.pipeline, background, values, params.train.seed)
    except Exception as err:  # an explanation must never keep a good model out of the registry
        return {"error": f"{type(err).__name__}: {err}"}


def register_or_reject(
    settings: Settings, params: Params, result: TrainResult, logged: LoggedRun, report: GateReport, data: LoadedData
) -> TrainingOutcome:
    """Register a passing candidate (champion if first, else challenger); a failing one gets tags, its card and an
    audit entry saying why (`pipelines.registry.record_gate_rejection`)."""
    client = mlflow_client(settings)
    decision = report.decision
    gate = decision.to_dict()
    client.set_tag(logged.run_id, "gate.status", "passed" if decision.passed else "rejected")
    client.set_tag(logged.run_id, "gate.summary", decision.summary()[:4000])
    for check in decision.checks:  # one readable tag per check: gate.check.<name> = pass | FAIL
        client.set_tag(logged.run_id, f"gate.check.{check.name}", "pass" if check.passed else "FAIL")
    client.log_text(logged.run_id, json.dumps(gate, indent=2), "gate/decision.json")
    client.log_text(logged.run_id, decision.markdown(), "gate/summary.md")
    if report.fairness is not None:  # the figures behind the fairness check, for a rejected candidate too
        client.log_text(logged.run_id, json.dumps(report.fairness, indent=2), "gate/fairness.json")
    for key, value in report.holdout_metrics.items():
        client.log_metric(logged.run_id, f"holdout_{key}", value)
    onnx_tags = {} if report.onnx is None else log_onnx(client, logged.run_id, report.onnx)
    if report.explanation is not None:  # the global explanation at training time, machine-readable (C57)
        client.log_text(logged.run_id, json.dumps(report.explanation, indent=2), "explanations/global.json")
    outcome = TrainingOutcome(
        status="registered" if decision.passed else "rejected",
        run_id=logged.run_id,
        metrics=logged.metrics,
        gate=gate,
        champion_metrics=report.champion_metrics,
    )
    tags = client.get_run(logged.run_id).data.tags
    card = render_model_card(
        ModelCardInfo(
            model_name=settings.model_name,
            version=None,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            **dataset_fields(params.dataset),
            data_path=tags.get("data_path", str(data.path)),
            data_md5=data.md5,
            data_rows=len(data.frame),
            params=_card_params(params, result, searched="search.parent_run_id" in tags),
            test_metrics=result.evaluation.metrics,
            holdout_metrics=report.holdout_metrics,
            cv_metrics={k: v for k, v in result.metrics.items() if k.startswith("cv_")},
            per_class_metrics=result.evaluation.per_class,
            confusion=result.evaluation.confusion,
            slice_metrics=report.slice_table,
            gate=gate,
            run_id=logged.run_id,
            git_sha=tags.get("git_sha"),
            params_hash=tags.get("params_hash"),
            library_versions={k.removeprefix("lib."): v for k, v in tags.items() if k.startswith("lib.")},
            onnx=None if report.onnx is None else report.onnx.to_dict(),
            fairness=report.fairness,
            explanation=report.explanation,
        )
    )
    if not decision.passed:  # kept out of the registry: the reasons on the run, its card and the audit trail
        reasons = "; ".join(decision.reasons)
        client.set_tag(logged.run_id, "gate.reason", reasons[:4000])
        client.log_text(logged.run_id, card.replace(VERSION_PENDING, NOT_REGISTERED), "model_card.md")
        client.set_tag(logged.run_id, "model_card", f"runs:/{logged.run_id}/model_card.md")
        record_gate_rejection(settings, logged.run_id, reasons, settings.actor)
        return outcome
    registered = register_candidate(
        settings,
        logged.run_id,
        logged.model_uri,
        gate,
        card,
        settings.actor,
        reason="passed the quality gate",
        extra_tags={**onnx_tags, **{k: v for k, v in tags.items() if k.startswith(FEATURE_TAG_PREFIX)}},
    )
    outcome.version, outcome.alias = registered.version, registered.alias
    return outcome


def _card_params(params: Params, result: TrainResult, searched: bool) -> dict[str, Any]:
    """The training parameters a card shows: the search settings and space only when a search chose this model."""
    shown = params.train.model_dump(mode="json", exclude={"search"})
    if searched:
        search = params.train.search.model_dump(mode="json", exclude={"space"})
        space = {k: v.model_dump(mode="json", exclude_none=True) for k, v in params.train.search_space.items()}
        shown["search"] = {**search, "space": space}
    return {**shown, "hyperparams": result.hyperparams}


@dataclass(frozen=True)
class Steps:
    """The five steps of a training run: the plain functions, or the same functions as Prefect tasks.

    `run_training` is the one sequence; the Prefect flow (`pipelines.training_flow`) passes task
    versions of these functions, so what the flow does and what an in-process run does cannot differ.
    """

    load: Callable[[Path], LoadedData] = load_data
    validate: Callable[[LoadedData, Params, Path | None], dict[str, Any]] = validate_data
    train: Callable[[Settings, Params, LoadedData, bool], tuple[TrainResult, LoggedRun, SearchInfo | None]] = (
        train_candidate
    )
    gate: Callable[[Settings, Params, TrainResult], GateReport] = gate_candidate
    register: Callable[[Settings, Params, TrainResult, LoggedRun, GateReport, LoadedData], TrainingOutcome] = (
        register_or_reject
    )


def run_name(purpose: str, outcome: TrainingOutcome) -> str:
    """The MLflow run's name once the gate has spoken: ``train-v3``, ``retrain-drift-v4``, ``train-rejected-1a2b3c4d``.

    ``purpose`` says why the model was trained (``train`` by hand, ``retrain-<trigger>`` by the loop); it is
    reduced to lower-case letters, digits and dashes so the name reads the same in every UI.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", purpose.lower()).strip("-") or "train"
    return f"{slug}-v{outcome.version}" if outcome.version else f"{slug}-rejected-{outcome.run_id[:8]}"


def run_training(
    settings: Settings,
    params: Params,
    data_path: Path | None = None,
    search: bool = False,
    steps: Steps | None = None,
    purpose: str = "train",
) -> TrainingOutcome:
    """load → validate → train → gate → register; invalid data raises before anything is trained.

    The run is logged as ``candidate`` and renamed after the gate (`run_name`), so the MLflow UI lists
    ``train-v1``, ``retrain-drift-v2``, ``train-rejected-...`` instead of a column of identical names; with a
    search the candidate is named so too, its parent run ``train-v3-search``, and the trials keep ``trial N``.
    """
    steps = steps or Steps()
    data = steps.load(data_path or settings.resolve(params.dataset.path))
    steps.validate(data, params, settings.gx_dir)
    result, logged, searched = steps.train(settings, params, data, search)
    report = steps.gate(settings, params, result)
    outcome = steps.register(settings, params, result, logged, report, data)
    client, name = mlflow_client(settings), run_name(purpose, outcome)
    client.update_run(outcome.run_id, name=name)
    if searched is not None:  # the trials keep their "trial N" names; the parent is named after the candidate
        outcome.search_run_ids = [searched.parent_run_id, *searched.trial_run_ids]
        outcome.search = searched.summary
        client.update_run(searched.parent_run_id, name=f"{name}-search")
    return outcome
