"""The fairness bound in the quality gate, against a real MLflow store: a biased candidate is refused, with the reason.

Training data come from pipelines/fair_groups.py: site B's petals read short by a stated amount, so a
model trained on both sites misses site B's virginica. No shift: the check passes and the card shows
the figures; a large shift: the gate refuses and says why on the run (tag, decision, fairness.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.mlflow_config import mlflow_client
from core.params import Params
from core.settings import Settings
from pipelines.data import ingest, read_csv
from pipelines.fair_groups import biased_rows
from pipelines.model_card import NOT_REGISTERED
from pipelines.registry import GATE_REJECT, audit_log
from pipelines.training_steps import run_training

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, params: Params, make_settings) -> tuple[Settings, Params, Path]:
    root = tmp_path_factory.mktemp("fair-lab")
    settings = make_settings(root / "state")
    return settings, params, ingest(params.dataset, params.ingest, root / "iris.csv")


def _write(frame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _fairness(gate: dict) -> dict:
    return next(c for c in gate["checks"] if c["name"] == "fairness")


def test_a_fair_candidate_passes_and_its_card_shows_the_figures(lab, tmp_path: Path) -> None:
    settings, params, data = lab
    rows = biased_rows(read_csv(data), params, rows=400, seed=11, shift_cm=0.0)
    outcome = run_training(settings, params, _write(rows, tmp_path / "fair.csv"))
    check = _fairness(outcome.gate)
    assert check["passed"], check["detail"]
    assert outcome.status == "registered"
    assert {case["group"] for case in check["cases"]} == {"site-a", "site-b"}
    client = mlflow_client(settings)
    card = Path(client.download_artifacts(outcome.run_id, "model_card.md")).read_text(encoding="utf-8")
    section = card[card.index("## Fairness") :]
    assert "Gate check: pass" in section
    assert "| site-b |" in section
    assert "equalized-odds difference:" in section


def test_a_biased_candidate_is_refused_with_the_reason_on_its_run(lab, tmp_path: Path) -> None:
    settings, params, data = lab
    if not audit_log(settings):  # a trail to write to: a fair model registered first (the other test may have)
        assert (
            run_training(
                settings,
                params,
                _write(biased_rows(read_csv(data), params, rows=400, seed=3, shift_cm=0.0), tmp_path / "fair.csv"),
            ).status
            == "registered"
        )
    before = len(audit_log(settings))
    rows = biased_rows(
        read_csv(data), params, rows=400, seed=11
    )  # the stated default bias: 0.6 cm short on 30 % of rows
    outcome = run_training(settings, params, _write(rows, tmp_path / "biased.csv"))
    check = _fairness(outcome.gate)
    bound = params.gate.fairness.max_equalized_odds_difference
    assert not check["passed"]
    assert f"exceeds the bound {bound:.3f}" in check["detail"]
    assert outcome.status == "rejected"
    assert any("equalized-odds difference" in reason for reason in outcome.gate["reasons"])
    client = mlflow_client(settings)
    run = client.get_run(outcome.run_id)
    assert run.data.tags["gate.check.fairness"] == "FAIL"
    assert "equalized-odds difference" in run.data.tags["gate.reason"]
    figures = json.loads(Path(client.download_artifacts(outcome.run_id, "gate/fairness.json")).read_text())
    assert figures["equalized_odds_difference"] > bound
    assert figures["positive_class"] == params.gate.fairness.positive_class
    # The same report says what a threshold mitigation would give on the same test rows (a what-if, not served).
    what_if = figures["mitigation"]
    assert what_if["served"] is False
    assert what_if["before"]["equalized_odds_difference"] == figures["equalized_odds_difference"]
    assert what_if["after"]["equalized_odds_difference"] < what_if["before"]["equalized_odds_difference"]
    # The card and the registry's audit trail say it too, though no version was made.
    card = Path(client.download_artifacts(outcome.run_id, "model_card.md")).read_text(encoding="utf-8")
    assert f"version {NOT_REGISTERED}" in card
    assert "Gate check: FAIL - equalized-odds difference" in card[card.index("## Fairness") :]
    assert "What a mitigation would give (not served): fairlearn ThresholdOptimizer" in card
    assert "| mitigated |" in card
    assert run.data.tags["model_card"] == f"runs:/{outcome.run_id}/model_card.md"
    trail = audit_log(settings)
    assert len(trail) == before + 1
    entry = trail[-1]
    assert (entry.action, entry.alias, entry.from_version, entry.to_version) == (GATE_REJECT, "candidate", None, None)
    assert entry.reason.startswith(f"run {outcome.run_id}: ")
    assert "equalized-odds difference" in entry.reason
    assert entry.actor == settings.actor
