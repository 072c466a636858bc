"""When each lab was started, so a check counts only what the learner did after `mlops-lab lab setup N`.

A lab checks the real state the learner's commands leave (registry, audit log, rollout history,
findings, stored validations, saved files), and that state also holds what ran before: an earlier
attempt, another lab, the learner's own experiments. ``lab setup N`` records the moment the lab
starts in ``<state>/labs/started.json``; ``lab check N`` refuses to judge a lab that was never
started, and each checker keeps only the events stamped at or after that moment (`counts`). Running
``lab setup N`` again starts the lab over: everything from the earlier attempt stops counting.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings

Stamp = str | datetime | float | int | None  # ISO 8601 text, a datetime, or epoch seconds


def progress_file(settings: Settings) -> Path:
    return settings.state / "labs" / "started.json"


def _read(settings: Settings) -> dict[str, str]:
    path = progress_file(settings)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return {}  # a damaged file means no lab is started: `lab setup N` writes it again
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def mark_started(settings: Settings, number: int, now: datetime | None = None) -> datetime:
    """Record that lab ``number`` starts now (replacing an earlier start) and return that moment."""
    started = (now or datetime.now(UTC)).astimezone(UTC)
    marks = {**_read(settings), str(number): started.isoformat()}
    path = progress_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(marks, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)  # never a half-written file
    return started


def started_at(settings: Settings, number: int) -> datetime | None:
    """When lab ``number`` was last started, or None if ``lab setup`` never ran for it here."""
    value = _read(settings).get(str(number))
    return as_utc(value) if value else None


def as_utc(stamp: Stamp) -> datetime | None:
    """A timestamp as an aware UTC datetime (naive text is taken as UTC); None when missing or unreadable."""
    if stamp is None or stamp == "":
        return None
    if isinstance(stamp, datetime):
        moment = stamp
    elif isinstance(stamp, int | float):
        moment = datetime.fromtimestamp(float(stamp), UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def counts(stamp: Stamp, since: datetime) -> bool:
    """Did this event happen at or after the lab started?

    Finer stamps compare exactly. Stamps written to the second (audit entries, findings, the reproduce
    verdict) count from the whole second after the start: ``lab setup`` returns only once that second has
    begun (`wait_for_the_next_second`), so whatever the learner does next is stamped in it or later, and
    whatever happened before the start, even in the same second, is not.
    """
    moment = as_utc(stamp)
    if moment is None:
        return False
    to_the_second = isinstance(stamp, str) and moment.microsecond == 0 and "." not in stamp
    return moment > since.replace(microsecond=0) if to_the_second else moment >= since


def wait_for_the_next_second(since: datetime) -> None:
    """Return once the clock is past the second ``since`` falls in (at most one second)."""
    boundary = since.replace(microsecond=0) + timedelta(seconds=1)
    while (left := (boundary - datetime.now(UTC)).total_seconds()) > 0:
        time.sleep(left)
