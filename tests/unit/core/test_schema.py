"""Our tables' schema through Alembic: upgrade from the previous schema, adoption, refusal, concurrency.

Runs on SQLite, and on PostgreSQL too when MLOPS_TEST_POSTGRES_URL is set (tables dropped first).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from core import findings
from core.schema import SchemaError, alembic_config, ensure_schema, head_revision, locked, status, upgrade
from monitoring import retrain_guard
from serving import log_schema, state_store
from serving.prediction_log import PredictionLog, PredictionRecord
from tests.fresh_database import drop_our_tables

REPO = Path(__file__).resolve().parents[3]
CODE_TABLES = [log_schema.metadata, state_store.metadata, retrain_guard.metadata, findings.metadata]


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    engine = log_schema.make_engine(database_url)
    drop_our_tables(engine)
    yield engine  # type: ignore[misc]
    engine.dispose()


def columns(engine: sa.Engine, table: str) -> list[str]:
    with engine.connect() as conn:
        return [c["name"] for c in sa.inspect(conn).get_columns(table)]


def version(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(sa.text("SELECT version_num FROM alembic_version")))


def test_the_migrated_database_is_exactly_the_tables_the_code_uses(engine: sa.Engine) -> None:
    """Head equals the SQLAlchemy tables in code: a table changed without a revision fails here."""
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), CODE_TABLES)  # type: ignore[arg-type]
    assert diff == []
    assert version(engine) == [head_revision()] == ["0004"]


def test_a_log_at_the_previous_revision_is_upgraded_with_its_rows_intact(engine: sa.Engine) -> None:
    with locked(engine) as conn:  # the database as the baseline revision made it, before user_key
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(
            sa.text(
                "INSERT INTO predictions (request_id, ts, model_name, model_version, features, prediction, status) "
                "VALUES ('old-1', '2026-01-01 11:00:00', 'iris', '1', '{\"x\": 5.0}', 'setosa', 'ok')"
            )
        )
        conn.execute(sa.text("INSERT INTO feedback VALUES ('old-1', '2026-01-01 11:30:00', 'setosa')"))
    assert "user_key" not in columns(engine, "predictions")
    assert status(engine).current == ("0001",)

    log = PredictionLog(engine.url.render_as_string(hide_password=False), batch_size=8, max_delay=0.05).start()
    try:
        assert log.record(PredictionRecord("new-1", "iris", "2", {"x": 6.0}, "virginica", user_key="k" * 32))
        assert log.flush()
        assert log.record_feedback("old-1", "setosa").status.value == "duplicate"  # the old label is there
    finally:
        log.close()
    assert columns(engine, "predictions")[-4:] == ["user_key", "sensitive_group", "entity_id", "features_at"]
    assert version(engine) == ["0004"]
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT request_id, prediction, user_key FROM predictions ORDER BY request_id"))
        assert [tuple(r) for r in rows] == [("new-1", "virginica", "k" * 32), ("old-1", "setosa", None)]


OLD_SCHEMA_WITHOUT_VERSIONS = [  # a database from before migrations: the state store's tables only
    "CREATE TABLE routing_state (id INTEGER NOT NULL PRIMARY KEY, state JSON NOT NULL, version INTEGER NOT NULL)",
    'INSERT INTO routing_state VALUES (1, \'{"strategy": "ab"}\', 7)',
]


def test_tables_made_before_migrations_are_adopted_and_completed(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for statement in OLD_SCHEMA_WITHOUT_VERSIONS:
            conn.execute(sa.text(statement))
    found = upgrade(engine)
    assert (found.current, found.adopted) == ((), True)
    assert version(engine) == ["0004"]
    assert "user_key" in columns(engine, "predictions")  # the missing tables were created at head
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version FROM routing_state")).scalar_one() == 7  # kept, not recreated


def test_a_database_newer_than_the_code_is_refused_unchanged(engine: sa.Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    url = engine.url.render_as_string(hide_password=False)
    with pytest.raises(
        SchemaError, match=re.escape("0099_from_the_future, which this code does not know (its newest is 0004)")
    ) as err:
        PredictionLog(url).start()
    assert "newer mlops-lab" in str(err.value)
    assert version(engine) == ["0099_from_the_future"]


def test_the_upgrade_runs_once_per_engine_not_per_write(engine: sa.Engine) -> None:
    """Opening the log migrates; later opens of the same engine and every write never look at the version table."""
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    ensure_schema(engine)
    looks = sum("alembic_version" in s for s in seen)
    assert looks >= 1
    threads = [threading.Thread(target=ensure_schema, args=(engine,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum("alembic_version" in s for s in seen) == looks


UPGRADER = r"""
import json, sys
from core.schema import head_revision, upgrade
from serving.log_schema import make_engine

engine = make_engine(sys.argv[1])
head_revision()  # the scripts loaded and the driver imported before the race
print("READY", flush=True)
assert sys.stdin.readline().strip() == "GO"
found = upgrade(engine)
print(json.dumps({"before": list(found.current)}), flush=True)
"""


@pytest.mark.integration
@pytest.mark.parametrize("round_", range(3))
def test_processes_starting_at_once_migrate_the_database_once(engine: sa.Engine, round_: int) -> None:
    """Three processes upgrade a fresh database at the same moment: all succeed, exactly one migrates."""
    url = engine.url.render_as_string(hide_password=False)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADER, url],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    watchdogs = [threading.Timer(90, p.kill) for p in procs]  # bounds the test if a child hangs
    for w in watchdogs:
        w.start()
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "READY"
        for p in procs:  # released together
            assert p.stdin is not None
            p.stdin.write("GO\n")
            p.stdin.flush()
        outcomes = [p.communicate(timeout=90) for p in procs]
    finally:
        for w in watchdogs:
            w.cancel()
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outcomes]
    befores = sorted(json.loads(out.strip().splitlines()[-1])["before"] for out, _ in outcomes)
    assert befores == [[], ["0004"], ["0004"]]  # one found it empty and migrated; the others found it done
    assert version(engine) == ["0004"]


def test_the_migrations_run_from_an_installed_copy_of_core_without_alembic_ini(tmp_path: Path) -> None:
    """The scripts are found by package path (core:migrations), not from the repository or the working folder."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "core", site / "core", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import sys, core.schema as s, sqlalchemy as sa;"
        "assert s.__file__.startswith(sys.argv[2]), s.__file__;"
        "print(s.upgrade(sa.create_engine(sys.argv[1])).head)"
    )
    url = f"sqlite:///{tmp_path / 'p.db'}"
    done = subprocess.run(
        [sys.executable, "-c", code, url, str(site)],
        cwd=work,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0004"
    assert not list(work.iterdir())  # no alembic.ini needed, nothing written where it ran
