"""Delivery figures from a real MLflow registry: register, promote, abort, roll back, then measure.

The history is made by the real registry functions on a SQLite MLflow store in a temporary folder;
the expected figures are read back from the audit entries those functions wrote, never typed in.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from core.findings import Finding, save_findings
from core.settings import Settings
from pipelines.delivery_metrics import delivery_metrics
from pipelines.registry import audit_log, promote, register_candidate, reject_challenger, rollback
from serving.log_schema import make_engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GATE = {"passed": True, "reasons": ["scripted"], "checks": {"min_metric": True}}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, make_settings) -> Settings:
    return make_settings(tmp_path_factory.mktemp("delivery") / "state", actor="tester", model_name="delivery")


@pytest.fixture(scope="module")
def history(store: Settings) -> Settings:
    """v1 first champion; v2 promoted; v3 aborted; v2 rolled back to v1."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from pipelines.registry import ensure_experiment

    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=200).fit(x, y)
    experiment_id = ensure_experiment(store)
    runs = []
    for _ in range(3):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(x, model.predict(x)),
                pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
            )
        runs.append((run.info.run_id, info.model_uri))
    register_candidate(store, *runs[0], GATE, None, "tester", "first model")
    register_candidate(store, *runs[1], GATE, None, "tester", "retrained")
    promote(store, "rollout-controller", "canary passed")
    register_candidate(store, *runs[2], GATE, None, "tester", "retrained again")
    reject_challenger(store, "rollout-controller", "canary aborted: accuracy fell")
    rollback(store, "oncall", "errors after promotion")
    return store


def _at(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def test_figures_match_the_registry_s_own_audit_trail(history: Settings) -> None:
    entries = audit_log(history)
    now = datetime.now(UTC)
    m = delivery_metrics(entries, [], now)

    by = {(e.action, e.alias, e.to_version): e for e in entries}
    assert (m.deployments, m.aborts, m.rollbacks) == (2, 1, 1)  # v1 and v2 shipped; v3 aborted; v2 rolled back
    assert m.change_failure_rate == pytest.approx((m.aborts + m.rollbacks) / (m.deployments + m.aborts))
    assert m.window_days == pytest.approx((now - _at(entries[0].ts)).total_seconds() / 86400)
    registered_v2 = _at(by[("register", "challenger", "2")].ts)
    promoted_v2 = _at(by[("promote", "champion", "2")].ts)
    assert [(t.version, t.since, t.seconds) for t in m.lead_times] == [
        ("2", "registration", (promoted_v2 - registered_v2).total_seconds())
    ]
    aborted_v3 = _at(by[("reject", "challenger", "3")].ts)
    registered_v3 = _at(by[("register", "challenger", "3")].ts)
    rolled_back = _at(by[("rollback", "champion", "1")].ts)
    assert [(r.version, r.kind, r.seconds) for r in m.restores] == [
        ("3", "abort", (aborted_v3 - registered_v3).total_seconds()),
        ("2", "rollback", (rolled_back - promoted_v2).total_seconds()),
    ]


def test_the_cli_reads_the_log_and_only_the_retrain_triggers_among_the_findings(history: Settings) -> None:
    from cli.app import app
    from cli.registry import _retrain_alarms

    drift = Finding("data_drift", "fired", 0.6, 0.5, "drifted", ts=datetime.now(UTC).isoformat())
    engine = make_engine(history.prediction_log_uri)
    try:
        save_findings(
            engine,
            [
                drift,
                Finding("anomaly", "fired", 4.0, 3.0, "spike"),  # fired, but not in monitoring.retrain.triggers
                Finding("concept_drift", "ok", 0.0, 0.05, "fine"),  # a trigger check that did not fire
            ],
        )
    finally:
        engine.dispose()
    assert _retrain_alarms(history) == [datetime.fromisoformat(drift.ts)]

    env = {
        "MLOPS_PROJECT_DIR": str(history.project_dir),
        "MLOPS_STATE_DIR": str(history.state),
        "MLOPS_MODEL_NAME": history.model_name,
        "COLUMNS": "200",
    }
    result = CliRunner(env=env).invoke(app, ["registry", "delivery"])
    assert result.exit_code == 0, result.output
    for expected in ("deployment frequency", "2 deployments", "1 aborted + 1 rolled back of 3 changes", "67%"):
        assert expected in result.stdout
    assert "v3 abort" in result.stdout
    assert "v2 rollback" in result.stdout
