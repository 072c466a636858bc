"""The restore drill (C50): back up a live state, lose it, restore it, and get the same service back.

One module-scoped state holds a champion trained with real MLflow and a prediction log filled through
the real API (predictions plus their true labels). The backup is taken while that service is still
running, so the prediction log is copied live, with rows still in SQLite's WAL. The drill wipes the
state folder, restores, and checks what a user would notice: the same champion version, identical
answers (class and every probability, exactly) for the same rows, the same log counts, and request
ids the restored log still knows. Damaged archives must be refused before anything is touched.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import sqlite3
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app
from core.context import LabContext
from core.mlflow_config import configure_mlflow
from core.settings import Settings
from ops.backup import (
    BackupError,
    CorruptBackupError,
    OutOfScopeError,
    StateExistsError,
    backup,
    log_counts,
    registry_facts,
    snapshot_sqlite,
)
from ops.backup_errors import ServicesRunningError
from ops.backup_signing import SIGNATURE, BackupKey, backup_key, sign
from ops.restore import ARTIFACT_URI_COLUMNS, load_champion, restore

pytestmark = [pytest.mark.integration, pytest.mark.slow]
USERS = [f"drill-{i:02d}" for i in range(24)]
SEED = 5


@dataclass(frozen=True)
class Drill:
    ctx: LabContext
    archive: Path
    manifest: dict[str, Any]
    champion: str
    answers: list[tuple[str, dict[str, float]]]  # (class, probabilities) per user, in order
    request_ids: list[str]
    probabilities: Any  # predict_proba of the pre-backup champion on the drill rows
    rows: Any


def answers_of(bodies: list[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    return [(b["predictions"][0]["class"], b["predictions"][0]["probabilities"]) for b in bodies]


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory, make_settings, demo_context) -> Drill:
    from lab.demos.prep import ensure_champion
    from lab.demos.traffic import running_service

    root = tmp_path_factory.mktemp("drill")
    ctx = demo_context(make_settings(root / "state", poll_interval_s=3600))
    champion = ensure_champion(ctx)
    with running_service(ctx) as service:
        traffic = service.send(USERS, seed=SEED)
        assert traffic.failed == 0
        assert traffic.feedback["recorded"] == len(USERS)
        rows = service.rows(len(USERS), SEED)[ctx.params.dataset.feature_names]
        # Taken while the service runs: the log's writer is open and recent rows sit in the WAL.
        result = backup(ctx.settings, root / "backups")
    _, model = load_champion(ctx.settings)
    return Drill(
        ctx=ctx,
        archive=result.archive,
        manifest=result.manifest,
        champion=champion,
        answers=answers_of(traffic.bodies),
        request_ids=[b["predictions"][0]["id"] for b in traffic.bodies],
        probabilities=model.predict_proba(rows),
        rows=rows,
    )


def test_manifest_describes_the_archive(drill: Drill) -> None:
    m = drill.manifest
    assert m["registry"]["champion"] == drill.champion
    assert m["prediction_log"] == {"predictions": len(USERS), "feedback": len(USERS)}
    assert {"registry", "artifacts", "prediction_log"} <= set(m["components"])
    assert m["versions"]["mlflow"]
    assert m["versions"]["mlflow_schema"]
    with tarfile.open(drill.archive, "r:gz") as tar:
        order = [member.name for member in tar.getmembers() if member.isfile()]
    names = set(order)
    assert order[:2] == ["manifest.json", "manifest.json.hmac"]  # read, and checked, before any member
    assert names == {"manifest.json", "manifest.json.hmac", *m["files"]}
    assert {"mlflow.db", "predictions.db"} <= names
    assert any(name.endswith("/MLmodel") for name in names)  # the model files, not only the registry row
    assert all(len(info["sha256"]) == 64 for info in m["files"].values())


def test_restore_drill_brings_back_the_same_champion_answers_and_log(drill: Drill) -> None:
    from core.startup import configure_runtime
    from lab.demos.traffic import running_service

    settings = drill.ctx.settings
    shutil.rmtree(settings.state)  # the disaster: the whole state folder is gone
    assert not settings.state.exists()

    result = restore(drill.archive, settings)
    configure_runtime(settings)  # the folders the services expect (Prefect home, reports)

    assert result.champion == drill.champion
    assert result.rows == {"predictions": len(USERS), "feedback": len(USERS)}
    assert result.relocated_uris == 0  # same folder: MLflow's stored URIs are already right
    version, model = load_champion(settings)
    assert version == drill.champion
    assert (model.predict_proba(drill.rows) == drill.probabilities).all()  # exactly, not approximately

    with running_service(drill.ctx) as service:
        again = service.send(USERS, seed=SEED, feedback=False)
        assert answers_of(again.bodies) == drill.answers
        assert set(again.versions) == {drill.champion}
        # The restored log still holds the old requests and their labels: a repeated label is a no-op.
        # The labelling pipeline's credential: the admin token (the old answers' tokens were never kept).
        first = service.client.post(
            "/v1/feedback", json={"request_id": drill.request_ids[0], "label": "setosa"}, headers=service.admin
        )
        assert first.json()["status"] in ("duplicate", "conflict")
    assert log_counts(settings.state / "predictions.db") == {"predictions": 2 * len(USERS), "feedback": len(USERS)}


def test_restore_into_another_folder_moves_mlflow_artifact_uris(drill: Drill, tmp_path: Path, make_settings) -> None:
    elsewhere = make_settings(tmp_path / "elsewhere")
    (elsewhere.state / "mlflow.db").unlink()  # make_settings seeds an empty registry: a truly empty target
    result = restore(drill.archive, elsewhere)
    assert result.relocated_uris > 0
    version, model = load_champion(elsewhere)
    assert version == drill.champion
    assert (model.predict_proba(drill.rows) == drill.probabilities).all()
    old_root = drill.manifest["source"]["artifact_root"]
    with sqlite3.connect(elsewhere.state / "mlflow.db") as conn:
        for table, column in ARTIFACT_URI_COLUMNS:
            stale = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} LIKE ?", (old_root + "%",)).fetchone()
            assert stale[0] == 0, f"{table}.{column} still points at the old state"


def test_existing_state_is_refused_without_force_and_replaced_with_it(
    drill: Drill, tmp_path: Path, make_settings
) -> None:
    target = make_settings(tmp_path / "occupied")  # holds an (empty) MLflow registry already
    registry = target.state / "mlflow.db"
    before = registry.read_bytes()
    with pytest.raises(StateExistsError, match="--force"):
        restore(drill.archive, target)
    assert registry.read_bytes() == before  # refused: nothing touched

    result = restore(drill.archive, target, force=True)
    assert str(registry) in result.replaced
    assert registry_facts(registry, target.model_name)["champion"] == drill.champion
    assert not list(target.state.glob(".restore-*"))  # the work folder is cleaned up


def test_a_failed_install_puts_the_previous_state_back(
    drill: Drill, tmp_path: Path, make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = make_settings(tmp_path / "kept")
    registry = target.state / "mlflow.db"
    before = registry.read_bytes()
    old_artifact = target.state / "mlartifacts" / "old-run" / "note.txt"
    old_artifact.parent.mkdir(parents=True)
    old_artifact.write_text("the previous state")
    # The post-install check reads something other than the manifest says: the install must be undone.
    monkeypatch.setattr("ops.restore.registry_facts", lambda db, name: {"aliases": {"champion": "999"}})
    with pytest.raises(BackupError, match="does not match the manifest"):
        restore(drill.archive, target, force=True)
    assert registry.read_bytes() == before
    assert old_artifact.read_text() == "the previous state"
    assert sorted(p.name for p in (target.state / "mlartifacts").iterdir()) == ["old-run"]
    assert not (target.state / "predictions.db").exists()
    assert not list(target.state.glob(".restore-*"))


def _rewrite(archive: Path, target: Path, change) -> Path:
    """Copy a valid archive member by member, letting ``change(name, data)`` alter or add members."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else b""
            for name, payload in change(member.name, data):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                dst.addfile(info, io.BytesIO(payload))
    return target


@pytest.mark.parametrize(
    "damage", ["truncated", "bit-flip", "tampered-member", "unlisted-member", "signature-stripped", "not-a-backup"]
)
def test_damaged_archive_is_refused_before_anything_is_touched(
    drill: Drill, tmp_path: Path, make_settings, damage: str
) -> None:
    bad = tmp_path / "bad.tar.gz"
    raw = drill.archive.read_bytes()
    if damage == "truncated":
        bad.write_bytes(raw[: len(raw) // 2])
        expected = "truncated or damaged"
    elif damage == "bit-flip":
        flipped = bytearray(raw)
        flipped[len(raw) // 2] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        # Whichever check meets the damage first: gzip's CRC, a garbled tar header, or the manifest.
        expected = "truncated or damaged|does not match the manifest|missing from the archive"
    elif damage == "tampered-member":  # a valid gzip whose model file changed after the manifest was written
        _rewrite(drill.archive, bad, lambda n, d: [(n, d + b"x" if n.endswith("model.skops") else d)])
        expected = r"member mlartifacts/.*model\.skops does not match the manifest"
    elif damage == "unlisted-member":
        _rewrite(drill.archive, bad, lambda n, d: [(n, d)] + ([("extra.sh", b"echo hi")] if n == "mlflow.db" else []))
        expected = "member extra.sh is not in the manifest"
    elif damage == "signature-stripped":  # what a forger without the key would do
        _rewrite(drill.archive, bad, lambda n, d: [] if n == SIGNATURE else [(n, d)])
        expected = "has no manifest.json.hmac: it is unsigned"
    else:
        bad.write_bytes(gzip.compress(b"not a tar file at all" * 100))
        expected = "truncated or damaged"
    target = make_settings(tmp_path / "target")
    (target.state / "mlflow.db").unlink()
    with pytest.raises(CorruptBackupError, match=expected):
        restore(bad, target)
    assert not (target.state / "mlflow.db").exists()
    assert not (target.state / "mlartifacts").exists()
    assert not list(target.state.glob(".restore-*"))


def test_cli_backup_and_restore_exit_codes(drill: Drill, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "cli-state"))
    restored = runner.invoke(app, ["restore", str(drill.archive)])
    assert restored.exit_code == 0, restored.output
    assert f"champion v{drill.champion} loads from the restored registry" in " ".join(restored.output.split())
    assert (tmp_path / "cli-state" / ".mlops-lab-state").is_file()  # filled from nothing: `reset` may remove it
    refused = runner.invoke(app, ["restore", str(drill.archive)])
    assert refused.exit_code == 1
    assert "--force" in refused.output
    made = runner.invoke(app, ["backup", "--out", str(tmp_path / "out")])
    assert made.exit_code == 0, made.output
    assert len(list((tmp_path / "out").glob("mlops-lab-backup-*.tar.gz"))) == 1
    truncated = tmp_path / "half.tar.gz"
    truncated.write_bytes(drill.archive.read_bytes()[:100])
    broken = runner.invoke(app, ["restore", str(truncated), "--force"])
    assert broken.exit_code == 1
    assert "truncated or damaged" in " ".join(broken.output.split())  # rich wraps at 80 columns, where the path ends


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"prediction_log_url": "postgresql+psycopg://mlops:s3cret@db:5432/mlops"}, "pg_dump"),
        ({"tracking_uri": "http://mlflow:5000"}, "tracking server's backend database"),
        ({"artifact_root": "s3://bucket/mlartifacts"}, "not a local folder"),
    ],
)
def test_server_databases_are_out_of_scope_with_a_hint(tmp_path: Path, override: dict[str, str], expected: str) -> None:
    settings = Settings(project_dir=tmp_path, state_dir=tmp_path / "state", **override)
    with pytest.raises(OutOfScopeError, match=expected) as caught:
        backup(settings, tmp_path / "out")
    assert "s3cret" not in str(caught.value)  # a password in a URL never reaches the message
    assert not (tmp_path / "out").exists()


def test_dvc_cache_is_archived_and_merged_into_a_fresh_clone(tmp_path: Path, empty_mlflow_db: Path) -> None:
    project = tmp_path / "project"
    objects = project / ".dvc" / "cache" / "files" / "md5" / "ab"
    objects.mkdir(parents=True)
    (objects / "cdef0123").write_text("data version 1")
    (project / ".dvc" / "cache" / "tmp").mkdir()
    (project / ".dvc" / "cache" / "tmp" / "half-written").write_text("scratch")
    settings = Settings(project_dir=project, state_dir=tmp_path / "state")
    settings.state.mkdir()
    shutil.copyfile(empty_mlflow_db, settings.state / "mlflow.db")  # a registry with no model yet

    made = backup(settings, tmp_path / "out")
    assert made.manifest["components"]["dvc_cache"]["files"] == 1  # DVC's scratch folder is left out
    assert made.manifest["registry"]["champion"] is None

    clone = tmp_path / "clone"  # a new machine: a fresh clone has .dvc/ but no cache
    (clone / ".dvc").mkdir(parents=True)
    target = Settings(project_dir=clone, state_dir=tmp_path / "restored")
    assert restore(made.archive, target).dvc_objects_added == 1
    assert (clone / ".dvc" / "cache" / "files" / "md5" / "ab" / "cdef0123").read_text() == "data version 1"
    assert restore(made.archive, target, force=True).dvc_objects_added == 0  # content-addressed: nothing twice


def test_backup_without_a_registry_says_what_to_do(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, state_dir=tmp_path / "state")
    with pytest.raises(BackupError, match="train a model first"):
        backup(settings, tmp_path / "out")


class Payload:
    """Unpickling this runs code: it touches ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (self.marker.touch, ())


def _forge(archive: Path, target: Path, marker: Path, key: BackupKey) -> Path:
    """Every model swapped for a pickle that runs code when loaded, the manifest re-hashed and signed with ``key``."""
    import yaml

    with tarfile.open(archive, "r:gz") as src:
        members = {m.name: src.extractfile(m).read() for m in src.getmembers() if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(members.pop("manifest.json"))
    members.pop(SIGNATURE)
    for name in [n for n in members if n.endswith("/MLmodel")]:
        mlmodel = yaml.safe_load(members[name])
        mlmodel["flavors"]["sklearn"].update(serialization_format="cloudpickle", pickled_model="model.pkl")
        mlmodel["flavors"]["python_function"]["model_path"] = "model.pkl"
        members[name] = yaml.safe_dump(mlmodel).encode()
        members[name.rsplit("/", 1)[0] + "/model.pkl"] = pickle.dumps(Payload(marker))
    manifest["files"] = {n: {"bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in members.items()}
    raw = json.dumps(manifest).encode()
    with tarfile.open(target, "w:gz") as dst:
        for name, data in [("manifest.json", raw), (SIGNATURE, sign(raw, key)), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return target


def test_a_rehashed_archive_with_a_planted_pickle_is_refused_and_its_payload_never_runs(
    drill: Drill, tmp_path: Path, make_settings
) -> None:
    marker = tmp_path / "payload-ran"
    target = make_settings(tmp_path / "victim")
    (target.state / "mlflow.db").unlink()

    # Someone who can write to the backup folder, but has not got the key: refused before anything is written.
    attacker = BackupKey(b"an attacker's own key: example only", "attacker")
    with pytest.raises(CorruptBackupError, match="signature does not match"):
        restore(_forge(drill.archive, tmp_path / "forged.tar.gz", marker, attacker), target)
    assert not (target.state / "mlflow.db").exists()

    # Even signed with our key (a leaked key, an insider), the champion check loads it without running it.
    signed = _forge(drill.archive, tmp_path / "signed.tar.gz", marker, backup_key(target, create=False))
    restore(signed, target)
    with pytest.raises(BackupError, match=r"champion is refused and was not loaded .*'cloudpickle'"):
        load_champion(target)
    assert not marker.exists()

    import mlflow

    configure_mlflow(target)
    mlflow.sklearn.load_model(f"models:/{target.model_name}@champion")  # the control: MLflow's own loader
    assert marker.exists(), "the planted payload is live: MLflow's loader ran it"


def test_restore_is_refused_while_the_service_runs_and_a_log_swapped_anyway_is_noticed(
    drill: Drill, tmp_path: Path
) -> None:
    from lab.demos.traffic import running_service

    settings = drill.ctx.settings
    registry, db = settings.state / "mlflow.db", settings.state / "predictions.db"
    with running_service(drill.ctx) as service:
        identity = registry.stat().st_ino
        with pytest.raises(ServicesRunningError, match=rf"pid {os.getpid()}\b.*stop them first"):
            restore(drill.archive, settings, force=True)
        assert registry.stat().st_ino == identity  # refused: nothing replaced
        assert not list(settings.state.glob(".restore-*"))

        # Defence in depth: the log's database replaced behind the lease's back (by hand, an older mlops-lab).
        swap = tmp_path / "swap.db"
        snapshot_sqlite(db, swap)
        before = log_counts(swap)["predictions"]
        parked = tmp_path / "parked"
        parked.mkdir()
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{db}{suffix}").exists():
                shutil.move(f"{db}{suffix}", parked / f"predictions.db{suffix}")
        shutil.move(swap, db)
        traffic = service.send(USERS[:5], seed=SEED + 1, feedback=False)
        assert traffic.failed == 0
        service.flush()
        assert log_counts(db)["predictions"] == before + 5  # every answered request is in the file on disk
        ready = service.client.get("/readyz").json()
    assert ready["degraded"] is True
    assert "was replaced under the service" in ready["prediction_log"]["file_problem"]
