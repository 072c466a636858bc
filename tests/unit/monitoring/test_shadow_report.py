"""The shadow report on a real prediction log (SQLite in tmp_path, the log's own writer thread)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from monitoring.shadow_report import render, shadow_report
from serving.prediction_log import FeedbackStatus, PredictionLog, ServedRows

CLASSES = ["setosa", "versicolor", "virginica"]
FEATURES = ["a", "b"]


def rows(
    ids: list[str], predictions: list[str] | None, *, version: str, arm: str, strategy: str, **kw: object
) -> ServedRows:
    kw.setdefault("latency_ms", 1.0)
    return ServedRows(
        request_ids=ids,
        model_name="iris",
        model_version=version,
        feature_names=FEATURES,
        values=np.zeros((len(ids), 2)),
        predictions=predictions,
        probabilities=None,
        classes=CLASSES,
        arm=arm,
        strategy=strategy,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def plog(tmp_path: Path) -> Iterator[PredictionLog]:
    log = PredictionLog(f"sqlite:///{tmp_path / 'predictions.db'}", batch_size=16, max_delay=0.05).start()
    yield log
    log.close()


def test_shadow_accuracy_is_what_the_labels_say_on_the_same_pairs(plog: PredictionLog) -> None:
    rng = random.Random(5)
    truth: dict[str, tuple[str, str, str | None]] = {}  # served id -> (champion answer, shadow answer, label)
    for i in range(60):
        rid = f"r{i}"
        champion, shadow = rng.choice(CLASSES), rng.choice(CLASSES)
        label = rng.choice(CLASSES) if i % 4 else None  # a quarter never gets a label
        truth[rid] = (champion, shadow, label)
        assert plog.record(rows([rid], [champion], version="1", arm="champion", strategy="shadow", latency_ms=2.0))
        assert plog.record(
            rows([f"{rid}:shadow"], [shadow], version="2", arm="shadow", strategy="shadow", latency_ms=9.0)
        )
    # a batch: rows <id>:<i>, shadow rows <id>:<i>:shadow
    batch = [("b:0", "setosa", "setosa", "setosa"), ("b:1", "virginica", "versicolor", "versicolor")]
    assert plog.record(
        rows([b[0] for b in batch], [b[1] for b in batch], version="1", arm="champion", strategy="shadow")
    )
    ids = [f"{b[0]}:shadow" for b in batch]
    assert plog.record(rows(ids, [b[2] for b in batch], version="2", arm="shadow", strategy="shadow"))
    truth.update({b[0]: (b[1], b[2], b[3]) for b in batch})
    # a shadow that raised: counted as an error, never scored
    assert plog.record(rows(["e1"], ["setosa"], version="1", arm="champion", strategy="shadow"))
    assert plog.record(rows(["e1:shadow"], None, version="2", arm="shadow", strategy="shadow", status="error"))
    # not shadow traffic: a canary row and a forced row, both labelled, must not count
    assert plog.record(rows(["c1"], ["setosa"], version="2", arm="challenger", strategy="canary"))
    assert plog.record(rows(["f1"], ["setosa"], version="2", arm="challenger", strategy="forced"))
    assert plog.flush()
    labels = {rid: label for rid, (_, _, label) in truth.items() if label is not None} | {
        "e1": "setosa", "c1": "virginica", "f1": "virginica",
    }  # fmt: skip
    for rid, label in labels.items():
        assert plog.record_feedback(rid, label).status == FeedbackStatus.RECORDED

    [report] = shadow_report(plog.engine)

    labelled = [(c, s, lab) for c, s, lab in truth.values() if lab is not None]
    assert (report.champion_version, report.shadow_version) == ("1", "2")
    assert report.mirrored == len(truth) + 1
    assert report.shadow_errors == 1
    assert report.labelled == len(labelled)  # the same denominator for both models
    assert report.champion_correct == sum(c == lab for c, _, lab in labelled)
    assert report.shadow_correct == sum(s == lab for _, s, lab in labelled)
    assert report.only_shadow == sum(s == lab != c for c, s, lab in labelled)
    assert report.only_champion == sum(c == lab != s for c, s, lab in labelled)
    assert report.shadow_accuracy == report.shadow_correct / len(labelled)
    assert report.shadow_latency.p50_ms == 9.0
    assert report.champion_latency.p50_ms == 2.0
    from scipy.stats import binomtest

    discordant = report.only_champion + report.only_shadow
    assert report.p_value == pytest.approx(binomtest(report.only_shadow, discordant, 0.5).pvalue)
    text = "\n".join(render([report]))
    assert f"shadow   accuracy {report.shadow_accuracy:.3f} ({report.shadow_correct}/{len(labelled)})" in text


def test_a_clearly_better_shadow_is_significant_and_versions_are_kept_apart(plog: PredictionLog) -> None:
    for i in range(40):  # v2 right on all 40, champion wrong on 15 of them
        champion = "setosa" if i >= 15 else "virginica"
        assert plog.record(rows([f"r{i}"], [champion], version="1", arm="champion", strategy="shadow"))
        assert plog.record(rows([f"r{i}:shadow"], ["setosa"], version="2", arm="shadow", strategy="shadow"))
    assert plog.record(rows(["n1"], ["setosa"], version="1", arm="champion", strategy="shadow"))
    assert plog.record(rows(["n1:shadow"], ["setosa"], version="3", arm="shadow", strategy="shadow"))
    assert plog.flush()
    for i in range(40):
        plog.record_feedback(f"r{i}", "setosa")
    reports = {r.shadow_version: r for r in shadow_report(plog.engine)}
    assert set(reports) == {"2", "3"}
    better = reports["2"]
    assert (better.only_shadow, better.only_champion, better.labelled) == (15, 0, 40)
    assert better.p_value == pytest.approx(2 * 0.5**15)
    assert better.verdict().startswith("shadow is more accurate")
    assert reports["3"].labelled == 0
    assert "no labelled" in reports["3"].verdict()


def test_an_empty_log_says_there_is_no_shadow_traffic(tmp_path: Path) -> None:
    assert shadow_report(f"sqlite:///{tmp_path / 'none.db'}") == []
    assert "no shadow traffic" in render([])[0]
