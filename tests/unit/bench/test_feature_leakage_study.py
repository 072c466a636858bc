"""The leakage study (bench/feature_leakage_study.py): its doc says what the code computes, and the committed
docs/feature-leakage-study.md is current (a few of its seeds recomputed)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from bench.feature_leakage_study import DOC_SPECIMENS, run_and_write, seed_row
from core.params import Params
from pipelines.feature_leakage import leakage_study

REPO = Path(__file__).resolve().parents[3]


def test_the_written_doc_carries_the_summary_counts_and_every_seed(params: Params, tmp_path: Path) -> None:
    text = run_and_write(params, tmp_path / "study.md", seeds=3, specimens=120).read_text(encoding="utf-8")
    assert "(3 seeds, 120 specimens each)" in text
    assert f"`{params.train.estimator}`" in text
    counts = re.search(r"offline accuracy exceeded its online accuracy in \*\*(\d+) of 3\*\*", text)
    assert counts is not None
    seed_lines = [line for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [line.split("|")[1].strip() for line in seed_lines] == ["0", "1", "2"]
    gaps = [float(line.split("|")[6]) for line in seed_lines]
    assert int(counts[1]) == sum(g > 0 for g in gaps)


def test_the_committed_doc_is_current(params: Params, iris_frame: pd.DataFrame) -> None:
    doc = (REPO / "docs" / "feature-leakage-study.md").read_text(encoding="utf-8")
    assert f", {DOC_SPECIMENS} specimens each)" in doc, "run `mlops-lab study leakage` to regenerate"
    assert f"`{params.train.estimator}` with {params.train.hyperparams}" in doc, "params changed: rerun the study"
    for result in leakage_study(iris_frame, params, seeds=3, specimens=DOC_SPECIMENS).results:
        assert seed_row(result) in doc, f"seed {result.seed} differs: run `mlops-lab study leakage`"
