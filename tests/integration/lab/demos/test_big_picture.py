"""The study demos: test pyramid (C39), technical debt (C52) and cloud equivalents (C53).

Each test runs the demo module on a temporary state and asserts the lines that carry its point. The
test-pyramid demo collects the real suites and runs real unit tests in subprocesses.
"""

from __future__ import annotations

import re

import pytest

from core.context import LabContext

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory, make_settings, demo_context) -> LabContext:
    settings = make_settings(tmp_path_factory.mktemp("study-demos") / "state", poll_interval_s=3600)
    return demo_context(settings)


def test_test_pyramid_demo_counts_the_layers_and_runs_unit_tests_live(run_demo, ctx: LabContext) -> None:
    out = run_demo("test_pyramid", ctx, width=220)
    shape = re.search(r"✔ a pyramid: (\d+) unit > (\d+) integration > (\d+) e2e > 0", out)
    assert shape is not None, out
    unit, integration, e2e = map(int, shape.groups())
    assert unit > integration > e2e > 0
    assert re.search(r"│ integration\s+│ tests/integration\s+│ \d+\s+│ \d+\s+│ .*real MLflow store", out)
    assert "@pytest.mark.integration:" in out
    passed = re.search(r"✔ unit run passed: passed (\d+)", out)
    assert passed is not None, out
    assert int(passed.group(1)) > 0
    assert "✘" not in out


def test_technical_debt_demo_checks_every_pointer_and_proves_guards_live(run_demo, ctx: LabContext) -> None:
    out = run_demo("technical_debt", ctx, width=220)
    assert re.search(r"✔ \d+ pointers in \d+ entries: every file, symbol and test exists", out)
    assert "✔ a planted stale test id is caught" in out
    assert re.search(r"✔ guards hold: passed \d+", out)
    assert "Abstraction debt (not addressed)" in out
    assert "✘" not in out


def test_cloud_equivalents_demo_maps_and_checks_the_components(run_demo, ctx: LabContext) -> None:
    out = run_demo("cloud_equivalents", ctx, width=220)
    assert re.search(r"✔ \d+ of \d+ capabilities built here, every path exists", out)
    assert "SageMaker Model Monitor" in out
    assert "every capability in the map has a component here" in out
    assert "✘" not in out
