"""The ``onnx`` demo (C54, C17, C44) runs on a fresh state and shows what it claims."""

from __future__ import annotations

import re

import pytest

from core.context import LabContext
from pipelines.registry import current_aliases

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_onnx_demo_exports_checks_parity_refuses_a_divergence_and_reports_int8(run_demo, ctx: LabContext) -> None:
    out = run_demo("onnx_optimisation", ctx, width=220)
    champion = current_aliases(ctx.settings)["champion"]
    assert f"what v{champion} carries" in out
    assert re.search(r"onnx\.status\s+│ passed", out)
    assert re.search(r"onnx\.artifact\s+│ onnx/model\.onnx", out)
    # the DerivedFeatures converter: 2 products and 2 ratios over 4 inputs
    for op, count in (("Mul", 2), ("Div", 2), ("Equal", 2), ("Where", 2), ("Concat", 1)):
        assert re.search(rf"│ {op}\s+│ {count}\s+│", out), op
    # parity per source, then overall
    for source in ("holdout", "clean", "covariate-shift", "prior-shift", "concept-shift", "edge"):
        assert re.search(rf"│ {source}\s+│ \d+\s+│ 0\s+│", out), source
    assert re.search(r"✔ parity passed on \d+ rows", out)
    # the planted divergence and the replaced file
    assert re.search(r"✘ diverged on \d+ rows", out)
    assert "✔ refused:" in out
    assert "was replaced after registration" in out
    # int8: nothing on the linear model, something on the MLP; float16 skipped
    assert "nothing quantised" in out
    assert re.search(r"int8 \(dynamic\)\s+│ \d+\s+│ 0\.[0-4]\d", out)  # the MLP's int8 file: under half the size
    assert "onnxconverter-common" in out
    assert "ONNX Runtime" in out
