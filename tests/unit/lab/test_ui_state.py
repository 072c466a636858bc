"""`mlops-lab ui` follows the MLflow store written last: the learner's own state or a demo's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.settings import Settings
from lab.ui_state import STORE, UnknownStateError, choose_state


def _store(folder: Path, mtime: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / STORE
    path.write_bytes(b"")
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(project_dir=tmp_path, state_dir=tmp_path / "state")


def test_after_make_demo_the_ui_opens_the_loop_demo_not_an_empty_own_state(settings: Settings) -> None:
    _store(settings.state / "demos" / "loop", 1_000)
    chosen = choose_state(settings)
    assert chosen.settings.state == settings.state / "demos" / "loop"
    assert chosen.settings.mlflow_tracking_uri == f"sqlite:///{settings.state / 'demos' / 'loop' / STORE}"
    assert "has no MLflow store yet" in chosen.reason


def test_the_store_written_last_wins_and_the_others_are_named(settings: Settings) -> None:
    _store(settings.state / "demos" / "loop", 1_000)
    _store(settings.state / "demos" / "canary", 3_000)
    _store(settings.state, 2_000)
    chosen = choose_state(settings)
    assert chosen.settings.state == settings.state / "demos" / "canary"
    assert chosen.demos == ["canary", "loop"]  # newest first
    _store(settings.state, 4_000)  # the learner trains after the demos: their own state is shown again
    assert choose_state(settings).settings.state == settings.state


def test_asking_for_a_demo_or_the_own_state_overrides_the_choice(settings: Settings) -> None:
    _store(settings.state / "demos" / "loop", 1_000)
    _store(settings.state / "demos" / "canary", 3_000)
    assert choose_state(settings, demo="loop").settings.state == settings.state / "demos" / "loop"
    assert choose_state(settings, own=True).settings.state == settings.state
    with pytest.raises(UnknownStateError, match=r"'shadow' has not run here \(demos with a store: canary, loop\)"):
        choose_state(settings, demo="shadow")


def test_a_tracking_server_is_shown_whatever_ran_locally(settings: Settings) -> None:
    _store(settings.state / "demos" / "loop", 1_000)
    served = settings.model_copy(update={"tracking_uri": "http://127.0.0.1:5001"})
    chosen = choose_state(served)
    assert chosen.settings is served
    assert "tracking server" in chosen.reason


def test_with_nothing_run_yet_it_is_the_own_state(settings: Settings) -> None:
    chosen = choose_state(settings)
    assert chosen.settings.state == settings.state
    assert chosen.demos == []
