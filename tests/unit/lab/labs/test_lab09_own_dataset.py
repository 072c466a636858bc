"""Lab 9's checker on a state where only the setup ran: the CSV to bring is there, nothing else counts yet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from core.context import LabContext
from lab.labs.lab09_own_dataset import CONDITIONS, brought_csv, check, setup


def test_setup_writes_the_csv_and_the_check_points_at_the_first_step(tmp_path: Path, make_settings, params) -> None:
    ctx = LabContext(make_settings(tmp_path / "state"), params)
    (said,) = setup(ctx)
    frame = pd.read_csv(brought_csv(ctx.settings))
    assert frame.shape == (178, 14)
    assert int(frame.isna().sum().sum()) == 18
    assert "18 missing values" in said
    checks = check(ctx, None, datetime.now(UTC))
    assert [c.name for c in checks] == list(CONDITIONS)
    assert not any(c.passed for c in checks)  # iris is active, nothing was validated, trained or served
    assert "mlops-lab dataset init" in checks[0].hint
    assert "--target cultivar" in checks[0].hint
