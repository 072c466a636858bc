"""The ``serverless`` demo (C55) runs on a fresh state and shows what it claims.

Cold start timed once; every fixture event answered with the status the service gives; the predictions
logged when the handler returned; Mangum's per-call lifespan slower than ours; the cost table adds up.
Figures vary with the machine, so the assertions read the statuses, counts and the arithmetic's shape.
"""

from __future__ import annotations

import re

import pytest

from core.context import LabContext

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_serverless_demo_invokes_the_events_cold_then_warm_and_prices_them(run_demo, ctx: LabContext) -> None:
    out = run_demo("serverless", ctx, width=200)
    assert re.search(r"lifespan start-up: registry lookup, model load, prediction log opened: \d+\.\d\d s", out)
    expected = {
        "predict (first, cold)": ("200", "1"),
        "predict (warm)": ("200", "1"),
        "predict, base64 body": ("200", "2"),
        "bad input": ("422", "-"),
        "GET /healthz": ("200", "-"),
        "GET /readyz": ("200", "-"),
        "MLflow /invocations": ("200", "1"),
        "admin API, no token": ("401", "-"),
    }
    for label, (status, logged) in expected.items():
        assert re.search(rf"│ {re.escape(label)}\s+│ {status}\s+│ [\d.]+ ms\s+│ {logged}\s+│", out), label
    assert "setosa, virginica (v1)" in out
    assert "sepal_length" in out
    auto = re.search(r"Mangum lifespan='auto'.*?│ ([\d.]+) s", out)
    ours = re.search(r"once per environment \(serving/lambda_handler\.py\)\s+│ ([\d.]+) ms", out)
    assert auto is not None
    assert ours is not None
    assert float(auto.group(1)) * 1000 > float(ours.group(1))  # a start-up per call costs more than a warm call
    parts = [float(v) for v in re.findall(r"│ (?:requests|duration|cold starts|API Gateway)\s+│[^│]+│ ([\d.]+)", out)]
    total = re.search(r"│ total\s+│\s+│ ([\d.]+)", out)
    assert len(parts) == 4
    assert total is not None
    assert float(total.group(1)) == pytest.approx(sum(parts), abs=0.01)
    assert re.search(r"the function is cheaper below about \d+ million requests a month", out)
