"""Every message the service reports or logs keeps passwords out: /readyz details, errors, log lines.

Each path gets a failure whose text carries a URL with a password, as an unreachable tracking server
or a mistyped database URL would produce, and the test checks what an unauthenticated caller of
/readyz, the operator's terminal and the logs would see.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.params import load_params
from serving.log_schema import PredictionLogError, make_engine
from serving.model_cache import ModelCache
from serving.monitor_metrics import MonitorCollector
from serving.runtime import LiveRouting
from serving.state_store import StateStore, StateStoreError

REPO = Path(__file__).resolve().parents[3]
SECRET = "fake-s3cr3t-pa55"
URL = f"http://admin:{SECRET}@mlflow.internal:5000"


def _raise(error: Exception):
    def fail(*_: object) -> None:
        raise error

    return fail


def test_a_registry_outage_is_reported_without_the_password() -> None:
    cache = ModelCache(resolve=_raise(ConnectionError(f"API request to {URL}/api/2.0/mlflow failed")), load=str)
    assert cache.refresh() is False
    assert (
        cache.health.last_error
        == "ConnectionError: API request to http://admin:***@mlflow.internal:5000/api/2.0/mlflow failed"
    )


def test_a_model_that_fails_to_load_is_reported_without_the_password() -> None:
    cache = ModelCache(resolve=lambda alias: ("1", "r") if alias == "champion" else None, load=_raise(OSError(URL)))
    cache.refresh()
    assert cache.health.last_error is not None
    assert SECRET not in cache.health.last_error
    assert "admin:***@" in cache.health.last_error


def test_a_routing_store_outage_is_reported_and_logged_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    class DownStore:
        def change_token(self) -> object:
            raise sa.exc.OperationalError(
                "SELECT 1", {}, Exception(f"connection to postgresql://app:{SECRET}@db failed")
            )

    routing = LiveRouting(load_params(REPO / "params.yaml"), DownStore())  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        routing.refresh()
    assert routing.last_error is not None
    assert "postgresql://app:***@db" in routing.last_error
    assert SECRET not in routing.last_error
    assert SECRET not in caplog.text
    assert "routing state not refreshed" in caplog.text


def test_a_monitoring_state_outage_is_reported_without_the_password() -> None:
    collector = MonitorCollector()
    collector.attach(_raise(sa.exc.OperationalError("SELECT 1", {}, Exception(f"postgresql://app:{SECRET}@db"))))
    assert collector.refresh() is False
    assert collector.last_error is not None
    assert SECRET not in collector.last_error


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (make_engine, PredictionLogError),
        (lambda url: StateStore(url, load_params(REPO / "params.yaml").routing), StateStoreError),
    ],
)
def test_an_unsupported_database_url_is_refused_without_echoing_its_password(build, error) -> None:
    with pytest.raises(error) as refused:
        build(f"mysql://app:{SECRET}@db/log")
    assert "mysql://app:***@db/log" in str(refused.value)
    assert SECRET not in str(refused.value)
