"""False-alarm control for data and prediction drift (C32, C33), measured on generated windows.

One study runs once for the module: 20 seeds per window kind, ``monitoring.window`` rows each, raw
iris as the reference, the params.yaml defaults (Evidently's K-S at p < 0.05 per feature, drift
share 0.5; prediction drift at p < 0.01). Measured with these seeds: 0/20 false alarms on clean and
clean-iid windows for both checks, 20/20 detections of covariate and prior shift by data drift,
20/20 of prior shift by prediction drift (docs/drift-detection.md has the 30-seed figures).

Bounds, with margin over what was measured: a false-alarm rate of at most 10 % (2 of 20 windows)
and a detection rate of at least 95 % (19 of 20). Concept shift must stay invisible to both checks
(at most the false-alarm bound): its inputs are clean, only its labels changed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.drift_study import (
    CLEAN_IID,
    DOC_KINDS,
    StudyResult,
    interval,
    make_window,
    plot,
    run_study,
    write_doc,
)
from core.params import Params

pytestmark = pytest.mark.slow  # the study runs Evidently 100 times (about 30 s)

SEEDS = range(20)
MAX_FALSE_ALARM_RATE = 0.10
MIN_DETECTION_RATE = 0.95


@pytest.fixture(scope="module")
def study(params: Params, iris_frame: pd.DataFrame) -> StudyResult:
    from pipelines.fit import fit_and_evaluate

    model = fit_and_evaluate(iris_frame, params).pipeline
    return run_study(params, iris_frame, SEEDS, DOC_KINDS, model=model)


@pytest.mark.parametrize("kind", ["clean", CLEAN_IID])
def test_clean_windows_rarely_raise_a_false_alarm(study: StudyResult, kind: str) -> None:
    rates = study.rates[kind]
    assert rates.runs == len(SEEDS)
    assert rates.data_drift_rate <= MAX_FALSE_ALARM_RATE
    assert rates.prediction_drift_rate is not None
    assert rates.prediction_drift_rate <= MAX_FALSE_ALARM_RATE


def test_covariate_shift_is_detected_on_the_moved_features(study: StudyResult, params: Params) -> None:
    rates = study.rates["covariate-shift"]
    assert rates.data_drift_rate >= MIN_DETECTION_RATE
    moved = set(params.batches.covariate_shift.features or [])
    assert {name for name, n in rates.feature_drift.items() if n >= MIN_DETECTION_RATE * rates.runs} == moved


def test_prior_shift_is_detected_by_both_checks(study: StudyResult) -> None:
    rates = study.rates["prior-shift"]
    assert rates.data_drift_rate >= MIN_DETECTION_RATE
    assert rates.prediction_drift_rate is not None
    assert rates.prediction_drift_rate >= MIN_DETECTION_RATE


def test_concept_shift_is_invisible_to_input_and_output_drift(study: StudyResult) -> None:
    # Same inputs as clean, two labels swapped: only a check with labels (concept drift, C34) can see it.
    rates = study.rates["concept-shift"]
    assert rates.data_drift_rate <= MAX_FALSE_ALARM_RATE
    assert rates.prediction_drift_rate is not None
    assert rates.prediction_drift_rate <= MAX_FALSE_ALARM_RATE


def test_study_without_a_model_skips_prediction_drift(params: Params, iris_frame: pd.DataFrame) -> None:
    result = run_study(params, iris_frame, [0], ["clean"])
    assert result.rates["clean"].prediction_drift is None
    assert result.rates["clean"].prediction_drift_rate is None
    assert result.reference_rows == len(iris_frame)
    assert result.window == params.monitoring.window


def test_clopper_pearson_interval() -> None:
    low, high = interval(0, 30)
    assert low == 0.0
    assert high == pytest.approx(0.1157, abs=1e-4)  # the exact 95 % limit for 0 of 30
    assert interval(30, 30) == (pytest.approx(0.8843, abs=1e-4), 1.0)


def test_clean_iid_windows_resample_a_pool(params: Params, iris_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="pool"):
        make_window(CLEAN_IID, iris_frame, params, seed=0)
    pool = iris_frame.head(60)
    window = make_window(CLEAN_IID, pool, params, seed=0, pool=pool)
    assert len(window) == params.monitoring.window
    assert window.duplicated().any()  # drawn with replacement


def test_write_doc_reports_settings_rates_and_command(params: Params, tmp_path: Path) -> None:
    out = write_doc(params, tmp_path / "drift.md", seeds=2, shifts=(0.0, 1.5))
    text = out.read_text(encoding="utf-8")
    assert "mlops-lab study drift" in text
    assert "seeds 0–1" in text
    assert f"{params.monitoring.window} rows" in text
    assert "| concept-shift | 0/2 = 0%" in text
    assert "| covariate-shift | 2/2 = 100%" in text
    assert "| 1.5 | 100% | 100% |" in text
    assert "![firing rate per batch kind and detection by shift size](drift.png)" in text
    assert (tmp_path / "drift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_plot_draws_the_reports_rates(study: StudyResult, tmp_path: Path) -> None:
    sweep = {"raw": {0.0: 0.0, 0.5: 0.4, 1.5: 1.0}}
    plotted = plot(study, sweep, tmp_path / "drift.png")
    assert plotted["data drift fired"] == [r.data_drift_rate for r in study.rates.values()]
    assert plotted["prediction drift fired"] == [r.prediction_drift_rate or 0.0 for r in study.rates.values()]
    assert plotted["raw"] == [0.0, 0.4, 1.0]
