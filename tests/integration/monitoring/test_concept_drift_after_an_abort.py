"""After an aborted canary, the monitor judges the models that serve, not the one nobody serves any more.

Real registry (two versions trained by the real training path), real prediction log with feedback, the
monitoring inputs read the way `mlops-lab monitor` reads them. The challenger's answers were all wrong;
while it is in play that is concept drift worth a retrain, once it is rejected it must not start one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.params import Params
from monitoring.checks import _concept_drift
from monitoring.window import load_inputs
from pipelines.data import ingest
from pipelines.registry import current_aliases, reject_challenger
from pipelines.training_steps import run_training
from serving.prediction_log import PredictionLog, PredictionRecord

pytestmark = [pytest.mark.integration, pytest.mark.slow]
T0 = datetime(2026, 3, 1, tzinfo=UTC)
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def test_a_rejected_challengers_bad_labels_never_trigger_a_retrain(make_settings, params: Params, tmp_path) -> None:
    settings = make_settings(tmp_path / "state")
    data = ingest(params.dataset, params.ingest, tmp_path / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(settings, params, data).status == "registered"
    aliases = current_aliases(settings)
    champion, challenger = aliases["champion"], aliases["challenger"]
    log = PredictionLog(settings.prediction_log_uri).start()
    try:
        n = params.monitoring.concept_drift.min_labels * 2
        for i in range(n):
            for version in (champion, challenger):  # both answered setosa; the label says who was right
                rid = f"v{version}-{i}"
                log.record(
                    PredictionRecord(rid, settings.model_name, version, ROW, "setosa", ts=T0 + timedelta(seconds=i))
                )
        assert log.flush()
        for i in range(n):
            for version, label in ((champion, "setosa"), (challenger, "virginica")):
                assert log.record_feedback(f"v{version}-{i}", label).status.value == "recorded"
    finally:
        log.close()

    in_play = _concept_drift(load_inputs(settings, params), params, tmp_path)
    assert in_play.status == "fired"  # control: a challenger in play with 0 % online accuracy is drift

    reject_challenger(settings, "test", "canary aborted: online accuracy")
    after = _concept_drift(load_inputs(settings, params), params, tmp_path)
    assert after.status == "ok", after.summary
    assert after.details["versions"][challenger]["serving"] is False
    assert after.details["versions"][champion]["serving"] is True
