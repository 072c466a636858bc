"""The ``explain`` demo (C57) runs on a fresh state and shows what it claims."""

from __future__ import annotations

import re

import pytest

from core.context import LabContext

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_explain_demo_adds_up_over_http_logs_nothing_and_sees_the_explanation_move(run_demo, ctx: LabContext) -> None:
    out = run_demo("explain", ctx, width=220)
    assert "mean abs contribution" in out  # the model card's global explanation
    served = re.search(r"base \+ sum = ([+-]\d\.\d{6}), the model's margin for (\w+) = ([+-]\d\.\d{6})", out)
    assert served is not None
    assert served.group(1) == served.group(3)
    assert "/v1/predict scores v1 with onnx" in out
    assert "bad input: 422 naming petal_width" in out
    assert "prediction log rows after explaining: 0" in out
    gap = re.search(r"base \+ sum = predict_proba within (\S+)", out)
    assert gap is not None
    assert float(gap.group(1)) < 1e-9
    shifts = [float(s) for s in re.findall(r"explanation shift (\d\.\d\d)", out)]
    assert len(shifts) == 2
    assert shifts[0] < 0.05 < 0.3 < shifts[1]  # clean stays, petals stuck at the mean move it
