"""`mlops-lab db current | upgrade`: where the state's database stands, and bringing it to head."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.app import app


def test_db_current_and_upgrade_on_the_state_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("MLOPS_PREDICTION_LOG_URL", raising=False)
    runner = CliRunner()
    before = runner.invoke(app, ["db", "current"])
    assert before.exit_code == 1
    assert "none (never migrated)" in before.output
    assert "run: mlops-lab db upgrade" in before.output
    first = runner.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "upgraded: none -> 0004" in first.output
    again = runner.invoke(app, ["db", "upgrade"])
    assert "is at 0004 already" in again.output
    after = runner.invoke(app, ["db", "current"])
    assert after.exit_code == 0
    assert "0004  (up to date)" in after.output
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state' / 'predictions.db'}")
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0004"
    engine.dispose()


def test_db_upgrade_refuses_a_database_newer_than_the_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("MLOPS_PREDICTION_LOG_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state' / 'predictions.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0100'"))
    engine.dispose()
    refused = runner.invoke(app, ["db", "upgrade"])
    assert refused.exit_code == 1
    assert "0100, which this code does not know" in refused.output
    assert "Traceback" not in refused.output
