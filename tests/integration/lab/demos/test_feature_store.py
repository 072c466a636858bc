"""The ``feature-store`` demo (C62) runs on a fresh state, in a real Feast store, and shows what it claims."""

from __future__ import annotations

import re

import pytest

from core.context import LabContext
from pipelines.feature_store import FeatureRepo

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _floats(pattern: str, text: str) -> list[float]:
    found = re.search(pattern, text)
    assert found, pattern
    return [float(v) for v in found.groups()]


def test_feature_store_demo_shows_the_leak_looking_better_offline_and_serving_worse(run_demo, ctx: LabContext) -> None:
    out = run_demo("feature_store", ctx, width=220)
    # The timeline: young measurements, then the question, then the lab's record after it.
    rows = [line for line in out.splitlines() if line.startswith("│")]
    timeline = [line for line in rows if re.search(r"│ (measured|asked for a prediction|labelled: lab record) ", line)]
    kinds = ["asked" if "asked" in line else "lab" if "lab record" in line else "young" for line in timeline]
    assert kinds[-2:] == ["asked", "lab"]
    assert set(kinds[:-2]) == {"young"}
    assert len(kinds) >= 4  # two to four young measurements
    assert re.search(r"360 of 360 naive rows hold values recorded after the prediction moment", out)
    naive_offline, naive_online = _floats(r"naive model: offline ([\d.]+), online ([\d.]+)", out)
    pit_online, _ = _floats(r"point-in-time model: online ([\d.]+) against the naive model's ([\d.]+)", out)
    assert naive_offline > naive_online  # the leak looks better than it serves
    assert pit_online >= naive_online  # and serves no better than the honest model
    assert "✘" not in out
    served = re.findall(r"(sp-\d{5}): sepal_length [\d.]+.*; measured at \d\d-\d\d \d\d:\d\d UTC, (\d+) h ago", out)
    assert len(served) == 2
    assert all(6 <= int(hours) <= 48 for _, hours in served)  # open specimens: last measured 6-48 hours ago
    repo = FeatureRepo(ctx.settings.feature_store_dir)
    assert repo.online_db.is_file()
    assert repo.registry.is_file()
