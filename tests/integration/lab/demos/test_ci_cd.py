"""The CI/CD demo (C45, C02): the workflows walked, actionlint run live, the data and model checks CI adds.

The test runs the demo module on a temporary state and asserts the lines that carry its point.
"""

from __future__ import annotations

import re

import pytest

from core.context import LabContext

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_ci_cd_demo_walks_the_workflows_and_runs_the_checks(run_demo, ctx: LabContext) -> None:
    out = run_demo("ci_cd", ctx, width=220)
    assert re.search(r"│ train\s+│ data\s+│ 20 min\s+│ data, model", out)
    ml_steps = re.search(r"✔ (\d+) steps check the data or the model", out)
    assert ml_steps is not None
    assert int(ml_steps.group(1)) >= 4
    assert "✔ actionlint: no problems in ci.yml and cd.yml" in out
    assert '✔ a planted typo (needs: dta) is caught: job "train" needs job "dta"' in out
    assert re.search(r"│ actions/checkout\s+│ [0-9a-f]{12}… │ v\d+\.\d+\.\d+", out)
    assert re.search(r"✔ invalid after [\d.]+ s: \d+ expectations broken", out)
    assert "expect_column_values_to_be_between" in out
    assert re.search(r"│ canary\s+│ images\s+│ contents: read\s+│ production", out)
    for command, job in (("make lint", "lint"), ("make test", "test"), ("make demo", "demo")):
        assert re.search(rf"│ {command}\s+│ yes\s+│ {job}", out)
    assert "✘" not in out
