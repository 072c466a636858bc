"""What `mlops-lab train` prints: the gate's reasons and, after them, the advisory ONNX parity check."""

from __future__ import annotations

import io

from rich.console import Console

from pipelines.training_report import print_outcome
from pipelines.training_steps import TrainingOutcome

METRICS = {"test_accuracy": 0.96, "test_f1_macro": 0.95, "test_log_loss": 0.1, "cv_accuracy_mean": 0.95}


def test_the_onnx_outcome_is_printed_after_the_gate_with_its_reason_verbatim() -> None:
    detail = "export_failed: skl2onnx could not convert the pipeline: step [derive] has no converter"
    gate = {
        "passed": True,
        "reasons": ["accuracy 0.9556 on 45 holdout rows >= floor 0.8500"],
        "advisory": [{"name": "onnx_parity", "passed": False, "detail": detail, "cases": []}],
    }
    outcome = TrainingOutcome("registered", "run1", METRICS, gate, version="2", alias="challenger")
    buffer = io.StringIO()
    print_outcome(outcome, Console(file=buffer, width=400, color_system=None))
    text = buffer.getvalue()
    assert "registered version 2 as alias challenger" in text
    assert text.index("gate: accuracy 0.9556") < text.index("advisory onnx_parity:")
    assert f"advisory onnx_parity: {detail}" in text  # square brackets kept, not read as markup
