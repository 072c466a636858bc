"""An Evidently drift report opened from disk renders its charts in a real browser with no network.

The report is the one the monitoring flow writes (`monitoring.data_drift`, ``data-drift.html``) for a
covariate-shifted window; headless Chromium opens it as a file with every non-loopback request sent
nowhere, and the per-feature drift charts (Plotly SVGs) must be drawn: the report carries its scripts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.params import Params
from monitoring.data_drift import data_drift
from pipelines.batches import generate_batch
from pipelines.data import build_raw_frame
from tests.browser import rendered_dom

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_drift_report_draws_its_charts_from_disk_with_the_network_blocked(params: Params, tmp_path: Path) -> None:
    features = params.dataset.feature_names
    raw = build_raw_frame(params.dataset, params.ingest)
    shifted = generate_batch("covariate-shift", raw, params, rows=300, seed=1)
    finding = data_drift(raw[features], shifted[features], features, params.monitoring, out_dir=tmp_path / "report")
    assert finding.status == "fired"
    dom = rendered_dom((tmp_path / "report" / "data-drift.html").as_uri(), tmp_path / "profile")
    assert dom.count("main-svg") >= len(features)  # Plotly's chart SVGs: one per feature at least
    assert all(name in dom for name in features)
