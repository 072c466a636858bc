"""``registry delivery`` reads alarms from the findings history, and degrades plainly when it cannot."""

from __future__ import annotations

import pytest

from cli.registry import _retrain_alarms
from core.settings import Settings


def test_an_unreachable_findings_database_leaves_the_audit_figures_and_says_why(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # A shared PostgreSQL that is down: nothing listens on loopback port 1, so the connection is refused.
    down = "postgresql+psycopg://test:test-fake@127.0.0.1:1/nothing?connect_timeout=5"
    unreachable = settings.model_copy(update={"prediction_log_url": down})
    assert _retrain_alarms(unreachable) == []
    err = " ".join(capsys.readouterr().err.split())
    assert "findings history unreadable (OperationalError)" in err
    assert "lead times count from registration" in err


def test_an_empty_findings_database_has_no_alarms(settings: Settings) -> None:
    assert _retrain_alarms(settings) == []
