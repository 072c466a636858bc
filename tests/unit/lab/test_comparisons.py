"""docs/compare/ is what the generator writes from the catalog, and its numbers are a fresh, consistent computation."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.params import Params, load_params
from lab.catalog import load_catalog
from lab.cheat_sheets import AREAS, SHEET_BUDGET, render_area
from lab.comparison_data import DRIFT, STRATEGIES, ComparisonError, load_comparisons, parse
from lab.comparisons import OUT_DIR, PLOT, render_all, render_table
from lab.concept_docs import render_all as render_concept_pages
from lab.drift_statistics import FEATURE, WorkedExample, compute, plot_psi_bins, psi

REPO = Path(__file__).resolve().parents[3]
CATALOG = load_catalog()
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
REGENERATE = "regenerate them: uv run mlops-lab docs"
STRATEGY_IDS = ["C21", "C22", "C23", "C24", "C25"]
DRIFT_IDS = ["C32", "C33", "C34", "C35", "C09"]


@pytest.fixture(scope="module")
def params() -> Params:
    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="module")
def example(params: Params) -> WorkedExample:
    return compute(params)  # seeded: a model fit, five windows and two Evidently runs (its import takes seconds)


@pytest.fixture(scope="module")
def drift_page() -> str:
    return (OUT_DIR / "drift-kinds.md").read_text(encoding="utf-8")


def test_every_comparison_row_is_a_catalogued_concept() -> None:
    comparisons = load_comparisons()
    assert comparisons[STRATEGIES].concept_ids == STRATEGY_IDS
    assert comparisons[DRIFT].concept_ids == DRIFT_IDS
    known = {c.id for c in CATALOG}
    assert [cid for comp in comparisons.values() for cid in comp.linked_ids if cid not in known] == []


def test_a_row_naming_an_unknown_concept_or_missing_a_column_is_refused() -> None:
    page = "p:\n  title: T\n  intro: I\n  columns: {a: A, b: B}\n  rows:\n    - {concept: %s, a: x%s}\n"
    with pytest.raises(ComparisonError, match=r"'C99', which is not in lab/catalog\.yaml"):
        parse(page % ("C99", ", b: y"), CATALOG)
    with pytest.raises(ComparisonError, match=r"row C21 has no \['b'\]"):
        parse(page % ("C21", ""), CATALOG)
    assert parse(page % ("C21", ", b: y"), CATALOG)["p"].concept_ids == ["C21"]


@pytest.mark.slow  # imports Evidently (seconds)
def test_committed_pages_are_the_generators_output(params: Params, example: WorkedExample) -> None:
    expected = render_all(params, example)
    committed = {p.name: p.read_text(encoding="utf-8") for p in OUT_DIR.glob("*.md")}
    assert sorted(committed) == sorted(expected), REGENERATE
    stale = [name for name, text in expected.items() if committed[name] != text]
    assert stale == [], f"out of date: {stale}; {REGENERATE}"
    assert (OUT_DIR / PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("page", sorted(OUT_DIR.glob("*.md")), ids=lambda p: p.name)
def test_every_relative_link_target_exists(page: Path) -> None:
    targets = [t for t in LINK_RE.findall(page.read_text(encoding="utf-8")) if "://" not in t]
    assert len(targets) >= 5
    assert [t for t in targets if not (page.parent / t.partition("#")[0]).exists()] == []


def test_each_strategy_row_links_its_concept_page_and_its_paragraph_its_demo(params: Params) -> None:
    page = (OUT_DIR / "deployment-strategies.md").read_text(encoding="utf-8")
    by_id = {c.id: c for c in CATALOG}
    rows = [line for line in page.splitlines() if line.startswith("| [C")]
    assert [row.removeprefix("| [").split()[0] for row in rows] == STRATEGY_IDS
    for cid in STRATEGY_IDS:
        c = by_id[cid]
        assert f"](../concepts/{c.id}-{c.slug}.md)" in page
        assert f"Demo: `uv run {c.demo}`" in page
    assert "](../concepts/C26-automatic-rollback.md)" in page  # the canary's "see also"


def test_cells_quote_the_knobs_of_params_yaml(params: Params) -> None:
    comp = load_comparisons()[DRIFT]
    knobs = params.monitoring.model_copy(update={"min_rows": 7})
    table = "\n".join(render_table(comp, CATALOG, params.model_copy(update={"monitoring": knobs})))
    assert "next run with ≥ 7 rows" in table
    assert f"next run with ≥ {params.monitoring.min_rows} rows" not in table


def test_psi_equals_the_sum_of_the_displayed_bin_contributions(drift_page: str) -> None:
    rows = re.findall(
        r"^\| (\d+\.\d+)–(\d+\.\d+) \| (\d+) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", drift_page, re.M
    )
    assert len(rows) >= 5
    contributions = [float(r[6]) for r in rows]
    shown = float(re.search(r"\| \*\*sum\*\* \| \d+ \| \d+ \| \| \| \*\*([\d.]+)\*\* \|", drift_page).group(1))
    assert sum(contributions) == pytest.approx(shown, abs=0.5e-4 * (len(rows) + 1))
    for *_, ref, cur, part in rows:  # each contribution is (ref - cur) * ln(ref / cur) of its displayed shares
        r, c = float(ref), float(cur)
        assert float(part) == pytest.approx((r - c) * np.log(r / c), abs=2e-3)


@pytest.mark.slow  # imports Evidently (seconds)
def test_the_drift_pages_numbers_equal_a_fresh_computation(drift_page: str, example: WorkedExample) -> None:
    ks, bins = example.ks, example.psi.bins
    assert f"so D = {ks.statistic:.3f}" in drift_page
    assert ks.statistic == pytest.approx(abs(ks.reference_cdf - ks.current_cdf))
    assert f"{ks.reference_cdf:.3f} of the reference but {ks.current_cdf:.3f} of the window" in drift_page
    for b in bins:
        assert (
            f"| {b.reference_count} | {b.current_count} | {b.reference_share:.4f} | {b.current_share:.4f} |"
            in drift_page
        )
    assert sum(b.reference_count for b in bins) == example.reference_rows
    assert sum(b.current_count for b in bins) == example.window_rows
    cs = example.classes
    assert f"= {cs.statistic:.2f}, with" in drift_page
    observed = np.array(cs.observed, dtype=float)
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0) / observed.sum()
    assert np.allclose(cs.expected, expected)
    assert cs.statistic == pytest.approx(float(((observed - expected) ** 2 / expected).sum()))
    assert cs.dof == len(cs.classes) - 1


@pytest.mark.slow  # imports Evidently (seconds)
def test_our_ks_and_psi_match_evidentlys_on_the_same_data(example: WorkedExample, drift_page: str) -> None:
    assert example.evidently_psi == pytest.approx(example.psi.value, rel=1e-9)
    assert example.evidently_ks_p == pytest.approx(example.ks.p_value, rel=1e-9)
    assert f"PSI = {example.psi.value:.6f}; Evidently's PSI" in drift_page
    assert example.summary[1].name.startswith("covariate shift")  # the worked window is the summary's second row
    assert example.summary[1].psi == pytest.approx(example.psi.value)


@pytest.mark.slow  # imports Evidently (seconds)
def test_psi_matches_evidentlys_own_function_and_is_zero_for_identical_samples() -> None:
    import pandas as pd
    from evidently.legacy.calculations.stattests.psi import _psi
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(3)
    reference, current = rng.normal(0, 1, 300).round(2), rng.normal(0.4, 1.2, 700).round(2)
    theirs, _ = _psi(pd.Series(reference), pd.Series(current), ColumnType.Numerical, 0.1)
    ours = psi(reference, current)
    assert ours.value == pytest.approx(float(theirs), rel=1e-12)
    assert ours.value == pytest.approx(sum(b.contribution for b in ours.bins))
    assert psi(reference, reference).value == 0.0
    with pytest.raises(ValueError, match="distinct values"):
        psi(np.arange(10.0), np.arange(10.0))


@pytest.mark.slow  # imports Evidently (seconds)
def test_the_plot_draws_the_shares_of_the_table(example: WorkedExample, tmp_path: Path) -> None:
    drawn = plot_psi_bins(example.psi, tmp_path / "psi.png")
    assert drawn["reference"] == [b.reference_share for b in example.psi.bins]
    assert drawn["current"] == [b.current_share for b in example.psi.bins]
    assert (tmp_path / "psi.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert FEATURE in (OUT_DIR / "drift-kinds.md").read_text(encoding="utf-8")


def test_concept_pages_of_compared_concepts_link_their_comparison() -> None:
    pages = render_concept_pages(CATALOG)
    by_id = {c.id: c for c in CATALOG}

    def page(cid: str) -> str:
        return pages[f"{cid}-{by_id[cid].slug}.md"]

    for cid in [*STRATEGY_IDS, "C26"]:
        assert "**Compare side by side:** [Deployment strategies](../compare/deployment-strategies.md)" in page(cid)
    for cid in DRIFT_IDS:
        assert "[Drift kinds](../compare/drift-kinds.md)" in page(cid)
    assert "Compare side by side" not in page("C01")
    assert "](../compare/drift-kinds.md)" in pages["README.md"]


def test_a_sheet_links_a_comparison_only_while_it_fits_its_page() -> None:
    link = [("Drift kinds", "drift-kinds.md")]
    monitoring = next(a for a in AREAS if "C32" in a.concepts)
    assert "Side by side: [Drift kinds](../compare/drift-kinds.md)" in render_area(monitoring, CATALOG, link)
    room = SHEET_BUDGET - len(render_area(monitoring, CATALOG))
    crowded = replace(monitoring, summary=monitoring.summary + "x" * (room - 10))  # 10 characters left
    squeezed = render_area(crowded, CATALOG, link)
    assert len(render_area(crowded, CATALOG)) <= SHEET_BUDGET
    assert "Side by side" not in squeezed
    assert len(squeezed) <= SHEET_BUDGET


def test_the_readme_links_every_comparison_page() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for comp in load_comparisons().values():
        assert f"](docs/compare/{comp.file})" in readme


def test_the_drift_rows_that_say_retrain_trigger_are_the_configured_triggers(params: Params) -> None:
    checks = {"C32": "data_drift", "C33": "prediction_drift", "C34": "concept_drift", "C35": "attribution_drift"}
    rows = {row["concept"]: row for row in load_comparisons()[DRIFT].rows}
    said = sorted(checks[cid] for cid in checks if "retrain trigger" in rows[cid]["action"])
    assert said == sorted(params.monitoring.retrain.triggers)
