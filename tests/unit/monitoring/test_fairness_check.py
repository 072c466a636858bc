"""Fairness on labelled production rows: the gate's figures, read from a real prediction log with feedback."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from core.findings import CHECKS as RECORDED_CHECKS
from core.params import Params
from monitoring.checks import CHECKS
from monitoring.fairness_check import check_fairness
from pipelines.fairness import fairness_report
from serving.log_reader import labelled_window
from serving.prediction_log import PredictionLog, PredictionRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _log_rows(url: str, rows: list[tuple[str, str, str, str | None]]) -> None:
    """Log (version, prediction, label, source) rows with feedback; a None source is a row without a group."""
    log = PredictionLog(url, batch_size=16, max_delay=0.05).start()
    try:
        for i, (version, predicted, _, source) in enumerate(rows):
            ts = T0 + timedelta(seconds=i)
            record = PredictionRecord(f"r{i}", "iris", version, {"petal_width": 1.8}, predicted, ts=ts)
            log.record(replace(record, sensitive_group=source))
        assert log.flush()
        for i, (_, _, label, _) in enumerate(rows):
            log.record_feedback(f"r{i}", label)
        assert log.flush()
    finally:
        log.close()


def _site(source: str, found: int, missed: int, others: int, version: str = "3") -> list[tuple[str, str, str, str]]:
    """A site's rows: ``found`` + ``missed`` true virginica (missed ones called versicolor), ``others`` setosa."""
    return (
        [(version, "virginica", "virginica", source)] * found
        + [(version, "versicolor", "virginica", source)] * missed
        + [(version, "setosa", "setosa", source)] * others
    )


def test_labelled_production_rows_with_a_group_are_judged_like_the_gate(params: Params, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    rows = _site("site-a", 10, 0, 20) + _site("site-b", 5, 5, 20) + [("3", "setosa", "setosa", None)] * 7
    _log_rows(url, rows)
    labelled = labelled_window(url)
    finding = check_fairness(labelled, params, champion="3")
    assert finding.check == "fairness"
    assert finding.status == "fired"
    assert finding.score == pytest.approx(0.5)  # TPR 1.0 at site-a, 0.5 at site-b; no false positives
    assert finding.threshold == params.gate.fairness.max_equalized_odds_difference
    assert finding.rows == 60  # the 7 rows without a group take no part
    groups = {g["group"]: g for g in finding.details["groups"]}
    assert groups["site-b"]["true_positive_rate"] == 0.5
    assert groups["site-a"]["accuracy"] == 1.0
    truth = [label for _, _, label, source in rows if source]
    pred = [p for _, p, _, source in rows if source]
    sources = [source for *_, source in rows if source]
    expected = fairness_report(truth, pred, sources, "virginica", "source").to_dict()
    assert finding.details == expected  # the same figures as the gate's function on the same rows


def test_a_fair_window_is_ok_and_other_versions_are_left_out(params: Params, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    unfair_old_version = _site("site-a", 10, 0, 20, version="2") + _site("site-b", 0, 10, 20, version="2")
    _log_rows(url, unfair_old_version + _site("site-a", 9, 1, 20) + _site("site-b", 9, 1, 20))
    finding = check_fairness(labelled_window(url), params, champion="3")
    assert finding.status == "ok"
    assert finding.score == 0.0
    assert finding.rows == 60


def test_without_groups_or_with_too_few_rows_it_is_inconclusive(params: Params, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    _log_rows(url, [("3", "setosa", "setosa", None)] * 30)
    assert check_fairness(labelled_window(url), params).status == "inconclusive"
    few = params.gate.fairness.min_group_size - 1
    small = pd.DataFrame(
        {"prediction": ["virginica"] * (few + 20), "label": ["virginica"] * (few + 20)}
        | {"sensitive_group": ["site-a"] * 20 + ["site-b"] * few}
    )
    finding = check_fairness(small, params)
    assert finding.status == "inconclusive"
    assert "two groups" in finding.summary
    no_column = params.model_copy(update={"dataset": params.dataset.model_copy(update={"group_column": None})})
    assert check_fairness(small, no_column).status == "inconclusive"


def test_the_monitoring_flow_runs_and_records_the_fairness_check() -> None:
    assert "fairness" in CHECKS
    assert set(CHECKS) == set(RECORDED_CHECKS)
