"""Hot reload and resilience of the model cache, against a real MLflow registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.mlflow_config import mlflow_client
from core.params import Params
from core.settings import Settings
from pipelines.audit import append_entry
from pipelines.data import ingest
from pipelines.registry import OUTSIDE_MOVE, RegistryError, audit_log, promote, rollback, servable_challenger
from pipelines.training_steps import run_training
from serving.model_cache import Backoff, ModelCache, registry_cache

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, make_settings, params: Params) -> tuple[Settings, Path]:
    root = tmp_path_factory.mktemp("cache")
    settings = make_settings(root / "state")
    data = ingest(params.dataset, params.ingest, root / "iris.csv")
    for _ in range(2):  # v1 champion, v2 challenger
        assert run_training(settings, params, data).status == "registered"
    return settings, data


def test_cache_loads_champion_and_challenger(registry) -> None:
    settings, _ = registry
    cache = registry_cache(settings)
    assert not cache.ready
    assert cache.refresh() is True
    snap = cache.snapshot()
    assert (snap["champion"].version, snap["challenger"].version) == ("1", "2")
    assert cache.ready
    assert cache.refresh() is False  # nothing moved: no reload


def test_alias_move_swaps_the_snapshot_but_not_one_in_flight(registry) -> None:
    settings, _ = registry
    cache = registry_cache(settings)
    cache.refresh()
    in_flight = cache.snapshot()
    promote(settings, "tester", "hot reload test")
    try:
        assert cache.refresh() is True
        assert cache.snapshot()["champion"].version == "2"
        assert "challenger" not in cache.snapshot()
        assert in_flight["champion"].version == "1"  # a request that took its snapshot keeps its model
        assert cache.snapshot()["champion"].model is in_flight["challenger"].model  # reused, not reloaded
    finally:
        rollback(settings, "tester", "restore for the next test")
    assert cache.refresh() is True
    assert cache.snapshot()["champion"].version == "1"


def _outside_moves(settings: Settings) -> list[tuple[str, str, str | None, str | None, str]]:
    return [
        (e.actor, e.alias, e.from_version, e.to_version, e.reason)
        for e in audit_log(settings)
        if e.action == "outside_move"
    ]


def _audit_as_our_path_does(settings: Settings, from_version: str | None, to_version: str) -> None:
    """The entry `pipelines.registry` writes just after it moved the challenger alias."""
    args = ("tester", "register", "challenger", from_version, to_version, "test")
    append_entry(mlflow_client(settings), settings.model_name, "2026-01-01T00:00:00+00:00", *args)


def test_an_alias_moved_with_a_plain_mlflow_client_is_audited_once(registry) -> None:
    settings, _ = registry
    client = mlflow_client(settings)
    worker, other_worker = registry_cache(settings), registry_cache(settings)
    assert worker.refresh() is True
    other_worker.refresh()
    before = _outside_moves(settings)
    client.set_registered_model_alias(settings.model_name, "champion", "2")  # not through mlops-lab
    try:
        assert worker.refresh() is True  # served at once...
        assert worker.snapshot()["champion"].version == "2"
        assert _outside_moves(settings) == before  # ...judged one poll later (our own path audits just after it moves)
        worker.refresh()
        assert _outside_moves(settings) == [*before, ("unknown", "champion", "1", "2", OUTSIDE_MOVE)]
        for _ in range(2):  # later polls and other workers find it audited: one entry, not one per worker
            worker.refresh()
            other_worker.refresh()
        assert len(_outside_moves(settings)) == len(before) + 1
        assert worker.health.last_error is None
    finally:
        client.set_registered_model_alias(settings.model_name, "champion", "1")


def test_our_own_moves_are_not_taken_for_outside_ones(registry) -> None:
    settings, _ = registry
    client = mlflow_client(settings)
    client.set_registered_model_alias(settings.model_name, "challenger", "2")  # a promotion before removed it
    worker = registry_cache(settings)
    worker.refresh()
    before = _outside_moves(settings)
    promote(settings, "tester", "not an outside move")
    worker.refresh()
    worker.refresh()
    rollback(settings, "tester", "restore for the next test")
    worker.refresh()
    worker.refresh()
    # Our path moves the alias, then writes its entry: a poll in between sees an unaudited move for a moment.
    client.set_registered_model_alias(settings.model_name, "challenger", "2")
    _audit_as_our_path_does(settings, None, "2")
    worker.refresh()
    worker.refresh()
    client.set_registered_model_alias(settings.model_name, "challenger", "1")
    worker.refresh()  # the poll that lands in the gap
    _audit_as_our_path_does(settings, "2", "1")
    worker.refresh()
    client.set_registered_model_alias(settings.model_name, "challenger", "2")
    _audit_as_our_path_does(settings, "1", "2")
    worker.refresh()
    worker.refresh()
    assert _outside_moves(settings) == before


def test_registry_outage_keeps_serving_reports_degraded_and_backs_off(registry) -> None:
    settings, _ = registry
    now = [100.0]
    cache = registry_cache(settings, backoff=Backoff(base=2.0, cap=10.0))
    cache.clock = lambda: now[0]
    assert cache.refresh() is True
    served = cache.snapshot()

    db = settings.state / "mlflow.db"
    saved = db.with_suffix(".saved")
    shutil.copyfile(db, saved)
    try:
        db.write_bytes(b"this is not a database" * 100)  # the registry's database breaks under the service
        assert cache.refresh() is False
        assert cache.snapshot() is served  # still serving the cached models
        assert cache.health.degraded
        assert "database" in (cache.health.last_error or "")
        delays = []
        for _ in range(4):
            delays.append(cache.health.next_attempt - now[0])
            now[0] = cache.health.next_attempt
            assert cache.due()
            assert cache.refresh() is False
        assert delays == [2.0, 4.0, 8.0, 10.0]
    finally:
        db.write_bytes(saved.read_bytes())  # the database comes back (same file, as a restarted server would)
    assert cache.refresh() is False  # registry back: no alias moved, nothing to reload ...
    assert not cache.health.degraded  # ... and healthy again


def test_unknown_alias_is_not_an_outage() -> None:
    cache = ModelCache(resolve=lambda alias: ("3", "run") if alias == "champion" else None, load=lambda v: f"model{v}")
    assert cache.refresh() is True
    assert set(cache.snapshot()) == {"champion"}
    assert not cache.health.degraded


def test_a_failing_load_keeps_the_old_snapshot() -> None:
    versions = {"champion": ("1", "r1")}

    def load(version: str) -> str:
        if version == "2":
            raise OSError("artifact store unreachable")
        return f"model{version}"

    cache = ModelCache(resolve=versions.get, load=load)
    cache.refresh()
    before = cache.snapshot()
    versions["champion"] = ("2", "r2")
    assert cache.refresh() is False
    assert cache.snapshot() is before
    assert "artifact store unreachable" in (cache.health.last_error or "")


def test_a_challenger_that_cannot_load_never_keeps_the_champion_out() -> None:
    def load(version: str) -> str:
        if version == "2":
            raise RuntimeError("refused: serialized as 'cloudpickle'")
        return f"model{version}"

    cache = ModelCache(resolve={"champion": ("1", "r1"), "challenger": ("2", "r2")}.get, load=load)
    assert cache.refresh() is True  # the champion is in, on a fresh start too
    assert set(cache.snapshot()) == {"champion"}  # the challenger's users go to the champion
    assert cache.ready
    assert cache.health.degraded  # /readyz says why
    assert cache.health.last_error == "challenger v2 not loaded: RuntimeError: refused: serialized as 'cloudpickle'"


def test_a_version_with_a_parity_checked_onnx_file_is_served_by_onnx_runtime_unless_sklearn_is_forced(
    registry, params: Params
) -> None:
    from pipelines.onnx_export import OnnxModel

    settings, _ = registry
    features = params.dataset.feature_names
    auto = registry_cache(settings, features=features)
    assert auto.refresh() is True
    assert {a: (m.runtime, type(m.model)) for a, m in auto.snapshot().items()} == {
        "champion": ("onnx", OnnxModel), "challenger": ("onnx", OnnxModel)
    }  # fmt: skip
    forced = registry_cache(settings.model_copy(update={"serving_runtime": "sklearn"}), features=features)
    assert forced.refresh() is True
    assert {a: (m.runtime, type(m.model).__name__) for a, m in forced.snapshot().items()} == {
        "champion": ("sklearn", "Pipeline"), "challenger": ("sklearn", "Pipeline")
    }  # fmt: skip


def test_a_replaced_onnx_file_keeps_its_version_out_as_a_replaced_skops_file_does(registry, params: Params) -> None:
    from pipelines.onnx_registry import ONNX_ARTIFACT

    settings, _ = registry
    client = mlflow_client(settings)
    challenger = client.get_model_version_by_alias(settings.model_name, "challenger")
    stored = Path(client.get_run(challenger.run_id).info.artifact_uri.removeprefix("file://")) / ONNX_ARTIFACT
    original = stored.read_bytes()
    try:
        stored.write_bytes(original + b"\0")  # tampered after registration
        cache = registry_cache(settings, features=params.dataset.feature_names)
        cache.refresh()
        assert set(cache.snapshot()) == {"champion"}  # the challenger is dropped, never served by another runtime
        assert cache.health.degraded
        assert "challenger v2 not loaded" in (cache.health.last_error or "")
        assert "replaced after registration" in (cache.health.last_error or "")
        marks = {k: v for k, v in challenger.tags.items() if k in ("status", "rollback_reason", "rejection_reason")}
        for key in marks:  # an earlier test of this module rolled v2 back; here only its file should matter
            client.delete_model_version_tag(settings.model_name, challenger.version, key)
        try:
            with pytest.raises(RegistryError, match=r"v2 cannot go out as a canary: .*replaced after registration"):
                servable_challenger(settings, params.dataset.feature_names)  # a rollout is refused before it starts
        finally:
            for key, value in marks.items():
                client.set_model_version_tag(settings.model_name, challenger.version, key, value)
        forced = registry_cache(settings.model_copy(update={"serving_runtime": "sklearn"}))
        forced.refresh()
        assert forced.snapshot()["challenger"].runtime == "sklearn"  # forced: the ONNX file is never read
    finally:
        stored.write_bytes(original)
