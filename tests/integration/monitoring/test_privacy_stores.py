"""Privacy on real parts: a raw user id sent to a real uvicorn lands in no store we own; erasure across a key
rotation leaves nothing of that user and touches no one else; the retention flow runs under Prefect.

Real pieces: the serving app under uvicorn on a loopback port (the raw id crosses real HTTP), its SQLite
prediction log, its access log on stdout and /metrics, the Prefect ``monitoring`` flow writing reports and an
MLflow run, the ``mlops-lab privacy`` CLI, Prefect's test harness.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.app import app as cli
from core.context import LabContext
from core.settings import Settings
from lab.demos.traffic import DemoService, users
from monitoring.privacy import AUDIT_FILE, audit_entries
from serving.app import create_app
from serving.credentials import feedback_key, user_keys
from serving.prediction_log import PredictionLog, PredictionRecord, feedback_table, make_engine, predictions_table
from tests.live_server import served_on_loopback

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
TOKEN = "workshop-admin-test-token"
OLD_SECRET, NEW_SECRET = "example-user-key-secret-old-0001", "example-user-key-secret-new-0002"
RAW = "dana.raw-user-id-5e8b@example.invalid"  # the person behind X-User-Id
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def trained(root: Path, make_settings, demo_context, **overrides: object) -> LabContext:
    from lab.demos.prep import ensure_raw_data
    from pipelines.training_steps import run_training

    ctx = demo_context(make_settings(root / "state", poll_interval_s=3600, rate_limit_per_s=0, admin_token=TOKEN,
                                     user_key_secret=OLD_SECRET, **overrides))  # fmt: skip
    assert run_training(ctx.settings, ctx.params, ensure_raw_data(ctx)).alias == "champion"
    return ctx


@contextmanager
def serving(ctx: LabContext, settings: Settings) -> Iterator[tuple[DemoService, httpx.Client]]:
    """The app with its lifespan running, driven in process (bulk traffic) and over real HTTP (the person)."""
    with (
        TestClient(create_app(settings, ctx.params)) as client,
        served_on_loopback(client.app) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield DemoService(client, LabContext(settings=settings, params=ctx.params)), http


def as_person(service: DemoService, http: httpx.Client, requests: int) -> list[str]:
    """``requests`` predictions for RAW over HTTP (one of two rows), each labelled; the row ids served."""
    ids = []
    for i in range(requests):
        body = {"rows": [ROW, ROW]} if i % 2 else ROW
        answer = http.post("/v1/predict", json=body, headers={"X-User-Id": RAW})
        assert answer.status_code == 200, answer.text
        ids += [p["id"] for p in answer.json()["predictions"]]
        service.flush()
        label = {"request_id": ids[-1], "label": "setosa"}
        reply = http.post("/v1/feedback", json=label, headers={"X-Feedback-Token": answer.json()["feedback_token"]})
        assert reply.status_code == 200, reply.text
    return ids


def files_under(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_raw_user_id_sent_through_the_api_lands_in_no_store_we_own(
    tmp_path: Path, make_settings, demo_context, harness: None
) -> None:
    from flows.monitoring_flow import monitoring_flow
    from flows.retention_flow import retention_flow

    ctx = trained(tmp_path, make_settings, demo_context, access_log=True)
    stdout = io.StringIO()  # the access log's writer binds stdout when the app starts, and writes there until it stops
    with redirect_stdout(stdout), serving(ctx, ctx.settings) as (service, http):
        assert service.send(users("u", 80), seed=1).failed == 0
        ids = as_person(service, http, 3)
        refused = http.post("/v1/predict", json={"sepal_length": "x"}, headers={"X-User-Id": RAW})
        assert refused.status_code == 422  # a refused request is logged too
        metrics = http.get("/metrics").text
    access = stdout.getvalue()
    monitoring = monitoring_flow(ctx.settings, ctx.params, retrain=False)
    retention_flow(ctx.settings)  # nothing is old enough: it runs, records, deletes nothing

    assert all(rid.split(":")[0] in access for rid in ids)  # the search reads the real access log ...
    assert "mlops_predictions_total" in metrics  # ... the real /metrics ...
    assert any(Path(monitoring.report_dir).iterdir())  # ... real reports and an MLflow run
    stores = files_under(ctx.settings.state)  # prediction log, MLflow store and artifacts, reports, audit, state files
    assert any(p.name == "predictions.db" for p in stores)
    assert any("mlartifacts" in p.parts for p in stores)
    for where, text in [("access log", access), ("/metrics", metrics)] + [(str(p), b) for p, b in stores.items()]:
        data = text.encode() if isinstance(text, str) else text
        assert RAW.encode() not in data, f"the raw user id is in {where}"
        assert RAW.split("@")[0].encode() not in data, f"part of the raw user id is in {where}"
    key = user_keys(OLD_SECRET, [], feedback_key(None, TOKEN)).key(RAW)
    assert key is not None
    assert any(key.encode() in b for b in stores.values())  # what is stored instead: the keyed hash


def user_counts(settings: Settings, keys: list[str]) -> tuple[int, int]:
    engine = make_engine(settings.prediction_log_uri)
    try:
        with engine.connect() as conn:
            of = predictions_table.c.user_key.in_(keys)
            rows = conn.scalar(sa.select(sa.func.count()).where(of))
            labelled = sa.select(predictions_table.c.request_id).where(of)
            labels = conn.scalar(sa.select(sa.func.count()).where(feedback_table.c.request_id.in_(labelled)))
    finally:
        engine.dispose()
    return int(rows or 0), int(labels or 0)


def test_erase_removes_one_person_across_a_key_rotation_and_leaves_everyone_else(
    tmp_path: Path, make_settings, demo_context, harness: None
) -> None:
    from mlflow import MlflowClient

    from flows.monitoring_flow import monitoring_flow

    ctx = trained(tmp_path, make_settings, demo_context)
    rotated = ctx.settings.model_copy(update={"user_key_secret": NEW_SECRET, "user_key_previous": [OLD_SECRET]})
    with serving(ctx, ctx.settings) as (service, http):
        assert service.send(users("b", 60), seed=1).failed == 0
        before = Path(
            monitoring_flow(ctx.settings, ctx.params, retrain=False).report_dir
        )  # made before the person came
        ids = as_person(service, http, 3)  # under the old key
    with serving(ctx, rotated) as (service, http):  # the key is rotated: a new secret, the old one kept for lookup
        ids += as_person(service, http, 2)
        assert service.send(users("b", 30), seed=2).failed == 0
        after = Path(monitoring_flow(ctx.settings, ctx.params, retrain=False).report_dir)
    old_key, new_key = (user_keys(s, [], feedback_key(None, TOKEN)).key(RAW) for s in (OLD_SECRET, NEW_SECRET))
    assert old_key is not None
    assert new_key is not None
    assert old_key != new_key
    keyers = [user_keys(s, [], feedback_key(None, TOKEN)) for s in (OLD_SECRET, NEW_SECRET)]
    everyone_else = [k.key(user) or "" for k in keyers for user in users("b", 60)]
    assert user_counts(ctx.settings, [old_key, new_key]) == (7, 5)  # 3 + 2 requests, two of them of two rows
    others = user_counts(ctx.settings, everyone_else)
    assert others == (90, 90)

    env = {"MLOPS_STATE_DIR": str(ctx.settings.state), "MLOPS_PROJECT_DIR": str(REPO), "MLOPS_ACTOR": "dpo-test"}
    keyed = env | {"MLOPS_USER_KEY_SECRET": NEW_SECRET, "MLOPS_USER_KEY_PREVIOUS": json.dumps([OLD_SECRET])}
    runner = CliRunner()
    refused = runner.invoke(cli, ["privacy", "erase", "--user", RAW, "--yes"], env=env)  # no key secret: no way in
    assert refused.exit_code == 1, refused.output
    assert "refused" in refused.output
    declined = runner.invoke(cli, ["privacy", "erase", "--user", RAW], env=keyed, input="n\n")
    assert declined.exit_code == 1, declined.output
    assert user_counts(ctx.settings, [old_key, new_key]) == (7, 5)  # asked, declined: nothing happened
    done = runner.invoke(cli, ["privacy", "erase", "--user", RAW, "--yes"], env=keyed)
    assert done.exit_code == 0, done.output

    assert user_counts(ctx.settings, [old_key, new_key]) == (0, 0)
    assert user_counts(ctx.settings, everyone_else) == others  # nobody else lost a row or a label
    assert before.exists()
    assert not after.exists()  # the report made since the person's first row went
    client = MlflowClient(tracking_uri=ctx.settings.mlflow_tracking_uri)
    runs = {r.info.run_name: r.info.run_id for r in client.search_runs(
        [client.get_experiment_by_name(f"{ctx.settings.experiment_name}-monitoring").experiment_id])}  # fmt: skip
    assert client.list_artifacts(runs[f"monitoring-{before.name}"], "reports")
    assert not client.list_artifacts(runs[f"monitoring-{after.name}"], "reports")  # ... and its MLflow copy
    for path, data in files_under(ctx.settings.state).items():  # nothing of the person in any store we own
        for trace in (RAW, old_key, new_key, *(rid.split(":")[0] for rid in ids)):
            assert trace.encode() not in data, f"{trace} is still in {path}"
    for text in ("1 report folders", "backups", "retrain", "models already trained"):
        assert text in " ".join(done.output.split()), done.output
    [entry] = audit_entries(ctx.settings.state)
    assert (entry["action"], entry["actor"], entry["predictions"], entry["feedback"]) == ("erasure", "dpo-test", 7, 5)
    audit = (ctx.settings.state / AUDIT_FILE).read_text()
    for trace in (RAW, old_key, new_key):
        assert trace not in audit


def test_the_retention_flow_deletes_what_is_older_than_the_retention_under_prefect(
    settings: Settings, harness: None
) -> None:
    from flows.retention_flow import retention_flow

    log = PredictionLog(settings.prediction_log_uri).start()
    newest = datetime.now(UTC)
    try:
        for i in range(5):  # one row a day: the oldest is 4 days older than the newest
            ts = newest - timedelta(days=4 - i)
            assert log.record(PredictionRecord(f"r{i}", "iris", "1", {"sepal_length": 5.0}, "setosa", ts=ts))
        assert log.flush()
    finally:
        log.close()
    removed = retention_flow(settings, days=2, now=newest)  # the cutoff, newest - 2 days, is r2's time exactly
    assert (removed.predictions, removed.feedback) == (2, 0)
    engine = make_engine(settings.prediction_log_uri)
    try:
        with engine.connect() as conn:
            assert sorted(conn.scalars(sa.select(predictions_table.c.request_id))) == ["r2", "r3", "r4"]
    finally:
        engine.dispose()
    assert [e["action"] for e in audit_entries(settings.state)] == ["retention"]
