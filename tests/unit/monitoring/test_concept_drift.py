"""Concept drift: online accuracy per version from feedback, against the offline test accuracy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.params import ConceptDriftParams, Params
from monitoring.concept_drift import block_accuracy, check_concept_drift, offline_accuracy_from_registry
from pipelines.batches import generate_batch
from pipelines.fit import TrainResult, fit_and_evaluate
from serving.log_reader import labelled_window
from serving.prediction_log import PredictionLog, PredictionRecord

CFG = ConceptDriftParams(window=200, min_labels=50, max_accuracy_drop=0.1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def trained(iris_frame: pd.DataFrame, params: Params) -> TrainResult:
    return fit_and_evaluate(iris_frame, params)  # logistic regression on raw iris: offline accuracy 0.911


def labelled(
    trained: TrainResult, reference: pd.DataFrame, params: Params, kind: str, rows: int, seed: int, **extra: Any
) -> pd.DataFrame:
    """Labelled predictions as the log would hold them: the model's answers scored against the batch's labels."""
    cfg = params.dataset
    batch = generate_batch(kind, reference, params, rows=rows, seed=seed)
    start = extra.pop("start", T0)
    return pd.DataFrame(
        {
            "model_version": extra.pop("version", "1"),
            "correct": trained.pipeline.predict(batch[cfg.feature_names]) == batch[cfg.target].to_numpy(),
            "ts": [start + timedelta(seconds=i) for i in range(rows)],
        }
    )


def offline(trained: TrainResult) -> float:
    return float(trained.evaluation.metrics["accuracy"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_labels_are_ok(trained: TrainResult, iris_frame: pd.DataFrame, params: Params, seed: int) -> None:
    finding = check_concept_drift(
        labelled(trained, iris_frame, params, "clean", 200, seed), {"1": offline(trained)}, CFG
    )
    assert finding.status == "ok"
    # measured online accuracy 0.94-1.00 against 0.911 offline: the "drop" is negative
    assert finding.score is not None
    assert finding.score < 0.02
    assert finding.details["versions"]["1"]["labels"] == 200


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_concept_shift_fires_although_the_inputs_did_not_move(
    trained: TrainResult, iris_frame: pd.DataFrame, params: Params, seed: int
) -> None:
    features = params.dataset.feature_names
    clean = generate_batch("clean", iris_frame, params, rows=200, seed=seed)
    shifted = generate_batch("concept-shift", iris_frame, params, rows=200, seed=seed)
    # The inputs are identical, row for row: any check on inputs (data drift) has nothing to see.
    pd.testing.assert_frame_equal(clean[features], shifted[features])

    finding = check_concept_drift(
        labelled(trained, iris_frame, params, "concept-shift", 200, seed), {"1": offline(trained)}, CFG
    )
    assert finding.status == "fired"
    # versicolor and virginica swapped: only setosa (a third) stays right, measured online 0.34-0.40
    assert finding.score is not None
    assert finding.score > 0.4
    assert "v1:" in finding.summary


def test_too_few_labels_is_inconclusive_not_ok(trained: TrainResult, iris_frame: pd.DataFrame, params: Params) -> None:
    frame = labelled(trained, iris_frame, params, "concept-shift", 49, 0)
    finding = check_concept_drift(frame, {"1": offline(trained)}, CFG)
    assert finding.status == "inconclusive"
    assert finding.score is None
    assert finding.details["versions"]["1"]["status"] == "inconclusive"


def test_a_version_without_offline_accuracy_is_inconclusive(
    trained: TrainResult, iris_frame: pd.DataFrame, params: Params
) -> None:
    finding = check_concept_drift(labelled(trained, iris_frame, params, "concept-shift", 200, 0), {"7": 0.9}, CFG)
    assert finding.status == "inconclusive"
    assert "offline unknown" in finding.summary


def test_versions_are_judged_separately(trained: TrainResult, iris_frame: pd.DataFrame, params: Params) -> None:
    frame = pd.concat(
        [
            labelled(trained, iris_frame, params, "clean", 200, 0, version="1"),
            labelled(trained, iris_frame, params, "concept-shift", 200, 1, version="2"),
            labelled(trained, iris_frame, params, "concept-shift", 20, 2, version="3"),
        ]
    )
    finding = check_concept_drift(frame, {"1": offline(trained), "2": offline(trained), "3": 0.9}, CFG)
    statuses = {v: d["status"] for v, d in finding.details["versions"].items()}
    assert statuses == {"1": "ok", "2": "fired", "3": "inconclusive"}
    assert finding.status == "fired"
    assert finding.rows == 200 + 200 + 20


def test_only_the_newest_window_counts_and_blocks_show_the_step(
    trained: TrainResult, iris_frame: pd.DataFrame, params: Params
) -> None:
    old_shift = labelled(trained, iris_frame, params, "concept-shift", 300, 0)
    recent_clean = labelled(trained, iris_frame, params, "clean", 200, 1, start=T0 + timedelta(hours=1))
    # Shuffled rows: the check must order by time itself.
    frame = pd.concat([recent_clean, old_shift]).sample(frac=1.0, random_state=0)
    assert check_concept_drift(frame, {"1": offline(trained)}, CFG).status == "ok"  # the bad labels are older

    step = pd.concat(
        [
            labelled(trained, iris_frame, params, "clean", 100, 2),
            old_shift.tail(100).assign(ts=[T0 + timedelta(hours=2, seconds=i) for i in range(100)]),
        ]
    )
    blocks = check_concept_drift(step, {"1": offline(trained)}, CFG).details["versions"]["1"]["blocks"]
    assert len(blocks) == 4  # 200 labels in blocks of min_labels = 50
    assert min(blocks[:2]) > 0.85
    assert max(blocks[2:]) < 0.6


def test_block_accuracy_aligns_to_the_newest_label() -> None:
    # 7 labels in blocks of 3: the oldest label is left out, the newest block is full
    assert block_accuracy([False, True, True, False, True, True, True], 3) == pytest.approx([2 / 3, 1.0])
    assert block_accuracy([True], 3) == []
    with pytest.raises(ValueError, match="block_size"):
        block_accuracy([True], 0)


def test_missing_columns_name_the_reader() -> None:
    with pytest.raises(ValueError, match="labelled_window"):
        check_concept_drift(pd.DataFrame({"correct": [True]}), {}, CFG)


def test_reads_the_prediction_log_with_feedback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    log = PredictionLog(url, batch_size=16, max_delay=0.05).start()
    try:
        for i in range(60):
            ts = T0 + timedelta(seconds=i)
            log.record(PredictionRecord(f"r{i}", "iris", "3", {"petal_width": 0.2}, "setosa", ts=ts))
        assert log.flush()
        for i in range(60):
            log.record_feedback(f"r{i}", "setosa" if i % 2 else "virginica")  # half the answers were wrong
        finding = check_concept_drift(labelled_window(url), {"3": 0.95}, CFG)
    finally:
        log.close()
    assert finding.status == "fired"
    assert finding.details["versions"]["3"]["online"] == pytest.approx(0.5)
    assert finding.score == pytest.approx(0.45)


def test_offline_accuracy_comes_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import registry

    def version(v: str, metrics: dict[str, float]) -> registry.VersionInfo:
        return registry.VersionInfo(v, [], "run", "", "", "", metrics, "", "")

    listed = [version("1", {"test_accuracy": 0.93, "accuracy": 0.5}), version("2", {}), version("3", {"accuracy": 0.9})]
    monkeypatch.setattr(registry, "list_versions", lambda settings: listed)
    assert offline_accuracy_from_registry(None) == {"1": 0.93, "3": 0.9}  # type: ignore[arg-type]


def test_an_empty_log_is_inconclusive(tmp_path: Path) -> None:
    finding = check_concept_drift(labelled_window(f"sqlite:///{tmp_path / 'none.db'}"), {"1": 0.9}, CFG)
    assert finding.status == "inconclusive"
    assert "no labelled predictions" in finding.summary


def test_a_version_no_longer_served_is_shown_but_never_decides(
    trained: TrainResult, iris_frame: pd.DataFrame, params: Params
) -> None:
    """An aborted canary's bad labels must not make the monitor retrain the champion that serves well."""
    frame = pd.concat(
        [
            labelled(trained, iris_frame, params, "clean", 200, 0, version="1"),
            labelled(trained, iris_frame, params, "concept-shift", 200, 1, version="2"),
        ]
    )
    accuracy = {"1": offline(trained), "2": offline(trained)}
    assert check_concept_drift(frame, accuracy, CFG).status == "fired"  # control: judged, v2 fires
    finding = check_concept_drift(frame, accuracy, CFG, serving={"1"})
    assert finding.status == "ok"
    assert finding.details["versions"]["2"]["serving"] is False
    assert finding.details["versions"]["2"]["status"] == "fired"  # still shown as it is
    assert finding.score == pytest.approx(finding.details["versions"]["1"]["drop"])
    assert "v1" in finding.summary
    assert "v2" not in finding.summary


def test_serving_versions_are_the_champion_and_a_challenger_still_in_play() -> None:
    from monitoring.concept_drift import serving_versions
    from pipelines import registry

    def version(v: str, aliases: list[str], status: str = "") -> registry.VersionInfo:
        return registry.VersionInfo(v, aliases, "run", status, "", "", {}, "", "")

    listed = [version("1", ["previous"]), version("2", ["champion"]), version("3", ["challenger"])]
    assert serving_versions(listed) == {"2", "3"}
    for status in ("rejected", "rolled_back"):
        listed[2] = version("3", ["challenger"], status)
        assert serving_versions(listed) == {"2"}
