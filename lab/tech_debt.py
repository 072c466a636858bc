"""Each kind of hidden technical debt in ML systems, mapped to the guard in this repository.

Concept: ML technical debt (C52). The well-known paper on hidden technical debt in machine-learning
systems argues that the model is a small box in a large system, and that most of the cost hides in
the box's surroundings: tangled inputs, silent consumers, glue, configuration, a changing world.
This module answers "how does your system pay that debt down?" with pointers, not prose: each debt
names the code that guards against it and the test that fails if the guard goes away, and says
honestly when a debt is only partly paid or not paid at all. ``check_debts`` holds every pointer
to the same rule as the concept catalog (``lab.refs``), so the map cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.refs import reference_problems

STATUSES = ("addressed", "partly", "not addressed")


@dataclass(frozen=True)
class Debt:
    """One kind of debt: what goes wrong, what guards against it here, and the proof."""

    name: str
    risk: str
    guard: str
    status: str
    code: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()


DEBTS: tuple[Debt, ...] = (
    Debt(
        name="Entanglement (changing anything changes everything)",
        risk="Features interact, so moving one input, knob or row changes every prediction, not just one.",
        guard="The whole Pipeline is retrained and judged as one unit: any change goes through the "
        "quality gate against the champion on the holdout, plus behavioural and slice checks.",
        status="addressed",
        code=("pipelines/quality_gate.py::evaluate_gate", "pipelines/behavioural.py", "pipelines/slices.py"),
        tests=(
            "tests/unit/pipelines/test_quality_gate.py::test_a_clearly_worse_candidate_is_rejected_with_b_c_p_and_the_resolution",
            "tests/unit/pipelines/test_quality_gate.py::test_failing_check_fails_the_gate_despite_good_metrics",
        ),
    ),
    Debt(
        name="Correction cascades",
        risk="A model stacked on another to patch its errors ties the two together; improving the "
        "first breaks the second.",
        guard="Avoided by design: one model per task. A better model replaces the champion through "
        "the gate and a canary instead of being corrected by a second model. Nothing enforces this.",
        status="partly",
        code=("pipelines/features.py::build_pipeline", "pipelines/registry.py"),
        tests=("tests/unit/pipelines/test_features.py::test_pipeline_is_one_object_with_features_inside",),
    ),
    Debt(
        name="Undeclared consumers",
        risk="Other systems quietly read the model's outputs, so any change breaks someone nobody knew of.",
        guard="Outputs leave only through a typed, documented API (OpenAPI, fuzzed), and the admin "
        "side needs a token. Prediction callers are not registered or authenticated, though.",
        status="partly",
        code=("serving/schemas.py::build_schemas", "serving/admin.py"),
        tests=(
            "tests/integration/serving/test_api_fuzz.py::test_every_operation_conforms_to_the_document",
            "tests/integration/serving/test_admin.py::test_every_endpoint_needs_the_right_token",
        ),
    ),
    Debt(
        name="Unstable data dependencies",
        risk="An input table or upstream job changes under the model without anyone noticing.",
        guard="Data is versioned by DVC (md5 in dvc.lock), every run records the data hash, and "
        "every batch must pass the data contract before training sees it.",
        status="addressed",
        code=("dvc.lock", "pipelines/lineage.py::lineage_tags", "pipelines/validation.py::validate_frame"),
        tests=(
            "tests/unit/pipelines/test_data.py::test_ingested_md5_matches_dvc_lock",
            "tests/unit/pipelines/test_validation.py::test_every_corruption_is_blocked_after_a_csv_round_trip",
        ),
    ),
    Debt(
        name="Underutilised data dependencies",
        risk="Legacy, bundled or barely useful features stay in the model and add risk for no gain.",
        guard="Every input and derived feature is declared in params and checked against the contract; "
        "attribution drift shows which features the model leans on. No check prunes unused features.",
        status="partly",
        code=("core/params.py::FeatureParams", "monitoring/attribution_drift.py::attribution"),
        tests=(
            "tests/unit/core/test_params.py::test_params_reject_derived_feature_on_unknown_column",
            "tests/unit/monitoring/test_attribution_drift.py::test_attribution_change_by_hand",
        ),
    ),
    Debt(
        name="Feedback loops",
        risk="The model's own decisions shape the labels it is retrained on, so errors can reinforce themselves.",
        guard="Retraining is gated against the champion, rate-limited by a cooldown lease and released as "
        "a canary. Hidden loops (labels biased by what the model chose to show) are not corrected.",
        status="partly",
        code=("monitoring/retrain_guard.py::try_acquire", "serving/rollout_controller.py::tick"),
        tests=(
            "tests/unit/monitoring/test_retrain_guard.py::test_cooldown_counts_from_the_last_start_even_after_release",
            "tests/integration/flows/test_closed_loop.py::test_a_retrain_the_gate_refuses_leaves_the_champion_serving",
        ),
    ),
    Debt(
        name="Glue code",
        risk="Most code ends up converting data in and out of a generic package, often twice.",
        guard="One scikit-learn Pipeline (features + estimator) is logged as the MLflow model; serving "
        "loads it and never re-implements preprocessing.",
        status="addressed",
        code=("pipelines/features.py::build_pipeline", "pipelines/tracking.py::log_training_run"),
        tests=(
            "tests/integration/pipelines/test_training.py::test_registered_artefact_predicts_exactly_what_training_computed",
            "tests/integration/serving/test_api.py::test_training_and_serving_give_identical_outputs",
        ),
    ),
    Debt(
        name="Pipeline jungles",
        risk="Data preparation grows into an untested tangle of scrapes, joins and intermediate files.",
        guard="One Prefect flow of named, unit-tested steps; dvc.yaml calls the same steps, and the "
        "lock proves the output is reproduced byte for byte.",
        status="addressed",
        code=("pipelines/training_flow.py", "dvc.yaml", "pipelines/dvc_stages.py"),
        tests=(
            "tests/integration/pipelines/test_training_flow.py::test_training_flow_registers_a_champion_and_publishes_the_decision",
            "tests/unit/pipelines/test_dvc_stages.py::test_outputs_are_byte_identical_across_runs",
        ),
    ),
    Debt(
        name="Dead experimental code paths",
        risk="Branches kept for old experiments pile up, untested, and one day run by accident.",
        guard="Experiments are parameters, not branches: the estimator and search space come from params and "
        "every listed estimator is trained in tests. No coverage gate finds unused code.",
        status="partly",
        code=("pipelines/features.py::make_estimator", "params.yaml"),
        tests=(
            "tests/unit/pipelines/test_features.py::test_every_listed_estimator_trains",
            "tests/unit/pipelines/test_features.py::test_hyperparams_that_do_not_fit_the_estimator_are_a_clear_error",
        ),
    ),
    Debt(
        name="Configuration debt",
        risk="Configuration outgrows the code, and a typo or a stale copy silently changes behaviour.",
        guard="params.yaml is parsed by strict pydantic models (a typo fails with the key named), and the "
        "Kubernetes copies of the knobs are checked against params and settings.",
        status="addressed",
        code=("core/params.py::load_params", "params.yaml"),
        tests=(
            "tests/unit/core/test_params.py::test_params_reject_a_typo_with_the_key_named",
            "tests/unit/ops/test_k8s_manifests.py::test_rollout_steps_are_the_params_rollout_steps",
        ),
    ),
    Debt(
        name="Changes in the external world",
        risk="The world moves (inputs, class mix, the meaning of a label) and a fixed model decays.",
        guard="Data, prediction and concept drift checks on the live window; a fired trigger starts one "
        "gated retrain that goes out as a canary.",
        status="addressed",
        code=("monitoring/checks.py::run_checks", "monitoring/retrain_plan.py::decide"),
        tests=(
            "tests/unit/monitoring/test_data_drift.py::test_covariate_shift_fires_on_exactly_the_moved_features",
            "tests/unit/monitoring/test_concept_drift.py::test_concept_shift_fires_although_the_inputs_did_not_move",
            "tests/integration/flows/test_closed_loop.py::test_drift_starts_exactly_one_retrain_whose_challenger_goes_out_as_a_canary",
        ),
    ),
    Debt(
        name="Monitoring debt",
        risk="Nobody notices when predictions skew, limits are hit or an upstream producer breaks.",
        guard="Prediction drift, anomaly detection on live metrics, per-version Prometheus metrics and "
        "alert rules that are unit-tested firing and silent.",
        status="addressed",
        code=("monitoring/prediction_drift.py::prediction_drift", "monitoring/prometheus/alerts.yml"),
        tests=(
            "tests/unit/monitoring/test_prediction_drift.py::test_same_predictions_pass_and_either_test_can_fire",
            "tests/unit/monitoring/test_alert_rules.py::test_every_alert_is_tested_firing_and_silent",
        ),
    ),
    Debt(
        name="Reproducibility debt",
        risk="A model nobody can rebuild cannot be debugged, audited or rolled forward.",
        guard="Locked environment, seeds, data hash, git sha and params on every run; "
        "`mlops-lab reproduce` rebuilds a registered version with identical metrics.",
        status="addressed",
        code=("pipelines/reproduce.py", "uv.lock"),
        tests=(
            "tests/integration/pipelines/test_training.py::test_reproduce_rebuilds_identical_metrics_and_predictions",
        ),
    ),
    Debt(
        name="Abstraction debt",
        risk="Without a shared abstraction for ML components, every team invents its own interfaces.",
        guard="Not addressed beyond house conventions: core functions on DataFrames and dataclasses, "
        "thin shells. There is no general component abstraction, and none is claimed.",
        status="not addressed",
    ),
)


def check_debts(debts: Sequence[Debt], root: Path) -> list[str]:
    """Every problem in the map: unknown status, a guard without proof, a missing path, symbol or test."""
    problems: list[str] = []
    for debt in debts:
        if debt.status not in STATUSES:
            problems.append(f"{debt.name}: status {debt.status!r} must be one of {STATUSES}")
        if debt.status != "not addressed" and not (debt.code and debt.tests):
            problems.append(f"{debt.name}: a guard needs code and a test that proves it (or say 'not addressed')")
        problems += reference_problems(debt.code, debt.tests, root, debt.name)
    return problems
