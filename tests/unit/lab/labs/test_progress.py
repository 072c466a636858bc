"""When a lab started, and which events count for it: the rules every checker applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.settings import Settings
from lab.labs.progress import counts, mark_started, progress_file, started_at, wait_for_the_next_second

START = datetime(2026, 12, 6, 10, 0, 0, 500_000, tzinfo=UTC)


@pytest.fixture
def lab_settings(tmp_path: Path) -> Settings:
    return Settings(project_dir=tmp_path, state_dir=tmp_path / "state")


def test_a_lab_is_not_started_until_setup_records_it_and_each_lab_keeps_its_own_start(lab_settings: Settings) -> None:
    assert started_at(lab_settings, 3) is None
    mark_started(lab_settings, 3, START)
    mark_started(lab_settings, 4, START + timedelta(hours=1))
    assert started_at(lab_settings, 3) == START
    assert started_at(lab_settings, 4) == START + timedelta(hours=1)
    assert started_at(lab_settings, 5) is None


def test_starting_again_moves_the_start(lab_settings: Settings) -> None:
    mark_started(lab_settings, 7, START)
    mark_started(lab_settings, 7, START + timedelta(minutes=5))
    assert started_at(lab_settings, 7) == START + timedelta(minutes=5)


def test_a_damaged_progress_file_means_not_started_and_setup_writes_it_again(lab_settings: Settings) -> None:
    mark_started(lab_settings, 1, START)
    progress_file(lab_settings).write_text("{not json", encoding="utf-8")
    assert started_at(lab_settings, 1) is None
    mark_started(lab_settings, 1, START)
    assert started_at(lab_settings, 1) == START


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (START - timedelta(microseconds=1), False),  # a datetime just before the start
        (START, True),
        ((START - timedelta(milliseconds=1)).isoformat(), False),  # a fine ISO stamp compares exactly
        ((START + timedelta(milliseconds=1)).isoformat(), True),
        ("2026-12-06T10:00:00+00:00", False),  # to the second: the start's own second does not count,
        ("2026-12-06T09:59:59+00:00", False),  # (setup returns only once the next second has begun)
        ("2026-12-06T10:00:01Z", True),
        ("2026-12-06T10:00:01", True),  # naive text is UTC
        ((START - timedelta(seconds=1)).timestamp(), False),  # epoch seconds
        ((START + timedelta(seconds=1)).timestamp(), True),
        (None, False),
        ("", False),
        ("yesterday", False),
    ],
)
def test_which_events_count_for_a_lab(stamp: object, expected: bool) -> None:
    assert counts(stamp, START) is expected  # type: ignore[arg-type]


def test_setup_returns_only_once_the_second_after_the_start_has_begun() -> None:
    start = datetime.now(UTC)
    wait_for_the_next_second(start)
    assert datetime.now(UTC) >= start.replace(microsecond=0) + timedelta(seconds=1)
